#!/usr/bin/env python3
"""Soak test: saturate a real prefeval with mixed traffic and watch answers and memory.

Usage (from the repository root, after `cargo build --release`):

    python3 scripts/soak.py [BINARY] [--seconds 60] [--clients 16] [--warmup 5]
                            [--workers 2] [--queue-depth 4] [--max-body-bytes 1048576]
                            [--golden tests/data/golden/evaluate.json] [--seed N]

BINARY defaults to release/prefeval in cargo's target directory (as `cargo metadata` reports it,
so CARGO_TARGET_DIR is honoured). The script starts it on a free 127.0.0.1 port (loopback
only) with a small pool and queue, so that the clients saturate it, and drives it for a warm-up
and then for --seconds from --clients threads, each with one keep-alive connection
(http.client):

  ~60% valid requests, drawn from the golden vectors; every 200 answer is compared with the
       expected response (relative 1e-12, absolute floor 1e-15, pairs matched by
       (preferred, other), as the golden README says);
  ~25% invalid requests (malformed JSON, wrong types, bad ranks, unknown fields, wrong or missing
       content type), each with the status it must get;
  ~15% oversized requests (bodies over --max-body-bytes, with Content-Length and chunked; a list
       over the item limit).

A 503 (queue full) is counted and the client goes on at once (it does not sleep Retry-After).
Every second the server's resident memory (VmRSS, /proc/PID/status) is sampled.

At the end it prints a report and exits 1 if any of these happened (0 otherwise):
  - a 5xx other than 503, or a 503 without Retry-After;
  - a 200 whose figures differ from the golden vector (a mismatch), or any answer whose status
    is not one the request may get (a valid request answered 4xx, a malformed one answered 200...);
  - a connection-level failure, except on the over-limit bodies (the server may answer 413 and
    close before the client has written the whole body);
  - no valid request answered 200 at all, the server exiting early, or an unclean shutdown;
  - RSS at the end above max(2 x RSS after warm-up, RSS after warm-up + 64 MiB).

Bounded: the run lasts --warmup + --seconds (at most 1 hour), each request times out after 30 s,
and the server is stopped (SIGTERM, then SIGKILL) whatever happens. Python 3 standard library only.
"""

import argparse
import http.client
import json
import re
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO_ROOT, "tests", "data", "golden", "evaluate.json")
REQUEST_TIMEOUT = 30.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ----------------------------------------------------------------------------------------------
# Golden comparison


class Mismatch(Exception):
    pass


def compare(got, expected, rel, floor):
    """Raises Mismatch unless `got` matches the expected golden response (README's rules)."""

    def close(what, g, e):
        if not isinstance(g, (int, float)) or isinstance(g, bool):
            raise Mismatch(f"{what}: expected a number, got {g!r}")
        if not math.isfinite(g) or abs(g - e) > max(rel * abs(e), floor):
            raise Mismatch(f"{what}: got {g!r}, expected {e!r}")

    def equal(what, g, e):
        if g != e or type(g) is not type(e):
            raise Mismatch(f"{what}: got {g!r}, expected {e!r}")

    equal("normalization", got.get("normalization"), expected["normalization"])
    equal("summary.lists", got.get("summary", {}).get("lists"), expected["summary"]["lists"])
    equal("summary.pairs", got.get("summary", {}).get("pairs"), expected["summary"]["pairs"])
    close("loss", got.get("loss"), expected["loss"])
    close("summary.accuracy", got.get("summary", {}).get("accuracy"), expected["summary"]["accuracy"])
    got_lists, expected_lists = got.get("lists"), expected["lists"]
    if not isinstance(got_lists, list) or len(got_lists) != len(expected_lists):
        raise Mismatch("number of lists")
    for i, (g, e) in enumerate(zip(got_lists, expected_lists)):
        at = f"lists[{i}]"
        equal(f"{at}.id", g.get("id"), e.get("id"))
        equal(f"{at}.n", g.get("n"), e["n"])
        equal(f"{at}.pairs_count", g.get("pairs_count"), e["pairs_count"])
        close(f"{at}.loss", g.get("loss"), e["loss"])
        close(f"{at}.accuracy", g.get("accuracy"), e["accuracy"])
        if "pairs" not in e:
            if "pairs" in g:
                raise Mismatch(f"{at}: pairs returned though not asked for")
            continue
        got_pairs = {}
        for p in g.get("pairs") or []:
            key = (p.get("preferred"), p.get("other"))
            if key in got_pairs:
                raise Mismatch(f"{at}: pair {key} appears twice")
            got_pairs[key] = p
        if len(got_pairs) != len(e["pairs"]):
            raise Mismatch(f"{at}: {len(got_pairs)} pairs, expected {len(e['pairs'])}")
        for ep in e["pairs"]:
            key = (ep["preferred"], ep["other"])
            gp = got_pairs.get(key)
            if gp is None:
                raise Mismatch(f"{at}: pair {key} missing")
            close(f"{at}.pairs{key}.probability", gp.get("probability"), ep["probability"])
            close(f"{at}.pairs{key}.log_probability", gp.get("log_probability"), ep["log_probability"])


# ----------------------------------------------------------------------------------------------
# Traffic


class Request:
    """One kind of request: what is sent and which statuses it may get."""

    def __init__(self, kind, name, body, content_type="application/json", allowed=(), golden=None, chunked=False,
                 may_close=False):
        self.kind = kind  # "valid", "invalid" or "oversized"
        self.name = name
        self.body = body
        self.content_type = content_type
        # 503 is always allowed: only the content-type check and the 413 come before admission,
        # and counting the 503 that cannot happen for those would hide nothing important.
        self.allowed = set(allowed) | {503}
        self.golden = golden
        self.chunked = chunked
        self.may_close = may_close  # the server may close before reading the whole body


def build_requests(golden, max_body_bytes):
    valid = [
        Request("valid", c["name"], json.dumps(c["request"]).encode(), allowed={200}, golden=c["response"])
        for c in golden["cases"]
    ]
    two = '{"lists":[{"items":[{"reward":1.0},{"reward":0.0}]}]}'

    def ranked(rank):
        return f'{{"lists":[{{"items":[{{"reward":1,"rank":1}},{{"reward":0,"rank":{rank}}}]}}]}}'

    invalid = [
        Request("invalid", "truncated", two[:30].encode(), allowed={400}),
        Request("invalid", "trailing comma", two.replace("1.0}", "1.0,}").encode(), allowed={400}),
        Request("invalid", "NaN reward", two.replace("1.0", "NaN").encode(), allowed={400}),
        Request("invalid", "invalid UTF-8", two.replace('"lists"', '"li\udcffsts"').encode("utf-8", "surrogateescape"),
                allowed={400}),
        Request("invalid", "trailing garbage", (two + "x").encode(), allowed={400}),
        Request("invalid", "empty body", b"", allowed={400}),
        Request("invalid", "string reward", two.replace("1.0", '"1.0"').encode(), allowed={422}),
        Request("invalid", "lists as object", b'{"lists":{"items":[]}}', allowed={422}),
        Request("invalid", "string include_pairs",
                b'{"options":{"include_pairs":"true"},"lists":[{"items":[{"reward":1},{"reward":0}]}]}', allowed={422}),
        Request("invalid", "unknown field", two.replace('"reward":0.0', '"reward":0.0,"score":1').encode(),
                allowed={422}),
        Request("invalid", "rank 0", ranked("0").encode(), allowed={422}),
        Request("invalid", "rank 1.5", ranked("1.5").encode(), allowed={422}),
        Request("invalid", "rank -1", ranked("-1").encode(), allowed={422}),
        Request("invalid", "rank string", ranked('"2"').encode(), allowed={422}),
        Request("invalid", "one item", b'{"lists":[{"items":[{"reward":1}]}]}', allowed={422}),
        Request("invalid", "reward 1e400", two.replace("1.0", "1e400").encode(), allowed={422}),
        Request("invalid", "text/plain", two.encode(), content_type="text/plain", allowed={415}),
        Request("invalid", "form content type", two.encode(), content_type="application/x-www-form-urlencoded",
                allowed={415}),
        Request("invalid", "no content type", two.encode(), content_type=None, allowed={415}),
    ]

    def items_body(n):
        items = ",".join(f'{{"reward":{(i * 7919) % 1000 / 7.0!r}}}' for i in range(n))
        return f'{{"options":{{"include_pairs":false}},"lists":[{{"items":[{items}]}}]}}'.encode()

    over = items_body(10)
    over += b" " * (max_body_bytes + 64 * 1024 - len(over))
    far_over = b" " * (2 * max_body_bytes)
    many_items = items_body(12_000)  # over the default limit of 10,000 items, under the byte limit
    assert len(many_items) < max_body_bytes, "--max-body-bytes too small for the too-many-items body"
    oversized = [
        Request("oversized", "over the byte limit", over, allowed={413}, may_close=True),
        Request("oversized", "twice the byte limit, chunked", far_over, allowed={413}, chunked=True, may_close=True),
        Request("oversized", "12,000 items", many_items, allowed={422}),
    ]
    return valid, invalid, oversized


def pick(rng, valid, invalid, oversized):
    roll = rng.random()
    if roll < 0.60:
        return rng.choice(valid)
    if roll < 0.85:
        return rng.choice(invalid)
    return rng.choice(oversized)


class Stats:
    def __init__(self):
        self.sent = 0
        self.statuses = Counter()
        self.kinds = Counter()
        self.checked = 0
        self.mismatches = 0
        self.unexpected = 0
        self.no_retry_after = 0
        self.expected_closes = 0
        self.connection_failures = 0
        self.failure_after = Counter()  # connection failures by the status answered just before
        self.examples = []  # the first few problems, for the report

    def merge(self, other):
        self.sent += other.sent
        self.statuses.update(other.statuses)
        self.kinds.update(other.kinds)
        self.checked += other.checked
        self.mismatches += other.mismatches
        self.unexpected += other.unexpected
        self.no_retry_after += other.no_retry_after
        self.expected_closes += other.expected_closes
        self.connection_failures += other.connection_failures
        self.failure_after.update(other.failure_after)
        self.examples.extend(other.examples[: max(0, 10 - len(self.examples))])

    def problem(self, text):
        if len(self.examples) < 10:
            self.examples.append(text)


class Client(threading.Thread):
    def __init__(self, index, port, requests, phases, stop_at, golden_tolerance, seed):
        super().__init__(name=f"client-{index}", daemon=True)
        self.port = port
        self.requests = requests
        self.phases = phases  # shared: phases["current"] names the phase being recorded
        self.stop_at = stop_at
        self.rel, self.floor = golden_tolerance
        self.rng = random.Random(seed)
        self.stats = {"warmup": Stats(), "main": Stats()}
        self.conn = None
        self.previous = None  # (request name, status) of the last answer on this connection

    def connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        self.previous = None

    def run(self):
        self.connect()
        while time.monotonic() < self.stop_at:
            request = pick(self.rng, *self.requests)
            stats = self.stats[self.phases["current"]]
            stats.sent += 1
            stats.kinds[request.kind] += 1
            try:
                status, headers, body = self.send(request)
            except (OSError, http.client.HTTPException) as error:
                previous = self.previous
                self.connect()
                if request.may_close:
                    stats.expected_closes += 1
                else:
                    stats.connection_failures += 1
                    after = "a fresh connection" if previous is None else f"{previous[0]!r} answered {previous[1]}"
                    stats.failure_after[previous[1] if previous else None] += 1
                    stats.problem(f"connection failure on {request.kind} request {request.name!r} "
                                  f"(the connection's previous request: {after}): {error!r}")
                continue
            self.previous = (request.name, status)
            self.check(stats, request, status, headers, body)
            if request.may_close or headers.get("connection", "").lower() == "close":
                # The server may not read the rest of an over-limit body: start afresh.
                self.connect()

    def send(self, request):
        headers = {}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        if request.chunked:
            chunks = (request.body[i:i + 64 * 1024] for i in range(0, len(request.body), 64 * 1024))
            self.conn.request("POST", "/v1/evaluate", body=chunks, headers=headers, encode_chunked=True)
        else:
            self.conn.request("POST", "/v1/evaluate", body=request.body, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def check(self, stats, request, status, headers, body):
        stats.statuses[status] += 1
        if status == 503 and "retry-after" not in headers:
            stats.no_retry_after += 1
            stats.problem(f"503 without Retry-After on {request.name!r}")
        if status not in request.allowed:
            stats.unexpected += 1
            stats.problem(f"{request.kind} request {request.name!r} answered {status}: {body[:300]!r}")
            return
        if not headers.get("content-type", "").startswith("application/json"):
            stats.unexpected += 1
            stats.problem(f"{request.name!r} answered {status} with Content-Type {headers.get('content-type')!r}")
            return
        try:
            answer = json.loads(body)
        except ValueError as error:
            stats.unexpected += 1
            stats.problem(f"{request.name!r} answered {status} with a body that is not JSON ({error}): {body[:300]!r}")
            return
        if status == 200 and request.golden is not None:
            stats.checked += 1
            try:
                compare(answer, request.golden, self.rel, self.floor)
            except Mismatch as error:
                stats.mismatches += 1
                stats.problem(f"golden case {request.name!r}: {error}")
        elif status != 200 and not isinstance(answer.get("error", {}).get("code"), str):
            stats.unexpected += 1
            stats.problem(f"{request.name!r} answered {status} without error.code: {body[:300]!r}")


# ----------------------------------------------------------------------------------------------
# The server


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_ready(server, port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            if get(port, "/healthz") == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def stop(server, grace=30.0):
    """SIGTERM, then SIGKILL after `grace` seconds; returns the exit status."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


def cargo_target_dir():
    """Where cargo puts its output (CARGO_TARGET_DIR, .cargo/config.toml, or target/), as cargo says."""
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO_ROOT,
                              check=True, stdout=subprocess.PIPE)
    return json.loads(metadata.stdout)["target_directory"]


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", nargs="?", default=None,
                        help="the prefeval binary (default: release/prefeval in cargo's target directory)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up at full load before RSS is taken (5)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads (16)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue-depth", type=int, default=4)
    parser.add_argument("--max-body-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--golden", default=GOLDEN, help="golden vectors (default: tests/data/golden/evaluate.json)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parser.parse_args()
    if not 0 < args.seconds + args.warmup <= 3600 or args.warmup < 0:
        parser.error("--seconds and --warmup must be positive and at most an hour together")
    if not 1 <= args.clients <= 256:
        parser.error("--clients must be 1..256")
    if args.binary is None:
        args.binary = os.path.join(cargo_target_dir(), "release", "prefeval")
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable; run `cargo build --release` first")
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    with open(args.golden, encoding="utf-8") as f:
        golden = json.load(f)
    tolerance = (golden["tolerance"]["relative"], golden["tolerance"]["absolute"])
    requests = build_requests(golden, args.max_body_bytes)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFEVAL_")}
    command = [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--workers", str(args.workers),
               "--queue-depth", str(args.queue_depth), "--max-body-bytes", str(args.max_body_bytes),
               "--log-level", "warn"]
    log = tempfile.TemporaryFile(mode="w+b")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    failures = []
    try:
        if not wait_ready(server, port):
            failures.append("the server did not become healthy")
            raise SystemExit
        phases = {"current": "warmup"}
        started = time.monotonic()
        warm_until = started + args.warmup
        stop_at = warm_until + args.seconds
        clients = [Client(i, port, requests, phases, stop_at, tolerance, seed + i) for i in range(args.clients)]

        samples = []  # (phase, rss KiB)
        sampling = threading.Event()

        def sample():
            while not sampling.wait(1.0):
                samples.append((phases["current"], rss_kib(server.pid)))

        sampler = threading.Thread(target=sample, name="rss", daemon=True)
        sampler.start()
        for client in clients:
            client.start()
        time.sleep(max(0.0, warm_until - time.monotonic()))
        rss_start = rss_kib(server.pid)
        phases["current"] = "main"
        main_started = time.monotonic()
        for client in clients:
            client.join(timeout=max(0.0, stop_at - time.monotonic()) + REQUEST_TIMEOUT + 5)
        main_ended = time.monotonic()
        if any(client.is_alive() for client in clients):
            failures.append("client threads did not finish")
        time.sleep(1.0)  # in-flight work drains
        sampling.set()
        sampler.join(timeout=5)
        rss_end = rss_kib(server.pid)
        main_rss = [kib for phase, kib in samples if phase == "main" and kib is not None]
        rss_max = max(main_rss + [k for k in (rss_start, rss_end) if k is not None], default=None)

        if server.poll() is not None:
            failures.append(f"the server exited during the run (status {server.returncode})")
        else:
            try:
                if get(port, "/healthz") != 200:
                    failures.append("/healthz is not 200 after the run")
            except OSError as error:
                failures.append(f"/healthz failed after the run: {error!r}")

        warm, total = Stats(), Stats()
        for client in clients:
            warm.merge(client.stats["warmup"])
            total.merge(client.stats["main"])
        answered = sum(total.statuses.values())
        shed = total.statuses.get(503, 0)
        other_5xx = sum(n for s, n in total.statuses.items() if s >= 500 and s != 503)
        duration = main_ended - main_started

        print(f"prefeval soak: {args.binary}")
        print(f"  server        127.0.0.1:{port}, --workers {args.workers} --queue-depth {args.queue_depth} "
              f"--max-body-bytes {args.max_body_bytes}")
        print(f"  clients       {args.clients} threads, keep-alive, seed {seed}")
        print(f"  warm-up       {args.warmup:.0f} s, {warm.sent} requests (not counted below; its problems: "
              f"{warm.mismatches} mismatches, {warm.unexpected} unexpected answers, "
              f"{warm.connection_failures} connection failures, "
              f"{sum(n for s, n in warm.statuses.items() if s >= 500 and s != 503)} 5xx other than 503)")
        print(f"  duration      {duration:.1f} s")
        print(f"  requests sent {total.sent} ({total.sent / duration:.0f}/s): "
              + ", ".join(f"{k} {n}" for k, n in sorted(total.kinds.items())))
        print(f"  answers       {answered}: " + ", ".join(f"{s} {n}" for s, n in sorted(total.statuses.items())))
        print(f"  shed (503)    {shed} = {shed / answered if answered else 0:.1%} of answers")
        print(f"  5xx not 503   {other_5xx}")
        print(f"  200 checked   {total.checked} against golden vectors, mismatches {total.mismatches}")
        print(f"  unexpected    {total.unexpected} answers with a status or body the request may not get; "
              f"{total.no_retry_after} 503 without Retry-After")
        print(f"  connections   {total.expected_closes} closed on over-limit bodies (expected), "
              f"{total.connection_failures} other failures"
              + (" (by the status answered just before on that connection: "
                 + ", ".join(f"{s} {n}" for s, n in sorted(total.failure_after.items(), key=str)) + ")"
                 if total.failure_after else ""))
        print(f"  RSS           after warm-up {mib(rss_start)}, max {mib(rss_max)}, at end {mib(rss_end)}")

        # Every problem counts, in the warm-up as in the measured run.
        total.merge(warm)
        other_5xx = sum(n for s, n in total.statuses.items() if s >= 500 and s != 503)
        if other_5xx:
            failures.append(f"{other_5xx} answers were 5xx other than 503")
        if total.mismatches:
            failures.append(f"{total.mismatches} golden mismatches")
        if total.unexpected:
            failures.append(f"{total.unexpected} unexpected answers")
        if total.no_retry_after:
            failures.append("503 answers without Retry-After")
        if total.connection_failures:
            failures.append(f"{total.connection_failures} connection failures")
        if total.checked == 0:
            failures.append("no valid request was answered 200")
        if rss_start is None or rss_end is None:
            failures.append("could not read VmRSS")
        else:
            bound = max(2 * rss_start, rss_start + 64 * 1024)
            if rss_end > bound:
                failures.append(f"RSS at end {mib(rss_end)} exceeds max(2 x start, start + 64 MiB) = {mib(bound)}")
        for example in total.examples[:10]:
            print(f"  problem: {example}")
    except SystemExit:
        pass
    finally:
        status = stop(server)
        if status not in (0, None) and not failures:
            failures.append(f"the server exited with status {status} after SIGTERM")
        log.seek(0)
        lines = [ANSI.sub("", line) for line in log.read().decode("utf-8", "replace").splitlines()]
        log.close()
        shed_lines = [line for line in lines if "response failed" in line and "503" in line]
        others = [line for line in lines if line not in shed_lines]
        print(f"  server log    {len(lines)} lines at warn and above, {len(shed_lines)} of them "
              f"\"response failed ... 503\" (one per shed request)")
        for line in others[-10:]:
            print(f"    {line[:300]}")

    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
