#!/usr/bin/env python3
"""Floods a prefeval binary with clients that never read their answers, and checks its memory.

    scripts/stall-flood.py [BINARY] [--scenario http1|http2|stream]... [--hold-secs 30]

Each scenario starts its own server on a free port of 127.0.0.1 with a memory budget of BUDGET_MIB
and a write timeout of WRITE_TIMEOUT_SECS (`--write-timeout-secs` when `--help` lists it; the
PREFEVAL_WRITE_TIMEOUT_SECS variable always), sends requests whose answers are about 25 MB each (one
list of 700 items with `include_pairs`: a 15.8 KB body), and never reads a byte of the answers:

1. http1: CLIENTS_HTTP1 plain HTTP/1.1 connections, one POST /v1/evaluate each.
2. http2: one prior-knowledge h2c connection whose SETTINGS give an initial window of 1 byte and
   which never sends WINDOW_UPDATE; up to STREAMS_HTTP2 streams, no more at once than the server's
   SETTINGS_MAX_CONCURRENT_STREAMS, each POSTing the same batch (refused streams are counted).
3. stream: CLIENTS_STREAM plain HTTP/1.1 connections, one POST /v1/evaluate/stream each
   (`?include_pairs=true`) of LINES_PER_STREAM lines, each the same list.

Requests go one after another, each once the server has answered the one before (by its request
counter in /metrics, PACE_SECS at most): every request then meets a budget that only the unsent
answers before it may hold. The clients keep their connections until the server has closed all of
them, or --hold-secs after the last request; then the script closes what is left. Throughout, the
server's resident set, its `prefeval_memory_reserved_bytes` gauge and /healthz are sampled. A
scenario passes when
- the peak resident set (VmHWM) is at most the budget + ALLOWANCE_MIB,
- every /healthz answered 200 within a second,
- the reserved gauge is back to 0 within DRAIN_SECS of the stalled connections closing,
- with a binary that has `--write-timeout-secs`, the server closed every stalled connection itself.
Before the scenarios, one client that reads checks that the batch and one stream line are answered
200 with about 25 MB each.

Needs the `h2` package (scripts/install-test-tools installs it). Every loop is bounded, each
scenario's server is killed when it ends, and the whole run takes under three minutes. Exit status
0 when every check holds.
"""

import argparse
import http.client
import json
import math
import os
import select
import socket
import subprocess
import sys
import threading
import time

from floodkit import default_binary, free_port, vm

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError:
    sys.exit("stall-flood.py needs the h2 package (scripts/install-test-tools installs it)")

MIB = 1 << 20
BUDGET_MIB = 64
# What the budget does not count (runtime, connection buffers, allocator slack) may add this much
# to the peak resident set; the figure printed for each scenario is the measured peak, to tune it.
ALLOWANCE_MIB = 160
WRITE_TIMEOUT_SECS = 5
HOLD_SECS = 45
DRAIN_SECS = 10
PACE_SECS = 3
PACE_TOTAL_SECS = 30
ITEMS = 700
MIN_ANSWER_BYTES = 20_000_000
CLIENTS_HTTP1 = 40
STREAMS_HTTP2 = 40
CLIENTS_STREAM = 60
LINES_PER_STREAM = 4


def big_list():
    """One list of ITEMS items: 15.8 KB of JSON whose pairs answer about 25 MB."""
    items = ",".join('{"reward":%.8f}' % math.sin(k * 0.6180339887498949) for k in range(ITEMS))
    return '{"id":"p","items":[%s]}' % items


def batch():
    return ('{"model":"flood","options":{"include_pairs":true},"lists":[%s]}' % big_list()).encode()


def ndjson():
    return ((big_list() + "\n") * LINES_PER_STREAM).encode()


def held_by_server(pid, port, client_ports):
    """How many of the connections from `client_ports` the server process still has open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) in client_ports
                    and inode in inodes):
                held += 1
    return held


def request_head(port, path, content_type, length):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def start(binary, port, write_timeout_flag):
    # Streams that wait for memory give up after the request timeout (their lines answer
    # memory_budget errors and the streams end); 10 s keeps that inside the hold time.
    args = [binary, "--listen", f"127.0.0.1:{port}", "--log-level", "error", "--workers", "2",
            "--memory-limit-bytes", str(BUDGET_MIB * MIB), "--request-timeout-secs", "10"]
    if write_timeout_flag:
        args += ["--write-timeout-secs", str(WRITE_TIMEOUT_SECS)]
    env = dict(os.environ, PREFEVAL_WRITE_TIMEOUT_SECS=str(WRITE_TIMEOUT_SECS))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited at start with status {proc.returncode}: {' '.join(args)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    sys.exit("the server did not start")


def get(port, path, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def reserved(port):
    status, data = get(port, "/metrics")
    if status != 200:
        raise OSError(f"/metrics answered {status}")
    for line in data.decode().splitlines():
        if line.startswith("prefeval_memory_reserved_bytes "):
            return int(float(line.split()[1]))
    raise OSError("/metrics has no prefeval_memory_reserved_bytes")


def answered(port, route):
    """POSTs to `route` the server has answered so far, by its request counter."""
    status, data = get(port, "/metrics")
    if status != 200:
        raise OSError(f"/metrics answered {status}")
    prefix = 'prefeval_http_requests_total{method="POST",route="%s",' % route
    return sum(int(float(line.split()[-1])) for line in data.decode().splitlines() if line.startswith(prefix))


class Pacer:
    """Lets request i go once the server has answered request i - 1 (PACE_SECS at most each, and no
    waiting at all after PACE_TOTAL_SECS): arrivals one after another, each meeting a budget that
    only the answers before it, still unsent, may hold."""

    def __init__(self, port, route):
        self.port, self.route = port, route
        self.base = answered(port, route)
        self.deadline = time.monotonic() + PACE_TOTAL_SECS

    def wait(self, count, pump=None):
        until = min(time.monotonic() + PACE_SECS, self.deadline)
        while time.monotonic() < until:
            try:
                if answered(self.port, self.route) - self.base >= count:
                    return
            except OSError:
                pass
            if pump:
                pump(0.02)
            else:
                time.sleep(0.02)


class Monitor(threading.Thread):
    """Samples /healthz (timed) and the reserved gauge until stopped (or `seconds` at most)."""

    def __init__(self, port, seconds):
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.stop = threading.Event()
        self.errors = []
        self.slowest = 0.0
        self.reserved_peak = 0

    def run(self):
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status = get(self.port, "/healthz")[0]
            except OSError as error:
                status = repr(error)
            elapsed = time.monotonic() - started
            self.slowest = max(self.slowest, elapsed)
            if status != 200:
                self.errors.append(f"/healthz answered {status}")
            try:
                self.reserved_peak = max(self.reserved_peak, reserved(self.port))
            except OSError as error:
                self.errors.append(f"/metrics: {error!r}")
            self.stop.wait(0.2)


def calibrate(binary, write_timeout_flag):
    """One client that reads: the batch and one stream line are answered 200 with ~25 MB each."""
    port = free_port()
    proc = start(binary, port, write_timeout_flag)
    failures = []
    try:
        line = (big_list() + "\n").encode()
        for path, body, content_type in (("/v1/evaluate", batch(), "application/json"),
                                         ("/v1/evaluate/stream?include_pairs=true", line, "application/x-ndjson")):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": content_type})
                resp = conn.getresponse()
                status, data = resp.status, resp.read()
            except OSError as error:
                status, data = repr(error), b""
            finally:
                conn.close()
            print(f"calibration: POST {path} of {len(body)} bytes read {status} with {len(data) / 1e6:.1f} MB")
            if status != 200 or len(data) < MIN_ANSWER_BYTES:
                failures.append(f"calibration: {path} answered {status} with {len(data)} bytes "
                                f"(want 200 with at least {MIN_ANSWER_BYTES}): {data[:200]!r}")
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    return failures


def open_http1(port, path, content_type, body, clients):
    """`clients` connections, paced, that each send one request and will never read a byte."""
    socks, failed = [], 0
    pacer = Pacer(port, path.split("?")[0])
    for i in range(clients):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(sock)
            sock.sendall(request_head(port, path, content_type, len(body)) + body)
        except OSError:
            failed += 1
        pacer.wait(i + 1)
    return socks, f"{len(socks)} of {clients} connected, {clients - failed} sent their whole request"


class H2Client:
    """One h2c connection that opens streams, sends their bodies, and never opens a window."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        })
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.server_settings = False
        self.closed = False  # the server closed the connection
        self.ended = None  # why h2 stopped taking frames (GOAWAY), if it did
        self.refused = 0
        self.reset = 0
        self.statuses = {}

    def pump(self, wait):
        """Reads what the server sent within `wait` seconds and answers what h2 must (SETTINGS and
        PING acknowledgements); never acknowledges DATA, so no WINDOW_UPDATE is ever sent. After a
        GOAWAY the bytes are only read, to see when the server closes."""
        if self.closed:
            time.sleep(wait)
            return
        ready, _, _ = select.select([self.sock], [], [], wait)
        if not ready:
            return
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        if self.ended:
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            # A GOAWAY and a frame after it in one read: h2 refuses the frame, the GOAWAY is lost.
            closed = self.conn.state_machine.state == h2.connection.ConnectionState.CLOSED
            self.ended = "GOAWAY" if closed else f"h2 stopped: {error}"
            return
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.server_settings = True
            elif isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status", b"?").decode()
                self.statuses[status] = self.statuses.get(status, 0) + 1
            elif isinstance(event, h2.events.StreamReset):
                if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                    self.refused += 1
                else:
                    self.reset += 1
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.ended = f"GOAWAY {event.error_code!r}"
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    def send_body(self, stream_id, body, deadline):
        """Sends `body` on the stream as flow control permits, until `deadline`; True when whole."""
        sent = 0
        while sent < len(body) and not self.closed and not self.ended and time.monotonic() < deadline:
            try:
                size = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size,
                           len(body) - sent)
                if size > 0:
                    self.conn.send_data(stream_id, body[sent:sent + size], end_stream=sent + size == len(body))
                    sent += size
            except h2.exceptions.StreamClosedError:
                return False
            try:
                self.sock.sendall(self.conn.data_to_send())
            except OSError:
                self.closed = True
            if sent < len(body):
                self.pump(0.02)
        return sent == len(body)

    def flood(self, body, streams):
        """Opens up to `streams` streams, paced and no more at once than the server's SETTINGS
        allow, and sends each the whole body. Returns a description."""
        deadline = time.monotonic() + 5
        while not self.server_settings and not self.closed and time.monotonic() < deadline:
            self.pump(0.2)
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{self.port}"),
                   (":path", "/v1/evaluate"), ("content-type", "application/json"),
                   ("content-length", str(len(body)))]
        pacer = Pacer(self.port, "/v1/evaluate")
        opened = whole = 0
        allowed = self.conn.remote_settings.max_concurrent_streams
        for _ in range(streams):
            allowed = self.conn.remote_settings.max_concurrent_streams
            if self.closed or self.ended or self.conn.open_outbound_streams >= allowed:
                break
            stream_id = self.conn.get_next_available_stream_id()
            try:
                self.conn.send_headers(stream_id, headers)
            except h2.exceptions.TooManyStreamsError:
                break
            opened += 1
            whole += self.send_body(stream_id, body, time.monotonic() + 10)
            pacer.wait(opened, self.pump)
        allowed = "no limit" if allowed >= 1 << 31 else allowed
        return (f"server allows {allowed} concurrent streams; opened {opened} of {streams}, "
                f"{whole} sent their whole body")


def scenario(name, binary, write_timeout_flag, hold_secs):
    port = free_port()
    proc = start(binary, port, write_timeout_flag)
    monitor = Monitor(port, PACE_TOTAL_SECS + hold_secs + DRAIN_SECS + 30)
    socks, h2c = [], None
    failures = []
    try:
        monitor.start()
        started = time.monotonic()
        if name == "http1":
            socks, sent = open_http1(port, "/v1/evaluate", "application/json", batch(), CLIENTS_HTTP1)
        elif name == "stream":
            socks, sent = open_http1(port, "/v1/evaluate/stream?include_pairs=true", "application/x-ndjson",
                                     ndjson(), CLIENTS_STREAM)
        else:
            h2c = H2Client(port)
            socks = [h2c.sock]
            sent = h2c.flood(batch(), STREAMS_HTTP2)
        sent += f" in {time.monotonic() - started:.1f} s"
        client_ports = {s.getsockname()[1] for s in socks}

        # Hold every connection, reading nothing (the h2 client reads frames but opens no window),
        # until the server has closed them all or hold_secs have passed since the last request.
        held = len(client_ports)
        started = time.monotonic()
        while time.monotonic() - started < hold_secs:
            if h2c:
                h2c.pump(0.2)
            else:
                time.sleep(0.2)
            held = held_by_server(proc.pid, port, client_ports)
            if held == 0:
                break
        hold = time.monotonic() - started
        closed = (f"server closed {len(client_ports) - held} of {len(client_ports)} stalled connections "
                  f"itself within {hold:.0f} s")
        if held and write_timeout_flag:
            failures.append(f"{name}: the server still held {held} of {len(client_ports)} stalled connections "
                            f"{hold_secs} s after the last request (write timeout {WRITE_TIMEOUT_SECS} s)")
        for s in socks:
            s.close()
        socks = []

        # The reserved gauge must go back to 0 once the stalled connections are gone.
        released, left = None, None
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < DRAIN_SECS:
            try:
                left = reserved(port)
                if left == 0:
                    released = time.monotonic() - closed_at
                    break
            except OSError as error:
                left = repr(error)
            time.sleep(0.2)
        monitor.stop.set()
        monitor.join(timeout=10)
        peak = vm(proc.pid, "VmHWM")

        bound = (BUDGET_MIB + ALLOWANCE_MIB) * MIB
        if peak > bound:
            failures.append(f"{name}: peak RSS {peak / MIB:.0f} MiB > budget + allowance {bound / MIB:.0f} MiB")
        if monitor.slowest >= 1.0:
            failures.append(f"{name}: /healthz took {monitor.slowest:.2f} s")
        failures += [f"{name}: {error}" for error in sorted(set(monitor.errors))]
        if released is None:
            failures.append(f"{name}: prefeval_memory_reserved_bytes still {left} {DRAIN_SECS} s after the "
                            f"stalled connections closed")
        extra = ""
        if h2c:
            extra = (f", {h2c.refused} refused and {h2c.reset} otherwise reset, "
                     f"responses {h2c.statuses or 'none'}{', ' + h2c.ended if h2c.ended else ''}")
        drained = (f"reserved back to 0 {released:.1f} s after they closed" if released is not None
                   else f"reserved NOT back to 0 {DRAIN_SECS} s after they closed")
        print(f"{name}: peak RSS {peak / MIB:.0f} MiB (budget {BUDGET_MIB} MiB, allowance {ALLOWANCE_MIB} MiB) "
              f"reserved peak {monitor.reserved_peak / MIB:.1f} MiB, slowest healthz {monitor.slowest * 1000:.0f} ms; "
              f"{sent}{extra}; {closed}; {drained}: {'FAIL' if failures else 'PASS'}", flush=True)
    finally:
        monitor.stop.set()
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?")
    parser.add_argument("--scenario", choices=["http1", "http2", "stream"], action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--hold-secs", type=int, default=HOLD_SECS,
                        help=f"longest the stalled clients wait for the server to close them [{HOLD_SECS}]")
    args = parser.parse_args()
    binary = args.binary or default_binary()
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=10).stdout
    write_timeout_flag = "--write-timeout-secs" in help_text
    print(f"{binary}: write timeout {WRITE_TIMEOUT_SECS} s via "
          f"{'--write-timeout-secs and ' if write_timeout_flag else ''}PREFEVAL_WRITE_TIMEOUT_SECS", flush=True)
    failures = calibrate(binary, write_timeout_flag)
    if not failures:
        for name in args.scenario or ["http1", "http2", "stream"]:
            failures += scenario(name, binary, write_timeout_flag, args.hold_secs)
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
