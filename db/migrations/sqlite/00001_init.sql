-- +goose Up
-- Timestamps are TEXT in one fixed-width UTC format (2006-01-02T15:04:05.000000Z),
-- so that comparing them as text compares them as times.
CREATE TABLE users (
    id                INTEGER PRIMARY KEY,
    subject           TEXT    NOT NULL UNIQUE,
    email             TEXT    NOT NULL DEFAULT '',
    name              TEXT    NOT NULL DEFAULT '',
    plan              TEXT    NOT NULL DEFAULT 'free',
    plan_limit        INTEGER CHECK (plan_limit IS NULL OR plan_limit >= 0),
    plan_source       TEXT    NOT NULL DEFAULT 'local',
    plan_refreshed_at TEXT,
    todo_count        INTEGER NOT NULL DEFAULT 0 CHECK (todo_count >= 0),
    next_number       INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);

CREATE TABLE todos (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    title        TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    description  TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    completed    INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
    completed_at TEXT,
    due_at       TEXT,
    due_all_day  INTEGER NOT NULL DEFAULT 0 CHECK (due_all_day IN (0, 1)),
    priority     TEXT    NOT NULL DEFAULT 'none' CHECK (priority IN ('none', 'low', 'medium', 'high')),
    tags         TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    UNIQUE (user_id, number)
);
CREATE INDEX todos_user_due_idx ON todos (user_id, due_at) WHERE due_at IS NOT NULL;

-- The schema alexedwards/scs/sqlite3store expects (expiry is a Julian day).
CREATE TABLE sessions (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_name  TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT    NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE connect_requests (
    id          TEXT    PRIMARY KEY,
    secret_hash BLOB    NOT NULL,
    user_code   TEXT    NOT NULL,
    client_name TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    approved_at TEXT,
    denied_at   TEXT,
    consumed_at TEXT,
    token_id    INTEGER REFERENCES api_tokens (id) ON DELETE SET NULL
);
CREATE INDEX connect_requests_expires_idx ON connect_requests (expires_at);

CREATE TABLE provider_credentials (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    refresh_token BLOB    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE billing_events (
    webhook_id  TEXT    PRIMARY KEY,
    event_type  TEXT    NOT NULL,
    user_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    received_at TEXT    NOT NULL
);

-- +goose Down
DROP TABLE billing_events;
DROP TABLE provider_credentials;
DROP TABLE connect_requests;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE todos;
DROP TABLE users;
