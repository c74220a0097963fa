"""The async client beyond the figures (which test_golden compares with the sync client's)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator

import pytest

import prefeval

pytestmark = pytest.mark.anyio


async def test_errors_have_the_same_fields(url: str) -> None:
    async with prefeval.AsyncClient(url) as client:
        with pytest.raises(prefeval.UnprocessableError) as caught:
            await client.evaluate([{"items": [{"reward": 1.7}, {"reward": "0.4"}]}], request_id="demo-42")
        with pytest.raises(prefeval.UnprocessableError) as stream_caught:
            await client.evaluate_stream([], beta=0)
    error = caught.value
    assert (error.status, error.code, error.path, error.request_id) == (
        422, "invalid_type", "lists[0].items[1].reward", "demo-42",
    )  # fmt: skip
    assert error.message == 'invalid type: string "0.4", expected a number'
    assert (stream_caught.value.code, stream_caught.value.path) == ("invalid_value", "beta")


async def test_async_generator_in_order_and_concurrent_streams(url: str) -> None:
    async def lists(tag: str, count: int) -> AsyncIterator[Dict[str, Any]]:
        for i in range(count):
            if i % 1000 == 0:
                await asyncio.sleep(0)
            yield {"id": f"{tag}{i}", "items": [{"reward": float(i % 11)}, {"reward": 3.0}]}

    async with prefeval.AsyncClient(url) as client:

        async def run(tag: str) -> Any:
            stream = await client.evaluate_stream(lists(tag, 20_000), include_pairs=False)
            async with stream:
                ids = [item.id async for item in stream]
            return ids, stream.summary

        (ids_a, summary_a), (ids_b, summary_b) = await asyncio.gather(run("a"), run("b"))
    assert ids_a == [f"a{i}" for i in range(20_000)] and ids_b == [f"b{i}" for i in range(20_000)]
    assert summary_a == summary_b and summary_a is not None and summary_a.lists == 20_000


async def test_an_exception_of_the_iterable_is_raised(url: str) -> None:
    def lists() -> Iterator[Dict[str, Any]]:
        for i in range(3000):
            yield {"items": [{"reward": float(i)}, {"reward": 0.0}]}
        raise KeyError("missing reward column")

    async with prefeval.AsyncClient(url) as client:
        stream = await client.evaluate_stream(lists(), include_pairs=False)
        with pytest.raises(KeyError, match="missing reward column"):
            async for _ in stream:
                pass
        assert stream.summary is None
        assert (await client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}])).summary.lists == 1


async def test_stopping_early_and_files(url: str, tmp_path: Path) -> None:
    def endless() -> Iterator[Dict[str, Any]]:
        i = 0
        while True:
            i += 1
            yield {"items": [{"reward": float(i % 3)}, {"reward": 0.5}]}

    path = tmp_path / "data.ndjson"
    path.write_text('{"items": [{"reward": 1}, {"reward": 0}]}\n\n{"items": [{"reward": 0}, {"reward": 1}]}\n')
    async with prefeval.AsyncClient(url) as client:
        stream = await client.evaluate_stream(endless(), include_pairs=False)
        async with stream:
            async for item in stream:
                if item.line >= 10_000:
                    break
        assert stream.summary is None
        with pytest.raises(ValueError, match="closed"):
            await stream.__anext__()
        stream = await client.evaluate_file(path)
        async with stream:
            lines = [item.line async for item in stream]
        assert lines == [1, 3] and stream.summary is not None and stream.summary.lists == 2


async def test_pair_ids_are_opt_in(url: str, tmp_path: Path) -> None:
    lists = [{"id": "p", "items": [{"id": "C", "reward": 1.7}, {"id": "A", "reward": 0.4}, {"id": "B", "reward": -0.3}]}]
    path = tmp_path / "named.ndjson"
    path.write_text(json.dumps(lists[0]) + "\n")
    expected = [("C", "A"), ("C", "B"), ("A", "B")]

    def ids(result: Any) -> Any:
        return [(pair.preferred_id, pair.other_id) for pair in result.pairs]

    async with prefeval.AsyncClient(url) as client:
        assert ids((await client.evaluate(lists)).lists[0]) == [(None, None)] * 3
        assert ids((await client.evaluate(lists, include_pair_ids=True)).lists[0]) == expected
        stream = await client.evaluate_stream(lists, include_pairs=True, include_pair_ids=True)
        async with stream:
            assert [ids(item) async for item in stream] == [expected]
        stream = await client.evaluate_file(path, include_pairs=True, include_pair_ids=True)
        async with stream:
            assert [ids(item) async for item in stream] == [expected]
        stream = await client.evaluate_file(path, include_pairs=True)
        async with stream:
            assert [ids(item) async for item in stream] == [[(None, None)] * 3]


async def test_results_errors_and_the_run_of_the_summary(url: str, tmp_path: Path) -> None:
    lists: Any = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": 1.0}]}] * 2
    path = tmp_path / "lists.ndjson"
    path.write_text("".join(json.dumps(item) + "\n" for item in lists))
    async with prefeval.AsyncClient(url) as client:
        stream = await client.evaluate_stream(lists, results="errors", model="rm-async")
        async with stream:
            items = [item async for item in stream]
        from_file = await client.evaluate_file(path, results="errors")
        async with from_file:
            file_items = [item async for item in from_file]
    for got in (items, file_items):
        assert [(type(item).__name__, item.line) for item in got] == [("LineError", 2), ("LineError", 4)]
    assert stream.summary is not None and stream.summary.lists == 2 and stream.summary.lines_failed == 2
    assert stream.summary.run is not None and stream.summary.run.model == "rm-async"
    assert from_file.summary is not None and from_file.summary.run is not None and from_file.summary.run.model is None
