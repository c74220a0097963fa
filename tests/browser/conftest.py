"""Fixtures of the browser tests: the release binary, headless Chromium (Debian's, driven by
Playwright), a page that records every request and console error, and prefeval servers on free
ports of 127.0.0.1.

Environment: PREFEVAL_BINARY (the binary under test; default target/release/prefeval as cargo
metadata reports it), CHROMIUM (default /usr/bin/chromium), PREFEVAL_BROWSER_OUT (where
screenshots and downloads go; default a pytest temporary directory). Every wait is bounded, and
the browser and every server are closed however a test ends.
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
from typing import Callable, Iterator, List

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

# The checks the tests share: pytest shows their failed comparisons in full.
pytest.register_assert_rewrite("report_dom")

REPO = Path(__file__).resolve().parents[2]

# Bounds of every wait (milliseconds for Playwright, seconds for processes).
LAUNCH_TIMEOUT_MS = 30_000
PAGE_TIMEOUT_MS = 20_000
COMMAND_TIMEOUT_S = 120
SERVER_START_TIMEOUT_S = 20


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
            timeout=COMMAND_TIMEOUT_S,
        )
        path = Path(json.loads(metadata.stdout)["target_directory"]) / "release" / "prefeval"
    if not path.is_file():
        pytest.exit(f"no prefeval binary at {path}: run `cargo build --release` or set PREFEVAL_BINARY", returncode=2)
    return path.resolve()


@pytest.fixture(scope="session")
def prefeval() -> Path:
    return _binary()


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots and downloaded files go, kept after the run."""
    configured = os.environ.get("PREFEVAL_BROWSER_OUT")
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(prefeval: Path, *args: str, cwd: Path, ok_codes: tuple = (0,)) -> subprocess.CompletedProcess:
    """Runs the binary as a user does; fails the test with its stderr on an unexpected exit."""
    done = subprocess.run(
        [str(prefeval), *args],
        cwd=cwd,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_S,
    )
    if done.returncode not in ok_codes:
        pytest.fail(
            f"prefeval {' '.join(args)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')[-3000:]}"
        )
    return done


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        pytest.exit(f"no Chromium at {executable}: run scripts/install-test-tools or set CHROMIUM", returncode=2)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to start as root, which is how CI runs. Headless
        # needs no display.
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"], timeout=LAUNCH_TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page with every request it made and every console error it showed."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: List[str] = []
        self.errors: List[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.set_default_navigation_timeout(PAGE_TIMEOUT_MS)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({message.location})")

    def assert_clean(self, allowed: Callable[[str], bool]) -> None:
        """No request but those `allowed` accepts, and no error in the console."""
        outside = [url for url in self.requests if not allowed(url)]
        assert not outside, f"the page made requests outside its own origin: {outside}"
        assert not self.errors, "the console shows errors:\n" + "\n".join(self.errors)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def _die_with_this_process() -> None:
    """In the server's process before exec (Linux): SIGTERM when the test process dies, so a killed
    test run leaves no server behind."""
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
    """One `prefeval serve` on a free port of 127.0.0.1; `url` is its base URL."""

    def __init__(self, prefeval: Path, args: List[str], log_dir: Path) -> None:
        for _ in range(5):
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = log_dir / f"prefeval-{self.port}.log"
            self._log = open(self.log_path, "wb")
            self.process = subprocess.Popen(
                [str(prefeval), "serve", "--listen", f"127.0.0.1:{self.port}", "--shutdown-grace-secs", "1", *args],
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
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def start_server(prefeval: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Starts a server with extra flags; every server started is stopped at the end of the session."""
    started: List[Server] = []
    log_dir = tmp_path_factory.mktemp("servers")

    def start(*args: str) -> Server:
        server = Server(prefeval, list(args), log_dir)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
