"""``prefeval.merge`` against the binary's ``prefeval merge``: the same summary, value for value
(every double to the bit, the fields in the same order), and the same refusals."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

import prefeval
from prefeval import MergeError


def shard(rng: random.Random, lists: int) -> str:
    """NDJSON lists of 2 to 9 items: ties, lists where τ-b is undefined, rewards over many scales."""
    lines = []
    for index in range(lists):
        n = rng.randint(2, 9)
        scale = 10.0 ** rng.randint(-3, 2)
        items = []
        for k in range(n):
            reward = round(rng.gauss(0, 1) * scale, rng.choice([1, 17]))
            items.append({"id": f"i{k}", "reward": reward, "rank": rng.randint(1, max(2, n - 2))})
        if all(item["rank"] == items[0]["rank"] for item in items):
            items[0]["rank"] += 1
        if index % 7 == 0:
            for item in items:
                item["reward"] = 0.5  # every pair a reward tie: agreeing halves
        lines.append(json.dumps({"id": f"l{index}", "items": items}))
    return "\n".join(lines) + "\n"


def run(binary: Path, *args: Any, check: bool = True) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def outputs(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, List[Path]]:
    """``prefeval eval`` outputs of shards, with each normalization."""
    directory = tmp_path_factory.mktemp("merge")
    rng = random.Random(20261203)
    out: Dict[str, List[Path]] = {}
    sizes = [1, 300, 57, 1000, 2]
    for normalization in ("ordered_pairs", "comparisons", "sum"):
        out[normalization] = []
        for number, size in enumerate(sizes):
            source = directory / f"{normalization}-{number}.ndjson"
            source.write_text(shard(rng, size))
            result = directory / f"{normalization}-{number}.out"
            run(binary, "eval", source, "-o", result, "--include-pairs=false", "--normalization", normalization)
            out[normalization].append(result)
    return out


def cli_merge(binary: Path, files: List[Path], *extra: str) -> Dict[str, Any]:
    merged: Dict[str, Any] = json.loads(run(binary, "merge", *files, *extra).stdout)["summary"]
    return merged


def normalised(summary: Dict[str, Any]) -> str:
    # json.dumps writes every double as its shortest round-trip text: equal strings, equal bits
    # (and the same fields in the same order).
    return json.dumps(summary)


@pytest.mark.parametrize("normalization", ["ordered_pairs", "comparisons", "sum"])
def test_merge_equals_the_binary_to_the_bit(binary: Path, outputs: Dict[str, List[Path]], normalization: str) -> None:
    files = outputs[normalization]
    for chosen in (files, files[1:2], files[::-1], files[1:4]):
        expected = cli_merge(binary, chosen)
        merged = prefeval.merge(chosen)
        assert normalised(merged.raw) == normalised(expected)
        assert merged.lists == expected["lists"] and merged.loss_ci == tuple(expected["loss_ci"])


def test_merge_at_another_confidence(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = outputs["comparisons"]
    for confidence in ("0.9", "0.5", "0.999999"):
        expected = cli_merge(binary, files, "--confidence", confidence)
        assert normalised(prefeval.merge(files, confidence=float(confidence)).raw) == normalised(expected)


def test_summaries_merge_from_every_form(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = outputs["sum"][:3]
    lines = [path.read_text().splitlines()[-1] for path in files]
    expected = normalised(cli_merge(binary, files))
    for form in (
        lines,
        [line.encode() for line in lines],
        [json.loads(line) for line in lines],
        [json.loads(line)["summary"] for line in lines],
        [prefeval.StreamSummary.from_dict(json.loads(line)["summary"]) for line in lines],
    ):
        assert normalised(prefeval.merge(form).raw) == expected


def test_merged_summaries_merge_again(binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path) -> None:
    files = outputs["ordered_pairs"]
    left = prefeval.merge(files[:2])
    right = prefeval.merge(files[2:])
    assert left.input is None  # a merge summarises several inputs
    whole = tmp_path / "left.out"
    whole.write_text(json.dumps({"summary": left.raw}) + "\n")
    rest = tmp_path / "right.out"
    rest.write_text(json.dumps({"summary": right.raw}) + "\n")
    assert normalised(prefeval.merge([left, right]).raw) == normalised(cli_merge(binary, [whole, rest]))


def test_stream_summaries_merge_as_the_binary_merges_them(url: str, binary: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    summaries = []
    files = []
    with prefeval.Client(url) as client:
        for number in range(3):
            lines = [json.loads(line) for line in shard(rng, 40 + number).splitlines()]
            with client.evaluate_stream(lines, include_pairs=False) as stream:
                list(stream)
            assert stream.summary is not None
            summaries.append(stream.summary)
            path = tmp_path / f"stream-{number}.out"
            path.write_text(json.dumps({"summary": stream.summary.raw}) + "\n")
            files.append(path)
    assert normalised(prefeval.merge(summaries).raw) == normalised(cli_merge(binary, files))


def refusal(binary: Path, files: List[Path]) -> str:
    result = run(binary, "merge", *files, check=False)
    assert result.returncode == 2
    return result.stderr


def test_different_normalizations_are_refused(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = [outputs["sum"][1], outputs["comparisons"][1]]
    assert "normalization" in refusal(binary, files)
    with pytest.raises(MergeError) as caught:
        prefeval.merge(files)
    assert caught.value.path == "summary.normalization" and caught.value.indices == (0, 1)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, prefeval.PrefevalError)


def test_the_same_input_twice_is_refused(binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path) -> None:
    copy = tmp_path / "copy.out"
    copy.write_bytes(outputs["sum"][2].read_bytes())
    files = [outputs["sum"][1], outputs["sum"][2], copy]
    assert "same input" in refusal(binary, files)
    with pytest.raises(MergeError) as caught:
        prefeval.merge(files)
    assert caught.value.path == "summary.input" and caught.value.indices == (1, 2)


def _edited(path: Path, tmp_path: Path, **totals: Any) -> Path:
    line = json.loads(path.read_text().splitlines()[-1])
    line["summary"]["totals"].update(totals)
    for key, value in totals.items():
        if value is None:
            del line["summary"]["totals"][key]
    edited = tmp_path / f"edited-{'-'.join(totals)}.out"
    edited.write_text(json.dumps(line) + "\n")
    return edited


@pytest.mark.parametrize(
    "change, field",
    [
        ({"agreeing": 1e9}, "summary.totals.agreeing"),
        ({"agreeing": 2.25}, "summary.totals.agreeing"),
        ({"pairs": 1}, "summary.totals.pairs"),
        ({"kendall_tau_sum": 1e6}, "summary.totals.kendall_tau_sum"),
        ({"loss_sum": None}, "summary.totals.loss_sum"),
        ({"loss_sum_squares": 1e-9}, "summary.totals.loss_sum_squares"),
        ({"pairs_squares": 1e12}, "summary.totals.pairs_squares"),
        ({"agreeing_squares": 0.1}, "summary.totals.agreeing_squares"),
        ({"chance_loss_sum": -1.0}, "summary.totals.chance_loss_sum"),
        ({"lists": 1.5}, "summary.totals.lists"),
        ({"lists": 2**64}, "summary.totals.lists"),
    ],
)
def test_broken_totals_are_refused_naming_the_field_as_the_binary_does(
    binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path, change: Dict[str, Any], field: str
) -> None:
    edited = _edited(outputs["sum"][3], tmp_path, **change)
    files = [outputs["sum"][1], edited]
    assert f"{field}:" in refusal(binary, files)
    with pytest.raises(MergeError) as caught:
        prefeval.merge(files)
    assert caught.value.path == field and caught.value.indices == (1,)


def test_counts_that_overflow_are_refused(outputs: Dict[str, List[Path]]) -> None:
    summary = json.loads(outputs["sum"][0].read_text().splitlines()[-1])["summary"]
    summary.pop("input")
    summary["lines_failed"] = 2**63
    with pytest.raises(MergeError) as caught:
        prefeval.merge([summary, summary])
    assert caught.value.path == "summary.lines_failed" and caught.value.indices == (1,)


def with_run(path: Path, **run: Any) -> Dict[str, Any]:
    summary: Dict[str, Any] = json.loads(path.read_text().splitlines()[-1])["summary"]
    fingerprint = summary.pop("input")
    summary["run"] = {"prefeval": "0.1.0", "normalization": summary["normalization"], "beta": 1.0,
                      "format": "native", "confidence": 0.95, "input": fingerprint, **run}  # fmt: skip
    return summary


@pytest.mark.parametrize(
    "first, second, field",
    [
        ({"beta": 1.0}, {"beta": 0.5}, "summary.run.beta"),
        ({"model": "rm-a"}, {"model": "rm-b"}, "summary.run.model"),
        ({"model": "rm-a"}, {}, "summary.run.model"),
        ({"normalization": "sum"}, {"normalization": "comparisons"}, "summary.run.normalization"),
    ],
)
def test_runs_of_different_settings_are_refused(
    outputs: Dict[str, List[Path]], first: Dict[str, Any], second: Dict[str, Any], field: str
) -> None:
    files = outputs["sum"]
    summaries = [with_run(files[0], **first), with_run(files[1]), with_run(files[2], **second)]
    summaries[1]["run"].update(first)
    with pytest.raises(MergeError) as caught:
        prefeval.merge(summaries)
    assert caught.value.path == field and caught.value.indices == (0, 2)


def test_runs_alike_merge_and_the_fingerprint_in_run_is_checked(outputs: Dict[str, List[Path]]) -> None:
    files = outputs["sum"]
    summaries = [with_run(path, model="rm-a") for path in files[:3]]
    merged = prefeval.merge(summaries)
    assert merged.run is not None and merged.run.model == "rm-a" and merged.run.beta == 1.0
    assert merged.run.input is None and merged.run.confidence == 0.95
    assert normalised({k: v for k, v in merged.raw.items() if k != "run"}) == normalised(prefeval.merge(files[:3]).raw)
    typed = prefeval.StreamSummary.from_dict(summaries[0])
    assert typed.run is not None and typed.run.input is not None and len(typed.run.input.xxh3) == 16
    with pytest.raises(MergeError) as caught:
        prefeval.merge([summaries[0], summaries[1], with_run(files[0], model="rm-a")])
    assert caught.value.path == "summary.run.input" and caught.value.indices == (0, 2)


def test_nothing_to_merge_and_a_bad_confidence_are_refused(outputs: Dict[str, List[Path]]) -> None:
    with pytest.raises(MergeError):
        prefeval.merge([])
    with pytest.raises(ValueError, match="confidence"):
        prefeval.merge(outputs["sum"], confidence=1.0)
    with pytest.raises(MergeError) as caught:
        prefeval.merge([b"{\"error\": {\"code\": \"x\"}}"])
    assert caught.value.path == "summary.normalization"
