"""The HTTP/1.1 pieces of the duplex stream, without I/O: the request head, chunk framing, an
incremental response parser and an NDJSON line splitter. The sync and async streams (``_stream``)
feed them bytes from a socket; so they share one implementation of the protocol."""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple, Union
from urllib.parse import quote, urlsplit

from ._errors import ProtocolError

MAX_HEAD_BYTES = 64 * 1024


class Target(NamedTuple):
    """Where a request goes: from the client's base URL."""

    scheme: str  # "http" or "https"
    host: str
    port: int
    host_header: str
    base_path: str  # without a trailing slash ("" for the root)


def parse_base_url(base_url: str) -> Target:
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"base URL {base_url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"base URL {base_url!r} has no host")
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    return Target(scheme, host, port, host_header, parts.path.rstrip("/"))


def query_string(params: Iterable[Tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def request_head(method: str, target: str, headers: Iterable[Tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: Union[bytes, bytearray]) -> bytes:
    """One piece of a ``Transfer-Encoding: chunked`` body."""
    return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))  # one copy of the data


LAST_CHUNK = b"0\r\n\r\n"


class ResponseHead(NamedTuple):
    status: int
    reason: str
    headers: Dict[str, str]  # names in lower case; repeated headers joined with ", "


Event = Union[Tuple[str, ResponseHead], Tuple[str, bytes], Tuple[str, None]]


class ResponseParser:
    """Feed it the bytes of one response as they arrive; it returns events:
    ``("head", ResponseHead)`` for each head (interim ``1xx`` ones included), ``("data", bytes)``
    for body bytes, ``("end", None)`` once the body is complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = "head"  # head, length, chunk_size, chunk_data, chunk_end, trailers, close, done
        self._remaining = 0
        self.head: Optional[ResponseHead] = None

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> List[Event]:
        if self._state == "done":
            return []
        self._buffer += data
        events: List[Event] = []
        position = 0
        buffer = self._buffer
        while True:
            state = self._state
            if state == "head":
                end = buffer.find(b"\r\n\r\n", position)
                if end < 0:
                    if len(buffer) - position > MAX_HEAD_BYTES:
                        raise ProtocolError("response head too large", code="invalid_response")
                    break
                head = _parse_head(bytes(buffer[position:end]))
                position = end + 4
                events.append(("head", head))
                if head.status < 200:
                    continue
                self.head = head
                self._start_body(head)
            elif state == "length":
                take = min(self._remaining, len(buffer) - position)
                if take:
                    events.append(("data", bytes(buffer[position : position + take])))
                    position += take
                    self._remaining -= take
                if self._remaining:
                    break
                self._state = "done"
            elif state == "chunk_size":
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    if len(buffer) - position > 1024:
                        raise ProtocolError("chunk size line too long", code="invalid_response")
                    break
                text = bytes(buffer[position:end]).split(b";", 1)[0].strip()
                position = end + 2
                try:
                    size = int(text, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {text!r}", code="invalid_response") from None
                if size == 0:
                    self._state = "trailers"
                else:
                    self._remaining = size
                    self._state = "chunk_data"
            elif state == "chunk_data":
                take = min(self._remaining, len(buffer) - position)
                if not take:
                    break
                events.append(("data", bytes(buffer[position : position + take])))
                position += take
                self._remaining -= take
                if not self._remaining:
                    self._state = "chunk_end"
            elif state == "chunk_end":
                if len(buffer) - position < 2:
                    break
                if buffer[position : position + 2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF", code="invalid_response")
                position += 2
                self._state = "chunk_size"
            elif state == "trailers":
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    break
                line_empty = end == position
                position = end + 2
                if line_empty:
                    self._state = "done"
            elif state == "close":
                if len(buffer) > position:
                    events.append(("data", bytes(buffer[position:])))
                    position = len(buffer)
                break
            if self._state == "done":
                events.append(("end", None))
                position = len(buffer)  # nothing may follow: the connection is not reused
                break
        del buffer[:position]
        return events

    def feed_eof(self) -> List[Event]:
        """The connection closed. Ends a body delimited by the close; anything else unfinished is
        an error (``ProtocolError``; the caller may know better, e.g. that the server stopped)."""
        if self._state == "close":
            self._state = "done"
            return [("end", None)]
        if self._state == "done":
            return []
        raise ProtocolError("the connection closed in the middle of the answer", code="connection_closed")

    def _start_body(self, head: ResponseHead) -> None:
        encoding = head.headers.get("transfer-encoding", "").lower()
        if head.status in (204, 304):
            self._state = "done"
        elif "chunked" in encoding:
            self._state = "chunk_size"
        elif "content-length" in head.headers:
            try:
                self._remaining = int(head.headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length", code="invalid_response") from None
            self._state = "length" if self._remaining else "done"
        else:
            self._state = "close"


def _parse_head(raw: bytes) -> ResponseHead:
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x answer: {lines[0][:100]!r}", code="invalid_response")
    try:
        status = int(status_line[1])
    except ValueError:
        raise ProtocolError(f"bad status line {lines[0][:100]!r}", code="invalid_response") from None
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return ResponseHead(status, status_line[2] if len(status_line) > 2 else "", headers)


class LineSplitter:
    """Splits body bytes into lines (without their ``\\n``), keeping the unfinished last one."""

    def __init__(self) -> None:
        self._partial = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        if b"\n" not in data:
            self._partial += data
            return []
        lines = data.split(b"\n")
        if self._partial:
            lines[0] = bytes(self._partial) + lines[0]
            self._partial.clear()
        self._partial += lines.pop()
        return lines

    def feed_block(self, data: bytes) -> bytes:
        """The complete lines so far as one block (joined by ``\n``, without the last one's),
        for a reader that looks into a block before it splits it; b"" when none is complete."""
        end = data.rfind(b"\n")
        if end < 0:
            self._partial += data
            return b""
        block = bytes(self._partial) + data[:end] if self._partial else data[:end]
        self._partial = bytearray(data[end + 1 :])
        return block

    def rest(self) -> bytes:
        """What is left after the last ``\\n`` (a last line without its newline)."""
        rest = bytes(self._partial)
        self._partial.clear()
        return rest
