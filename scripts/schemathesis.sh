#!/usr/bin/env bash
# Contract test of a running server against openapi.yaml with schemathesis (v4).
#
#   scripts/schemathesis.sh [PATH_TO_BINARY]     (default: release/prefeval in cargo's target directory)
#
# Builds nothing: build the binary first (`cargo build --release`). Starts it on a free port of
# 127.0.0.1, waits for /healthz, runs schemathesis's `examples` and `coverage` phases with the checks
# below, stops the server, and exits non-zero on any failure. Installs schemathesis with pip when
# neither `st` nor `schemathesis` is on PATH.
#
# Environment: ST_TIME_LIMIT_SECS (default 600) bounds the whole schemathesis run;
# ST_WORKERS (default 1) is its number of concurrent workers. One, because with more, CPython 3.11
# can fail inside schemathesis itself ("SystemError: AST constructor recursion depth mismatch":
# ast.parse from several threads at once), a tool error that says nothing about the server.
set -euo pipefail
cd "$(dirname "$0")/.."

# Where cargo puts its output (CARGO_TARGET_DIR, .cargo/config.toml, or target/), as cargo says.
target_dir() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
if [ $# -ge 1 ]; then
  binary="$1"
else
  binary="$(target_dir)/release/prefeval"
fi
spec="openapi.yaml"
time_limit="${ST_TIME_LIMIT_SECS:-600}"
workers="${ST_WORKERS:-1}"
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

if [ ! -x "$binary" ]; then
  echo "error: $binary is not an executable; build it first (cargo build --release)" >&2
  exit 2
fi

if command -v st >/dev/null 2>&1; then
  st=(st)
elif command -v schemathesis >/dev/null 2>&1; then
  st=(schemathesis)
else
  echo "== installing schemathesis (pip)"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
  st=(python3 -m schemathesis.cli)
fi
echo "== $("${st[@]}" --version)"

# A port nobody listens on now (the server takes it right after).
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base_url="http://127.0.0.1:${port}"
server_log="$(mktemp -t prefeval-schemathesis.XXXXXX.log)"
# No crash cache: no .schemathesis/ in the work tree, and no replay of an earlier run's cases.
st_config="$(mktemp -t prefeval-schemathesis.XXXXXX.toml)"
printf '[cache]\nenabled = false\n' >"$st_config"

server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -f "$server_log" "$st_config"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting $binary on $base_url"
"$binary" --listen "127.0.0.1:${port}" --log-level warn >"$server_log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server exited before answering /healthz; its output:" >&2
    cat "$server_log" >&2
    exit 1
  fi
  if python3 - "$base_url/healthz" <<'EOF' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=1) as answer:
    sys.exit(0 if answer.status == 200 else 1)
EOF
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "error: the server did not answer /healthz within 10 s; its output:" >&2
  cat "$server_log" >&2
  exit 1
fi

echo "== schemathesis: phases examples,coverage; checks $checks"
status=0
# The NDJSON serializer of the stream endpoint's body.
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks
timeout --kill-after=10 "$time_limit" "${st[@]}" --config-file "$st_config" run "$spec" \
  --url "$base_url" \
  --phases examples,coverage \
  --checks "$checks" \
  --workers "$workers" \
  --request-timeout 30 \
  --generation-database none \
  --no-color || status=$?

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "error: schemathesis did not finish within ${time_limit} s" >&2
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "error: the server died during the run; its output:" >&2
  cat "$server_log" >&2
  status=1
elif [ "$status" -ne 0 ] && [ -s "$server_log" ]; then
  echo "== server output (warnings and errors)" >&2
  cat "$server_log" >&2
fi
exit "$status"
