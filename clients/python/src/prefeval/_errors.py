"""The exceptions of the client: one base class, with a subclass per status where it is useful."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Type


class PrefevalError(Exception):
    """An error answer of the service, or a failure to reach it.

    The attributes come from the service's JSON error body
    ``{"error": {"code", "message", "path", "request_id"}}``:

    - ``status``: the HTTP status (``None`` when no answer came, e.g. a refused connection);
    - ``code``: the stable, machine-readable code (``invalid_type``, ``queue_full``, ...); switch on it;
    - ``message``: for a person;
    - ``path``: the field at fault (``lists[0].items[1].reward``), when one is;
    - ``request_id``: the request's id, to find it in the service's logs;
    - ``retry_after``: the seconds of the ``Retry-After`` header, on a 503;
    - ``body``: the whole decoded error body (or ``None``), for fields added later.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        path: Optional[str] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        body: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.path:
            text += f" (at {self.path})"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, path={self.path!r}, request_id={self.request_id!r})"
        )


class BadRequestError(PrefevalError):
    """400: the body is not JSON (``malformed_json``)."""


class AuthenticationError(PrefevalError):
    """401: tokens are configured and the request had no valid ``Authorization: Bearer``."""


class NotFoundError(PrefevalError):
    """404: no such route (check the base URL)."""


class RequestTimeoutError(PrefevalError):
    """408: the request took longer than the service's request timeout."""


class PayloadTooLargeError(PrefevalError):
    """413: the body is over the service's limit; split it, or use ``evaluate_stream``."""


class UnprocessableError(PrefevalError):
    """422: well-formed but invalid input; ``path`` names the field."""


class InternalServerError(PrefevalError):
    """500: a bug in the service (never caused by what a client sent)."""


class OverloadedError(PrefevalError):
    """503: every worker is busy (``queue_full``) or the memory budget is held (``memory_budget``).

    Retried by the client up to ``max_retries``; raised once the retries are spent.
    """


class PrefevalConnectionError(PrefevalError):
    """No answer: the connection was refused, reset or closed early, or the name did not resolve."""


class PrefevalTimeoutError(PrefevalConnectionError):
    """No answer within the client's ``timeout``."""


class StreamStoppedError(PrefevalError):
    """A stream that the service stopped before its summary (its last line was ``{"error": ...}``).

    The results already yielded are valid; the summary is missing, so the stream is incomplete.
    """


class InvalidInputError(PrefevalError, ValueError):
    """Input refused before anything was sent: a reward that is NaN or infinite, which JSON cannot
    carry. ``code`` is ``invalid_value`` and ``status`` is ``None``; it is also a ``ValueError``."""


class ProtocolError(PrefevalError):
    """The answer could not be understood (not HTTP, or not the JSON the contract describes)."""


_BY_STATUS: Dict[int, Type[PrefevalError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: PayloadTooLargeError,
    422: UnprocessableError,
    500: InternalServerError,
    503: OverloadedError,
}


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> PrefevalError:
    """The exception for an error answer: its JSON error body when it has one (it always does from
    the service; a proxy in front may answer with something else)."""
    request_id = headers.get("x-request-id")
    retry_after = parse_retry_after(headers.get("retry-after"))
    body: Optional[Dict[str, Any]] = None
    error: Dict[str, Any] = {}
    try:
        decoded = json.loads(content)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        body = decoded
        if isinstance(decoded.get("error"), dict):
            error = decoded["error"]
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = content.decode("utf-8", "replace").strip()
        message = text[:500] if text else f"HTTP {status}"
    code = error.get("code") if isinstance(error.get("code"), str) else None
    path = error.get("path") if isinstance(error.get("path"), str) else None
    if isinstance(error.get("request_id"), str):
        request_id = error["request_id"]
    cls = _BY_STATUS.get(status, PrefevalError)
    return cls(
        message,
        status=status,
        code=code,
        path=path,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
    )
