#!/usr/bin/env python3
"""Floods a prefeval binary with large batches from plain HTTP clients and checks its promises.

    scripts/memory-flood.py [BINARY] [--clients 40] [--body-mib 29] [--budget-mib 512]

1. Memory: CLIENTS simultaneous POSTs of a valid BODY_MIB batch against a memory budget of
   BUDGET_MIB, from Python's http.client (which writes the whole body before reading). Every answer
   must be 200, or 503 with Retry-After; at least one 200; /healthz answers within a second
   throughout; the server's peak resident set (VmHWM) stays under the budget + 160 MiB.
2. Early refusals: 20 POSTs of three times the body limit from http.client; all 20 must read 413.

BINARY defaults to the release binary in cargo's target directory. The server listens on a free
port of 127.0.0.1 only; every loop is bounded and the script stops by itself. Exit status 0 when
every check holds.
"""

import argparse
import http.client
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

from floodkit import default_binary, free_port, vm

MIB = 1 << 20


def batch(size):
    """A valid batch of about `size` bytes: lists of 8 items with ids and full-precision rewards."""
    parts, length, i = [], 0, 0
    while length < size:
        items = ",".join('{"id":"response-%d","reward":%r}' % (k, math.sin((i * 8 + k) * 0.6180339887498949))
                         for k in range(8))
        part = '{"id":"prompt-%d","items":[%s]}' % (i, items)
        parts.append(part)
        length += len(part) + 1
        i += 1
    return ('{"model":"flood","options":{"include_pairs":false},"lists":[%s]}' % ",".join(parts)).encode()


def post(port, body, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/evaluate", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheader("Retry-After"), data
    finally:
        conn.close()


def start(binary, port, *args):
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--log-level", "warn", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("the server did not start")


def flood(binary, clients, body_mib, budget_mib):
    port = free_port()
    proc = start(binary, port, "--workers", "2", "--memory-limit-bytes", str(budget_mib * MIB))
    failures = []
    try:
        body = batch(body_mib * MIB)
        done = threading.Event()
        slowest = [0.0]
        rss_samples = [0]

        def watch():
            while not done.is_set():
                started = time.monotonic()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/healthz")
                    status = conn.getresponse().status
                    conn.close()
                except OSError as error:
                    status = str(error)
                if status != 200:
                    failures.append(f"healthz answered {status}")
                slowest[0] = max(slowest[0], time.monotonic() - started)
                rss_samples[0] = max(rss_samples[0], vm(proc.pid, "VmRSS"))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch)
        watcher.start()
        answers = [None] * clients
        barrier = threading.Barrier(clients)

        def client(i):
            barrier.wait()
            try:
                answers[i] = post(port, body)
            except OSError as error:
                answers[i] = (f"client error: {error!r}", None, b"")

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.monotonic() - started
        done.set()
        watcher.join()
        peak = vm(proc.pid, "VmHWM")

        statuses = {}
        for status, retry_after, data in answers:
            statuses[status] = statuses.get(status, 0) + 1
            if status == 503:
                code = json.loads(data)["error"]["code"]
                if not retry_after or int(retry_after) < 1:
                    failures.append(f"503 {code} without a Retry-After of at least 1")
            elif status != 200:
                failures.append(f"unexpected answer {status}: {data[:200]!r}")
        retry = sorted({int(r) for s, r, _ in answers if s == 503 and r})
        if statuses.get(200, 0) < 1:
            failures.append("no batch was evaluated")
        if slowest[0] >= 1.0:
            failures.append(f"healthz took {slowest[0]:.3f} s")
        bound = (budget_mib + 160) * MIB
        if peak >= bound:
            failures.append(f"peak RSS {peak / MIB:.0f} MiB >= {bound / MIB:.0f} MiB")
        print(f"flood: {clients} x {len(body) / MIB:.1f} MiB against a {budget_mib} MiB budget in {elapsed:.1f} s: "
              f"answers {statuses}, Retry-After values {retry}, peak RSS (VmHWM) {peak / MIB:.0f} MiB "
              f"(bound {bound / MIB:.0f} MiB), slowest healthz {slowest[0] * 1000:.0f} ms")
    finally:
        proc.kill()
        proc.wait()
    return failures


def early_refusals(binary, attempts=20):
    port = free_port()
    limit = MIB
    proc = start(binary, port, "--workers", "1", "--max-body-bytes", str(limit))
    failures = []
    try:
        body = b" " * (3 * limit)
        got = []
        for _ in range(attempts):
            try:
                got.append(post(port, body, timeout=30)[0])
            except OSError as error:
                got.append(type(error).__name__)
        read = got.count(413)
        print(f"early refusals: {read} of {attempts} http.client posts of 3x the body limit read the 413 ({got[:5]}...)")
        if read != attempts:
            failures.append(f"only {read} of {attempts} clients read the 413: {got}")
    finally:
        proc.kill()
        proc.wait()
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--body-mib", type=int, default=29)
    parser.add_argument("--budget-mib", type=int, default=512)
    args = parser.parse_args()
    binary = args.binary or default_binary()
    failures = flood(binary, args.clients, args.body_mib, args.budget_mib) + early_refusals(binary)
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
