"""`compare_stream` and `compare_file` (``/v1/compare/stream``): the summary is `/v1/compare`'s
answer, the result lines the per-list figures, line errors as in the evaluate stream, and the
summaries of shards merge into the whole's."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import REPO

import prefeval

EXAMPLE = REPO / "examples" / "compare" / "request.json"


@pytest.fixture(scope="module")
def example() -> Dict[str, Any]:
    request: Dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return request


def three_models(count: int, seed: int) -> List[Dict[str, Any]]:
    """Lists of 2 to 5 items with one reward per model; some ties, so some lists have no tau."""
    rng = random.Random(seed)
    lists = []
    for i in range(count):
        items = [{"rewards": [rng.choice([0.0, 0.5, 1.0, rng.uniform(-3, 3)]) for _ in range(3)]} for _ in range(rng.randint(2, 5))]
        lists.append({"id": f"l{seed}-{i}", "items": items})
    return lists


def close(got: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(close(got[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(got) == len(expected) and all(close(g, e) for g, e in zip(got, expected))
    if isinstance(expected, float):
        return abs(got - expected) <= 1e-12 * max(1.0, abs(expected))
    return bool(got == expected)


def test_the_summary_is_the_batch_answer(url: str, example: Dict[str, Any]) -> None:
    lists, models, options = example["lists"], example["models"], example["options"]
    with prefeval.Client(url) as client:
        batch = client.compare(lists, models, **options)
        with client.compare_stream(lists, models, **options) as stream:
            items = list(stream)
    summary = stream.summary
    assert isinstance(summary, prefeval.ComparisonSummary)
    assert (summary.lists, summary.pairs, summary.lines_failed) == (batch.lists, batch.pairs, 0)
    assert (summary.normalization, summary.confidence) == ("comparisons", 0.95)
    # The same numbers, to the last bit.
    assert summary.models == batch.raw["models"]
    assert summary.comparisons == batch.raw["comparisons"]
    assert summary.raw["run"]["models"] == models and summary.raw["run"]["beta"] == 0.01
    assert len(summary.raw["totals"]["comparisons"]) == 1
    assert [item.line for item in items] == list(range(1, 501))
    assert all(isinstance(item, prefeval.CompareStreamResult) and item.ok for item in items)
    assert items[0].id == lists[0]["id"] and len(items[0].models) == 2


def test_the_result_lines_are_the_per_list_figures(url: str) -> None:
    lists = three_models(40, seed=1)
    models = ["rm-a", "rm-b", "rm-c"]
    with prefeval.Client(url) as client:
        with client.compare_stream(lists, models, normalization="sum", beta=0.5) as stream:
            items = list(stream)
        # Each model's figures on a list are /v1/evaluate's on that list alone with its rewards.
        for j in range(3):
            alone = [{"id": entry["id"], "items": [{"reward": item["rewards"][j]} for item in entry["items"]]} for entry in lists]
            evaluated = client.evaluate(alone, normalization="sum", beta=0.5, include_pairs=False)
            for item, result in zip(items, evaluated.lists):
                assert isinstance(item, prefeval.CompareStreamResult)
                figures = item.models[j]
                assert isinstance(figures, prefeval.ListModelFigures)
                assert (item.id, figures.loss, figures.accuracy, figures.kendall_tau) == (
                    result.id, result.loss, result.accuracy, result.kendall_tau,
                )  # fmt: skip
    assert any(item.models[0].kendall_tau is None for item in items if isinstance(item, prefeval.CompareStreamResult))
    assert stream.summary is not None and [m["model"] for m in stream.summary.models] == models
    assert [(c["a"], c["b"]) for c in stream.summary.comparisons] == [("rm-a", "rm-b"), ("rm-a", "rm-c"), ("rm-b", "rm-c")]


BROKEN: List[Any] = [
    {"id": "ok1", "items": [{"rewards": [1.0, 0.0]}, {"rewards": [0.0, 1.0]}]},
    {"id": "short", "items": [{"rewards": [1.0]}, {"rewards": [0.0, 1.0]}]},
    {"id": "ok2", "items": [{"rewards": [0.3, 0.2]}, {"rewards": [0.1, 0.4]}]},
]


def test_line_errors_yield_raise_or_skip(url: str) -> None:
    with prefeval.Client(url) as client:
        with client.compare_stream(BROKEN, ["a", "b"]) as stream:
            items = list(stream)
        assert [(item.line, item.ok) for item in items] == [(1, True), (2, False), (3, True)]
        error = items[1]
        assert isinstance(error, prefeval.LineError)
        assert (error.code, error.path) == ("invalid_value", "items[0].rewards")
        assert stream.summary is not None and (stream.summary.lists, stream.summary.lines_failed) == (2, 1)

        with client.compare_stream(BROKEN, ["a", "b"], line_errors="skip") as skipped:
            assert [item.line for item in skipped] == [1, 3]
        assert skipped.summary is not None and skipped.summary.lines_failed == 1
        assert skipped.summary.raw == {**stream.summary.raw, "run": skipped.summary.raw["run"]}

        with pytest.raises(prefeval.LineFailedError) as caught:
            with client.compare_stream(BROKEN, ["a", "b"], line_errors="raise") as raised:
                list(raised)
        assert (caught.value.line, caught.value.code, caught.value.path) == (2, "invalid_value", "items[0].rewards")

        with client.compare_stream(BROKEN, ["a", "b"], results="errors") as errors_only:
            assert [(type(item).__name__, item.line) for item in errors_only] == [("LineError", 2)]
        assert errors_only.summary is not None and errors_only.summary.models == stream.summary.models


def test_pairs_format(url: str) -> None:
    pairs = [
        {"id": "p1", "chosen_rewards": [1.2, 0.1], "rejected_rewards": [0.3, 0.4]},
        {"id": "p2", "chosen_rewards": [0.0, 2.0], "rejected_rewards": [0.4, -1.0]},
    ]
    native = [
        {"id": p["id"], "items": [{"rewards": p["chosen_rewards"]}, {"rewards": p["rejected_rewards"]}]} for p in pairs
    ]
    with prefeval.Client(url) as client:
        with client.compare_stream(pairs, ["a", "b"], format="pairs", confidence=0.9) as stream:
            items = list(stream)
        batch = client.compare(native, ["a", "b"], confidence=0.9)
    assert [item.id for item in items if isinstance(item, prefeval.CompareStreamResult)] == ["p1", "p2"]
    assert stream.summary is not None and stream.summary.raw["run"]["format"] == "pairs"
    assert stream.summary.confidence == 0.9
    assert stream.summary.models == batch.raw["models"] and stream.summary.comparisons == batch.raw["comparisons"]


def test_compare_file_plain_and_gz(url: str, tmp_path: Path) -> None:
    lines = [json.dumps(entry) for entry in BROKEN]
    text = "\n".join([lines[0], "", lines[1], lines[2]])  # a blank line, no newline at the end
    plain = tmp_path / "lists.ndjson"
    plain.write_text(text)
    packed = tmp_path / "lists.ndjson.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    with prefeval.Client(url) as client:
        summaries = []
        for path in (plain, packed):
            with client.compare_file(path, ["a", "b"]) as stream:
                assert [(item.line, item.ok) for item in stream] == [(1, True), (3, False), (4, True)]
            assert stream.summary is not None and stream.summary.lines_failed == 1
            summaries.append(stream.summary)
        with pytest.raises(FileNotFoundError):
            client.compare_file(tmp_path / "missing.ndjson", ["a", "b"])
    assert summaries[0].raw == summaries[1].raw  # the service sees the same bytes


SCORED = REPO / "examples" / "compare" / "hh-rlhf-scored.jsonl.gz"
SCORED_OUT = REPO / "examples" / "compare" / "hh-rlhf-scored.out.ndjson"


def test_compare_file_answers_the_committed_output(url: str) -> None:
    """The README's dataset (gzip, text columns, lengths) through `compare_file`: every line and
    the summary are those `prefeval compare` wrote (examples/compare/hh-rlhf-scored.out.ndjson)."""
    expected = [json.loads(line) for line in SCORED_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    fields = {
        "chosen_rewards": "chosen_scores", "rejected_rewards": "rejected_scores",
        "chosen_length": "chosen_chars", "rejected_length": "rejected_chars",
    }  # fmt: skip
    with prefeval.Client(url) as client:
        with client.compare_file(
            SCORED, ["length", "length-penalized"], format="pairs", unknown_fields="ignore",
            normalization="comparisons", beta=0.01, fields=fields,
        ) as stream:  # fmt: skip
            items = list(stream)
    assert [item.raw for item in items] == expected[:-1]
    assert stream.summary is not None
    summary, wanted = stream.summary.raw, expected[-1]["summary"]
    assert {k: v for k, v in summary.items() if k != "run"} == {k: v for k, v in wanted.items() if k != "run"}
    # The command fingerprints the file as stored; the client sends it decompressed.
    assert summary["run"]["input"]["bytes"] == len(gzip.decompress(SCORED.read_bytes()))
    assert stream.summary.models[0]["length"]["pairs_preferred_longer"] == 220


def test_bad_models_raise_the_service_error(url: str) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(prefeval.UnprocessableError) as one:
            client.compare_stream(BROKEN, ["a"])
        with pytest.raises(prefeval.UnprocessableError) as twice:
            client.compare_stream(BROKEN, ["a", "b", "a"])
        with pytest.raises(TypeError, match="not one string"):
            client.compare_stream(BROKEN, "a,b")
        with pytest.raises(ValueError, match="comma"):
            client.compare_stream(BROKEN, ["a,b", "c"])
        with pytest.raises(FileNotFoundError):
            client.compare_file("missing.ndjson", ["a", "b"])
    assert (one.value.status, one.value.path) == (422, "models")
    assert (twice.value.status, twice.value.path) == (422, "models[2]")


def test_the_merged_summaries_of_shards_are_the_whole(url: str) -> None:
    lists = three_models(300, seed=2)
    models = ["rm-a", "rm-b", "rm-c"]
    with prefeval.Client(url) as client:
        summaries = []
        for part in (lists[:110], lists[110:], lists):
            with client.compare_stream(part, models, normalization="comparisons") as stream:
                list(stream)
            summaries.append(stream.summary)
        batch = client.compare(lists, models, normalization="comparisons")
    first, second, whole = summaries
    merged = prefeval.merge([first, second])
    assert isinstance(merged, prefeval.ComparisonSummary) and whole is not None
    assert (merged.lists, merged.pairs, merged.lines_failed) == (whole.lists, whole.pairs, 0)
    assert close(merged.models, whole.models) and close(merged.comparisons, whole.comparisons)
    assert close(merged.raw["totals"], whole.raw["totals"])
    assert close(whole.models, batch.raw["models"])
    # A merged summary merges again.
    again = prefeval.merge([merged])
    assert isinstance(again, prefeval.ComparisonSummary) and close(again.comparisons, whole.comparisons)


@pytest.mark.anyio
async def test_async_mirrors(url: str, example: Dict[str, Any], tmp_path: Path) -> None:
    lists, models, options = example["lists"], example["models"], example["options"]

    async def generated() -> Any:
        for entry in lists:
            yield entry

    path = tmp_path / "lists.ndjson.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(entry) + "\n" for entry in lists).encode()))
    async with prefeval.AsyncClient(url) as client:
        batch = await client.compare(lists, models, **options)
        stream = await client.compare_stream(generated(), models, **options)
        async with stream:
            items = [item async for item in stream]
        from_file = await client.compare_file(path, models, **options)
        async with from_file:
            file_items = [item async for item in from_file]
        with pytest.raises(prefeval.UnprocessableError) as caught:
            await client.compare_stream(lists, ["x", "x"])
        broken = await client.compare_stream(BROKEN, ["a", "b"], line_errors="raise")
        with pytest.raises(prefeval.LineFailedError):
            async with broken:
                async for _ in broken:
                    pass
    assert caught.value.path == "models[1]"
    assert len(items) == len(file_items) == 500
    assert all(isinstance(item, prefeval.CompareStreamResult) for item in items)
    for done in (stream, from_file):
        assert isinstance(done.summary, prefeval.ComparisonSummary)
        assert done.summary.models == batch.raw["models"] and done.summary.comparisons == batch.raw["comparisons"]
