#!/usr/bin/env bash
# make test: find a PostgreSQL for the tests, then run every test with -race.
#   1. TEST_DATABASE_URL, if set;
#   2. else the server on 127.0.0.1:5432 (user postgres);
#   3. else a throwaway cluster made with the local initdb/pg_ctl, removed afterwards;
#   4. else the PostgreSQL half of the tests is skipped, loudly (a failure when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

pg_answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

find_pg_bin() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  return 1
}

cleanup_cluster() { :; }
trap 'cleanup_cluster' EXIT

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  say "PostgreSQL: TEST_DATABASE_URL"
elif pg_answers 127.0.0.1 5432; then
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
  say "PostgreSQL: the server on 127.0.0.1:5432"
elif initdb=$(find_pg_bin initdb) && pg_ctl=$(find_pg_bin pg_ctl); then
  cluster=$(mktemp -d)
  port=$(( 20000 + RANDOM % 20000 ))
  run=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root; use the postgres account when there is one.
    id postgres >/dev/null 2>&1 || { say "PostgreSQL: cannot run initdb as root without a postgres user"; exit 1; }
    chown postgres "$cluster"
    run=("$(command -v runuser || echo /usr/sbin/runuser)" -u postgres --)
  fi
  say "PostgreSQL: starting a throwaway cluster on port $port"
  "${run[@]}" "$initdb" -D "$cluster/data" -U postgres -A trust >/dev/null
  "${run[@]}" "$pg_ctl" -D "$cluster/data" -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c fsync=off" -l "$cluster/log" -w start >/dev/null
  cleanup_cluster() {
    "${run[@]}" "$pg_ctl" -D "$cluster/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$cluster"
  }
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
else
  if [ "${CI:-}" = true ]; then
    say "PostgreSQL: none found (no TEST_DATABASE_URL, nothing on 127.0.0.1:5432, no initdb) and CI=true: failing"
    exit 1
  fi
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!!! NO POSTGRESQL: the PostgreSQL half of the tests will be SKIPPED.       !!!\n' >&2
  printf '!!! Set TEST_DATABASE_URL, start one on 127.0.0.1:5432, or install initdb. !!!\n' >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
fi

# The MCP Inspector CLI (a third-party MCP client) for cmd/mcpserver's tests,
# pinned by test/inspector/package-lock.json.
if [ ! -d test/inspector/node_modules ]; then
  if command -v npm >/dev/null 2>&1; then
    say "MCP Inspector: npm ci in test/inspector"
    (cd test/inspector && npm ci --no-audit --no-fund --loglevel=error) >&2
  elif [ "${CI:-}" = true ]; then
    say "MCP Inspector: npm not found and CI=true: failing"
    exit 1
  else
    say "MCP Inspector: npm not found; its test will be SKIPPED (install Node.js 20+)"
  fi
fi

# Verbose output goes to a log; the terminal gets failures, skips and the
# package lines, then a count of tests per database backend.
mkdir -p bin
log=bin/test.log
set +e
go test -race -count=1 -v "$@" ./... 2>&1 | tee "$log" |
  grep -E '^(ok|FAIL|panic:|\?)|--- (FAIL|SKIP)|SKIPPING|_test\.go:[0-9]+:|^\s+\S+_test\.go'
status=${PIPESTATUS[0]}
set -e

count() { grep -cE -- "$1" "$log" || true; }
printf '\nTests per backend (each counts the subtests run on that database):\n'
for backend in sqlite postgres; do
  printf '  %-8s %4s passed, %s failed, %s skipped\n' "$backend" \
    "$(count "--- PASS: \S+/$backend(/| )")" "$(count "--- FAIL: \S+/$backend(/| )")" "$(count "--- SKIP: \S+/$backend(/| )")"
done
printf 'Full log: %s\nTotal: %s passed, %s failed, %s skipped\n' "$log" \
  "$(count '^\s*--- PASS')" "$(count '^\s*--- FAIL')" "$(count '^\s*--- SKIP')"
exit "$status"
