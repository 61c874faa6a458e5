#!/usr/bin/env bash
# make dev: build both binaries and run them side by side on the embedded
# defaults (or whatever .env / the environment says). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

# Static binaries (no cgo anywhere in the module): they start a few ms sooner.
CGO_ENABLED=0 go build -o bin/ ./cmd/authserver ./cmd/mcpserver

workdir=$(mktemp -d)
fifo="$workdir/mcp-stdin"
mkfifo "$fifo"
# The MCP server speaks JSON-RPC on stdin/stdout. Editors start their own copy;
# this one gets a pipe that stays open until we stop, so it keeps running.
exec 3<>"$fifo"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  exec 3>&-
  rm -rf "$workdir"
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

bin/authserver serve & pids+=($!)
bin/mcpserver serve <&3 >/dev/null & pids+=($!)

cat >&2 <<MSG

  todo-mcp is running.
    web app:    ${PUBLIC_URL:-http://localhost:3000}  (sign in, connect your editor)
    mcpserver:  started on stdio; your editor starts its own copy (see README, "Connect your editor")
  Press Ctrl-C to stop both.

MSG

# Stop everything as soon as either process exits.
set +e
wait -n "${pids[@]}"
status=$?
stop
exit "$status"
