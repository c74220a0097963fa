"""``Client`` and ``AsyncClient``."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import uuid
from pathlib import Path
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

import httpx

from ._atomic import AtomicFile
from ._errors import (
    PrefevalConnectionError,
    PrefevalError,
    PrefevalTimeoutError,
    ProtocolError,
    error_from_response,
)
from ._dataset import BATCH_ROWS, UNKNOWN_FIELDS, check_readable, columns_read, fields_query, ndjson_blocks
from ._helpers import encode_json
from ._http11 import parse_base_url, query_string
from ._merge_compare import ComparisonSummary
from ._models import CompareResult, CompareStreamResult, EvaluateResult, StreamSummary
from ._retry import RetryPolicy
from ._stream import (
    AsyncCompareStream,
    AsyncEvaluateStream,
    AsyncByteSource,
    AsyncReportStream,
    CompareStream,
    EvaluateStream,
    ReportStream,
    StreamRequest,
    aencode_lists,
    aopen_stream,
    encode_lists,
    file_blocks,
    file_encoding,
    open_stream,
)
from ._version import __version__

ListsArg = Iterable[Mapping[str, Any]]
VerifyArg = Union[bool, str, ssl.SSLContext]
PathArg = Union[str, "os.PathLike[str]"]

_Result = TypeVar("_Result", EvaluateResult, CompareResult)


def _ssl_context(verify: VerifyArg) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()


def _lists_payload(lists: ListsArg) -> List[Mapping[str, Any]]:
    if isinstance(lists, Mapping):
        raise TypeError(
            "lists must be a sequence of ranked lists, not one mapping: wrap a single list as [the_list]"
        )
    if isinstance(lists, (str, bytes)):
        raise TypeError("lists must be a sequence of ranked lists (mappings), not a string")
    return list(lists)


def _options(**values: Any) -> Dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):  # fields={"chosen_reward": "score_chosen"}
        return fields_query(value)
    return str(value)


def _models_query(models: Sequence[str]) -> str:
    """``models=a,b``: the names, in order, joined by commas (the service checks their number and
    that they differ). A name with a comma would be read as two, so it is refused here."""
    if isinstance(models, (str, bytes)):
        raise TypeError("models must be a sequence of model names, not one string")
    names = list(models)
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"models[{index}] must be a model name (a string), not {type(name).__name__}")
        if "," in name:
            raise ValueError(f"models[{index}] {name!r} has a comma: the stream's `models` separates names by commas")
    return ",".join(names)


#: What a stream answers: every line, or only the error lines (the summary always last).
RESULTS = ("all", "errors")


def stream_query(options: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """The query parameters of a stream's options (``None`` left out)."""
    if options.get("unknown_fields") not in (None, *UNKNOWN_FIELDS):
        raise ValueError(f"unknown_fields must be one of {UNKNOWN_FIELDS}, not {options['unknown_fields']!r}")
    if options.get("results") not in (None, *RESULTS):
        raise ValueError(f"results must be one of {RESULTS}, not {options['results']!r}")
    # `results=all` is the service's default: left out, as every option not given.
    return [
        (key, _query_value(value))
        for key, value in options.items()
        if value is not None and not (key == "results" and value == "all")
    ]


def _dataset_source(
    data: Any, fields: Optional[Mapping[str, str]], unknown_fields: Optional[str], batch_rows: int
) -> Callable[[], Iterator[bytes]]:
    # With unknown fields ignored by the service, columns it would not read are not sent at all
    # (text columns are most of a preference dataset's bytes).
    project = columns_read(fields) if unknown_fields == "ignore" else None
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    check_readable(data)  # before connecting; the blocks are made once the body starts
    return lambda: ndjson_blocks(data, project=project, batch_rows=batch_rows)


_DATASET_LINE_ERRORS = ("raise", "skip")


def _dataset_line_errors(line_errors: str) -> str:
    if line_errors not in _DATASET_LINE_ERRORS:
        raise ValueError(f"line_errors must be one of {_DATASET_LINE_ERRORS}, not {line_errors!r}")
    return line_errors


async def _in_threads(blocks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The blocks of a sync iterator, each made on a worker thread: converting a record batch is
    CPU work that must not hold the event loop."""
    while True:
        block = await asyncio.to_thread(next, blocks, None)
        if block is None:
            return
        yield block


def _report_file(data_or_path: Any) -> Optional[Tuple[Optional[str], Callable[[], Iterator[bytes]]]]:
    """When ``data_or_path`` is a path: the ``Content-Encoding`` and the blocks of the NDJSON file,
    as ``evaluate_file`` sends it; ``None`` for data."""
    if not isinstance(data_or_path, (str, os.PathLike)):
        return None
    path: PathArg = data_or_path
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return file_encoding(path), lambda: file_blocks(path)


class _Base:
    def __init__(
        self,
        base_url: str,
        token: Optional[str],
        timeout: Optional[float],
        max_retries: int,
        headers: Optional[Mapping[str, str]],
        verify: VerifyArg,
        backoff_base: float,
        backoff_max: float,
        max_retry_delay: float,
        expect_timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._target = parse_base_url(self.base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self._retry = RetryPolicy(max_retries, backoff_base, backoff_max, max_retry_delay)
        self._ssl_context = _ssl_context(verify) if self._target.scheme == "https" else None
        self._expect_timeout = expect_timeout
        self._headers: Dict[str, str] = {"User-Agent": f"prefeval-python/{__version__}"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if headers:
            self._headers.update(headers)

    def _httpx_options(self) -> Dict[str, Any]:
        return dict(
            base_url=self.base_url + "/",
            timeout=self.timeout,
            headers={**self._headers, "Accept": "application/json"},
            verify=self._ssl_context if self._ssl_context is not None else True,
        )

    @staticmethod
    def _request_id(request_id: Optional[str]) -> str:
        # One id for every attempt of a call, so the service's logs tie the retries together.
        return request_id or str(uuid.uuid4())

    @staticmethod
    def _evaluate_body(lists: ListsArg, model: Optional[str], options: Dict[str, Any]) -> bytes:
        body: Dict[str, Any] = {}
        if model is not None:
            body["model"] = model
        if options:
            body["options"] = options
        body["lists"] = _lists_payload(lists)
        return encode_json(body)

    @staticmethod
    def _compare_body(lists: ListsArg, models: Sequence[str], options: Dict[str, Any]) -> bytes:
        if isinstance(models, str):
            raise TypeError("models must be a sequence of model names, not one string")
        body: Dict[str, Any] = {"models": list(models)}
        if options:
            body["options"] = options
        body["lists"] = _lists_payload(lists)
        return encode_json(body)

    def _stream_request(
        self,
        options: Dict[str, Any],
        request_id: Optional[str],
        line_errors: str,
        summary_only: bool = False,
        route: str = "evaluate/stream",
        accept: str = "application/x-ndjson",
        content_encoding: Optional[str] = None,
    ) -> StreamRequest:
        query = stream_query(options)
        path = f"{self._target.base_path}/v1/{route}"
        if query:
            path += "?" + query_string(query)
        return StreamRequest(
            target=self._target,
            path=path,
            headers=list(self._headers.items()),
            request_id=self._request_id(request_id),
            timeout=self.timeout,
            retry=self._retry,
            ssl_context=self._ssl_context,
            expect_timeout=self._expect_timeout,
            line_errors=line_errors,
            summary_only=summary_only,
            accept=accept,
            content_encoding=content_encoding,
        )

    def _compare_stream_request(
        self,
        models: Sequence[str],
        options: Dict[str, Any],
        request_id: Optional[str],
        line_errors: str,
        content_encoding: Optional[str] = None,
    ) -> StreamRequest:
        request = self._stream_request(
            {"models": _models_query(models), **options},
            request_id,
            line_errors,
            route="compare/stream",
            content_encoding=content_encoding,
        )
        request.parse_result = CompareStreamResult.from_dict
        request.parse_summary = ComparisonSummary.from_dict
        return request

    def _report_request(
        self,
        models: Optional[Sequence[str]],
        options: Dict[str, Any],
        request_id: Optional[str],
        content_encoding: Optional[str],
    ) -> StreamRequest:
        """``POST /v1/report``: the query of the evaluate stream, or with ``models`` of the compare
        stream; the answer is an HTML document."""
        if models is not None:
            options = {"models": _models_query(models), **options}
        return self._stream_request(
            options, request_id, "yield", route="report", accept="text/html", content_encoding=content_encoding
        )

    def _outcome(
        self, response: httpx.Response, parse: Type[_Result]
    ) -> Tuple[Optional[_Result], Optional[PrefevalError]]:
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError as exc:
                raise ProtocolError(
                    f"the answer is not JSON: {response.text[:200]!r}",
                    status=200,
                    code="invalid_response",
                    request_id=response.headers.get("x-request-id"),
                ) from exc
            return parse.from_response(data, response.headers), None
        return None, error_from_response(response.status_code, response.headers, response.content)

    @staticmethod
    def _transport_error(exc: httpx.TransportError, request_id: str) -> PrefevalError:
        cls = PrefevalTimeoutError if isinstance(exc, httpx.TimeoutException) else PrefevalConnectionError
        error = cls(f"{type(exc).__name__}: {exc}", code="connection_error", request_id=request_id)
        error.__cause__ = exc
        return error


_CLIENT_DOC = """
    ``base_url`` is the service's address (``http://host:8080``, or with a path prefix behind a
    proxy). ``token`` is sent as ``Authorization: Bearer`` when the service requires one.
    ``timeout`` (seconds, ``None`` for none) bounds connecting and each wait for the service.

    ``max_retries``: a 503 (the service shedding load: ``queue_full``, ``memory_budget``), a 502 or
    504 from a proxy in front of it, and a failed or timed-out connection are retried up to this
    many times, after the ``Retry-After`` the service gave (at most ``max_retry_delay``), else
    after an exponential backoff with jitter (``backoff_base · 2^attempt``, capped at
    ``backoff_max``). Other 4xx and 5xx answers are never retried; ``max_retries=0`` raises at
    once. Evaluations are pure computations, so a retried request cannot do anything twice
    (beyond counting twice in the service's metrics).

    ``headers`` are added to every request; ``verify`` is the TLS verification for ``https://``
    (``True``, ``False``, a CA bundle path or an ``ssl.SSLContext``).
"""


class Client:
    __doc__ = "A synchronous prefeval client (thread-safe; reuse one).\n" + _CLIENT_DOC

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        token: Optional[str] = None,
        timeout: Optional[float] = 30.0,
        max_retries: int = 3,
        *,
        headers: Optional[Mapping[str, str]] = None,
        verify: VerifyArg = True,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_delay: float = 60.0,
        expect_timeout: float = 1.0,
    ) -> None:
        self._base = _Base(
            base_url, token, timeout, max_retries, headers, verify,
            backoff_base, backoff_max, max_retry_delay, expect_timeout,
        )  # fmt: skip
        self.base_url = self._base.base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = httpx.Client(**self._base._httpx_options())

    def _post(self, path: str, body: bytes, request_id: Optional[str], parse: Type[_Result]) -> _Result:
        base = self._base
        rid = base._request_id(request_id)
        headers = {"Content-Type": "application/json", "x-request-id": rid}
        attempt = 0
        while True:
            try:
                response = self._http.post(path, content=body, headers=headers)
            except httpx.TransportError as exc:
                error = base._transport_error(exc, rid)
            else:
                result, maybe_error = base._outcome(response, parse)
                if result is not None:
                    return result
                assert maybe_error is not None
                error = maybe_error
            if not base._retry.should_retry(error, attempt):
                raise error
            delay = base._retry.delay(attempt, error.retry_after)
            base._retry.log(f"POST {path}", error, attempt, delay)
            time.sleep(delay)
            attempt += 1

    def evaluate(
        self,
        lists: ListsArg,
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        calibration_bins: Optional[int] = None,
        top_disagreements: Optional[int] = None,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> EvaluateResult:
        """``POST /v1/evaluate``: one batch of ranked lists, answered in one piece.

        ``lists`` are in the wire shape (``[{"id": ..., "items": [{"reward": ..., "rank": ...}]}]``,
        or another ``format``), e.g. the output of :func:`lists_from_pairs` or
        :func:`list_from_ranking`. Every option of the API is a keyword (left out: the service's
        default); an option this client does not name yet can be passed as a keyword too. Pairs
        name their items by index (``pair.preferred``, ``pair.other``);
        ``include_pair_ids=True`` also fills ``pair.preferred_id`` and ``pair.other_id``.
        ``request_id`` is sent as ``x-request-id`` (a UUID is made up otherwise).
        """
        opts = _options(
            normalization=normalization, include_pairs=include_pairs, beta=beta, format=format,
            confidence=confidence, include_gradients=include_gradients, include_pair_ids=include_pair_ids,
            calibration_bins=calibration_bins, top_disagreements=top_disagreements, **options,
        )  # fmt: skip
        body = self._base._evaluate_body(lists, model, opts)
        return self._post("v1/evaluate", body, request_id, EvaluateResult)

    def compare(
        self,
        lists: ListsArg,
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> CompareResult:
        """``POST /v1/compare``: two to sixteen models on the same lists, compared pairwise.

        Each item carries ``"rewards"``, one per model in the order of ``models``.
        """
        opts = _options(normalization=normalization, beta=beta, confidence=confidence, **options)
        body = self._base._compare_body(lists, models, opts)
        return self._post("v1/compare", body, request_id, CompareResult)

    def evaluate_stream(
        self,
        lists: Iterable[Any],
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> EvaluateStream:
        """``POST /v1/evaluate/stream``: any number of lists, in constant memory.

        ``lists`` is any iterable (a generator too) of lists in the wire shape, or of NDJSON lines
        (``str``/``bytes``). It is consumed while the results come back; iterate over the returned
        :class:`EvaluateStream` for one item per list, in order, then read ``stream.summary``.
        ``line_errors`` says what a line that fails does: ``"yield"`` a :class:`LineError`
        (default), ``"raise"`` :class:`LineFailedError`, or ``"skip"`` it (the summary's
        ``lines_failed`` still counts it). ``results="errors"`` (sent as ``results=errors``) has the
        service write only the error lines and the summary, no result line: the stream then yields
        only :class:`LineError` items (``"all"``, the default, yields every list's result).

        Retries (503, connection failures) happen only before the first list is taken from
        ``lists``: a generator cannot be replayed, so a failure after that raises.
        """
        opts = _options(
            model=model, normalization=normalization, include_pairs=include_pairs, beta=beta,
            format=format, confidence=confidence, include_gradients=include_gradients,
            include_pair_ids=include_pair_ids, results=results, **options,
        )  # fmt: skip
        request = self._base._stream_request(opts, request_id, line_errors)
        return open_stream(request, lambda: encode_lists(lists), EvaluateStream)

    def evaluate_file(
        self,
        path: PathArg,
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> EvaluateStream:
        """The stream over an NDJSON file (``.gz`` is decompressed, ``.zst`` sent for the service to
        decode), sent as it is: the result lines' ``line`` numbers are the file's line numbers."""
        opts = _options(
            model=model, normalization=normalization, include_pairs=include_pairs, beta=beta,
            format=format, confidence=confidence, include_gradients=include_gradients,
            include_pair_ids=include_pair_ids, results=results, **options,
        )  # fmt: skip
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        request = self._base._stream_request(opts, request_id, line_errors, content_encoding=file_encoding(path))
        return open_stream(request, lambda: file_blocks(path), EvaluateStream)

    def compare_stream(
        self,
        lists: Iterable[Any],
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> CompareStream:
        """``POST /v1/compare/stream``: two to sixteen models on any number of lists, in constant
        memory.

        ``lists`` is any iterable of lists in ``/v1/compare``'s shape (each item's ``"rewards"``, one
        per model in the order of ``models``; with ``format="pairs"``, ``chosen_rewards`` and
        ``rejected_rewards``), or of NDJSON lines. Iterate over the returned :class:`CompareStream`
        for a :class:`CompareStreamResult` per list (every model's ``loss``, ``accuracy`` and
        ``kendall_tau`` on it), then read ``stream.summary``: a :class:`ComparisonSummary` with
        ``/v1/compare``'s figures for the lists compared, which :func:`merge` merges with the
        summaries of other shards. ``line_errors``, ``results`` and the retries are as in
        :meth:`evaluate_stream`.
        """
        opts = _options(
            normalization=normalization, beta=beta, format=format, confidence=confidence, results=results, **options
        )
        request = self._base._compare_stream_request(models, opts, request_id, line_errors)
        return open_stream(request, lambda: encode_lists(lists), CompareStream)

    def compare_file(
        self,
        path: PathArg,
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> CompareStream:
        """The comparison stream over an NDJSON file (``.gz`` is decompressed, ``.zst`` sent for the
        service to decode), sent as it is: the result lines' ``line`` numbers are the file's line
        numbers."""
        opts = _options(
            normalization=normalization, beta=beta, format=format, confidence=confidence, results=results, **options
        )
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        request = self._base._compare_stream_request(models, opts, request_id, line_errors, file_encoding(path))
        return open_stream(request, lambda: file_blocks(path), CompareStream)

    def evaluate_dataset(
        self,
        data: Any,
        *,
        format: Optional[str] = None,
        fields: Optional[Mapping[str, str]] = None,
        unknown_fields: Optional[str] = None,
        model: Optional[str] = None,
        line_errors: str = "raise",
        batch_rows: int = BATCH_ROWS,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> StreamSummary:
        """A whole dataset through ``POST /v1/evaluate/stream``; returns the stream's summary.

        ``data``: a pandas or polars DataFrame (or polars LazyFrame); a pyarrow ``Table``,
        ``RecordBatch``, ``RecordBatchReader`` or ``pyarrow.dataset.Dataset``; a Hugging Face
        ``datasets.Dataset`` or ``IterableDataset``; or any iterable of lists (mappings). A row is
        one list in ``format``'s shape (nested columns for ``items``). Tables are converted to NDJSON
        by pyarrow, ``batch_rows`` rows at a time, and sent while the service answers: the body is
        never built whole. Numbers arrive exactly as they are (the shortest text of each double);
        a NaN or infinite float raises :class:`InvalidInputError`, naming its row and field.

        ``fields`` maps the format's field names to the data's column names
        (``{"chosen_reward": "score_chosen", "group": "subset"}``); ``unknown_fields`` is
        ``"reject"`` (the service's default) or ``"ignore"``, which also leaves out of the body the
        columns no format reads (text columns, typically). The result lines are not decoded: a line
        that fails raises :class:`LineFailedError` (``line_errors="raise"``, its ``line`` is the
        row's index + 1) or is only counted in the summary's ``lines_failed`` (``"skip"``).
        ``include_pairs`` defaults to ``False`` and ``results`` to ``"errors"`` here (the service
        then writes no result line: they would be read by nobody); the other options are the
        stream's.
        """
        options.setdefault("include_pairs", False)
        options.setdefault("results", "errors")  # the result lines would be read by nobody
        opts = _options(model=model, format=format, fields=fields, unknown_fields=unknown_fields, **options)
        source = _dataset_source(data, fields, unknown_fields, batch_rows)
        request = self._base._stream_request(opts, request_id, _dataset_line_errors(line_errors), summary_only=True)
        with open_stream(request, source, EvaluateStream) as stream:
            for _ in stream:
                pass
        assert stream.summary is not None  # a stream that ends without its summary raises
        return stream.summary

    @overload
    def report(
        self, data_or_path: Any, path: None, *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> str: ...

    @overload
    def report(
        self, data_or_path: Any, path: PathArg = ..., *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> Path: ...

    @overload
    def report(
        self, data_or_path: Any, path: Optional[PathArg], *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> Union[Path, str]: ...

    def report(
        self,
        data_or_path: Any,
        path: Optional[PathArg] = "report.html",
        *,
        models: Optional[Sequence[str]] = None,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        calibration_bins: Optional[int] = None,
        top_disagreements: Optional[int] = None,
        fields: Optional[Mapping[str, str]] = None,
        unknown_fields: Optional[str] = None,
        batch_rows: int = BATCH_ROWS,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> Union[Path, str]:
        """``POST /v1/report``: the HTML report of the evaluation of the lists (or, with ``models``,
        of their comparison), written to ``path``::

            client.report("data.ndjson.gz", "report.html", format="pairs", calibration_bins=10)

        ``data_or_path`` is what the stream methods take: the path of an NDJSON file (``.gz``
        decompressed, ``.zst`` sent for the service to decode, as :meth:`evaluate_file` sends
        them), an iterable of lists (as :meth:`evaluate_stream`), or a data frame, Arrow table or
        Hugging Face dataset (as :meth:`evaluate_dataset`, whose ``fields``, ``unknown_fields``
        and ``batch_rows`` these are). The body is streamed, never held whole. With ``models``
        (the names, in the order of each list's ``rewards``) the report is of the comparison
        :meth:`compare_stream` computes, else of the evaluation :meth:`evaluate_stream` computes;
        the other options are those methods' (``calibration_bins`` adds the reliability diagram,
        ``top_disagreements`` the disagreements table).

        The report is one self-contained HTML file: it loads nothing from anywhere. It is written
        to a temporary file beside ``path`` and renamed to ``path`` once complete, so an error or
        an interrupt leaves no file behind (and an older ``path`` as it was). Returns ``path`` as
        a :class:`pathlib.Path`; ``path=None`` returns the document as a ``str`` instead. An
        error answer raises :class:`PrefevalError` with the service's ``code``, ``message`` and
        ``path`` (the option or field at fault).
        """
        opts = _options(
            model=model, normalization=normalization, beta=beta, format=format, confidence=confidence,
            calibration_bins=calibration_bins, top_disagreements=top_disagreements, fields=fields,
            unknown_fields=unknown_fields, **options,
        )  # fmt: skip
        file = _report_file(data_or_path)
        if file is not None:
            encoding, source = file
        else:
            encoding, source = None, _dataset_source(data_or_path, fields, unknown_fields, batch_rows)
        request = self._base._report_request(models, opts, request_id, encoding)
        if path is None:
            document = bytearray()
            with open_stream(request, source, ReportStream) as stream:
                for block in stream:
                    document += block
            return document.decode("utf-8")
        with AtomicFile(path) as out:  # before the request: a path that cannot be written fails first
            with open_stream(request, source, ReportStream) as stream:
                for block in stream:
                    out.write(block)
            return out.commit()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, max_retries={self.max_retries})"


class AsyncClient:
    __doc__ = (
        "An asyncio prefeval client: the methods of :class:`Client` as coroutines.\n" + _CLIENT_DOC
    )

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        token: Optional[str] = None,
        timeout: Optional[float] = 30.0,
        max_retries: int = 3,
        *,
        headers: Optional[Mapping[str, str]] = None,
        verify: VerifyArg = True,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_delay: float = 60.0,
        expect_timeout: float = 1.0,
    ) -> None:
        self._base = _Base(
            base_url, token, timeout, max_retries, headers, verify,
            backoff_base, backoff_max, max_retry_delay, expect_timeout,
        )  # fmt: skip
        self.base_url = self._base.base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(**self._base._httpx_options())

    async def _post(self, path: str, body: bytes, request_id: Optional[str], parse: Type[_Result]) -> _Result:
        base = self._base
        rid = base._request_id(request_id)
        headers = {"Content-Type": "application/json", "x-request-id": rid}
        attempt = 0
        while True:
            try:
                response = await self._http.post(path, content=body, headers=headers)
            except httpx.TransportError as exc:
                error = base._transport_error(exc, rid)
            else:
                result, maybe_error = base._outcome(response, parse)
                if result is not None:
                    return result
                assert maybe_error is not None
                error = maybe_error
            if not base._retry.should_retry(error, attempt):
                raise error
            delay = base._retry.delay(attempt, error.retry_after)
            base._retry.log(f"POST {path}", error, attempt, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def evaluate(
        self,
        lists: ListsArg,
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        calibration_bins: Optional[int] = None,
        top_disagreements: Optional[int] = None,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> EvaluateResult:
        """As :meth:`Client.evaluate`."""
        opts = _options(
            normalization=normalization, include_pairs=include_pairs, beta=beta, format=format,
            confidence=confidence, include_gradients=include_gradients, include_pair_ids=include_pair_ids,
            calibration_bins=calibration_bins, top_disagreements=top_disagreements, **options,
        )  # fmt: skip
        body = self._base._evaluate_body(lists, model, opts)
        return await self._post("v1/evaluate", body, request_id, EvaluateResult)

    async def compare(
        self,
        lists: ListsArg,
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> CompareResult:
        """As :meth:`Client.compare`."""
        opts = _options(normalization=normalization, beta=beta, confidence=confidence, **options)
        body = self._base._compare_body(lists, models, opts)
        return await self._post("v1/compare", body, request_id, CompareResult)

    async def evaluate_stream(
        self,
        lists: Union[AsyncIterable[Any], Iterable[Any]],
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> AsyncEvaluateStream:
        """As :meth:`Client.evaluate_stream`: ``stream = await client.evaluate_stream(lists)``, then
        ``async for item in stream``. ``lists`` may be an async iterable; a plain iterable is pulled
        on the event loop, so it should not block. Needs asyncio (not trio)."""
        opts = _options(
            model=model, normalization=normalization, include_pairs=include_pairs, beta=beta,
            format=format, confidence=confidence, include_gradients=include_gradients,
            include_pair_ids=include_pair_ids, results=results, **options,
        )  # fmt: skip
        request = self._base._stream_request(opts, request_id, line_errors)
        return await aopen_stream(request, lambda: aencode_lists(lists), AsyncEvaluateStream)

    async def evaluate_file(
        self,
        path: PathArg,
        *,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        include_pairs: Optional[bool] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        include_gradients: Optional[bool] = None,
        include_pair_ids: Optional[bool] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> AsyncEvaluateStream:
        """As :meth:`Client.evaluate_file` (the file is read in 64 KiB blocks on the event loop)."""
        opts = _options(
            model=model, normalization=normalization, include_pairs=include_pairs, beta=beta,
            format=format, confidence=confidence, include_gradients=include_gradients,
            include_pair_ids=include_pair_ids, results=results, **options,
        )  # fmt: skip
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        request = self._base._stream_request(opts, request_id, line_errors, content_encoding=file_encoding(path))
        return await aopen_stream(request, lambda: file_blocks(path), AsyncEvaluateStream)

    async def compare_stream(
        self,
        lists: Union[AsyncIterable[Any], Iterable[Any]],
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> AsyncCompareStream:
        """As :meth:`Client.compare_stream`: ``stream = await client.compare_stream(lists, models)``,
        then ``async for item in stream``. ``lists`` may be an async iterable."""
        opts = _options(
            normalization=normalization, beta=beta, format=format, confidence=confidence, results=results, **options
        )
        request = self._base._compare_stream_request(models, opts, request_id, line_errors)
        return await aopen_stream(request, lambda: aencode_lists(lists), AsyncCompareStream)

    async def compare_file(
        self,
        path: PathArg,
        models: Sequence[str],
        *,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        request_id: Optional[str] = None,
        line_errors: str = "yield",
        results: str = "all",
        **options: Any,
    ) -> AsyncCompareStream:
        """As :meth:`Client.compare_file`."""
        opts = _options(
            normalization=normalization, beta=beta, format=format, confidence=confidence, results=results, **options
        )
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        request = self._base._compare_stream_request(models, opts, request_id, line_errors, file_encoding(path))
        return await aopen_stream(request, lambda: file_blocks(path), AsyncCompareStream)

    async def evaluate_dataset(
        self,
        data: Any,
        *,
        format: Optional[str] = None,
        fields: Optional[Mapping[str, str]] = None,
        unknown_fields: Optional[str] = None,
        model: Optional[str] = None,
        line_errors: str = "raise",
        batch_rows: int = BATCH_ROWS,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> StreamSummary:
        """As :meth:`Client.evaluate_dataset`; the record batches are converted on worker threads,
        and ``data`` may also be an async iterable of lists."""
        options.setdefault("include_pairs", False)
        options.setdefault("results", "errors")  # the result lines would be read by nobody
        opts = _options(model=model, format=format, fields=fields, unknown_fields=unknown_fields, **options)
        request = self._base._stream_request(opts, request_id, _dataset_line_errors(line_errors), summary_only=True)
        if isinstance(data, AsyncIterable):
            stream = await aopen_stream(request, lambda: aencode_lists(data), AsyncEvaluateStream)
        else:
            blocks = _dataset_source(data, fields, unknown_fields, batch_rows)
            stream = await aopen_stream(request, lambda: _in_threads(blocks()), AsyncEvaluateStream)
        async with stream:
            async for _ in stream:
                pass
        assert stream.summary is not None  # a stream that ends without its summary raises
        return stream.summary

    @overload
    async def report(
        self, data_or_path: Any, path: None, *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> str: ...

    @overload
    async def report(
        self, data_or_path: Any, path: PathArg = ..., *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> Path: ...

    @overload
    async def report(
        self, data_or_path: Any, path: Optional[PathArg], *, models: Optional[Sequence[str]] = None, **options: Any
    ) -> Union[Path, str]: ...

    async def report(
        self,
        data_or_path: Any,
        path: Optional[PathArg] = "report.html",
        *,
        models: Optional[Sequence[str]] = None,
        model: Optional[str] = None,
        normalization: Optional[str] = None,
        beta: Optional[float] = None,
        format: Optional[str] = None,
        confidence: Optional[float] = None,
        calibration_bins: Optional[int] = None,
        top_disagreements: Optional[int] = None,
        fields: Optional[Mapping[str, str]] = None,
        unknown_fields: Optional[str] = None,
        batch_rows: int = BATCH_ROWS,
        request_id: Optional[str] = None,
        **options: Any,
    ) -> Union[Path, str]:
        """As :meth:`Client.report`; ``data_or_path`` may also be an async iterable of lists. Data
        frames are converted on worker threads; the file is written on the event loop."""
        opts = _options(
            model=model, normalization=normalization, beta=beta, format=format, confidence=confidence,
            calibration_bins=calibration_bins, top_disagreements=top_disagreements, fields=fields,
            unknown_fields=unknown_fields, **options,
        )  # fmt: skip
        file = _report_file(data_or_path)
        source: Callable[[], AsyncByteSource]
        if file is not None:
            encoding, source = file
        elif isinstance(data_or_path, AsyncIterable):
            encoding, source = None, lambda: aencode_lists(data_or_path)
        else:
            blocks = _dataset_source(data_or_path, fields, unknown_fields, batch_rows)
            encoding, source = None, lambda: _in_threads(blocks())
        request = self._base._report_request(models, opts, request_id, encoding)
        if path is None:
            document = bytearray()
            async with await aopen_stream(request, source, AsyncReportStream) as stream:
                async for block in stream:
                    document += block
            return document.decode("utf-8")
        with AtomicFile(path) as out:
            async with await aopen_stream(request, source, AsyncReportStream) as stream:
                async for block in stream:
                    out.write(block)
            return out.commit()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r}, max_retries={self.max_retries})"
