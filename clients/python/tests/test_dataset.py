"""``evaluate_dataset``: data frames, Arrow and Hugging Face datasets streamed to the real server,
their summaries equal to those of the same lists sent as plain dicts."""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path
from typing import Any, Dict, List

# The tests read local files only; datasets must not look anything up on the Hub (CI has no network
# beyond PyPI). Set before datasets is imported, which reads them then.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.dataset as pads  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

import prefeval  # noqa: E402
from prefeval import InvalidInputError, LineFailedError  # noqa: E402
from prefeval._arrow_json import ndjson  # noqa: E402
from prefeval._client import stream_query  # noqa: E402
from prefeval._dataset import columns_read, ndjson_blocks  # noqa: E402

# Doubles whose shortest text is long, tiny, subnormal, past 2^53, negative zero, repeating.
AWKWARD = [0.1 + 0.2, 1e-300, 5e-324, float(2**53 + 1), -0.0, 1 / 3, 1.7976931348623157e308 / 1e300, 2.5e-5]

ITEM = pa.struct([("reward", pa.float64()), ("rank", pa.int64())])
SCHEMA = pa.schema([("id", pa.string()), ("items", pa.list_(ITEM))])


def native_lists(count: int = 50) -> List[Dict[str, Any]]:
    """Lists of 2 to 5 items whose rewards include the awkward doubles, ranks shuffled."""
    lists = []
    for index in range(count):
        n = 2 + index % 4
        rewards = [AWKWARD[(index + k) % len(AWKWARD)] * (1 + k) for k in range(n)]
        ranks = [(k + index) % n + 1 for k in range(n)]  # a rotation: every rank once
        lists.append({"id": f"list-{index}", "items": [{"reward": r, "rank": q} for r, q in zip(rewards, ranks)]})
    return lists


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def same_summary(a: prefeval.StreamSummary, b: prefeval.StreamSummary) -> None:
    """Equal but for the fingerprint of the bytes sent (``run.input``), which differ."""

    def figures(summary: prefeval.StreamSummary) -> Dict[str, Any]:
        run = {k: v for k, v in summary.raw["run"].items() if k != "input"}
        return {**summary.raw, "run": run}

    assert figures(a) == figures(b)


@pytest.fixture(scope="module")
def client(url: str) -> Any:
    with prefeval.Client(url) as client:
        yield client


@pytest.fixture(scope="module")
def lists() -> List[Dict[str, Any]]:
    return native_lists()


@pytest.fixture(scope="module")
def expected(client: prefeval.Client, lists: List[Dict[str, Any]]) -> prefeval.StreamSummary:
    """The summary of the lists sent as dicts through ``evaluate_stream``."""
    with client.evaluate_stream(lists, include_pairs=False) as stream:
        assert all(item.ok for item in stream)
    assert stream.summary is not None and stream.summary.lists == len(lists)
    return stream.summary


def test_every_double_is_written_so_that_it_parses_back_to_the_same_bits() -> None:
    table = pa.table({"reward": pa.array(AWKWARD), "rank": pa.array(range(len(AWKWARD)), pa.int64())})
    lines = ndjson(table.to_batches()[0]).decode().splitlines()
    for line, reward, rank in zip(lines, AWKWARD, range(len(AWKWARD))):
        row = json.loads(line)
        assert bits(row["reward"]) == bits(reward), line
        assert type(row["rank"]) is int and row["rank"] == rank, line
    assert lines[AWKWARD.index(-0.0)] == '{"reward":-0.0,"rank":4}'


def test_float32_rewards_are_the_doubles_they_equal() -> None:
    table = pa.table({"reward": pa.array([0.1], pa.float32())})
    assert json.loads(ndjson(table.to_batches()[0]))["reward"] == float(pa.array([0.1], pa.float32())[0].as_py())


def test_strings_nulls_nested_lists_and_maps_are_json() -> None:
    rows = [
        {"id": 'a"b\\c\nd\x01é', "items": [{"reward": 1.5, "rank": 1}, None], "m": [("k", 2.0)], "t": True},
        {"id": None, "items": [], "m": None, "t": None},
    ]
    schema = pa.schema(
        [("id", pa.string()), ("items", pa.list_(ITEM)), ("m", pa.map_(pa.string(), pa.float64())), ("t", pa.bool_())]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    lines = ndjson(table.to_batches()[0]).decode().splitlines()
    assert json.loads(lines[0]) == {
        "id": 'a"b\\c\nd\x01é',
        "items": [{"reward": 1.5, "rank": 1}, None],
        "m": {"k": 2.0},
        "t": True,
    }
    assert json.loads(lines[1]) == {"items": []}  # null fields are left out
    # A slice is written from where it starts.
    assert ndjson(table.slice(1).to_batches()[0]) == (lines[1] + "\n").encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_reward_is_refused_naming_its_row_and_field(value: float) -> None:
    rows = native_lists(3)
    rows[2]["items"][1]["reward"] = value
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with pytest.raises(InvalidInputError) as caught:
        list(ndjson_blocks(table))
    assert caught.value.path == "lists[2].items[1].reward"
    assert caught.value.code == "invalid_value"


def _sources(lists: List[Dict[str, Any]], tmp_path: Path) -> Dict[str, Any]:
    table = pa.Table.from_pylist(lists, schema=SCHEMA)
    parquet = tmp_path / "lists.parquet"
    pq.write_table(table, parquet, row_group_size=7)
    ipc_file = tmp_path / "lists.arrow"
    with pa.ipc.new_file(ipc_file, table.schema) as writer:
        writer.write_table(table, max_chunksize=11)
    ipc_stream = tmp_path / "lists.arrows"
    with pa.ipc.new_stream(ipc_stream, table.schema) as writer:
        writer.write_table(table, max_chunksize=11)
    return {
        "pyarrow.Table": table,
        "pyarrow.RecordBatch": table.combine_chunks().to_batches()[0],
        "pyarrow.RecordBatchReader (IPC stream)": lambda: pa.ipc.open_stream(ipc_stream),
        "pyarrow.ipc.open_file": lambda: pa.ipc.open_file(ipc_file),
        "pyarrow.dataset (Parquet)": pads.dataset(parquet),
        "pyarrow.dataset (Arrow IPC)": pads.dataset(ipc_file, format="ipc"),
        "pandas.DataFrame": pd.DataFrame(lists),
        "polars.DataFrame": pl.read_parquet(parquet),
        "polars.LazyFrame": pl.scan_parquet(parquet),
        "datasets.Dataset (Parquet)": datasets.Dataset.from_parquet(str(parquet), cache_dir=str(tmp_path / "hf")),
        "datasets.IterableDataset (Parquet, streaming)": datasets.load_dataset(
            "parquet", data_files=str(parquet), split="train", streaming=True
        ),
        "iterable of dicts": lists,
    }


SOURCES = [
    "pyarrow.Table",
    "pyarrow.RecordBatch",
    "pyarrow.RecordBatchReader (IPC stream)",
    "pyarrow.ipc.open_file",
    "pyarrow.dataset (Parquet)",
    "pyarrow.dataset (Arrow IPC)",
    "pandas.DataFrame",
    "polars.DataFrame",
    "polars.LazyFrame",
    "datasets.Dataset (Parquet)",
    "datasets.IterableDataset (Parquet, streaming)",
    "iterable of dicts",
]


@pytest.mark.parametrize("source", SOURCES)
def test_each_library_gives_the_summary_of_the_same_lists_sent_as_dicts(
    source: str,
    client: prefeval.Client,
    lists: List[Dict[str, Any]],
    expected: prefeval.StreamSummary,
    tmp_path: Path,
) -> None:
    data = _sources(lists, tmp_path)[source]
    if callable(data):
        data = data()
    # Small batches: several blocks, a row index that carries over between them.
    summary = client.evaluate_dataset(data, batch_rows=8)
    assert isinstance(summary, prefeval.StreamSummary)
    same_summary(summary, expected)


def test_the_body_is_the_same_bytes_from_every_library(lists: List[Dict[str, Any]], tmp_path: Path) -> None:
    sources = _sources(lists, tmp_path)
    reference = b"".join(ndjson_blocks(sources["pyarrow.Table"]))
    assert reference.count(b"\n") == len(lists)
    for name in SOURCES[1:-1]:
        data = sources[name]
        data = data() if callable(data) else data
        body = b"".join(ndjson_blocks(data, batch_rows=5))
        assert [json.loads(line) for line in body.splitlines()] == lists, name
        if name != "pandas.DataFrame":
            # (pyarrow infers the struct of a column of Python dicts with its fields in an order
            # that depends on its version: the same objects, keys in another order.)
            assert body == reference, name


def test_pairs_format_with_text_columns(client: prefeval.Client) -> None:
    frame = pd.DataFrame(
        {
            "id": ["p1", "p2", "p3"],
            "chosen_reward": [1.25, 0.1 + 0.2, -3.0],
            "rejected_reward": [0.5, 0.3, -2.5],
        }
    )
    dicts = frame.to_dict("records")
    with client.evaluate_stream(dicts, format="pairs", include_pairs=False) as stream:
        list(stream)
    summary = client.evaluate_dataset(pl.from_pandas(frame), format="pairs")
    assert stream.summary is not None
    same_summary(summary, stream.summary)
    assert summary.lists == 3 and summary.pairs == 3


def test_nan_in_a_pandas_column_is_refused_not_left_out(client: prefeval.Client) -> None:
    frame = pd.DataFrame({"chosen_reward": [1.0, float("nan")], "rejected_reward": [0.5, 0.25]})
    with pytest.raises(InvalidInputError) as caught:
        client.evaluate_dataset(frame, format="pairs")
    assert caught.value.path == "lists[1].chosen_reward"


def test_nan_in_polars_and_datasets_is_refused(client: prefeval.Client) -> None:
    frame = pl.DataFrame({"chosen_reward": [1.0, 2.0, float("inf")], "rejected_reward": [0.5, 0.25, 0.0]})
    with pytest.raises(InvalidInputError) as caught:
        client.evaluate_dataset(frame, format="pairs", batch_rows=2)
    assert caught.value.path == "lists[2].chosen_reward"
    hf = datasets.Dataset.from_dict({"chosen_reward": [float("nan")], "rejected_reward": [0.5]})
    with pytest.raises(InvalidInputError):
        client.evaluate_dataset(hf, format="pairs")


def test_a_failed_line_raises_with_its_line_or_is_counted(client: prefeval.Client) -> None:
    rows = native_lists(4)
    rows[2]["items"] = rows[2]["items"][:1]  # one item: no preference
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with pytest.raises(LineFailedError) as caught:
        client.evaluate_dataset(table)
    assert caught.value.line == 3
    summary = client.evaluate_dataset(table, line_errors="skip")
    assert summary.lines_failed == 1 and summary.lists == 3


def test_ids_that_look_like_error_keys_are_results(client: prefeval.Client) -> None:
    rows = native_lists(3)
    rows[0]["id"] = 'x"error":{"code":"y"}'
    rows[1]["id"] = "error"
    summary = client.evaluate_dataset(pa.Table.from_pylist(rows, schema=SCHEMA))
    assert summary.lists == 3 and summary.lines_failed == 0


def test_fields_and_unknown_fields_become_query_parameters() -> None:
    query = stream_query(
        {"fields": {"chosen_reward": "score_chosen", "group": "subset"}, "unknown_fields": "ignore", "beta": 0.5}
    )
    assert query == [("fields", "chosen_reward:score_chosen,group:subset"), ("unknown_fields", "ignore"), ("beta", "0.5")]
    with pytest.raises(ValueError, match="unknown_fields"):
        stream_query({"unknown_fields": "drop"})
    with pytest.raises(ValueError, match=r"fields\['group'\]"):
        stream_query({"fields": {"group": "a,b"}})
    with pytest.raises(ValueError, match=r"fields\['id'\]"):
        stream_query({"fields": {"id": ""}})


def test_ignored_unknown_fields_leave_the_columns_no_format_reads_out_of_the_body() -> None:
    frame = pl.DataFrame(
        {
            "prompt": ["a long dialogue"],
            "chosen": ["text"],
            "score_chosen": [1.5],
            "rejected_reward": [0.5],
            "subset": ["helpful"],
            "id": ["kept"],
        }
    )
    project = columns_read({"chosen_reward": "score_chosen", "group": "subset"})
    body = b"".join(ndjson_blocks(frame, project=project))
    assert json.loads(body) == {"score_chosen": 1.5, "rejected_reward": 0.5, "subset": "helpful", "id": "kept"}


def test_the_current_server_refuses_fields_so_the_query_reaches_it(client: prefeval.Client) -> None:
    # Until the service maps fields, it refuses the parameter: the refusal names it.
    frame = pl.DataFrame({"score_chosen": [1.5], "rejected_reward": [0.5]})
    try:
        summary = client.evaluate_dataset(frame, format="pairs", fields={"chosen_reward": "score_chosen"})
    except prefeval.UnprocessableError as error:
        assert "fields" in str(error)
    else:
        assert summary.lists == 1  # a service that maps fields evaluates the pair


def test_objects_that_cannot_be_read_are_named() -> None:
    client = prefeval.Client("http://127.0.0.1:9")  # never reached
    for data, match in [
        (pd.Series([1.0]), "pandas Series"),
        (datasets.DatasetDict({"test": datasets.Dataset.from_dict({"a": [1]})}), "pick a split"),
        (pa.array([1.0]), "pyarrow"),
        ("lists.ndjson", "not str"),
        ({"items": []}, "not dict"),
    ]:
        with pytest.raises(TypeError, match=match):
            client.evaluate_dataset(data)


def test_a_missing_pyarrow_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    client = prefeval.Client("http://127.0.0.1:9")  # never reached
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    with pytest.raises(ImportError, match=r"prefeval\[pandas\]"):
        list(ndjson_blocks(pd.DataFrame({"a": [1.0]})))
    with pytest.raises(ImportError, match=r"prefeval\[polars\]"):
        client.evaluate_dataset(pl.DataFrame({"a": [1.0]}))


@pytest.mark.anyio
async def test_async_client_streams_tables_and_async_iterables(
    url: str, lists: List[Dict[str, Any]], expected: prefeval.StreamSummary
) -> None:
    async def generated() -> Any:
        for entry in lists:
            yield entry

    async with prefeval.AsyncClient(url) as client:
        from_table = await client.evaluate_dataset(pa.Table.from_pylist(lists, schema=SCHEMA), batch_rows=16)
        from_async = await client.evaluate_dataset(generated())
    same_summary(from_table, expected)
    same_summary(from_async, expected)


def test_a_stream_stopped_early_stops_the_conversion_thread() -> None:
    import threading

    table = pa.Table.from_pylist(native_lists(200), schema=SCHEMA)
    blocks = ndjson_blocks(table, batch_rows=1)
    assert next(blocks).startswith(b'{"id":"list-0"')
    assert any(thread.name == "prefeval-dataset-convert" for thread in threading.enumerate())
    blocks.close()  # type: ignore[attr-defined]
    assert not any(thread.name == "prefeval-dataset-convert" for thread in threading.enumerate())


def test_a_dataset_asks_for_the_error_lines_only(client: prefeval.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """``results=errors`` is sent, and the service answers no result line: only the failed line's
    error and the summary come back."""
    from prefeval import _stream

    paths: List[str] = []
    answer = bytearray()
    handle = _stream._Lines._handle

    def recording(self: Any, events: Any) -> None:
        paths.append(self.request.path)
        answer.extend(b"".join(value for kind, value in events if kind == "data" and isinstance(value, bytes)))
        handle(self, events)

    monkeypatch.setattr(_stream._Lines, "_handle", recording)
    rows = native_lists(40)
    rows[7]["items"] = rows[7]["items"][:1]  # one item: no preference
    summary = client.evaluate_dataset(pa.Table.from_pylist(rows, schema=SCHEMA), line_errors="skip", model="rm-d")
    assert summary.lists == 39 and summary.lines_failed == 1
    assert summary.run is not None and summary.run.model == "rm-d"
    assert paths and all("results=errors" in path for path in paths)
    lines = bytes(answer).splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["line"] == 8 and "error" in json.loads(lines[0])
    assert json.loads(lines[1])["summary"]["lists"] == 39
    assert stream_query({"results": "all"}) == [] and stream_query({"results": "errors"}) == [("results", "errors")]
