"""The HTTP/1.1 pieces of the stream, without a server: parsing survives any split of the bytes."""

from __future__ import annotations

from typing import Any, List

import pytest

from prefeval._errors import ProtocolError, error_from_response, parse_retry_after
from prefeval._http11 import LineSplitter, ResponseParser, chunk, parse_base_url

ANSWER = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
    b"X-Request-Id: abc\r\n\r\n"
    + chunk(b'{"line":1}\n{"li')
    + b"5;ext=1\r\nne\":2\r\n"
    + chunk(b'}\n{"summary":{}}\n')
    + b"0\r\nTrailer: x\r\n\r\n"
)


def parse(pieces: List[bytes]) -> Any:
    parser, splitter = ResponseParser(), LineSplitter()
    heads, lines, ended = [], [], False
    for piece in pieces:
        for kind, value in parser.feed(piece):
            if kind == "head":
                heads.append(value.status)
            elif kind == "data":
                lines.extend(splitter.feed(value))
            else:
                ended = True
    return heads, lines, ended, parser


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(ANSWER)])
def test_chunked_answer_in_pieces(size: int) -> None:
    pieces = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]
    heads, lines, ended, parser = parse(pieces)
    assert heads == [100, 200]
    assert lines == [b'{"line":1}', b'{"line":2}', b'{"summary":{}}']
    assert ended and parser.done
    assert parser.head is not None and parser.head.headers["x-request-id"] == "abc"


def test_content_length_and_close_delimited_bodies() -> None:
    heads, lines, ended, _ = parse([b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nRetry-After: 2\r\n\r\nab\nc"])
    assert heads == [503] and lines == [b"ab"] and ended
    parser = ResponseParser()
    events = parser.feed(b"HTTP/1.1 200 OK\r\n\r\nhello")
    assert ("data", b"hello") in events
    assert parser.feed_eof() == [("end", None)]
    truncated = ResponseParser()
    truncated.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    with pytest.raises(ProtocolError):
        truncated.feed_eof()


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ProtocolError):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_base_urls() -> None:
    assert parse_base_url("http://127.0.0.1:8080/") == ("http", "127.0.0.1", 8080, "127.0.0.1:8080", "")
    assert parse_base_url("https://eval.example.com/prefeval/") == (
        "https", "eval.example.com", 443, "eval.example.com", "/prefeval",
    )  # fmt: skip
    assert parse_base_url("http://[::1]:81").host_header == "[::1]:81"


def test_retry_after_and_non_json_errors() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert parse_retry_after("soon") is None
    error = error_from_response(502, {"x-request-id": "r"}, b"<html>Bad Gateway</html>")
    assert (error.status, error.code, error.message, error.request_id) == (502, None, "<html>Bad Gateway</html>", "r")


def test_line_splitter_gives_complete_lines_as_one_block() -> None:
    splitter = LineSplitter()
    assert splitter.feed_block(b'{"a":1}\n{"b"') == b'{"a":1}'
    assert splitter.feed_block(b":2}") == b""
    assert splitter.feed_block(b"\n{\"c\":3}\n{") == b'{"b":2}\n{"c":3}'
    assert splitter.rest() == b"{"
