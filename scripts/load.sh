#!/usr/bin/env bash
# prefeval's own load figures on loopback, with nothing but this repository, wrk and python3:
#
#   scripts/load.sh [BINARY] [-s SECONDS] [-c CONNECTIONS] [-t WRK_THREADS]
#
# Generates the four payload shapes of the shared harness (small: 8 lists x 4 items with pairs;
# medium: 64 x 8 with pairs; large: 256 x 32 without; xl-list: 1 x 2000 without) from a fixed seed,
# starts BINARY (default: the release binary in cargo's target directory) on a free 127.0.0.1 port,
# checks each payload answers 200, then runs wrk for SECONDS (default 5) per payload with
# CONNECTIONS (default 16) connections on WRK_THREADS (default 1) threads, and a no-op GET /healthz
# for the overhead comparison. Prints req/s, p50 and p99 per payload, the server's peak RSS after
# each payload (they run in order, so the small row is the peak under the small load alone), and
# the small batch's cost in no-op requests (healthz req/s over small req/s).
# Bounded and self-stopping; the server is killed on exit. Installs nothing: needs wrk
# (Debian: apt-get install wrk). Comparisons with the FastAPI + numpy peer still go through
# ../shared/bench/compare.sh, which runs both servers interleaved in one run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5
connections=16
threads=1
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    -s) seconds="$2"; shift 2 ;;
    -c) connections="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) binary="$1"; shift ;;
  esac
done
if [ -z "$binary" ]; then
  target="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  binary="$target/release/prefeval"
fi
[ -x "$binary" ] || { echo "error: $binary is not an executable; build it (cargo build --release)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

work="$(mktemp -d -t prefeval-load.XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 - "$work" <<'PY'
import json, random, sys
out = sys.argv[1]
shapes = {"small": (8, 4, True), "medium": (64, 8, True), "large": (256, 32, False), "xl-list": (1, 2000, False)}
for name, (lists, items, pairs) in shapes.items():
    rng = random.Random(12345)
    body = {"model": "load", "options": {"include_pairs": pairs}, "lists": [
        {"id": f"p{i}", "items": [{"id": f"r{k}", "reward": round(rng.gauss(0, 1.5), 6)} for k in range(items)]}
        for i in range(lists)]}
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(body, f, separators=(",", ":"))
PY
# POSTs the file named by $PAYLOAD as JSON; without $PAYLOAD, GETs (the no-op healthz).
cat >"$work/load.lua" <<'LUA'
local path = os.getenv("PAYLOAD")
if path then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%.1f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status + e.connect + e.read + e.write + e.timeout))
end
LUA

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"
"$binary" --listen "127.0.0.1:$port" --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null || { cat "$work/server.log" >&2; echo "error: the server did not start" >&2; exit 1; }
echo "binary: $binary ($(nproc) CPUs; wrk: $threads thread(s), $connections connections, $seconds s per payload)"
echo "idle peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$server_pid/status")"

# peak_mib: the server's VmHWM after that payload's load (monotonic: payloads run in this order).
peak() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status"; }
printf '%-8s %12s %10s %10s %6s %10s %9s\n' payload req/s p50_ms p99_ms bad bytes peak_mib
status=0
for name in small medium large xl-list; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$work/$name.json" "$url/v1/evaluate")"
  [ "$code" = 200 ] || { echo "error: $name answered $code" >&2; status=1; continue; }
  read -r rps p50 p99 bad < <(PAYLOAD="$work/$name.json" timeout $((seconds + 30)) \
    wrk -t "$threads" -c "$connections" -d "${seconds}s" -s "$work/load.lua" "$url/v1/evaluate" | tail -n 1)
  printf '%-8s %12s %10s %10s %6s %10s %9s\n' "$name" "$rps" "$p50" "$p99" "$bad" "$(stat -c %s "$work/$name.json")" "$(peak)"
  [ "$bad" = 0 ] || status=1
  [ "$name" = small ] && small_rps="$rps"
done
read -r rps p50 p99 bad < <(timeout $((seconds + 30)) \
  wrk -t "$threads" -c "$connections" -d "${seconds}s" -s "$work/load.lua" "$url/healthz" | tail -n 1)
printf '%-8s %12s %10s %10s %6s %10s %9s\n' healthz "$rps" "$p50" "$p99" "$bad" 0 "$(peak)"
echo "peak RSS under load: $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$server_pid/status")"
[ -n "${small_rps:-}" ] && python3 -c "import sys; print(f'a small batch costs {float(sys.argv[1]) / float(sys.argv[2]):.2f} no-op GET /healthz')" "$rps" "$small_rps"
exit "$status"
