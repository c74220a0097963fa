"""Exact figures: every golden vector of the repository (tests/data/golden/evaluate.json), through
the typed results of the sync and async clients and of the stream."""

from __future__ import annotations

import math
from typing import Any, Dict, List

import pytest

import prefeval
from prefeval import EvaluateResult, ListResult

REL, ABS = 1e-12, 1e-15


def close(got: float, expected: float) -> bool:
    return abs(got - expected) <= max(REL * abs(expected), ABS)


def check_list(
    got: ListResult, expected: Dict[str, Any], where: str, sent: Dict[str, Any], with_ids: bool = False
) -> None:
    assert got.id == expected.get("id"), where
    assert got.n == expected["n"], where
    assert got.pairs_count == expected["pairs_count"], where
    assert close(got.loss, expected["loss"]), (where, got.loss, expected["loss"])
    assert close(got.accuracy, expected["accuracy"]), (where, got.accuracy, expected["accuracy"])
    if "pairs" not in expected:
        assert got.pairs is None, where
        return
    assert got.pairs is not None, where
    by_index = {(p.preferred, p.other): p for p in got.pairs}
    assert len(by_index) == len(got.pairs) == len(expected["pairs"]), where
    for pair in expected["pairs"]:
        mine = by_index[(pair["preferred"], pair["other"])]
        assert close(mine.probability, pair["probability"]), (where, pair)
        assert close(mine.log_probability, pair["log_probability"]), (where, pair)
        # Ids are beyond the golden file: asked for, they are those of the items sent; else absent.
        items = sent["items"]
        assert mine.preferred_id == (items[mine.preferred].get("id") if with_ids else None), where
        assert mine.other_id == (items[mine.other].get("id") if with_ids else None), where
        assert mine.raw is not None and mine.raw["probability"] == mine.probability


def check_result(
    got: EvaluateResult, expected: Dict[str, Any], name: str, request: Dict[str, Any], with_ids: bool = False
) -> None:
    assert close(got.loss, expected["loss"]), name
    assert got.normalization == expected["normalization"], name
    assert got.summary.lists == expected["summary"]["lists"], name
    assert got.summary.pairs == expected["summary"]["pairs"], name
    assert close(got.summary.accuracy, expected["summary"]["accuracy"]), name
    assert len(got.lists) == len(expected["lists"]), name
    for index, (mine, theirs) in enumerate(zip(got.lists, expected["lists"])):
        check_list(mine, theirs, f"{name} lists[{index}]", request["lists"][index], with_ids)
    # The figures the golden file does not pin are there, typed, and consistent.
    assert got.summary.totals is not None and got.summary.totals.lists == got.summary.lists
    assert got.summary.chance_loss is not None and got.summary.chance_loss > 0
    if got.summary.lists >= 2:
        assert got.summary.accuracy_ci is not None
        low, high = got.summary.accuracy_ci
        assert low <= got.summary.accuracy <= high
    assert got.raw["loss"] == got.loss
    assert got.request_id


def call(client: Any, request: Dict[str, Any], **extra: Any) -> Any:
    return client.evaluate(request["lists"], model=request.get("model"), **request.get("options", {}), **extra)


def test_every_golden_case_sync(url: str, golden: Dict[str, Any]) -> None:
    assert golden["format"] == "prefeval-golden-v1"
    assert golden["tolerance"] == {"relative": REL, "absolute": ABS}
    assert len(golden["cases"]) >= 40
    with prefeval.Client(url) as client:
        for case in golden["cases"]:
            check_result(call(client, case["request"]), case["response"], case["name"], case["request"])
            with_ids = call(client, case["request"], include_pair_ids=True)
            check_result(with_ids, case["response"], case["name"], case["request"], with_ids=True)


@pytest.mark.anyio
async def test_every_golden_case_async_matches_sync(url: str, golden: Dict[str, Any]) -> None:
    with prefeval.Client(url) as client:
        sync_results = [call(client, case["request"]) for case in golden["cases"]]
    async with prefeval.AsyncClient(url) as client:
        for case, sync_result in zip(golden["cases"], sync_results):
            result = await call(client, case["request"])
            check_result(result, case["response"], case["name"], case["request"])
            # Same service, same numbers: the typed results are equal field for field.
            assert result.lists == sync_result.lists
            assert result.summary == sync_result.summary
            assert result.loss == sync_result.loss


def stream_options(request: Dict[str, Any]) -> Dict[str, Any]:
    # The stream leaves pairs out unless asked for; the batch (and so the golden answer) has them.
    return {"model": request.get("model"), "include_pairs": True, **request.get("options", {})}


def test_golden_lists_through_the_stream(url: str, golden: Dict[str, Any]) -> None:
    """The stream answers each list as the batch does: same figures, bit for bit (here with the
    pairs' ids)."""
    with prefeval.Client(url) as client:
        for case in golden["cases"]:
            request = case["request"]
            batch = call(client, request, include_pair_ids=True)
            options = stream_options(request)
            with client.evaluate_stream(iter(request["lists"]), **options, include_pair_ids=True) as stream:
                items: List[Any] = list(stream)
            assert [item.line for item in items] == list(range(1, len(request["lists"]) + 1))
            for index, (item, expected) in enumerate(zip(items, case["response"]["lists"])):
                assert isinstance(item, prefeval.StreamResult) and item.ok
                check_list(item, expected, f"{case['name']} line {index + 1}", request["lists"][index], True)
                assert item.loss == batch.lists[index].loss and item.pairs == batch.lists[index].pairs
            summary = stream.summary
            assert summary is not None and summary.lines_failed == 0
            assert summary.lists == batch.summary.lists and summary.pairs == batch.summary.pairs
            assert summary.loss is not None and close(summary.loss, batch.loss)
            assert summary.accuracy is not None and close(summary.accuracy, batch.summary.accuracy)
            assert summary.normalization == batch.normalization


@pytest.mark.anyio
async def test_golden_lists_through_the_async_stream(url: str, golden: Dict[str, Any]) -> None:
    async def agen(lists: List[Dict[str, Any]]) -> Any:
        for entry in lists:
            yield entry

    with prefeval.Client(url) as sync_client:
        async with prefeval.AsyncClient(url) as client:
            for case in golden["cases"]:
                request = case["request"]
                with sync_client.evaluate_stream(request["lists"], **stream_options(request)) as sync_stream:
                    expected = list(sync_stream)
                stream = await client.evaluate_stream(agen(request["lists"]), **stream_options(request))
                async with stream:
                    items = [item async for item in stream]
                assert items == expected, case["name"]
                assert stream.summary == sync_stream.summary
                assert stream.summary is not None and not math.isnan(stream.summary.loss or 0.0)
