-- +goose Up
CREATE TABLE users (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject           text        NOT NULL UNIQUE,
    email             text        NOT NULL DEFAULT '',
    name              text        NOT NULL DEFAULT '',
    plan              text        NOT NULL DEFAULT 'free',
    plan_limit        integer     CHECK (plan_limit IS NULL OR plan_limit >= 0),
    plan_source       text        NOT NULL DEFAULT 'local',
    plan_refreshed_at timestamptz,
    todo_count        integer     NOT NULL DEFAULT 0 CHECK (todo_count >= 0),
    next_number       bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE todos (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number       bigint      NOT NULL,
    title        text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    description  text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    completed    boolean     NOT NULL DEFAULT false,
    completed_at timestamptz,
    due_at       timestamptz,
    due_all_day  boolean     NOT NULL DEFAULT false,
    priority     text        NOT NULL DEFAULT 'none' CHECK (priority IN ('none', 'low', 'medium', 'high')),
    tags         jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (user_id, number)
);
CREATE INDEX todos_user_due_idx ON todos (user_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX todos_tags_idx ON todos USING gin (tags jsonb_path_ops);

-- The schema alexedwards/scs/pgxstore expects.
CREATE TABLE sessions (
    token  text        PRIMARY KEY,
    data   bytea       NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_name  text        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE connect_requests (
    id          text        PRIMARY KEY,
    secret_hash bytea       NOT NULL,
    user_code   text        NOT NULL,
    client_name text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    user_id     bigint      REFERENCES users (id) ON DELETE CASCADE,
    approved_at timestamptz,
    denied_at   timestamptz,
    consumed_at timestamptz,
    token_id    bigint      REFERENCES api_tokens (id) ON DELETE SET NULL
);
CREATE INDEX connect_requests_expires_idx ON connect_requests (expires_at);

CREATE TABLE provider_credentials (
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider        text        NOT NULL,
    refresh_token   bytea       NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE billing_events (
    webhook_id  text        PRIMARY KEY,
    event_type  text        NOT NULL,
    user_id     bigint      REFERENCES users (id) ON DELETE SET NULL,
    received_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE billing_events;
DROP TABLE provider_credentials;
DROP TABLE connect_requests;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE todos;
DROP TABLE users;
