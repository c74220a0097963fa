"""Retries: a 503 is retried after its Retry-After and succeeds; a 4xx never is; max_retries=0
raises at once; connection failures are retried; a stream retries only before its body starts."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Iterator, List

import httpx
import pytest

import prefeval
from prefeval import OverloadedError, PrefevalConnectionError, UnprocessableError

PAIR = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}]


@pytest.fixture(scope="module")
def busy(start_server: Callable[..., Any]) -> Any:
    """One worker and no queue: while one request computes, the next gets 503 queue_full."""
    return start_server("--workers", "1", "--queue-depth", "0")


class LongRequest:
    """A request that keeps the only worker busy for a second or so, in another thread: two lists
    of 10,000 items (100 million implied pairs), without pairs in the answer."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.status: List[int] = []
        body = {
            "options": {"include_pairs": False},
            "lists": [{"items": [{"reward": (i * 7919 % 10007) / 100.0} for i in range(10_000)]}] * 2,
        }
        self.thread = threading.Thread(target=self._run, args=(body,))

    def _run(self, body: Any) -> None:
        answer = httpx.post(f"{self.server.url}/v1/evaluate", json=body, timeout=120)
        self.status.append(answer.status_code)

    def __enter__(self) -> "LongRequest":
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.server.metric("prefeval_worker_busy") < 1:
            assert time.monotonic() < deadline, "the long request never reached the worker"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.thread.join()
        assert self.status == [200]


def rejected(server: Any) -> float:
    return server.metric("prefeval_requests_rejected_total", 'reason="queue_full"')


def test_503_is_retried_after_retry_after_and_succeeds(busy: Any, caplog: pytest.LogCaptureFixture) -> None:
    before = rejected(busy)
    caplog.set_level(logging.INFO, logger="prefeval")
    with LongRequest(busy):
        started = time.monotonic()
        with prefeval.Client(busy.url, max_retries=10) as client:
            result = client.evaluate(PAIR, request_id="retry-1")
        elapsed = time.monotonic() - started
    assert result.summary.lists == 1 and result.request_id == "retry-1"
    refusals = rejected(busy) - before
    assert refusals >= 1  # the service did refuse the client at least once...
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == refusals  # ...and every refusal was retried
    assert "queue_full" in retries[0].getMessage()
    assert elapsed >= 1.0 * refusals * 0.99  # each retry waited its Retry-After (1 s here)


def test_max_retries_0_raises_the_503_at_once(busy: Any) -> None:
    with LongRequest(busy):
        with prefeval.Client(busy.url, max_retries=0) as client:
            started = time.monotonic()
            with pytest.raises(OverloadedError) as caught:
                client.evaluate(PAIR)
            assert time.monotonic() - started < 0.5
    error = caught.value
    assert (error.status, error.code) == (503, "queue_full")
    assert error.retry_after is not None and error.retry_after >= 1
    assert "Retry-After" in error.message and error.request_id


def test_retries_run_out(busy: Any) -> None:
    before = rejected(busy)
    with LongRequest(busy):
        with prefeval.Client(busy.url, max_retries=1, max_retry_delay=0.05) as client:
            with pytest.raises(OverloadedError):
                client.evaluate(PAIR)
    assert rejected(busy) - before == 2  # the first try and one retry


def test_422_is_never_retried(url: str, server: Any, caplog: pytest.LogCaptureFixture) -> None:
    sample = ("prefeval_http_requests_total", 'method="POST",route="/v1/evaluate",status="422"')
    before = server.metric(*sample)
    caplog.set_level(logging.INFO, logger="prefeval")
    with prefeval.Client(url, max_retries=5) as client:
        with pytest.raises(UnprocessableError):
            client.evaluate([{"items": [{"reward": 1.0}]}])
    assert server.metric(*sample) - before == 1
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_connection_failures_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="prefeval")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = prefeval.Client(f"http://127.0.0.1:{port}", max_retries=2, backoff_base=0.01)
        with pytest.raises(PrefevalConnectionError):
            client.evaluate(PAIR)
        with pytest.raises(PrefevalConnectionError):
            client.evaluate_stream(PAIR)
        client.close()
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 4


def test_a_connection_that_comes_up_during_the_retries(binary: Any) -> None:
    """The service starts while the client is backing off: a later attempt succeeds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    processes: List["subprocess.Popen[bytes]"] = []

    def start_later() -> None:
        time.sleep(0.5)
        command = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--shutdown-grace-secs", "1"]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        with prefeval.Client(f"http://127.0.0.1:{port}", max_retries=8, backoff_base=0.2, backoff_max=1.0) as client:
            assert client.evaluate(PAIR).summary.lists == 1
    finally:
        thread.join()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_stream_retries_a_503_before_its_body_starts(busy: Any) -> None:
    """The stream's request waits for `100 Continue`: a 503 comes back before a single list is
    taken from the generator, so it can be retried, and the generator runs once."""
    pulls: List[int] = []

    def lists() -> Iterator[Any]:
        for i in range(3):
            pulls.append(i)
            yield {"items": [{"reward": float(i)}, {"reward": 0.0}]}

    before = rejected(busy)
    with LongRequest(busy):
        with prefeval.Client(busy.url, max_retries=10) as client:
            with client.evaluate_stream(lists(), include_pairs=False) as stream:
                items = list(stream)
    assert rejected(busy) - before >= 1
    assert [item.line for item in items] == [1, 2, 3]
    assert pulls == [0, 1, 2]
    assert stream.summary is not None and stream.summary.lists == 3


def test_stream_503_with_max_retries_0_leaves_the_generator_untouched(busy: Any) -> None:
    pulls: List[int] = []

    def lists() -> Iterator[Any]:
        pulls.append(0)
        yield PAIR[0]

    with LongRequest(busy):
        with prefeval.Client(busy.url, max_retries=0) as client:
            with pytest.raises(OverloadedError) as caught:
                client.evaluate_stream(lists())
    assert (caught.value.status, caught.value.code) == (503, "queue_full")
    assert caught.value.retry_after is not None and pulls == []


@pytest.mark.anyio
async def test_async_503_is_retried(busy: Any) -> None:
    before = rejected(busy)
    with LongRequest(busy):
        async with prefeval.AsyncClient(busy.url, max_retries=10) as client:
            result = await client.evaluate(PAIR)
            stream = await client.evaluate_stream(PAIR * 2)
            async with stream:
                lines = [item.line async for item in stream]
    assert result.summary.lists == 1 and lines == [1, 2]
    assert rejected(busy) - before >= 1


@pytest.mark.anyio
async def test_async_max_retries_0(busy: Any) -> None:
    with LongRequest(busy):
        async with prefeval.AsyncClient(busy.url, max_retries=0) as client:
            with pytest.raises(OverloadedError):
                await client.evaluate(PAIR)
            with pytest.raises(OverloadedError):
                await client.evaluate_stream(PAIR)
