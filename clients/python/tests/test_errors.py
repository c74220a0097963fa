"""Every field of the service's errors, as exceptions: status, code, message, path, request_id."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterator

import pytest

import prefeval
from prefeval import (
    NotFoundError,
    PayloadTooLargeError,
    PrefevalConnectionError,
    PrefevalError,
    RequestTimeoutError,
    StreamStoppedError,
    UnprocessableError,
)


def test_422_carries_every_field(url: str) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(UnprocessableError) as caught:
            client.evaluate([{"items": [{"reward": 1.7}, {"reward": "0.4"}]}], request_id="demo-42")
    error = caught.value
    assert isinstance(error, PrefevalError)
    assert error.status == 422
    assert error.code == "invalid_type"
    assert error.message == 'invalid type: string "0.4", expected a number'
    assert error.path == "lists[0].items[1].reward"
    assert error.request_id == "demo-42"
    assert error.body == {
        "error": {
            "code": "invalid_type",
            "message": 'invalid type: string "0.4", expected a number',
            "path": "lists[0].items[1].reward",
            "request_id": "demo-42",
        }
    }
    assert str(error) == (
        '422 invalid_type: invalid type: string "0.4", expected a number '
        "(at lists[0].items[1].reward) [request demo-42]"
    )


def test_a_generated_request_id(url: str) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(UnprocessableError) as caught:
            client.evaluate([])
    error = caught.value
    assert (error.status, error.code, error.path) == (422, "empty_batch", "lists")
    assert error.message
    assert error.request_id and len(error.request_id) == 36  # the client's UUID, echoed


@pytest.mark.parametrize(
    "lists, options, code, path",
    [
        ([{"items": [{"reward": 1.0}]}], {}, "too_few_items", "lists[0].items"),
        ([{"items": [{"reward": 1.0, "rank": 1}, {"reward": 0.0}]}], {}, "mixed_ranking", "lists[0].items[1].rank"),
        ([{"items": [{"reward": 1.0}, {"reward": 0.0}]}], {"beta": -1}, "invalid_value", "options.beta"),
        ([{"items": [{"reward": 1.0}, {"reward": 0.0}]}], {"normalisation": "sum"}, "unknown_field", "options.normalisation"),
        ([{"items": [{"reward": 1e308}, {"reward": -1e308}]}], {}, "non_finite_result", None),
    ],
)
def test_422_codes(url: str, lists: Any, options: Any, code: str, path: Any) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(UnprocessableError) as caught:
            client.evaluate(lists, **options)
    assert caught.value.code == code
    if path is not None:
        assert caught.value.path == path


def test_nan_is_refused_before_sending(url: str) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(prefeval.InvalidInputError, match="finite") as caught:
            client.evaluate([{"items": [{"reward": float("nan")}, {"reward": 0.0}]}])
    # One except clause catches everything the client raises; old code catching ValueError too.
    assert isinstance(caught.value, prefeval.PrefevalError) and isinstance(caught.value, ValueError)
    assert caught.value.code == "invalid_value" and caught.value.status is None


def test_404_for_a_wrong_base_path(url: str) -> None:
    with prefeval.Client(url + "/not-here") as client:
        with pytest.raises(NotFoundError) as caught:
            client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])
    assert (caught.value.status, caught.value.code, caught.value.path) == (404, "not_found", None)
    assert caught.value.request_id


@pytest.fixture(scope="module")
def small(start_server: Callable[..., Any]) -> Any:
    """A server with a 64 KiB body limit and a 2 s request timeout."""
    return start_server("--workers", "2", "--max-body-bytes", "65536", "--request-timeout-secs", "2")


def test_413_payload_too_large(small: Any) -> None:
    lists = [{"items": [{"reward": float(i)}, {"reward": 0.5}]} for i in range(5000)]
    with prefeval.Client(small.url) as client:
        with pytest.raises(PayloadTooLargeError) as caught:
            client.evaluate(lists)
    error = caught.value
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "65536" in error.message or "MAX_BODY_BYTES" in error.message
    assert error.request_id


def test_the_stream_has_no_body_limit_but_a_line_does(small: Any) -> None:
    """413 applies to a batch; in a stream only a line over the limit fails, as a line error."""
    big_line = {"items": [{"reward": float(i)} for i in range(8000)]}
    lists = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}] * 3000 + [big_line]
    with prefeval.Client(small.url) as client:
        with client.evaluate_stream(lists, include_pairs=False) as stream:
            items = list(stream)
    assert len(items) == 3001
    failed = items[-1]
    assert isinstance(failed, prefeval.LineError) and not failed.ok
    assert (failed.line, failed.code) == (3001, "payload_too_large")
    assert stream.summary is not None and stream.summary.lines_failed == 1 and stream.summary.lists == 3000


def test_stream_line_error_fields(url: str) -> None:
    lines = [
        {"id": "ok", "items": [{"reward": 1.0}, {"reward": 0.0}]},
        "",
        {"id": "bad", "items": [{"reward": 1.0}, {"reward": "0.4"}]},
    ]
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lines) as stream:
            first, second = list(stream)
    assert isinstance(first, prefeval.StreamResult) and (first.line, first.id) == (1, "ok")
    assert isinstance(second, prefeval.LineError)
    assert (second.line, second.code, second.path) == (3, "invalid_type", "items[1].reward")
    assert second.message == 'invalid type: string "0.4", expected a number'
    assert second.raw["error"]["code"] == "invalid_type"
    assert stream.summary is not None and stream.summary.lines_failed == 1


def test_stream_line_errors_raise_and_skip(url: str) -> None:
    lines = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": 1.0}]}]
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lines, line_errors="skip") as stream:
            assert [item.line for item in stream] == [1]
        assert stream.summary is not None and stream.summary.lines_failed == 1
        with pytest.raises(prefeval.LineFailedError) as caught:
            with client.evaluate_stream(lines, line_errors="raise") as stream:
                list(stream)
    assert (caught.value.line, caught.value.code, caught.value.path) == (2, "too_few_items", "items")


def test_stream_query_error_before_the_body_is_read(url: str) -> None:
    """A refusal of the query comes back before a single list is taken from the iterable."""
    pulled = []

    def lists() -> Iterator[Any]:
        pulled.append(1)
        yield {"items": [{"reward": 1.0}, {"reward": 0.0}]}

    with prefeval.Client(url) as client:
        with pytest.raises(UnprocessableError) as caught:
            client.evaluate_stream(lists(), normalization="softmax", request_id="q-1")
    error = caught.value
    assert (error.status, error.code, error.path, error.request_id) == (422, "invalid_value", "normalization", "q-1")
    assert pulled == []


def test_stream_stopped_by_the_service(small: Any) -> None:
    """A producer silent for longer than the request timeout: the service stops the stream with a
    last line {"error": ...}; the results before it are yielded, then StreamStoppedError."""

    def slow() -> Iterator[Any]:
        # About 1 MiB first: the service answers a chunk (256 KiB) once workers + 1 chunks are in
        # flight, so some results come back before the stall.
        for i in range(20000):
            yield {"id": f"l{i}", "items": [{"reward": 1.0}, {"reward": 0.0}]}
        time.sleep(3.5)
        yield {"id": "late", "items": [{"reward": 1.0}, {"reward": 0.0}]}

    seen = []
    with prefeval.Client(small.url) as client:
        stream = client.evaluate_stream(slow(), include_pairs=False)
        with pytest.raises(StreamStoppedError) as caught:
            for item in stream:
                seen.append(item.line)
    # The results that came before the stop line are yielded first, in order.
    assert seen and seen == list(range(1, len(seen) + 1)) and len(seen) < 20000
    error = caught.value
    assert (error.status, error.code) == (200, "request_timeout")
    assert error.message and error.request_id
    assert stream.summary is None


def test_408_when_no_body_comes(small: Any) -> None:
    def silent() -> Iterator[Any]:
        time.sleep(3.5)
        yield {"items": [{"reward": 1.0}, {"reward": 0.0}]}

    with prefeval.Client(small.url) as client:
        with pytest.raises((RequestTimeoutError, StreamStoppedError)) as caught:
            with client.evaluate_stream(silent()) as stream:
                list(stream)
    assert caught.value.code == "request_timeout"


def test_connection_refused(url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with prefeval.Client(f"http://127.0.0.1:{port}", max_retries=0) as client:
            with pytest.raises(PrefevalConnectionError) as caught:
                client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])
            assert caught.value.status is None and caught.value.code == "connection_error"
            with pytest.raises(PrefevalConnectionError):
                client.evaluate_stream([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        prefeval.Client("ftp://example.com")
    client = prefeval.Client("http://127.0.0.1:9")
    with pytest.raises(TypeError, match="wrap a single list"):
        client.evaluate({"items": [{"reward": 1.0}, {"reward": 0.0}]})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.compare([], models="rm-a")
    with pytest.raises(ValueError):
        client.evaluate_stream([], line_errors="ignore")
    client.close()
