#!/usr/bin/env python3
"""A client that sends its whole body before reading a byte of the answer, against a prefeval binary.

    scripts/whole-body-client.py [BINARY] [--megabytes 100]

Python's `http.client` (and `requests.post(url, data=file)`, built on it) writes the whole request
body before it reads the answer. On `POST /v1/evaluate/stream` with every result line written, the
answer fills the socket buffers while the client is still sending; the stream, bounded in memory,
stops reading, and both wait. With `results=errors` only the error lines and the summary are
written, so such a client gets its answer. This script starts the binary on a free port, sends a
generated NDJSON body of about --megabytes MB (the same few lists over and over, three broken
lines among them) with `http.client`, body first, then reads the answer, and checks that it is
exactly the three error lines and the summary: the line count, the failed lines, and the loss,
accuracy and pair count of the lists as `POST /v1/evaluate` gives them for one copy of each.

Every socket operation has a timeout (TIMEOUT_SECS), so a regression fails instead of hanging.
Exit status 0 when every check holds.
"""

import argparse
import http.client
import json
import math
import subprocess
import sys
import time
import urllib.request

from floodkit import default_binary, free_port

TIMEOUT_SECS = 120
# Lists of 2 to 9 items, cycled through: every copy adds the same figures.
DISTINCT_LISTS = 8


def distinct_lists():
    lists = []
    for k in range(DISTINCT_LISTS):
        n = 2 + k
        items = [{"id": f"i{j}", "reward": round(math.sin(7 * k + 3 * j) * 2.0, 6)} for j in range(n)]
        lists.append({"id": f"list-{k}", "items": items})
    return lists


def start(binary, port):
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("the server did not become ready within 30 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", default=None)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    binary = args.binary or default_binary()

    lists = distinct_lists()
    lines = [json.dumps(lst, separators=(",", ":")).encode() for lst in lists]
    cycle = b"\n".join(lines) + b"\n"
    copies = max(1, args.megabytes * 1_000_000 // len(cycle))
    body = bytearray(cycle * copies)
    total_lines = copies * DISTINCT_LISTS
    # Three broken lines (a list of one item: `too_few_items`) in place of the first list of three
    # cycles: the first, the middle one and the last; their line numbers are those of the lists.
    broken = b'{"id":"x","items":[{"reward":1}]}'.ljust(len(lines[0]), b" ")
    broken_cycles = sorted({0, copies // 2, copies - 1})
    for c in broken_cycles:
        start_at = c * len(cycle)
        body[start_at:start_at + len(lines[0])] = broken
    failed_lines = [c * DISTINCT_LISTS + 1 for c in broken_cycles]
    evaluated = total_lines - len(failed_lines)
    print(f"body: {len(body) / 1e6:.1f} MB, {total_lines} lines, lines {failed_lines} broken")

    port = free_port()
    server = start(binary, port)
    failures = []
    try:
        # One copy of each list, through the batch: what every copy adds.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/evaluate",
                                         data=json.dumps({"lists": lists}).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as answer:
            one = json.load(answer)
        per_cycle_pairs = one["summary"]["pairs"]
        # The broken lines replace lists of 2 items (1 pair each, loss as the batch's first list).
        expected_pairs = per_cycle_pairs * copies - len(failed_lines) * one["lists"][0]["pairs_count"]
        loss_sum = sum(lst["loss"] for lst in one["lists"]) * copies - len(failed_lines) * one["lists"][0]["loss"]
        expected_loss = loss_sum / evaluated

        began = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECS)
        # `request` writes the head and the whole body before `getresponse` reads a byte.
        connection.request("POST", "/v1/evaluate/stream?results=errors", body=bytes(body),
                           headers={"content-type": "application/x-ndjson"})
        sent = time.monotonic() - began
        response = connection.getresponse()
        answer = response.read()
        took = time.monotonic() - began
        connection.close()
        print(f"sent in {sent:.1f} s, answered in {took:.1f} s ({len(body) / 1e6 / took:.1f} MB/s), "
              f"{len(answer)} bytes of answer")

        if response.status != 200:
            failures.append(f"status {response.status}: {answer[:300]!r}")
        out = [json.loads(line) for line in answer.decode().splitlines()]
        errors, summary = out[:-1], out[-1].get("summary") if out else None
        if [line.get("line") for line in errors] != failed_lines:
            failures.append(f"error lines {[line.get('line') for line in errors]}, expected {failed_lines}")
        if any(line.get("error", {}).get("code") != "too_few_items" for line in errors):
            failures.append(f"unexpected error lines: {errors[:3]}")
        if summary is None:
            failures.append(f"no summary last: {answer[-300:]!r}")
        else:
            checks = [
                ("lists", summary["lists"], evaluated),
                ("lines_failed", summary["lines_failed"], len(failed_lines)),
                ("pairs", summary["pairs"], expected_pairs),
                ("run.input.bytes", summary["run"]["input"]["bytes"], len(body)),
            ]
            for name, got, expected in checks:
                if got != expected:
                    failures.append(f"summary.{name} is {got}, expected {expected}")
            if not math.isclose(summary["loss"], expected_loss, rel_tol=1e-9):
                failures.append(f"summary.loss is {summary['loss']}, expected {expected_loss}")
    except (OSError, http.client.HTTPException) as error:
        failures.append(f"the exchange failed ({type(error).__name__}: {error}): a client that sends its "
                        "whole body first gets no answer")
    finally:
        server.kill()
        server.wait()
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        sys.exit(1)
    print("ok: a whole-body-first client got the error lines and the summary with results=errors")


if __name__ == "__main__":
    main()
