"""What ``evaluate_dataset`` takes, turned into NDJSON blocks: data frames (pandas, polars), Arrow
(``Table``, ``RecordBatch``, ``RecordBatchReader``, ``pyarrow.dataset.Dataset``), Hugging Face
``datasets`` (``Dataset``, ``IterableDataset``) go through Arrow record batches written by
``_arrow_json``; any other iterable of lists goes through ``encode_lists``, a list at a time.

Types are recognised by their module without importing any library: a library the caller did not
import cannot have made the object. A conversion that needs a library that is missing raises
``ImportError`` naming the extra to install.
"""

from __future__ import annotations

import threading
from queue import Full, Queue
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

from ._stream import encode_lists

#: Rows converted at a time: the body is sent in blocks of this many lines.
BATCH_ROWS = 16_384

#: Every field any input format reads, at list level (see the API's formats). With
#: ``unknown_fields="ignore"`` the service skips the others, so the client need not send them.
LIST_FIELDS = (
    "id",
    "group",
    "items",
    "chosen_reward",
    "rejected_reward",
    "ranking",
    "rewards",
    "lengths",
    "chosen_length",
    "rejected_length",
)

UNKNOWN_FIELDS = ("reject", "ignore")


def fields_query(fields: Mapping[str, str]) -> str:
    """``fields`` as the query parameter's value: ``chosen_reward:score_chosen,group:subset``."""
    if not isinstance(fields, Mapping):
        raise TypeError(f"fields must be a mapping of format field to data column, not {type(fields).__name__}")
    parts = []
    for key, column in fields.items():
        for role, name in (("field", key), ("column", column)):
            if not isinstance(name, str) or not name:
                raise ValueError(f"fields[{key!r}]: the {role} name must be a non-empty string, not {name!r}")
            if "," in name or ":" in name:
                raise ValueError(f"fields[{key!r}]: the {role} name {name!r} holds ',' or ':', which the query cannot carry")
        parts.append(f"{key}:{column}")
    return ",".join(parts)


def columns_read(fields: Optional[Mapping[str, str]]) -> List[str]:
    """The data's names of the list-level fields the service reads, after the mapping."""
    mapping = dict(fields or {})
    return [mapping.get(name, name) for name in LIST_FIELDS]


def _kind(data: Any) -> Tuple[str, str]:
    """(library, class name) of ``data``, from its class and bases, without importing anything
    the caller did not (pyarrow's classes are told apart by ``isinstance``: the object comes from
    pyarrow, so pyarrow is loaded)."""
    for cls in type(data).__mro__:
        root = cls.__module__.split(".", 1)[0]
        if root == "pyarrow":
            return root, _pyarrow_kind(data)
        if root in ("pandas", "polars", "datasets"):
            return root, cls.__name__
    return "", type(data).__name__


def _pyarrow_kind(data: Any) -> str:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.ipc as ipc

    for cls in (pa.Table, pa.RecordBatch, pa.RecordBatchReader, ipc.RecordBatchFileReader, pads.Dataset):
        if isinstance(data, cls):
            return str(cls.__name__)
    return type(data).__name__


def _pyarrow(extra: str, what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ImportError(
            f"evaluate_dataset converts {what} through pyarrow, which is not installed: "
            f"pip install 'prefeval[{extra}]'"
        ) from None
    return pyarrow


def ndjson_blocks(
    data: Any, *, project: Optional[Sequence[str]] = None, batch_rows: int = BATCH_ROWS
) -> Iterator[bytes]:
    """``data`` as NDJSON, a block of lines at a time. ``project``: the columns to keep (those
    present), or ``None`` for every column. What cannot be read, or needs a library that is not
    installed, is refused here, before the iterator is returned (and before anything is sent)."""
    check_readable(data)
    library, name = _kind(data)
    if not library:
        return encode_lists(data)
    return ahead(_converted(_batches(data, library, name, project, batch_rows)))


def check_readable(data: Any) -> None:
    """Raises ``TypeError`` for what ``evaluate_dataset`` cannot read, ``ImportError`` (naming the
    extra) when reading it needs a library that is missing."""
    library, name = _kind(data)
    if library:
        _check(library, name)
    elif isinstance(data, (str, bytes, Mapping)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "evaluate_dataset takes a pandas or polars DataFrame, a pyarrow Table, RecordBatch, "
            "RecordBatchReader or Dataset, a Hugging Face Dataset or IterableDataset, or an iterable "
            f"of lists (mappings); not {type(data).__name__}"
        )


_READABLE = {
    "pandas": ("DataFrame",),
    "polars": ("DataFrame", "LazyFrame"),
    "datasets": ("Dataset", "IterableDataset"),
}
_PYARROW_READABLE = ("Table", "RecordBatch", "RecordBatchReader", "RecordBatchFileReader", "Dataset")


def _check(library: str, name: str) -> None:
    if library == "pyarrow":
        if name in _PYARROW_READABLE:
            return
        raise TypeError(f"evaluate_dataset cannot read a pyarrow {name}: pass a Table, RecordBatchReader or Dataset")
    if name not in _READABLE[library]:
        hint = ": pick a split, e.g. data['test']" if name.endswith("DatasetDict") else ""
        kinds = " or ".join(_READABLE[library])
        raise TypeError(f"evaluate_dataset takes a {library} {kinds}, not a {library} {name}{hint}")
    extra = {"pandas": "pandas", "polars": "polars", "datasets": "datasets"}[library]
    _pyarrow(extra, f"a {library} {name}")


def _converted(batches: Iterator[Any]) -> Iterator[bytes]:
    from ._arrow_json import ndjson

    first_row = 0
    for batch in batches:
        if batch.num_rows:
            yield ndjson(batch, first_row)
            first_row += batch.num_rows


_END = object()


def ahead(blocks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """``blocks``, made on a helper thread up to ``depth`` blocks ahead of the consumer: pyarrow
    converts the next record batch (without the GIL) while the previous one is being sent. An
    exception of ``blocks`` is raised here, in order; closing this generator stops the thread."""
    queue: "Queue[Any]" = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for block in blocks:
                if not _put(queue, block, stop):
                    return
            _put(queue, _END, stop)
        except BaseException as exc:
            _put(queue, _Raised(exc), stop)

    thread = threading.Thread(target=produce, name="prefeval-dataset-convert", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(queue: "Queue[Any]", item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            pass
    return False


def _keep(names: Sequence[str], project: Optional[Sequence[str]]) -> List[str]:
    if project is None:
        return list(names)
    return [name for name in names if name in project]


def _batches(data: Any, library: str, name: str, project: Optional[Sequence[str]], rows: int) -> Iterator[Any]:
    if library == "pandas":
        import pyarrow as pa

        columns = [column for column in data.columns if project is None or str(column) in project]
        names = [str(column) for column in columns]
        for start in range(0, len(data), rows):
            part = data.iloc[start : start + rows]
            # Column by column with from_pandas=False: a NaN stays a NaN (and is refused), where
            # Table.from_pandas would turn it into a missing value, a field silently left out.
            arrays = [pa.array(part[column], from_pandas=False) for column in columns]
            yield pa.RecordBatch.from_arrays(arrays, names=names)
        return
    if library == "polars":
        if name == "LazyFrame":
            data = data.collect()
        frame = data.select(_keep(data.columns, project)) if project is not None else data
        for start in range(0, frame.height, rows):
            yield from frame.slice(start, rows).to_arrow().to_batches()
        return
    if library == "datasets":
        columns = data.column_names
        if project is not None and columns is not None:
            data = data.select_columns(_keep(columns, project))
        for table in data.with_format("arrow").iter(batch_size=rows):
            yield from table.to_batches()
        return
    # pyarrow
    if name == "Table":
        table = data.select(_keep(data.column_names, project))
        yield from table.to_batches(max_chunksize=rows)
    elif name == "RecordBatch":
        batch = data.select(_keep(data.schema.names, project))
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)
    elif name == "RecordBatchFileReader":  # pyarrow.ipc.open_file
        keep = _keep(data.schema.names, project)
        for index in range(data.num_record_batches):
            yield data.get_batch(index).select(keep)
    elif name == "RecordBatchReader":
        keep = _keep(data.schema.names, project)
        for batch in data:
            yield batch.select(keep)
    else:  # pyarrow.dataset.Dataset
        yield from data.to_batches(columns=_keep(data.schema.names, project), batch_size=rows)
