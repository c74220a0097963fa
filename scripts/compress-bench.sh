#!/usr/bin/env bash
# Compressed input and answers: throughput of `prefeval eval` and of POST /v1/evaluate/stream on
# plain, zstd and gzip copies of the same ~100 MB dataset, and the server's peak resident set under
# a decompression bomb. Against the release binary on 127.0.0.1 only; bounded in time, stops by
# itself and stops its server on exit. Not part of scripts/test: its figures are for reading.
#
#   scripts/compress-bench.sh [BINARY]
#
# 1. `prefeval eval` (output to /dev/null) on the plain file, a .zst copy (zstd -3), a .gz copy
#    (gzip -6), and the .zst copy on stdin: MB/s of uncompressed input, and each as a share of
#    plain's.
# 2. The stream endpoint with curl: a plain body, a zstd body, a gzip body (`Content-Encoding`),
#    and a plain body with `Accept-Encoding: zstd` (the answer compressed): MB/s of uncompressed
#    input.
# 3. Bombs: 10 GiB of zeros gzip -9'd (~10 MB) and zstd -3'd (~0.3 MB), posted to /v1/evaluate
#    (413 once 32 MiB are decoded) and to the stream (an error line once a line passes 32 MiB):
#    status, seconds, and the server's peak resident set beside that of the same doors given a
#    plain body of the limit.
#
# BINARY defaults to target/release/prefeval in cargo's target directory. The dataset comes from
# scripts/stream-bench.sh's generator. Environment: BENCH_LINES (400000), BOMB_GIB (10), PARTS
# ("1 2 3": which parts to run).
set -euo pipefail
cd "$(dirname "$0")/.."

lines="${BENCH_LINES:-400000}"
bomb_gib="${BOMB_GIB:-10}"
parts=" ${PARTS:-1 2 3} "
part() { [[ "$parts" == *" $1 "* ]]; }

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
for tool in curl python3 gzip zstd; do
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

# The dataset generator, the server starter and the peak reader of stream-bench.sh, so that both
# scripts measure the same data the same way.
for function in generate start_server peak_rss_mib; do
  eval "$(sed -n "/^$function() {/,/^}/p" scripts/stream-bench.sh)"
done

# seconds COMMAND...: runs it, prints its wall time in seconds.
seconds() {
  local start end
  start="$(date +%s.%N)"
  "$@"
  end="$(date +%s.%N)"
  python3 -c "print(f'{$end - $start:.2f}')"
}

rate() { python3 -c "print(f'{$1 / 1e6 / $2:.1f}')"; }
share() { python3 -c "print(f'{100 * $1 / $2:.0f}%')"; }

data="$work/data.ndjson"
echo "generating $lines lines..."
generate "$lines" "$data"
gzip -6 -c "$data" >"$data.gz"
zstd -q -3 -c "$data" >"$data.zst"
size="$(stat -c %s "$data")"
printf 'dataset: %.1f MB plain, %.1f MB zstd -3, %.1f MB gzip -6\n' \
  "$(rate "$size" 1)" "$(rate "$(stat -c %s "$data.zst")" 1)" "$(rate "$(stat -c %s "$data.gz")" 1)"

if part 1; then
echo
echo "1. prefeval eval (MB/s of uncompressed input)"
plain_s="$(seconds "$binary" eval "$data" -o /dev/null)"
plain_rate="$(rate "$size" "$plain_s")"
printf '  %-16s %6s s  %7s MB/s\n' plain "$plain_s" "$plain_rate"
for case in zst gz stdin.zst; do
  if [ "$case" = stdin.zst ]; then
    s="$(seconds sh -c '"$1" eval - -o /dev/null <"$2"' _ "$binary" "$data.zst")"
  else
    s="$(seconds "$binary" eval "$data.$case" -o /dev/null)"
  fi
  r="$(rate "$size" "$s")"
  printf '  %-16s %6s s  %7s MB/s  (%s of plain)\n' "$case" "$s" "$r" "$(share "$r" "$plain_rate")"
done

fi

if part 2; then
echo
echo "2. POST /v1/evaluate/stream with curl (MB/s of uncompressed input)"
start_server
url="http://127.0.0.1:$port/v1/evaluate/stream"
post() { curl -sS --fail -o "$work/answer" -H 'Content-Type: application/x-ndjson' "$@" "$url"; }
for case in plain zstd gzip accept-zstd; do
  case "$case" in
    plain) s="$(seconds post --data-binary "@$data")" ;;
    zstd) s="$(seconds post -H 'Content-Encoding: zstd' --data-binary "@$data.zst")" ;;
    gzip) s="$(seconds post -H 'Content-Encoding: gzip' --data-binary "@$data.gz")" ;;
    accept-zstd) s="$(seconds post -H 'Accept-Encoding: zstd' --data-binary "@$data")" ;;
  esac
  printf '  %-16s %6s s  %7s MB/s  answer %s bytes as sent\n' "$case" "$s" "$(rate "$size" "$s")" \
    "$(stat -c %s "$work/answer")"
done
echo "  server peak resident set: $(peak_rss_mib) MiB"
stop_server

fi

part 3 || exit 0
echo
echo "3. Decompression bombs: $bomb_gib GiB of zeros, gzip -9'd and zstd -3'd"
head -c "$((bomb_gib * 1024 * 1024 * 1024))" /dev/zero | gzip -9 >"$work/bomb.gz"
head -c "$((bomb_gib * 1024 * 1024 * 1024))" /dev/zero | zstd -q -3 >"$work/bomb.zst"
echo "  bombs: $(stat -c %s "$work/bomb.gz") bytes gzip, $(stat -c %s "$work/bomb.zst") bytes zstd"
# The plain bodies to weigh them against: 32 MiB of NDJSON to /v1/evaluate, with its
# Content-Length (read into one buffer of its size) and chunked (a buffer grown as it comes, as a
# compressed body's decoded bytes are), then refused; and a 40 MiB line with no newline to the stream (held up to the 32 MiB line limit).
head -c $((32 * 1024 * 1024 - 64)) "$data" >"$work/plain-32m"
head -c $((40 * 1024 * 1024)) /dev/zero | tr '\0' a >"$work/line-40m"
json=(-H 'Content-Type: application/json')
ndjson=(-H 'Content-Type: application/x-ndjson')
for case in evaluate-gzip evaluate-zstd evaluate-plain evaluate-chunked stream-gzip stream-zstd stream-plain; do
  start_server
  case "$case" in
    evaluate-gzip) args=("${json[@]}" -H 'Content-Encoding: gzip' --data-binary "@$work/bomb.gz") path=/v1/evaluate ;;
    evaluate-zstd) args=("${json[@]}" -H 'Content-Encoding: zstd' --data-binary "@$work/bomb.zst") path=/v1/evaluate ;;
    evaluate-plain) args=("${json[@]}" --data-binary "@$work/plain-32m") path=/v1/evaluate ;;
    evaluate-chunked) args=("${json[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$work/plain-32m")
      path=/v1/evaluate ;;
    stream-gzip) args=("${ndjson[@]}" -H 'Content-Encoding: gzip' --data-binary "@$work/bomb.gz") path=/v1/evaluate/stream ;;
    stream-zstd) args=("${ndjson[@]}" -H 'Content-Encoding: zstd' --data-binary "@$work/bomb.zst") path=/v1/evaluate/stream ;;
    stream-plain) args=("${ndjson[@]}" --data-binary "@$work/line-40m") path=/v1/evaluate/stream ;;
  esac
  start="$(date +%s.%N)"
  status="$(curl -sS -o "$work/answer" -w '%{http_code}' --max-time 120 "${args[@]}" \
    "http://127.0.0.1:$port$path" 2>/dev/null || true)"
  end="$(date +%s.%N)"
  printf '  %-15s HTTP %s in %5.2f s, peak RSS %5s MiB: %s\n' "$case" "$status" \
    "$(python3 -c "print($end - $start)")" "$(peak_rss_mib)" "$(head -c 100 "$work/answer")"
  stop_server
done
