#!/usr/bin/env bash
# End-to-end check with real Prometheus tools, on 127.0.0.1 only, bounded in time:
#   1. starts the release binary and sends known traffic;
#   2. `promtool check metrics` on a real /metrics scrape;
#   3. a real Prometheus server scrapes the service, and its HTTP query API must return exactly
#      the lists, pairs and agreeing pairs that were sent.
# Usage: scripts/prometheus-e2e.sh [path/to/prefeval]   (needs prometheus + promtool: Debian `prometheus`)
# The binary defaults to release/prefeval in cargo's target directory (CARGO_TARGET_DIR honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts its output (CARGO_TARGET_DIR, .cargo/config.toml, or target/), as cargo says.
target_dir() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
if [ $# -ge 1 ]; then BIN=$1; else BIN="$(target_dir)/release/prefeval"; fi
[ -x "$BIN" ] || { echo "error: $BIN not built" >&2; exit 1; }
command -v promtool >/dev/null && command -v prometheus >/dev/null || { echo "error: prometheus/promtool missing" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL: up to 30 s
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "error: $1 did not answer within 30 s" >&2; return 1
}

PORT=$(free_port)
"$BIN" --listen "127.0.0.1:$PORT" --log-level warn &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/healthz"

post() {
  local status
  status=$(curl -sS -o "$WORK/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "$1" "http://127.0.0.1:$PORT/v1/evaluate")
  [ "$status" = 200 ] || { echo "error: POST answered $status: $(cat "$WORK/answer.json")" >&2; exit 1; }
}
# Known traffic. model e2e-a: 3 requests; lists 1+2+1 = 4; pairs 6+3+1 = 10;
# agreeing: 6 (perfect 4-list) + 0.5 (rewards 1,1,2 ranked in that order: one tie, two reversed)
# + 0 (reversed pair) = 6.5.
post '{"model":"e2e-a","lists":[{"items":[{"reward":4},{"reward":3},{"reward":2},{"reward":1}]}]}'
post '{"model":"e2e-a","lists":[{"items":[{"reward":1},{"reward":1},{"reward":2}]},{"items":[{"reward":0},{"reward":1}]}]}'
# model e2e-b: 1 list; ranks 1,2,2 imply 2 pairs (the tied items none), both agreeing.
post '{"model":"e2e-b","lists":[{"items":[{"reward":3,"rank":1},{"reward":1,"rank":2},{"reward":2,"rank":2}]}]}'
# Invalid and unknown traffic must not move the domain counters.
curl -sS -o /dev/null -H 'Content-Type: application/json' --data '{"model":"e2e-a","lists":[]}' "http://127.0.0.1:$PORT/v1/evaluate"
curl -sS -o /dev/null "http://127.0.0.1:$PORT/no-such-route"

echo "== promtool check metrics"
curl -fsS "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt"
promtool check metrics < "$WORK/metrics.txt"
echo "promtool: $(grep -c '^# TYPE' "$WORK/metrics.txt") metric families, no problems"

echo "== Prometheus server scraping the service"
PROM_PORT=$(free_port)
cat > "$WORK/prometheus.yml" <<YML
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: prefeval
    static_configs: [ { targets: ["127.0.0.1:$PORT"] } ]
YML
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PROM_PORT/-/ready" || { cat "$WORK/prometheus.log" >&2; exit 1; }

python3 - "$PROM_PORT" <<'PY'
import json, sys, time, urllib.parse, urllib.request
port = sys.argv[1]
expected = {
    'prefeval_lists_evaluated_total{model="e2e-a"}': 3.0,
    'prefeval_pairs_evaluated_total{model="e2e-a"}': 10.0,
    'prefeval_pairs_agreeing_total{model="e2e-a"}': 6.5,
    'prefeval_lists_evaluated_total{model="e2e-b"}': 1.0,
    'prefeval_pairs_evaluated_total{model="e2e-b"}': 2.0,
    'prefeval_pairs_agreeing_total{model="e2e-b"}': 2.0,
    'sum(prefeval_pairs_agreeing_total) / sum(prefeval_pairs_evaluated_total)': 8.5 / 12.0,
    'prefeval_requests_rejected_total{reason="queue_full"}': 0.0,
}
def query(q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None
deadline = time.time() + 60
while True:
    got = {q: query(q) for q in expected}
    if all(v is not None for v in got.values()) or time.time() > deadline:
        break
    time.sleep(0.5)
bad = {q: (got[q], want) for q, want in expected.items() if got[q] is None or abs(got[q] - want) > 1e-12}
for q, want in expected.items():
    print(f"  {q} = {got[q]} (sent: {want})")
if bad:
    sys.exit(f"error: Prometheus holds other values than were sent: {bad}")
print("Prometheus query API returns exactly the counts sent")
PY
