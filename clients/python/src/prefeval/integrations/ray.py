"""Evaluating a Ray Dataset: each block is evaluated where it lives, and the blocks' summaries are
merged on the driver.

    import ray
    from prefeval.integrations.ray import evaluate_ray_dataset

    ds = ray.data.read_parquet("s3://bucket/rm-scores/")          # one ranked list per row
    summary = evaluate_ray_dataset(ds, "http://prefeval:8080", format="pairs")   # the service
    summary = evaluate_ray_dataset(ds, format="pairs")            # `prefeval eval` on each worker
    print(summary.loss, summary.accuracy, summary.accuracy_ci, summary.lines_failed)

    # Reward models compared on the same lists (rows in /v1/compare's shape, `rewards` per item):
    compared = compare_ray_dataset(ds, ["rm-a", "rm-b"])          # `prefeval compare` on each worker
    print(compared.comparisons[0]["loss_difference"], compared.comparisons[0]["loss_p_value"])

Each block goes through ``ds.map_batches(..., batch_format="pyarrow")``: its rows are written as
NDJSON by the client's Arrow writer (rewards bit-exact) and evaluated with ``results=errors``,
either through the service's ``POST /v1/evaluate/stream`` (with a ``url``) or by
``prefeval eval - --results errors`` on the worker (without one). A block comes back as one row:
its summary line and its first error line. The driver merges the summaries with
:func:`prefeval.merge`, exactly as ``prefeval merge`` would, and returns the merged
:class:`prefeval.StreamSummary`.

:func:`compare_ray_dataset` does the same for comparisons: each block through
``POST /v1/compare/stream`` or ``prefeval compare -``, the blocks' compare summaries merged by
:func:`prefeval.merge` into a :class:`prefeval.ComparisonSummary` (the p-values and Holm's
adjustment from the merged sums).

Requires Ray (``pip install 'prefeval[ray]'``); ``import prefeval`` never imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

try:  # Only now, and only this module: `import prefeval` never imports Ray.
    import ray.data  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
except ImportError as exc:  # Ray is optional
    raise ImportError(
        f"prefeval.integrations.ray needs Ray Data, which is not installed ({exc}): pip install 'prefeval[ray]'"
    ) from exc

import pyarrow as pa

from .._client import Client, _options, stream_query
from .._dataset import columns_read, ndjson_blocks
from .._merge import DEFAULT_CONFIDENCE, MergeError, merge
from .._merge_compare import ComparisonSummary
from .._models import LineError, StreamSummary
from .._stream import LineFailedError

__all__ = ["evaluate_ray_dataset", "compare_ray_dataset", "BlockLineError", "DuplicateBlocksError"]

#: The columns of the one-row table a block's evaluation returns.
SUMMARY_COLUMN = "prefeval_summary"
ERROR_COLUMN = "prefeval_first_error"
ROWS_COLUMN = "prefeval_rows"

_LINE_ERRORS = ("raise", "skip", "return")


class BlockLineError(LineFailedError):
    """With ``line_errors="raise"``: a line of a block could not be evaluated. ``line`` is its
    1-based position in its block (Ray does not tell a block where it starts in the dataset);
    ``summary`` is the merged summary of the whole dataset (every block was evaluated), whose
    ``lines_failed`` counts every line that failed."""

    def __init__(self, item: LineError, summary: Union[StreamSummary, ComparisonSummary], blocks_failed: int) -> None:
        super().__init__(item, None)
        others = f" (lines failed in {blocks_failed} blocks, {summary.lines_failed} in all)"
        self.message = f"a line of a block failed: line {item.line} of its block: {item.message}{others}"
        self.args = (self.message,)
        self.summary = summary
        self.first_error = item


class DuplicateBlocksError(MergeError):
    """Two or more blocks of the dataset hold exactly the same bytes: their summaries have the same
    input fingerprint, which :func:`prefeval.merge` refuses (it cannot tell a block that repeats
    another from a shard counted twice)."""


def _resolve_binary(binary: Optional[str]) -> str:
    """The ``prefeval`` binary on this worker: ``binary``, else ``$PREFEVAL_BINARY``, else
    ``prefeval`` on ``PATH``."""
    candidate = binary or os.environ.get("PREFEVAL_BINARY")
    if candidate:
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            source = "binary=" if binary else "$PREFEVAL_BINARY"
            raise FileNotFoundError(f"the prefeval binary {candidate!r} ({source}) is not an executable file")
        return candidate
    found = shutil.which("prefeval")
    if found is None:
        raise FileNotFoundError(
            "no prefeval binary on this Ray worker: pass binary=, set PREFEVAL_BINARY in the workers' "
            "environment (runtime_env={'env_vars': {...}}), put `prefeval` on their PATH, or pass the "
            "service's url="
        )
    return found


def _flags(options: Mapping[str, Any]) -> List[str]:
    """The stream's query parameters as ``prefeval eval`` flags: ``--name=value``."""
    return [f"--{key.replace('_', '-')}={value}" for key, value in stream_query(options)]


def _block_ndjson(table: "pa.Table", project: Optional[List[str]]) -> bytes:
    return b"".join(ndjson_blocks(table, project=project))


def _eval_cli(binary: str, body: bytes, options: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
    """``prefeval eval - --results errors`` over ``body``: (the summary line, the first error line)."""
    command = [binary, "eval", "-", "--quiet", *_flags(options)]
    done = subprocess.run(command, input=body, capture_output=True, check=False)
    lines = [line for line in done.stdout.split(b"\n") if line.strip()]
    # Exit status 1: some lines failed, the output is complete (they are counted in the summary).
    if done.returncode not in (0, 1) or not lines:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"`{' '.join(command)}` exited with status {done.returncode}: {stderr}")
    summary = lines[-1].decode("utf-8")
    first_error = lines[0].decode("utf-8") if len(lines) > 1 else None
    return summary, first_error


def _compare_cli(binary: str, body: bytes, models: Sequence[str], options: Mapping[str, Any]) -> Tuple[str, Optional[str]]:
    """``prefeval compare - --results errors`` over ``body``: (the summary line, the first error line)."""
    command = [binary, "compare", "-", "--quiet", f"--models={','.join(models)}", *_flags(options)]
    done = subprocess.run(command, input=body, capture_output=True, check=False)
    lines = [line for line in done.stdout.split(b"\n") if line.strip()]
    if done.returncode not in (0, 1) or not lines:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"`{' '.join(command)}` exited with status {done.returncode}: {stderr}")
    return lines[-1].decode("utf-8"), lines[0].decode("utf-8") if len(lines) > 1 else None


def _compare_service(
    url: str, token: Optional[str], body: bytes, models: Sequence[str], options: Mapping[str, Any]
) -> Tuple[str, Optional[str]]:
    """The block through ``POST /v1/compare/stream`` with ``results=errors`` (whose answer is a few
    lines, so the whole body may be sent before reading)."""
    query = urllib.parse.urlencode([("models", ",".join(models)), *stream_query(options)])
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/compare/stream?{query}", data=body, headers=headers)
    with urllib.request.urlopen(request) as answer:  # noqa: S310 - the caller's service URL
        lines = [line for line in answer.read().split(b"\n") if line.strip()]
    last = json.loads(lines[-1]) if lines else {}
    if "summary" not in last:
        raise RuntimeError(f"the compare stream of a block stopped without its summary: {last}")
    return lines[-1].decode("utf-8"), lines[0].decode("utf-8") if len(lines) > 1 else None


class _CompareBlock:
    """``map_batches``'s function for comparisons: a block in, one row out."""

    def __init__(
        self, url: Optional[str], token: Optional[str], binary: Optional[str], models: List[str], options: Dict[str, Any]
    ) -> None:
        self.url, self.token, self.binary, self.models, self.options = url, token, binary, models, options
        fields = options.get("fields")
        self.project = columns_read(fields) if options.get("unknown_fields") == "ignore" else None

    def __call__(self, table: "pa.Table") -> "pa.Table":
        if table.num_rows == 0:
            return _rows([], [], [])
        body = _block_ndjson(table, self.project)
        if self.url is not None:
            summary, first_error = _compare_service(self.url, self.token, body, self.models, self.options)
        else:
            summary, first_error = _compare_cli(_resolve_binary(self.binary), body, self.models, self.options)
        return _rows([summary], [first_error], [table.num_rows])


def _eval_service(
    url: str, token: Optional[str], body: bytes, options: Dict[str, Any]
) -> Tuple[str, Optional[str]]:
    """The block through ``POST /v1/evaluate/stream`` with ``results=errors``."""
    first_error: Optional[str] = None
    with Client(url, token=token) as client:
        with client.evaluate_stream([body], line_errors="yield", **options) as stream:
            for item in stream:
                if isinstance(item, LineError) and first_error is None:
                    first_error = json.dumps(item.raw)
        assert stream.summary is not None  # a stream that ends without its summary raises
        return json.dumps(stream.summary.raw), first_error


class _EvaluateBlock:
    """The function ``map_batches`` calls: a block (a pyarrow Table) in, one row out."""

    def __init__(
        self, url: Optional[str], token: Optional[str], binary: Optional[str], options: Dict[str, Any]
    ) -> None:
        self.url = url
        self.token = token
        self.binary = binary
        self.options = options
        fields = options.get("fields")
        # With unknown fields ignored, columns the service would not read are not sent at all.
        self.project = columns_read(fields) if options.get("unknown_fields") == "ignore" else None

    def __call__(self, table: "pa.Table") -> "pa.Table":
        if table.num_rows == 0:
            # Nothing to evaluate; two empty blocks would also share the empty input's fingerprint.
            return _rows([], [], [])
        body = _block_ndjson(table, self.project)
        if self.url is not None:
            summary, first_error = _eval_service(self.url, self.token, body, dict(self.options))
        else:
            summary, first_error = _eval_cli(_resolve_binary(self.binary), body, self.options)
        return _rows([summary], [first_error], [table.num_rows])


def _rows(summaries: List[str], errors: List[Optional[str]], rows: List[int]) -> "pa.Table":
    return pa.table(
        {
            SUMMARY_COLUMN: pa.array(summaries, pa.string()),
            ERROR_COLUMN: pa.array(errors, pa.string()),
            ROWS_COLUMN: pa.array(rows, pa.int64()),
        }
    )


def evaluate_ray_dataset(
    ds: Any,
    url: Optional[str] = None,
    *,
    format: Optional[str] = None,
    fields: Optional[Mapping[str, str]] = None,
    unknown_fields: Optional[str] = None,
    model: Optional[str] = None,
    token: Optional[str] = None,
    binary: Optional[str] = None,
    line_errors: str = "raise",
    concurrency: Optional[int] = None,
    **options: Any,
) -> StreamSummary:
    """Evaluates every row of the Ray Dataset ``ds`` (one ranked list per row, in ``format``'s
    shape) block by block on the Ray workers, and returns the merged summary, as
    :func:`prefeval.merge` returns it (``run.inputs`` holds one fingerprint per block).

    - ``url``: the service each block is streamed to (``POST /v1/evaluate/stream``, ``token`` its
      bearer token). Without it, each worker runs ``prefeval eval -`` itself: the binary is
      ``binary``, else the worker's ``$PREFEVAL_BINARY``, else ``prefeval`` on its ``PATH``.
    - ``format``, ``fields``, ``unknown_fields``, ``model`` and the other options
      (``normalization``, ``beta``, ``confidence``, ...) are those of
      :meth:`prefeval.Client.evaluate_dataset`, sent as the stream's query parameters or as the
      same-named flags of ``prefeval eval``; ``results`` is always ``errors`` and ``include_pairs``
      ``False``. ``confidence`` is also the merged intervals'.
    - ``line_errors``: a line that fails is counted in the summary's ``lines_failed`` in any case.
      ``"raise"`` (default, as ``evaluate_dataset``): after every block was evaluated,
      :class:`BlockLineError` is raised with the first failure of the first block, in the merge's
      order, that has one (its line is 1-based within its block) and the merged summary (``.summary``). ``"skip"``: only counted. ``"return"``: the
      summary is returned, and the first failure is in its ``raw["first_error"]`` (or ``None``).
    - ``concurrency``: how many blocks are evaluated at once (``map_batches``'s), by default Ray's.

    Blocks are evaluated whole, whatever their size (``map_batches`` with ``batch_size=None``); an
    empty block is skipped. The summaries are merged in the order of their input fingerprints,
    so the result does not depend on which block finished first.

    What fails on a worker (a NaN reward, which JSON cannot carry; the service's refusal of the
    request; a missing binary) fails the Ray task, and Ray raises it on the driver, wrapped in its
    task error with the original message. A block is held as NDJSON in the worker's memory while it
    is evaluated (Ray's blocks are bounded, by default at 128 MiB).

    Two blocks with exactly the same bytes (a repetitive dataset cut at the same places) would
    have the same fingerprint, which merge refuses: :class:`DuplicateBlocksError` is raised,
    naming how many blocks repeat. Give each row an ``id`` (the formats read it, and it makes
    every block distinct), or repartition the dataset differently.
    """
    if line_errors not in _LINE_ERRORS:
        raise ValueError(f"line_errors must be one of {_LINE_ERRORS}, not {line_errors!r}")
    for reserved in ("results", "include_pairs"):
        if reserved in options:
            raise TypeError(f"evaluate_ray_dataset sets {reserved} itself; do not pass it")
    opts = _options(model=model, format=format, fields=fields, unknown_fields=unknown_fields, **options)
    opts["include_pairs"] = False
    opts["results"] = "errors"
    stream_query(opts)  # refuses a bad unknown_fields or fields on the driver, before any task runs
    evaluate = _EvaluateBlock(url, token, binary, opts)
    map_options: Dict[str, Any] = {"batch_format": "pyarrow", "batch_size": None, "zero_copy_batch": True}
    if concurrency is not None:
        map_options["concurrency"] = concurrency
    rows = ds.map_batches(evaluate, **map_options).take_all()
    merged = _merge_blocks(rows, opts.get("confidence"), line_errors)
    if not isinstance(merged, StreamSummary):  # blocks of an evaluation are never comparisons
        raise TypeError("the blocks' summaries are comparisons, not evaluations")
    return merged


def compare_ray_dataset(
    ds: Any,
    models: Sequence[str],
    url: Optional[str] = None,
    *,
    format: Optional[str] = None,
    fields: Optional[Mapping[str, str]] = None,
    unknown_fields: Optional[str] = None,
    token: Optional[str] = None,
    binary: Optional[str] = None,
    line_errors: str = "raise",
    concurrency: Optional[int] = None,
    **options: Any,
) -> ComparisonSummary:
    """Compares ``models`` over every row of the Ray Dataset ``ds`` (one list per row in
    ``/v1/compare``'s shape: ``items`` with ``rewards``, one per model in the order of ``models``;
    with ``format="pairs"``, ``chosen_rewards`` and ``rejected_rewards``), block by block on the
    workers, and returns the merged comparison, as :func:`prefeval.merge` returns it: the figures
    ``prefeval compare`` gives for the whole dataset (to the rounding of the sums' order).

    Each block goes to ``url``'s ``POST /v1/compare/stream`` (``token`` its bearer token), or, without
    ``url``, through ``prefeval compare -`` on the worker (``binary``, else ``$PREFEVAL_BINARY``, else
    ``prefeval`` on ``PATH``), with ``results=errors``. The other options (``normalization``,
    ``beta``, ``confidence``) are the stream's query parameters; ``line_errors``, ``concurrency``,
    empty and duplicate blocks are as in :func:`evaluate_ray_dataset`.
    """
    if line_errors not in _LINE_ERRORS:
        raise ValueError(f"line_errors must be one of {_LINE_ERRORS}, not {line_errors!r}")
    if "results" in options:
        raise TypeError("compare_ray_dataset sets results itself; do not pass it")
    names = [str(model) for model in models]
    opts = _options(format=format, fields=fields, unknown_fields=unknown_fields, **options)
    opts["results"] = "errors"
    stream_query(opts)
    compare = _CompareBlock(url, token, binary, names, opts)
    map_options: Dict[str, Any] = {"batch_format": "pyarrow", "batch_size": None, "zero_copy_batch": True}
    if concurrency is not None:
        map_options["concurrency"] = concurrency
    rows = ds.map_batches(compare, **map_options).take_all()
    merged = _merge_blocks(rows, opts.get("confidence"), line_errors)
    if not isinstance(merged, ComparisonSummary):
        raise TypeError("the blocks' summaries are evaluations, not comparisons")
    return merged


def _merge_blocks(
    rows: List[Mapping[str, Any]], confidence: Optional[float], line_errors: str
) -> Union[StreamSummary, ComparisonSummary]:
    """The blocks' summaries merged in the order of their fingerprints, with the line errors'
    handling of ``line_errors``."""
    blocks = sorted(
        ((row[SUMMARY_COLUMN], row[ERROR_COLUMN]) for row in rows),
        key=lambda block: _fingerprint_key(block[0]),
    )
    summaries = [summary for summary, _ in blocks]
    _refuse_duplicates(summaries)
    merged = merge(summaries, confidence=DEFAULT_CONFIDENCE if confidence is None else confidence)
    errors = [json.loads(error) for _, error in blocks if error is not None]
    if errors and line_errors == "raise":
        raise BlockLineError(LineError.from_dict(errors[0]), merged, len(errors))
    if line_errors == "return":
        raw = dict(merged.raw)
        raw["first_error"] = errors[0] if errors else None
        if isinstance(merged, ComparisonSummary):
            return ComparisonSummary(
                merged.normalization, merged.confidence, merged.lists, merged.pairs, merged.lines_failed, raw=raw
            )
        with_error: StreamSummary = StreamSummary.from_dict(raw)
        return with_error
    return merged


def _fingerprint_key(summary: str) -> Tuple[str, int]:
    data = json.loads(summary)
    if isinstance(data.get("summary"), dict):  # the summary line: {"summary": {...}}
        data = data["summary"]
    run = data.get("run") or {}
    fingerprint = run.get("input") or {}
    return str(fingerprint.get("xxh3", "")), int(fingerprint.get("bytes", 0))


def _refuse_duplicates(summaries: List[str]) -> None:
    seen: Dict[Tuple[str, int], int] = {}
    for summary in summaries:
        key = _fingerprint_key(summary)
        seen[key] = seen.get(key, 0) + 1
    repeated = {key: count for key, count in seen.items() if count > 1}
    if repeated:
        blocks = sum(repeated.values())
        (digest, size), _ = next(iter(repeated.items()))
        raise DuplicateBlocksError(
            f"{blocks} blocks of the dataset hold the same bytes as another block (e.g. {size} bytes, "
            f"xxh3 {digest}): their summaries have the same input fingerprint, and merging them would "
            "look like counting one shard twice. Give each row an `id` column (the formats read it) "
            "so that every block is distinct, or repartition the dataset into a different number of "
            "blocks",
            path="summary.run.input",
            indices=(),
        )
