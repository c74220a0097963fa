"""Fixtures: the real prefeval server binary, started on a free port of 127.0.0.1.

The binary is ``$PREFEVAL_BINARY``, else ``release/prefeval`` in cargo's target directory (as
``cargo metadata`` reports it; build it with ``cargo build --release``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "data" / "golden" / "evaluate.json"
HH_RLHF = REPO / "tests" / "data" / "real" / "hh-rlhf-harmless-base-test-first500.jsonl.gz"


@pytest.fixture
def anyio_backend() -> str:
    # The async stream is built on asyncio streams.
    return "asyncio"


def _binary() -> Path:
    configured = os.environ.get("PREFEVAL_BINARY")
    if configured:
        path = Path(configured)
    else:
        cargo = shutil.which("cargo")
        if cargo is None:
            pytest.exit("set PREFEVAL_BINARY to the prefeval binary (cargo is not installed)", returncode=2)
        metadata = subprocess.run(
            [cargo, "metadata", "--format-version", "1", "--no-deps"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        path = Path(json.loads(metadata.stdout)["target_directory"]) / "release" / "prefeval"
    if not path.is_file():
        pytest.exit(f"no prefeval binary at {path}: run `cargo build --release` or set PREFEVAL_BINARY", returncode=2)
    return path


def _die_with_this_process() -> None:
    """In the server's process before exec (Linux): ask for SIGTERM when the test process dies, so
    a test run that is killed leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One prefeval process; ``url`` is its base URL. Start it from the main thread: the process
    is tied to the thread that starts it (PR_SET_PDEATHSIG)."""

    def __init__(self, binary: Path, args: List[str], log_dir: Path) -> None:
        self.args = args
        for _ in range(5):
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = log_dir / f"prefeval-{self.port}.log"
            self._log = open(self.log_path, "wb")
            self.process = subprocess.Popen(
                [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--shutdown-grace-secs", "1", *args],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_this_process if sys.platform == "linux" else None,
            )
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"prefeval did not start; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # e.g. the port was taken meanwhile
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        return False

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample of ``/metrics`` (``labels`` as written there, e.g.
        ``reason="queue_full"``); 0 when absent."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def binary() -> Path:
    return _binary()


@pytest.fixture(scope="session")
def start_server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Starts a server with extra flags; every server started is stopped at the end of the session."""
    started: List[Server] = []
    log_dir = tmp_path_factory.mktemp("servers")

    def start(*args: str) -> Server:
        server = Server(binary, list(args), log_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: Callable[..., Server]) -> Server:
    """The default server (two workers)."""
    return start_server("--workers", "2")


@pytest.fixture(scope="session")
def url(server: Server) -> str:
    return server.url


@pytest.fixture(scope="session")
def golden() -> Dict[str, Any]:
    with open(GOLDEN, encoding="utf-8") as handle:
        data: Dict[str, Any] = json.load(handle)
    return data
