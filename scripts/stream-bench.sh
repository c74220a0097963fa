#!/usr/bin/env bash
# Throughput and server memory of POST /v1/evaluate/stream, against the release binary on
# 127.0.0.1 only. Bounded in time, stops by itself, and stops its server on exit. Not part of
# scripts/test: its figures are for reading, not for passing.
#
#   scripts/stream-bench.sh [BINARY]
#
# 1. A ~100 MB NDJSON dataset (400,000 lists of 2 to 12 items) sent with curl, which reads the
#    answer while it sends: MB/s of input, the server's peak resident set (VmHWM), the number of
#    output lines and the summary line.
# 2. A ~20 MB dataset sent by a slow client (curl --limit-rate 2M): the server's peak resident set
#    then. curl's limit paces its upload and its download alike, and without pairs the answer is
#    smaller than the input, so here the upload is what holds the stream back.
# 3. A slow reader proper: ~2 MB of the same lists with include_pairs=true, whose answer is about
#    twelve times the input, read at 2 MB/s. The server must stop reading the body while its answer
#    waits, so its peak resident set stays as small as in part 1 (no buffers growing with the answer).
# Each part starts a fresh server, so each peak is that part's own.
#
# BINARY defaults to target/release/prefeval in cargo's target directory (cargo build --release).
# The datasets come from ../shared/bench/make_payloads.py when it is there, else from the same
# generator inline. Environment: BENCH_LINES (400000), SLOW_LINES (80000), PAIRS_LINES (8000),
# SLOW_RATE (2M).
set -euo pipefail
cd "$(dirname "$0")/.."

lines="${BENCH_LINES:-400000}"
slow_lines="${SLOW_LINES:-80000}"
pairs_lines="${PAIRS_LINES:-8000}"
slow_rate="${SLOW_RATE:-2M}"

binary="${1:-}"
if [ -z "$binary" ]; then
  target="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  binary="$target/release/prefeval"
fi
if [ ! -x "$binary" ]; then
  echo "error: no prefeval binary at $binary; run cargo build --release or pass its path" >&2
  exit 2
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# generate LINES FILE: seeded lists of 2 to 12 items, a quarter of them ranked with ties.
generate() {
  if [ -f ../shared/bench/make_payloads.py ]; then
    python3 ../shared/bench/make_payloads.py ndjson --lines "$1" --items 2:12 --out "$2"
    return
  fi
  python3 - "$1" "$2" <<'PY'
import json, random, sys

lines, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)


def make_list(idx, n, ranked):
    rewards = [round(-0.3 * k + rng.gauss(0, 1.5), 6) for k in range(n)]
    items = [{"id": f"r{k}", "reward": r} for k, r in enumerate(rewards)]
    if ranked:
        rank = 1
        for k, item in enumerate(items):
            if k and rng.random() > 0.2:
                rank += 1
            item["rank"] = rank
        if rank == 1:
            items[-1]["rank"] = 2
        rng.shuffle(items)
    return {"id": f"prompt-{idx:06d}", "items": items}


with open(out, "w") as f:
    for i in range(lines):
        f.write(json.dumps(make_list(i, rng.randint(2, 12), rng.random() < 0.25), separators=(",", ":")) + "\n")
PY
}

# start_server: a fresh server on a free port of 127.0.0.1 (port 0, read back from its first log
# line); sets server_pid and port.
start_server() {
  local log="$work/server.log"
  : >"$log"
  "$binary" serve --listen 127.0.0.1:0 --log-format json --log-level warn,prefeval=info 2>"$log" >/dev/null &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port="$(head -n 1 "$log" | python3 -c '
import json, sys
line = sys.stdin.readline()
print(json.loads(line)["listen"].rsplit(":", 1)[1] if line.endswith("\n") else "")' 2>/dev/null || true)"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "error: the server exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "error: the server logged no listen address within 10 s" >&2
    exit 1
  fi
}

peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status"
}

# post FILE OUT MAX_SECONDS INCLUDE_PAIRS [CURL_ARGS...]: streams FILE, writes the answer to
# OUT; prints "HTTP_CODE SECONDS".
post() {
  local file="$1" out="$2" max="$3" pairs="$4"
  shift 4
  timeout "$((max + 5))" curl -sS --max-time "$max" "$@" --data-binary "@$file" \
    -H 'Content-Type: application/x-ndjson' \
    "http://127.0.0.1:$port/v1/evaluate/stream?include_pairs=$pairs" -o "$out" -w '%{http_code} %{time_total}'
}

# report FILE OUT: what the answer holds.
report() {
  local in_lines out_lines
  in_lines="$(grep -c . "$1" || true)"
  out_lines="$(wc -l <"$2")"
  echo "output lines:  $out_lines (input lines: $in_lines; expected input + 1 for the summary)"
  echo "summary:       $(tail -n 1 "$2")"
  if [ "$out_lines" -ne "$((in_lines + 1))" ]; then
    echo "warning: the answer does not hold one line per input line plus the summary" >&2
  fi
}

echo "== binary: $binary"

echo
echo "== 1. full speed: $lines lines"
data="$work/data.ndjson"
generate "$lines" "$data"
bytes="$(stat -c %s "$data")"
start_server
echo "server idle:   peak RSS $(peak_rss_mib) MiB"
result="$(post "$data" "$work/data.out" 600 false)" || true
read -r code seconds <<<"$result"
[ "$code" = 200 ] || { echo "error: HTTP $code" >&2; head -c 2000 "$work/data.out" >&2; exit 1; }
python3 -c 'import sys; b, s, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(
    f"input:         {b / 1e6:.1f} MB, {n} lines in {s:.2f} s: {b / 1e6 / s:.1f} MB/s, {n / s:,.0f} lines/s")' \
  "$bytes" "$seconds" "$lines"
echo "server:        peak RSS $(peak_rss_mib) MiB"
report "$data" "$work/data.out"
stop_server
rm -f "$data" "$work/data.out"

echo
echo "== 2. slow client: $slow_lines lines, curl --limit-rate $slow_rate"
slow="$work/slow.ndjson"
generate "$slow_lines" "$slow"
slow_bytes="$(stat -c %s "$slow")"
start_server
result="$(post "$slow" "$work/slow.out" 120 false --limit-rate "$slow_rate")" || true
read -r code seconds <<<"$result"
[ "$code" = 200 ] || { echo "error: HTTP $code" >&2; head -c 2000 "$work/slow.out" >&2; exit 1; }
python3 -c 'import sys; b, s = int(sys.argv[1]), float(sys.argv[2]); print(
    f"input:         {b / 1e6:.1f} MB in {s:.2f} s ({b / 1e6 / s:.1f} MB/s, held back by the client)")' \
  "$slow_bytes" "$seconds"
echo "server:        peak RSS $(peak_rss_mib) MiB"
report "$slow" "$work/slow.out"
stop_server

echo
echo "== 3. slow reader: $pairs_lines lines with include_pairs=true, curl --limit-rate $slow_rate"
head -n "$pairs_lines" "$slow" >"$work/pairs.ndjson"
start_server
result="$(post "$work/pairs.ndjson" "$work/pairs.out" 120 true --limit-rate "$slow_rate")" || true
read -r code seconds <<<"$result"
[ "$code" = 200 ] || { echo "error: HTTP $code" >&2; head -c 2000 "$work/pairs.out" >&2; exit 1; }
python3 -c 'import sys; i, o, s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]); print(
    f"input:         {i / 1e6:.1f} MB, answer {o / 1e6:.1f} MB read in {s:.2f} s ({o / 1e6 / s:.1f} MB/s)")' \
  "$(stat -c %s "$work/pairs.ndjson")" "$(stat -c %s "$work/pairs.out")" "$seconds"
echo "server:        peak RSS $(peak_rss_mib) MiB"
report "$work/pairs.ndjson" "$work/pairs.out"
