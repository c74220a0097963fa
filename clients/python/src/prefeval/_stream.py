"""``POST /v1/evaluate/stream`` and ``POST /v1/compare/stream`` (and ``POST /v1/report``, which
takes their body and answers one HTML document) over a duplex HTTP/1.1 connection.

Why not httpx: httpx (like ``requests`` and ``http.client``) writes the whole request body before
it reads a byte of the answer. The stream endpoint answers *while* it reads, and it holds only a
few chunks of answer per stream: once its answer waits to be read, it stops reading the body. A
client that is still writing then blocks on a full socket buffer, the server blocks on its full
output, and the stream deadlocks as soon as the answer outgrows the socket buffers (a few hundred
kilobytes; a dataset answers megabytes). So the stream needs a client that writes and reads at
once, and this module is that client, kept small:

- sync: the calling thread reads and parses the chunked NDJSON answer line by line, as it
  iterates, while a writer thread pulls lists from the caller's iterable and sends them as
  ``Transfer-Encoding: chunked`` pieces;
- async: the same on asyncio streams, with a writer task.

Memory stays constant: a bounded buffer of body being sent, one read buffer, one line at a time.

Retries: the request goes out with ``Expect: 100-continue``. The service checks the token, the
query and its capacity before it reads the body, so a refusal (401, 422, 503, ...) comes back
*before* a single list is taken from the iterable, and a 503 or a failed connection can be
retried then. Once the service answers ``100 Continue`` the body starts, the iterable is being
consumed, and since a generator cannot be replayed, nothing is retried after that.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import select
import socket
import ssl
import threading
import time
from collections import deque
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from ._errors import (
    InvalidInputError,
    PrefevalConnectionError,
    PrefevalError,
    PrefevalTimeoutError,
    ProtocolError,
    StreamStoppedError,
    error_from_response,
)
from ._helpers import encode_json
from . import _json
from ._http11 import (
    LAST_CHUNK,
    Event,
    LineSplitter,
    ResponseHead,
    ResponseParser,
    Target,
    chunk,
    request_head,
)
from ._merge_compare import ComparisonSummary
from ._models import CompareStreamItem, LineError, StreamItem, StreamResult, StreamSummary
from ._retry import RetryPolicy

#: Body bytes gathered before they are sent as one chunk. A piece also goes at once when it is the
#: first (the service answers only after the first body bytes) and when the iterable was slow to
#: give it (a slow producer is not held back by the buffering).
SEND_CHUNK_BYTES = 64 * 1024
SLOW_PULL_SECONDS = 0.01
READ_BYTES = 64 * 1024
ERROR_BODY_LIMIT = 1024 * 1024

LINE_ERROR_MODES = ("yield", "raise", "skip")

# The pieces of a stream's body, as bytes: lists encoded as NDJSON lines, or blocks of a file.
ByteSource = Iterable[bytes]
AsyncByteSource = Union[AsyncIterable[bytes], Iterable[bytes]]

# A stream's items and summary (evaluate: StreamItem, StreamSummary; compare: CompareStreamItem,
# ComparisonSummary), and the stream class itself where a method returns it.
_Item = TypeVar("_Item")
_Summary = TypeVar("_Summary")
_Self = TypeVar("_Self")


class LineFailedError(PrefevalError):
    """With ``line_errors="raise"``: a line of the stream could not be evaluated. ``line`` is its
    1-based line number; ``code``, ``message`` and ``path`` (inside the line) say why."""

    def __init__(self, item: LineError, request_id: Optional[str]) -> None:
        super().__init__(
            f"line {item.line}: {item.message}",
            status=200,
            code=item.code,
            path=item.path,
            request_id=request_id,
            body=item.raw,
        )
        self.line = item.line


def encode_lists(lists: Iterable[Any]) -> Iterator[bytes]:
    """NDJSON lines: a list (a mapping) is encoded; a ``str`` or ``bytes`` is taken as one line
    already written in JSON."""
    for index, entry in enumerate(lists):
        if isinstance(entry, bytes):
            yield entry if entry.endswith(b"\n") else entry + b"\n"
        elif isinstance(entry, str):
            yield (entry if entry.endswith("\n") else entry + "\n").encode("utf-8")
        else:
            try:
                yield encode_json(entry) + b"\n"
            except (TypeError, ValueError) as exc:
                raise _at_list(exc, index) from None


def _at_list(exc: Exception, index: int) -> Exception:
    """`exc`, of the same class, saying which list of the stream it is about."""
    if isinstance(exc, InvalidInputError):
        return InvalidInputError(f"list #{index} of the stream: {exc.message}", code=exc.code, path=f"lists[{index}]")
    return type(exc)(f"list #{index} of the stream: {exc}")


async def aencode_lists(lists: Union[AsyncIterable[Any], Iterable[Any]]) -> AsyncIterator[bytes]:
    if isinstance(lists, AsyncIterable):
        index = 0
        async for entry in lists:
            if isinstance(entry, (bytes, str)):
                for line in encode_lists([entry]):
                    yield line
            else:
                try:
                    yield encode_json(entry) + b"\n"
                except (TypeError, ValueError) as exc:
                    raise _at_list(exc, index) from None
            index += 1
    else:
        for line in encode_lists(lists):
            yield line


#: Bytes of a file read and sent at a time: large enough that framing and system calls cost
#: nothing beside the service's own work, small enough to keep the first answer prompt.
FILE_BLOCK_BYTES = 256 * 1024


def file_encoding(path: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """The ``Content-Encoding`` a file is sent with: ``zstd`` for a ``.zst`` file, sent as it is
    and decoded by the service (the standard library has no zstd before Python 3.14); ``None``
    for any other file, sent decoded."""
    return "zstd" if os.fspath(path).endswith(".zst") else None


def file_blocks(path: Union[str, "os.PathLike[str]"]) -> Iterator[bytes]:
    """A file's bytes in blocks (``.gz`` files decompressed, ``.zst`` files as they are: see
    :func:`file_encoding`): the service reads the lines itself, so its line numbers are the
    file's."""
    name = os.fspath(path)
    opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
    with opener(name, "rb") as handle:
        while True:
            block = handle.read(FILE_BLOCK_BYTES)
            if not block:
                return
            yield block


class StreamRequest:
    """Everything needed to open (and reopen) one stream."""

    def __init__(
        self,
        *,
        target: Target,
        path: str,
        headers: List[Tuple[str, str]],
        request_id: str,
        timeout: Optional[float],
        retry: RetryPolicy,
        ssl_context: Optional[ssl.SSLContext],
        expect_timeout: float,
        line_errors: str,
        summary_only: bool = False,
        parse_result: Callable[..., Any] = StreamResult.from_dict,
        parse_summary: Callable[[Dict[str, Any]], Any] = StreamSummary.from_dict,
        accept: str = "application/x-ndjson",
        content_encoding: Optional[str] = None,
    ) -> None:
        if line_errors not in LINE_ERROR_MODES:
            raise ValueError(f"line_errors must be one of {LINE_ERROR_MODES}, not {line_errors!r}")
        self.target = target
        self.path = path
        encoding = [("Content-Encoding", content_encoding)] if content_encoding else []
        self.head = request_head(
            "POST",
            path,
            [
                ("Host", target.host_header),
                *headers,
                ("Content-Type", "application/x-ndjson"),
                *encoding,
                ("Accept", accept),
                ("Transfer-Encoding", "chunked"),
                ("Expect", "100-continue"),
                ("Connection", "close"),
                ("x-request-id", request_id),
            ],
        )
        self.request_id = request_id
        self.timeout = timeout
        self.retry = retry
        self.ssl_context = ssl_context
        self.expect_timeout = expect_timeout
        self.line_errors = line_errors
        self.summary_only = summary_only
        #: What differs between the endpoints' answers: a result line (its decoded object, and
        #: where its deferred ``pairs`` are, or ``None``) and the summary object, made into items.
        self.parse_result = parse_result
        self.parse_summary = parse_summary


def _connection_error(exc: BaseException, what: str) -> PrefevalError:
    if isinstance(exc, PrefevalError):
        return exc
    cls = PrefevalTimeoutError if isinstance(exc, (socket.timeout, asyncio.TimeoutError)) else PrefevalConnectionError
    error = cls(f"{what}: {exc or type(exc).__name__}", code="connection_error")
    error.__cause__ = exc
    return error


class _Lines(Generic[_Item, _Summary]):
    """Turns the events of the answer into stream items; shared by the sync and async streams."""

    def __init__(self, request: StreamRequest) -> None:
        self.request = request
        self.splitter = LineSplitter()
        self.items: Deque[_Item] = deque()
        self.summary: Optional[_Summary] = None
        self.head: Optional[ResponseHead] = None
        self.error_body = bytearray()
        self.ended = False
        self.error: Optional[PrefevalError] = None
        #: Result lines are not decoded, only error lines and the summary (``evaluate_dataset``).
        self.summary_only = request.summary_only

    @property
    def request_id(self) -> Optional[str]:
        if self.head is not None and "x-request-id" in self.head.headers:
            return self.head.headers["x-request-id"]
        return self.request.request_id

    def handle(self, events: List[Event]) -> None:
        """Queues the items of ``events``. The stream's own error (an error answer, a stop line, a
        failed line with ``line_errors="raise"``) is kept in ``error``, to be raised once the
        items before it have been taken."""
        if self.error is not None:
            return
        try:
            self._handle(events)
        except PrefevalError as exc:
            self.error = exc

    def take_error(self) -> Optional[PrefevalError]:
        error, self.error = self.error, None
        return error

    def _handle(self, events: List[Event]) -> None:
        for kind, value in events:
            if kind == "head":
                assert isinstance(value, ResponseHead)
                if value.status >= 200:
                    self.head = value
            elif kind == "data":
                assert isinstance(value, bytes)
                if self.head is not None and self.head.status != 200:
                    if len(self.error_body) < ERROR_BODY_LIMIT:
                        self.error_body += value
                    continue
                if self.summary_only:
                    # Result lines are skipped undecoded, whole blocks at a time: only error lines
                    # and the summary matter. An unescaped `"error":` or `"summary":` can only be
                    # a key, which only those lines have.
                    block = self.splitter.feed_block(value)
                    if b'"error":' in block or b'"summary":' in block:
                        self._decode_lines(block.split(b"\n"))
                else:
                    self._decode_lines(self.splitter.feed(value))
            elif kind == "end":
                self.ended = True
                if self.head is not None and self.head.status != 200:
                    raise error_from_response(self.head.status, self.head.headers, bytes(self.error_body))
                rest = self.splitter.rest()
                if rest.strip():
                    self._decode_lines([rest])
                if self.summary is None:
                    raise StreamStoppedError(
                        "the stream ended without its summary line: it is incomplete",
                        status=200,
                        code="incomplete_stream",
                        request_id=self.request_id,
                    )

    def _decode_lines(self, lines: List[bytes]) -> None:
        lines = [line for line in lines if line]
        if not lines:
            return
        if self.summary_only:
            lines = [line for line in lines if not line.startswith(b'{"line":') or b'"error":' in line]
        # A result's pairs (its last field, most of its bytes) are decoded only if they are read.
        # `,"pairs":[` with an unescaped quote can only be that key.
        heads = lines
        deferred: List[Optional[Tuple[bytes, int]]] = [None] * len(lines)
        if not self.summary_only and (b',"pairs":[' in lines[0] or b',"pairs":[' in lines[-1]):
            heads = []
            for index, line in enumerate(lines):
                cut = line.find(b',"pairs":[')
                if cut > 0 and line.endswith(b"]}"):
                    heads.append(line[:cut] + b"}")
                    deferred[index] = (line, cut + 9)
                else:
                    heads.append(line)
        try:
            values = _json.loads_lines(heads)
        except ValueError:
            for line in lines:
                self._line(line)
            return
        build = self.request.parse_result
        append = self.items.append
        for line, data, pairs_from in zip(lines, values, deferred):
            if type(data) is dict and "line" in data and "error" not in data:  # a result: most lines
                append(build(data, pairs_from))
            else:
                self._value(line, data)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            data = _json.loads(line)
        except ValueError:
            raise ProtocolError(f"a stream line that is not JSON: {line[:200]!r}", code="invalid_response") from None
        self._value(line, data)

    def _value(self, line: bytes, data: Any) -> None:
        if not isinstance(data, dict):
            raise ProtocolError(f"a stream line that is not an object: {line[:200]!r}", code="invalid_response")
        if "line" in data:
            if "error" in data:
                item = LineError.from_dict(data)
                mode = self.request.line_errors
                if mode == "raise":
                    raise LineFailedError(item, self.request_id)
                if mode == "yield":
                    self.items.append(cast(_Item, item))  # both streams' items include LineError
            else:
                self.items.append(self.request.parse_result(data))
        elif "summary" in data:
            self.summary = self.request.parse_summary(data["summary"])
        elif "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise StreamStoppedError(
                error.get("message") or "the service stopped the stream",
                status=200,
                code=error.get("code"),
                request_id=self.request_id,
                body=data,
            )
        # Any other line is a kind this client does not know yet: skipped.

    def eof(self, parser: ResponseParser, writer_error: Optional[BaseException]) -> None:
        """The connection closed: end a body delimited by the close, else report why it stopped."""
        if writer_error is not None and not isinstance(writer_error, OSError):
            raise writer_error
        try:
            events = parser.feed_eof()
        except ProtocolError as exc:
            error = PrefevalConnectionError(
                "the connection closed before the stream's summary", code="connection_closed"
            )
            error.request_id = self.request_id
            raise error from (writer_error or exc)
        self.handle(events)


class _Document(_Lines[bytes, None]):
    """The answer of ``/v1/report``: one HTML document, not lines. Its items are the blocks of the
    document as they arrive; an error answer (JSON) is raised as the line streams' are."""

    def _handle(self, events: List[Event]) -> None:
        for kind, value in events:
            if kind == "head":
                assert isinstance(value, ResponseHead)
                if value.status >= 200:
                    self.head = value
                    content_type = value.headers.get("content-type", "")
                    if value.status == 200 and not content_type.startswith("text/html"):
                        raise ProtocolError(
                            f"the report came as {content_type or 'no content type'}, not text/html",
                            status=200,
                            code="invalid_response",
                            request_id=self.request_id,
                        )
            elif kind == "data":
                assert isinstance(value, bytes)
                if self.head is not None and self.head.status != 200:
                    if len(self.error_body) < ERROR_BODY_LIMIT:
                        self.error_body += value
                elif value:
                    self.items.append(value)
            elif kind == "end":
                self.ended = True
                if self.head is not None and self.head.status != 200:
                    raise error_from_response(self.head.status, self.head.headers, bytes(self.error_body))


# ------------------------------------------------------------------------------------------------
# sync


class _PlainConnection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        return self.sock.recv(READ_BYTES)

    def pending(self) -> bool:
        return False

    def wait_readable(self, timeout: Optional[float]) -> bool:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


class _TLSConnection(_PlainConnection):
    """TLS for a socket that one thread writes while another reads. An ``ssl.SSLSocket`` may not
    be used by two threads at once, so the TLS state lives in an ``SSLObject`` over memory BIOs,
    behind a lock, and the socket itself carries raw bytes. Records go out in the order the TLS
    object made them: taking them from the outgoing BIO and sending them is one step under
    ``_send_lock``."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, hostname: str) -> None:
        super().__init__(sock)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(READ_BYTES)
                if not data:
                    raise ConnectionError("the connection closed during the TLS handshake") from None
                self._incoming.write(data)
        self._flush()

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._outgoing.read()
            if data:
                self.sock.sendall(data)

    def sendall(self, data: bytes) -> None:
        with self._send_lock:
            with self._lock:
                self._tls.write(data)
                records = self._outgoing.read()
            self.sock.sendall(records)

    def pending(self) -> bool:
        # Decrypted bytes, or received records not yet decrypted: both are invisible to select().
        with self._lock:
            return self._tls.pending() > 0 or self._incoming.pending > 0

    def recv(self) -> bytes:
        while True:
            with self._lock:
                try:
                    return self._tls.read(READ_BYTES)
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
            # Bytes the TLS object has to send while reading (none in TLS 1.3 unless the server
            # asks for a key update) leave with the writer's next record, or here when nobody is
            # writing: the reader never waits for the writer's lock.
            if self._send_lock.acquire(blocking=False):
                try:
                    with self._lock:
                        data = self._outgoing.read()
                    if data:
                        self.sock.sendall(data)
                finally:
                    self._send_lock.release()
            raw = self.sock.recv(READ_BYTES)
            with self._lock:
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()


def _connect(request: StreamRequest) -> _PlainConnection:
    target = request.target
    sock = socket.create_connection((target.host, target.port), timeout=request.timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.scheme == "https":
            assert request.ssl_context is not None
            connection: _PlainConnection = _TLSConnection(sock, request.ssl_context, target.host)
        else:
            connection = _PlainConnection(sock)
        # Blocking from here on: reads wait in select() with their own deadline, and a write that
        # waits for the service to read is normal (it is reading our answer's pace).
        sock.settimeout(None)
        return connection
    except BaseException:
        sock.close()
        raise


def _first_answer(
    connection: _PlainConnection, parser: ResponseParser, request: StreamRequest
) -> Tuple[List[Event], Optional[ResponseHead]]:
    """Waits up to ``expect_timeout`` for the service's first head: ``100 Continue`` (go on), a
    final answer (an error, before the body), or nothing (a server that ignores ``Expect``; go on)."""
    events: List[Event] = []
    deadline = time.monotonic() + request.expect_timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not connection.wait_readable(remaining):
            return events, None
        data = connection.recv()
        if not data:
            raise ConnectionError("the connection closed before the service answered")
        new = parser.feed(data)
        events.extend(new)
        for kind, value in new:
            if kind == "head":
                assert isinstance(value, ResponseHead)
                return events, value


def _read_error_body(connection: _PlainConnection, parser: ResponseParser, events: List[Event], timeout: Optional[float]) -> bytes:
    body = bytearray()
    while True:
        for kind, value in events:
            if kind == "data" and isinstance(value, bytes) and len(body) < ERROR_BODY_LIMIT:
                body += value
            elif kind == "end":
                return bytes(body)
        if not connection.pending() and not connection.wait_readable(timeout):
            return bytes(body)
        data = connection.recv()
        if not data:
            try:
                events = parser.feed_eof()
            except ProtocolError:
                return bytes(body)
        else:
            events = parser.feed(data)


def open_stream(request: StreamRequest, source: Callable[[], ByteSource], kind: Type[_Stream]) -> _Stream:
    """Connects, sends the head and waits for the go-ahead; retries a 503 or a failed connection
    while the body has not started. ``source()`` is called once, when the body starts; the answer
    is read as a ``kind`` (:class:`EvaluateStream`, :class:`CompareStream`)."""
    attempt = 0
    while True:
        connection: Optional[_PlainConnection] = None
        try:
            connection = _connect(request)
            connection.sendall(request.head)
            parser = ResponseParser()
            events, head = _first_answer(connection, parser, request)
        except (OSError, ProtocolError) as exc:
            if connection is not None:
                connection.close()
            error = _connection_error(exc, "could not open the stream")
            if not request.retry.should_retry(error, attempt):
                raise error from (None if exc is error else exc)
            delay = request.retry.delay(attempt)
            request.retry.log("stream", error, attempt, delay)
            time.sleep(delay)
            attempt += 1
            continue
        if head is None or head.status == 100 or head.status == 200:
            return kind(connection, parser, events, request, source())
        body = _read_error_body(connection, parser, events, request.timeout)
        connection.close()
        error = error_from_response(head.status, head.headers, body)
        if not request.retry.should_retry(error, attempt):
            raise error
        delay = request.retry.delay(attempt, error.retry_after)
        request.retry.log("stream", error, attempt, delay)
        time.sleep(delay)
        attempt += 1


class _AnswerView(Generic[_Summary]):
    """What every stream shows of its answer, read from its ``_Lines``."""

    _lines: "_Lines[Any, _Summary]"

    @property
    def summary(self) -> Optional[_Summary]:
        """The stream's summary, once the iteration has ended (``None`` before)."""
        return self._lines.summary

    @property
    def request_id(self) -> Optional[str]:
        return self._lines.request_id

    @property
    def headers(self) -> Dict[str, str]:
        """The answer's headers (names in lower case), once it has started."""
        head = self._lines.head
        return dict(head.headers) if head is not None else {}


class _DuplexStream(_AnswerView[_Summary], Iterator[_Item], Generic[_Item, _Summary]):
    """A stream's answer, read as it arrives while a writer thread sends the body: the machinery
    of :class:`EvaluateStream` and :class:`CompareStream`, which differ only in their items."""

    def __init__(
        self,
        connection: _PlainConnection,
        parser: ResponseParser,
        events: List[Event],
        request: StreamRequest,
        source: ByteSource,
    ) -> None:
        self._connection = connection
        self._parser = parser
        self._lines: _Lines[_Item, _Summary] = self._answer(request)
        self._request = request
        self._pending_events = events
        self._closed = False
        self._finished = False
        self._last_read = time.monotonic()
        self._writer_progress = time.monotonic()
        self._writer_in_source = False
        self._writer_error: Optional[BaseException] = None
        self._writer_done = False
        self._writer = threading.Thread(
            target=self._write, args=(iter(source),), name="prefeval-stream-writer", daemon=True
        )
        self._writer.start()

    def _answer(self, request: StreamRequest) -> "_Lines[_Item, _Summary]":
        """What reads the answer: NDJSON lines (a document for :class:`ReportStream`)."""
        return _Lines(request)

    # -- writing (the writer thread) --------------------------------------------------------------

    def _write(self, source: Iterator[bytes]) -> None:
        connection = self._connection
        try:
            buffer = bytearray()
            first = True
            while not self._closed:
                self._writer_in_source = True
                started = time.monotonic()
                try:
                    piece = next(source, None)
                finally:
                    self._writer_in_source = False
                    self._writer_progress = time.monotonic()
                if piece is None:
                    break
                slow = self._writer_progress - started > SLOW_PULL_SECONDS
                if not buffer and len(piece) >= SEND_CHUNK_BYTES:
                    # A whole block (a file's, a converted record batch): sent as it is.
                    connection.sendall(chunk(piece))
                    self._writer_progress = time.monotonic()
                    first = False
                    continue
                buffer += piece
                if first or slow or len(buffer) >= SEND_CHUNK_BYTES:
                    connection.sendall(chunk(buffer))
                    self._writer_progress = time.monotonic()
                    buffer.clear()
                    first = False
            if self._closed:
                return
            if buffer:
                connection.sendall(chunk(buffer))
            connection.sendall(LAST_CHUNK)
        except BaseException as exc:  # handed to the reading thread
            if self._closed:
                return
            self._writer_error = exc
            if not isinstance(exc, OSError):
                # The body is broken (the iterable raised): wake the reader, which raises it.
                self._connection.shutdown()
        finally:
            self._writer_done = True
            self._writer_progress = time.monotonic()

    # -- reading (the caller's thread) -----------------------------------------------------------

    def __iter__(self: _Self) -> _Self:
        return self

    def __next__(self) -> _Item:
        lines = self._lines
        while True:
            if lines.items:
                return lines.items.popleft()
            error = lines.take_error()
            if error is not None:
                self.close()
                raise error
            if self._finished:
                raise StopIteration
            if self._closed:
                raise ValueError("the stream is closed")
            try:
                self._pump()
            except BaseException:
                self.close()
                raise

    def _pump(self) -> None:
        lines = self._lines
        if self._pending_events:
            events, self._pending_events = self._pending_events, []
            lines.handle(events)
            return
        data = self._recv()
        if data:
            lines.handle(self._parser.feed(data))
        else:
            lines.eof(self._parser, self._writer_error)
        if lines.ended:
            self._finish()

    def _recv(self) -> bytes:
        timeout = self._request.timeout
        connection = self._connection
        while True:
            if connection.pending():
                break
            wait = None if timeout is None else min(timeout, 1.0)
            if connection.wait_readable(wait):
                break
            if self._writer_error is not None and not isinstance(self._writer_error, OSError):
                raise self._writer_error
            if timeout is not None and self._stalled(timeout):
                raise PrefevalTimeoutError(
                    f"no answer from the stream for {timeout} s", code="timeout", request_id=self.request_id
                )
        try:
            data = connection.recv()
        except OSError:
            data = b""
        self._last_read = time.monotonic()
        return data

    def _stalled(self, timeout: float) -> bool:
        """Nothing read for ``timeout`` seconds, while the writer was not waiting for the iterable
        (a slow producer is no stalled service) and has not moved for as long."""
        now = time.monotonic()
        if now - self._last_read < timeout or self._writer_in_source:
            return False
        return now - self._writer_progress >= timeout

    def _finish(self) -> None:
        self._finished = True
        self._writer.join(timeout=5.0)
        self._release()

    def _release(self) -> None:
        self._closed = True
        self._connection.close()

    def close(self) -> None:
        """Stops the stream (if it is still going) and releases its connection."""
        if self._closed:
            return
        self._lines.items.clear()
        self._release()
        if threading.current_thread() is not self._writer:
            # The writer wakes from its send with an error and stops; if it is inside the
            # iterable it stops after the item it is computing.
            self._writer.join(timeout=1.0)

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._release()
        except Exception:
            pass


class EvaluateStream(_DuplexStream[StreamItem, StreamSummary]):
    """The answer of ``/v1/evaluate/stream``, read as it arrives.

    Iterate over it for one item per non-blank line of the body, in order: a
    :class:`~prefeval.StreamResult` for each evaluated list, a :class:`~prefeval.LineError` for each
    line that failed (unless ``line_errors`` said otherwise). Once the iteration ends, ``summary``
    holds the stream's :class:`~prefeval.StreamSummary`. Use it as a context manager (or call
    :meth:`close`) to release the connection when you stop early.

    The iterable of lists is consumed by a writer thread while you iterate, so a generator runs
    on that thread. An exception it raises ends the stream and is raised here.
    """


class CompareStream(_DuplexStream[CompareStreamItem, ComparisonSummary]):
    """The answer of ``/v1/compare/stream``, read as it arrives: as :class:`EvaluateStream`, with a
    :class:`~prefeval.CompareStreamResult` for each compared list and, once the iteration ends, a
    :class:`~prefeval.ComparisonSummary` (``/v1/compare``'s figures, with the totals that
    :func:`~prefeval.merge` adds up across shards) as ``summary``."""


class ReportStream(_DuplexStream[bytes, None]):
    """The answer of ``/v1/report``, read as it arrives while the body is sent: iterate over it for
    the blocks of the HTML document (``bytes``). What :meth:`Client.report` writes."""

    def _answer(self, request: StreamRequest) -> "_Lines[bytes, None]":
        return _Document(request)


_Stream = TypeVar("_Stream", bound=_DuplexStream[Any, Any])
_AsyncStream = TypeVar("_AsyncStream", bound="_AsyncDuplexStream[Any, Any]")


# ------------------------------------------------------------------------------------------------
# async


class _StreamReader(asyncio.StreamReader):
    def _maybe_resume_transport(self) -> None:
        try:
            getattr(super(), "_maybe_resume_transport")()
        except AttributeError:
            # Python < 3.11: when a TLS connection closes while reading is paused, asyncio's old
            # SSL transport fails to resume (it has no transport left), after the data was taken
            # from the buffer. Nothing is left to resume; the data must not be lost.
            pass


async def _aconnect(request: StreamRequest) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection``, with the reader above."""
    target = request.target
    kwargs: Dict[str, Any] = {}
    if target.scheme == "https":
        kwargs = {"ssl": request.ssl_context, "server_hostname": target.host}
    loop = asyncio.get_running_loop()
    reader = _StreamReader(limit=READ_BYTES, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await asyncio.wait_for(
        loop.create_connection(lambda: protocol, target.host, target.port, **kwargs), request.timeout
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    return reader, writer


async def _afirst_answer(
    reader: asyncio.StreamReader, parser: ResponseParser, request: StreamRequest
) -> Tuple[List[Event], Optional[ResponseHead]]:
    events: List[Event] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.expect_timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return events, None
        try:
            # StreamReader.read() loses nothing when cancelled while it waits.
            data = await asyncio.wait_for(reader.read(READ_BYTES), remaining)
        except asyncio.TimeoutError:
            return events, None
        if not data:
            raise ConnectionError("the connection closed before the service answered")
        new = parser.feed(data)
        events.extend(new)
        for kind, value in new:
            if kind == "head":
                assert isinstance(value, ResponseHead)
                return events, value


async def _aread_error_body(
    reader: asyncio.StreamReader, parser: ResponseParser, events: List[Event], timeout: Optional[float]
) -> bytes:
    body = bytearray()
    while True:
        for kind, value in events:
            if kind == "data" and isinstance(value, bytes) and len(body) < ERROR_BODY_LIMIT:
                body += value
            elif kind == "end":
                return bytes(body)
        try:
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
        except (asyncio.TimeoutError, OSError):
            return bytes(body)
        if not data:
            try:
                events = parser.feed_eof()
            except ProtocolError:
                return bytes(body)
        else:
            events = parser.feed(data)


async def _aclose_writer(writer: asyncio.StreamWriter, abort: bool = False) -> None:
    """Closes the connection and waits (briefly) until it is closed, so that no transport is left
    for the garbage collector when the event loop ends. ``abort`` drops what is still buffered for
    sending: a stream stopped early has body waiting that the service will never read."""
    try:
        if abort:
            writer.transport.abort()
        else:
            writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (Exception, asyncio.TimeoutError):
        pass


async def aopen_stream(
    request: StreamRequest, source: Callable[[], AsyncByteSource], kind: Type[_AsyncStream]
) -> _AsyncStream:
    attempt = 0
    while True:
        writer: Optional[asyncio.StreamWriter] = None
        try:
            reader, writer = await _aconnect(request)
            writer.write(request.head)
            await writer.drain()
            parser = ResponseParser()
            events, head = await _afirst_answer(reader, parser, request)
        except (OSError, ProtocolError, asyncio.TimeoutError) as exc:
            if writer is not None:
                await _aclose_writer(writer)
            error = _connection_error(exc, "could not open the stream")
            if not request.retry.should_retry(error, attempt):
                raise error from (None if exc is error else exc)
            delay = request.retry.delay(attempt)
            request.retry.log("stream", error, attempt, delay)
            await asyncio.sleep(delay)
            attempt += 1
            continue
        if head is None or head.status == 100 or head.status == 200:
            return kind(reader, writer, parser, events, request, source())
        body = await _aread_error_body(reader, parser, events, request.timeout)
        await _aclose_writer(writer)
        error = error_from_response(head.status, head.headers, body)
        if not request.retry.should_retry(error, attempt):
            raise error
        delay = request.retry.delay(attempt, error.retry_after)
        request.retry.log("stream", error, attempt, delay)
        await asyncio.sleep(delay)
        attempt += 1


class _AsyncDuplexStream(_AnswerView[_Summary], AsyncIterator[_Item], Generic[_Item, _Summary]):
    """The async form of :class:`_DuplexStream`: ``async for item in stream``, then
    ``stream.summary``; ``async with`` (or ``await stream.aclose()``) releases the connection.
    A writer task consumes the lists (an async iterable, or a plain one, pulled on the event loop)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: ResponseParser,
        events: List[Event],
        request: StreamRequest,
        source: AsyncByteSource,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._lines: _Lines[_Item, _Summary] = self._answer(request)
        self._request = request
        self._pending_events = events
        self._closed = False
        self._finished = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._last_read = loop.time()
        self._writer_progress = loop.time()
        self._writer_in_source = False
        self._writer_error: Optional[BaseException] = None
        self._writer_task = loop.create_task(self._write(source))

    def _answer(self, request: StreamRequest) -> "_Lines[_Item, _Summary]":
        """What reads the answer: NDJSON lines (a document for :class:`AsyncReportStream`)."""
        return _Lines(request)

    async def _pull(self, source: Any) -> Optional[bytes]:
        self._writer_in_source = True
        try:
            if isinstance(source, AsyncIterator):
                try:
                    piece: bytes = await source.__anext__()
                    return piece
                except StopAsyncIteration:
                    return None
            return next(source, None)
        finally:
            self._writer_in_source = False
            self._writer_progress = self._loop.time()

    async def _write(self, source: AsyncByteSource) -> None:
        writer = self._writer
        iterator: Any = source.__aiter__() if isinstance(source, AsyncIterable) else iter(source)
        try:
            buffer = bytearray()
            first = True
            while True:
                started = self._loop.time()
                piece = await self._pull(iterator)
                if piece is None:
                    break
                buffer += piece
                slow = self._writer_progress - started > SLOW_PULL_SECONDS
                if first or slow or len(buffer) >= SEND_CHUNK_BYTES:
                    writer.write(chunk(buffer))
                    buffer.clear()
                    first = False
                    await writer.drain()
                    self._writer_progress = self._loop.time()
            if buffer:
                writer.write(chunk(buffer))
            writer.write(LAST_CHUNK)
            await writer.drain()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self._closed:
                return
            self._writer_error = exc
            if not isinstance(exc, OSError):
                writer.transport.abort()  # the body is broken: wake the reader, which raises it
        finally:
            self._writer_progress = self._loop.time()
            if isinstance(iterator, AsyncIterator) and hasattr(iterator, "aclose"):
                try:
                    await iterator.aclose()
                except Exception:
                    pass

    def __aiter__(self: _Self) -> _Self:
        return self

    async def __anext__(self) -> _Item:
        lines = self._lines
        while True:
            if lines.items:
                return lines.items.popleft()
            error = lines.take_error()
            if error is not None:
                await self.aclose()
                raise error
            if self._finished:
                raise StopAsyncIteration
            if self._closed:
                raise ValueError("the stream is closed")
            try:
                await self._pump()
            except BaseException:
                await self.aclose()
                raise

    async def _pump(self) -> None:
        lines = self._lines
        if self._pending_events:
            events, self._pending_events = self._pending_events, []
            lines.handle(events)
            return
        data = await self._recv()
        if data:
            lines.handle(self._parser.feed(data))
        else:
            lines.eof(self._parser, self._writer_error)
        if lines.ended:
            self._finished = True
            await self._release(wait_writer=True)

    async def _recv(self) -> bytes:
        timeout = self._request.timeout
        while True:
            wait = None if timeout is None else min(timeout, 1.0)
            try:
                data = await asyncio.wait_for(self._reader.read(READ_BYTES), wait)
                break
            except asyncio.TimeoutError:
                pass
            except OSError:
                data = b""
                break
            if self._writer_error is not None and not isinstance(self._writer_error, OSError):
                raise self._writer_error
            if timeout is not None and self._stalled(timeout):
                raise PrefevalTimeoutError(
                    f"no answer from the stream for {timeout} s", code="timeout", request_id=self.request_id
                )
        self._last_read = self._loop.time()
        return data

    def _stalled(self, timeout: float) -> bool:
        now = self._loop.time()
        if now - self._last_read < timeout or self._writer_in_source:
            return False
        return now - self._writer_progress >= timeout

    async def _release(self, wait_writer: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        task = self._writer_task
        if wait_writer and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except (asyncio.TimeoutError, Exception):
                pass
        if not task.done():
            task.cancel()
            # wait() never raises the task's own error, but lets a cancellation of ours through.
            await asyncio.wait([task], timeout=1.0)
        await _aclose_writer(self._writer, abort=not self._finished)

    async def aclose(self) -> None:
        """Stops the stream (if it is still going) and releases its connection."""
        if not self._closed:
            self._lines.items.clear()
        await self._release()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()


class AsyncEvaluateStream(_AsyncDuplexStream[StreamItem, StreamSummary]):
    """The async form of :class:`EvaluateStream`: ``async for item in stream``, then
    ``stream.summary``; ``async with`` (or ``await stream.aclose()``) releases the connection.
    A writer task consumes the lists (an async iterable, or a plain one, pulled on the event loop)."""


class AsyncCompareStream(_AsyncDuplexStream[CompareStreamItem, ComparisonSummary]):
    """The async form of :class:`CompareStream`."""


class AsyncReportStream(_AsyncDuplexStream[bytes, None]):
    """The async form of :class:`ReportStream`."""

    def _answer(self, request: StreamRequest) -> "_Lines[bytes, None]":
        return _Document(request)
