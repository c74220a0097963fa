"""``prefeval.merge`` against the binary's ``prefeval merge``: the same summary line, byte for byte
(every double to the bit, the fields in the same order, ``run`` included), and the same refusals."""

from __future__ import annotations

import json
import math
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


def pairs_shard(rng: random.Random, lists: int) -> str:
    """The same kind of lists in the `pairs` format: one chosen and one rejected reward each."""
    lines = []
    for index in range(lists):
        chosen, rejected = (round(rng.gauss(0, 1) * 10.0 ** rng.randint(-2, 1), 17) for _ in range(2))
        lines.append(json.dumps({"id": f"p{index}", "chosen_reward": chosen, "rejected_reward": rejected}))
    return "\n".join(lines) + "\n"


def run(binary: Path, *args: Any, check: bool = True) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, check=check)


def eval_shard(binary: Path, directory: Path, name: str, text: str, *options: Any) -> Path:
    """The ``prefeval eval`` output of ``text`` (with ``options``), whose last line is its summary."""
    source = directory / f"{name}.ndjson"
    source.write_text(text)
    result = directory / f"{name}.out"
    run(binary, "eval", source, "-o", result, *options)
    return result


@pytest.fixture(scope="module")
def outputs(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, List[Path]]:
    """``prefeval eval`` outputs of shards: five with each normalization; and, labelled
    ``"other"``, shards with a model, at another β and confidence, and in the `pairs` format."""
    directory = tmp_path_factory.mktemp("merge")
    rng = random.Random(20261203)
    out: Dict[str, List[Path]] = {}
    sizes = [1, 300, 57, 1000, 2]
    for normalization in ("ordered_pairs", "comparisons", "sum"):
        out[normalization] = [
            eval_shard(binary, directory, f"{normalization}-{number}", shard(rng, size), "--normalization", normalization)
            for number, size in enumerate(sizes)
        ]
    other = [
        ("model-a-0", shard(rng, 40), "--model", "rm-a"),
        ("model-a-1", shard(rng, 41), "--model", "rm-a"),
        ("model-b", shard(rng, 42), "--model", "rm-b"),
        ("beta-0", shard(rng, 43), "--beta", "0.25"),
        ("beta-1", shard(rng, 44), "--beta", "0.25", "--confidence", "0.8"),
        ("pairs-0", pairs_shard(rng, 45), "--format", "pairs"),
        ("pairs-1", pairs_shard(rng, 46), "--format", "pairs", "--confidence", "0.5"),
    ]
    out["other"] = [eval_shard(binary, directory, name, text, *options) for name, text, *options in other]
    return out


def rust_float(value: float) -> str:
    """A double as serde_json writes it (ryu): the shortest round-trip digits, as Python's repr,
    in decimal notation for exponents -5 to 15, else ``1.5e-7``/``1e16``."""
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    text = whole + fraction
    significant = text.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(text) - len(significant))  # digits before the point
    digits = significant.rstrip("0")
    if 0 <= point - len(digits) and point <= 16:
        return f"{sign}{digits}{'0' * (point - len(digits))}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    rest = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{rest}e{point - 1}"


def rust_json(value: Any) -> str:
    """``value`` as serde_json writes it: no spaces, the fields in their order, doubles by ryu."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{rust_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(rust_json(v) for v in value) + "]"
    if isinstance(value, float):
        return rust_float(value)
    return json.dumps(value, ensure_ascii=False)


def test_rust_json_writes_doubles_as_serde_json() -> None:
    cases = {1.0: "1.0", 0.5: "0.5", 1e-5: "0.00001", 1.5e-7: "1.5e-7", 1e16: "1e16", 1e15: "1000000000000000.0",
             123.456: "123.456", -2.5e-300: "-2.5e-300", 0.1 + 0.2: "0.30000000000000004", -0.0: "-0.0",
             1.7976931348623157e308: "1.7976931348623157e308", 5e-324: "5e-324", 0.0001: "0.0001"}  # fmt: skip
    for value, text in cases.items():
        assert rust_float(value) == text, value


def cli_merge_line(binary: Path, files: List[Path], *extra: Any) -> str:
    """The binary's merged summary line, exactly as written (without its newline)."""
    stdout = run(binary, "merge", *files, *extra).stdout
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    return stdout[:-1]


def cli_merge(binary: Path, files: List[Path], *extra: Any) -> Dict[str, Any]:
    merged: Dict[str, Any] = json.loads(cli_merge_line(binary, files, *extra))["summary"]
    return merged


def line(summary: prefeval.StreamSummary) -> str:
    """The summary line ``prefeval merge`` would write for ``summary``."""
    return rust_json({"summary": summary.raw})


def normalised(summary: Dict[str, Any]) -> str:
    # json.dumps writes every double as its shortest round-trip text: equal strings, equal bits
    # (and the same fields in the same order).
    return json.dumps(summary)


def write_line(path: Path, summary: prefeval.StreamSummary) -> Path:
    path.write_text(line(summary) + "\n")
    return path


@pytest.mark.parametrize("normalization", ["ordered_pairs", "comparisons", "sum"])
def test_merge_equals_the_binary_byte_for_byte(binary: Path, outputs: Dict[str, List[Path]], normalization: str) -> None:
    files = outputs[normalization]
    for chosen in (files, files[1:2], files[::-1], files[1:4]):
        expected = cli_merge_line(binary, chosen)
        merged = prefeval.merge(chosen)
        assert line(merged) == expected
        assert merged.lists == json.loads(expected)["summary"]["lists"]
        assert merged.run is not None and merged.run.input is None and merged.run.inputs is not None
        # The inputs, in the order of the files.
        assert [f.raw for f in merged.run.inputs] == [_summary(path)["run"]["input"] for path in chosen]


def test_merge_at_another_confidence(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = outputs["comparisons"]
    for confidence in ("0.9", "0.5", "0.999999"):
        expected = cli_merge_line(binary, files, "--confidence", confidence)
        merged = prefeval.merge(files, confidence=float(confidence))
        assert line(merged) == expected
        assert merged.run is not None and merged.run.confidence == float(confidence)


def test_models_betas_confidences_and_formats_merge_as_the_binary_merges_them(
    binary: Path, outputs: Dict[str, List[Path]]
) -> None:
    model_a = [outputs["other"][0], outputs["other"][1]]
    beta = outputs["other"][3:5]  # their confidences differ: the merge's own is written
    pairs = outputs["other"][5:7]
    mixed = [*pairs, outputs["ordered_pairs"][2]]  # pairs then native: `mixed`
    for files, extra, check in (
        (model_a, (), lambda run: run.model == "rm-a" and run.format == "native"),
        (beta, ("--confidence", "0.7"), lambda run: run.beta == 0.25 and run.confidence == 0.7),
        (pairs, (), lambda run: run.format == "pairs" and run.model is None),
        (mixed, (), lambda run: run.format == "mixed"),
    ):
        expected = cli_merge_line(binary, files, *extra)
        merged = prefeval.merge(files, **({"confidence": float(extra[1])} if extra else {}))
        assert line(merged) == expected
        assert merged.run is not None and check(merged.run), merged.run


def test_summaries_merge_from_every_form(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = outputs["sum"][:3]
    lines = [path.read_text().splitlines()[-1] for path in files]
    expected = cli_merge_line(binary, files)
    for form in (
        lines,
        [line.encode() for line in lines],
        [json.loads(line) for line in lines],
        [json.loads(line)["summary"] for line in lines],
        [prefeval.StreamSummary.from_dict(json.loads(line)["summary"]) for line in lines],
        iter(files),
    ):
        assert line(prefeval.merge(form)) == expected  # type: ignore[arg-type]


def test_merged_summaries_merge_again(binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path) -> None:
    files = outputs["ordered_pairs"]
    # Merged by the binary, merged again by both, with an unmerged shard between: the inputs of each
    # merged file are flattened in its place.
    left = tmp_path / "left.out"
    left.write_text(cli_merge_line(binary, files[:2]) + "\n")
    right = tmp_path / "right.out"
    right.write_text(cli_merge_line(binary, files[3:], "--confidence", "0.9") + "\n")
    chosen = [left, files[2], right]
    expected = cli_merge_line(binary, chosen)
    merged = prefeval.merge(chosen)
    assert line(merged) == expected
    assert merged.run is not None and merged.run.inputs is not None and len(merged.run.inputs) == len(files)
    # Merged by this package, written, and merged by the binary: the same line as merging the shards.
    ours = [write_line(tmp_path / "ours-left.out", prefeval.merge(files[:2])),
            write_line(tmp_path / "ours-right.out", prefeval.merge(files[2:]))]  # fmt: skip
    assert cli_merge_line(binary, ours) == cli_merge_line(binary, files) == line(prefeval.merge(ours))
    # A mixed merge merges again, still mixed.
    mixed = write_line(tmp_path / "mixed.out", prefeval.merge([outputs["other"][5], files[4]]))
    assert line(prefeval.merge([mixed, files[1]])) == cli_merge_line(binary, [mixed, files[1]])
    assert '"format":"mixed"' in cli_merge_line(binary, [files[1], mixed])


def test_stream_summaries_merge_as_the_binary_merges_them(url: str, binary: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    summaries = []
    files = []
    with prefeval.Client(url) as client:
        for number in range(3):
            lines = [json.loads(line) for line in shard(rng, 40 + number).splitlines()]
            with client.evaluate_stream(lines, model="rm-s") as stream:
                list(stream)
            assert stream.summary is not None and stream.summary.run is not None
            assert stream.summary.run.model == "rm-s" and stream.summary.run.input is not None
            summaries.append(stream.summary)
            files.append(write_line(tmp_path / f"stream-{number}.out", stream.summary))
    assert line(prefeval.merge(summaries)) == cli_merge_line(binary, files)


def refusal(binary: Path, files: List[Path]) -> str:
    """The binary's refusal: exit 2 and its message."""
    result = run(binary, "merge", *files, check=False)
    assert result.returncode == 2 and not result.stdout
    return result.stderr


def refused(summaries: List[Any]) -> MergeError:
    with pytest.raises(MergeError) as caught:
        prefeval.merge(summaries)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, prefeval.PrefevalError)
    return caught.value


@pytest.mark.parametrize(
    "pick, field",
    [
        (lambda o: [o["sum"][1], o["comparisons"][1]], "summary.run.normalization"),
        (lambda o: [o["ordered_pairs"][1], o["other"][3]], "summary.run.beta"),
        (lambda o: [o["other"][0], o["other"][2]], "summary.run.model"),  # rm-a, rm-b
        (lambda o: [o["other"][0], o["ordered_pairs"][1]], "summary.run.model"),  # rm-a, none
        (lambda o: [o["ordered_pairs"][1], o["other"][0]], "summary.run.model"),  # none, rm-a
        # The normalization first, then β, then the model; each summary in turn against the first.
        (lambda o: [o["other"][3], o["other"][2]], "summary.run.beta"),  # β and model
        (lambda o: [o["other"][3], o["sum"][1]], "summary.run.normalization"),  # all three
        (lambda o: [o["other"][2], o["other"][0], o["other"][3]], "summary.run.model"),
    ],
)
def test_runs_of_different_settings_are_refused_as_the_binary_refuses_them(
    binary: Path, outputs: Dict[str, List[Path]], pick: Any, field: str
) -> None:
    files = pick(outputs)
    assert f"{field} " in refusal(binary, files)
    error = refused(files)
    assert error.path == field and error.indices == (0, 1)


def test_the_same_input_twice_is_refused(binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path) -> None:
    copy = tmp_path / "copy.out"
    copy.write_bytes(outputs["sum"][2].read_bytes())
    files = [outputs["sum"][1], outputs["sum"][2], copy]
    assert "same input" in refusal(binary, files)
    error = refused(files)
    assert error.path == "summary.run.input" and error.indices == (1, 2)
    # Also among a merged summary's inputs.
    merged = tmp_path / "merged.out"
    merged.write_text(cli_merge_line(binary, outputs["sum"][:3]) + "\n")
    files = [outputs["sum"][3], merged, outputs["sum"][2]]
    assert "same input" in refusal(binary, files)
    error = refused(files)
    assert error.path == "summary.run.input" and error.indices == (1, 2)
    error = refused([outputs["sum"][3], merged, prefeval.merge(outputs["sum"][1:2])])
    assert error.path == "summary.run.input" and error.indices == (1, 2)


def test_the_same_file_twice_is_refused(binary: Path, outputs: Dict[str, List[Path]]) -> None:
    files = [outputs["sum"][1], outputs["sum"][2], outputs["sum"][1]]
    assert "are the same file" in refusal(binary, files)
    error = refused(files)
    assert error.path is None and error.indices == (0, 2) and "same file" in str(error)


def _summary(path: Path) -> Dict[str, Any]:
    summary: Dict[str, Any] = json.loads(path.read_text().splitlines()[-1])["summary"]
    return summary


def _write(summary: Dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps({"summary": summary}) + "\n")
    return path


def _edited(path: Path, tmp_path: Path, **totals: Any) -> Path:
    summary = _summary(path)
    summary["totals"].update(totals)
    for key, value in totals.items():
        if value is None:
            del summary["totals"][key]
    return _write(summary, tmp_path / f"edited-{'-'.join(totals)}.out")


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
    error = refused(files)
    assert error.path == field and error.indices == (1,)


def _drop(mapping: Dict[str, Any], key: str) -> None:
    del mapping[key]


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda s: _drop(s, "run"), "summary.run"),
        (lambda s: _drop(s["run"], "prefeval"), "summary.run.prefeval"),
        (lambda s: _drop(s["run"], "beta"), "summary.run.beta"),
        (lambda s: s["run"].update(normalization="mean"), "summary.run.normalization"),
        (lambda s: s["run"].update(beta=0.0), "summary.run.beta"),
        (lambda s: s["run"].update(beta=-1.0), "summary.run.beta"),
        (lambda s: s["run"].update(confidence=1.0), "summary.run.confidence"),
        (lambda s: s["run"].update(format="csv"), "summary.run.format"),
        (lambda s: _drop(s["run"], "input"), "summary.run.input"),
        (lambda s: s["run"].update(inputs=[]), "summary.run.inputs"),
        (lambda s: s["run"].update(inputs=[s["run"]["input"]]), "summary.run.inputs"),
        (lambda s: s["run"]["input"].update(xxh3="ABCDEF0123456789"), "summary.run.input.xxh3"),
        (lambda s: s.update(normalization="comparisons"), "summary.normalization"),
        # The run is checked before the totals.
        (lambda s: (s["totals"].update(pairs=0), s["run"].update(beta=0.0)), "summary.run.beta"),
    ],
)
def test_a_missing_or_edited_run_is_refused_naming_the_field_as_the_binary_does(
    binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path, edit: Any, field: str
) -> None:
    summary = _summary(outputs["sum"][3])
    edit(summary)
    files = [outputs["sum"][1], _write(summary, tmp_path / "edited.out")]
    assert f"{field}:" in refusal(binary, files)
    error = refused(files)
    assert error.path == field and error.indices == (1,)


def test_counts_that_overflow_are_refused(outputs: Dict[str, List[Path]]) -> None:
    summary = _summary(outputs["sum"][0])
    summary["lines_failed"] = 2**63
    other = json.loads(json.dumps(summary))
    other["run"]["input"]["bytes"] += 1  # another input
    error = refused([summary, other])
    assert error.path == "summary.lines_failed" and error.indices == (1,)


def test_nothing_to_merge_a_bad_confidence_and_an_error_line_are_refused(
    binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path
) -> None:
    with pytest.raises(MergeError):
        prefeval.merge([])
    with pytest.raises(ValueError, match="confidence"):
        prefeval.merge(outputs["sum"], confidence=1.0)
    assert run(binary, "merge", *outputs["sum"], "--confidence", "1", check=False).returncode == 2
    stopped = tmp_path / "stopped.out"
    stopped.write_text('{"line":1,"error":{"code":"x","message":"y"}}\n')
    assert "did its run finish?" in refusal(binary, [stopped])
    error = refused([stopped])
    assert error.path == "summary" and error.indices == (0,) and "did its run finish?" in str(error)


# ------------------------------------------------------------------------------------------------
# comparisons


def compare_shard(rng: random.Random, lists: int, models: int, offset: int) -> str:
    """NDJSON lists in ``/v1/compare``'s shape: 2 to 6 items with one reward per model (on a grid, so
    that models tie), ranked by array order or by ranks with ties, one in three with lengths."""
    lines = []
    for index in range(lists):
        n = rng.randint(2, 6)
        items: List[Dict[str, Any]] = [
            {"id": f"r{k}", "rewards": [rng.randint(-20, 20) / 8.0 for _ in range(models)]} for k in range(n)
        ]
        if rng.random() < 0.5:
            for item in items:
                item["rank"] = rng.randint(1, 3)
            items[0]["rank"], items[1]["rank"] = 1, 2
        if rng.random() < 0.33:
            for item in items:
                item["length"] = rng.randint(0, 5) * 10
        lines.append(json.dumps({"id": f"p{offset + index}", "items": items}))
    return "\n".join(lines) + "\n"


def compare_output(binary: Path, directory: Path, name: str, text: str, *options: Any) -> Path:
    source = directory / f"{name}.ndjson"
    source.write_text(text)
    result = directory / f"{name}.out"
    completed = run(binary, "compare", source, "-q", *options, check=False)
    assert completed.returncode == 0, completed.stderr
    result.write_text(completed.stdout)
    return result


def test_merge_of_comparisons_equals_the_binary_byte_for_byte(binary: Path, tmp_path: Path) -> None:
    rng = random.Random(0xC0)
    for models, options in [("rm-a,rm-b,rm-c", ()), ("x,y", ("--normalization", "sum", "--beta", "0.5"))]:
        count = models.count(",") + 1
        shards = [
            compare_output(binary, tmp_path, f"{count}-{k}", compare_shard(rng, size, count, 1000 * k), "--models", models, *options)
            for k, size in enumerate([40, 75, 3])
        ]
        for chosen, extra in [(shards, ()), (shards[:2], ("--confidence", "0.8"))]:
            expected = cli_merge_line(binary, chosen, *extra)
            confidence = float(extra[1]) if extra else 0.95
            merged = prefeval.merge(chosen, confidence=confidence)
            assert rust_json({"summary": merged.raw}) == expected
        # A merged summary merges again, as the command's does.
        again = tmp_path / f"{count}-again.out"
        again.write_text(cli_merge_line(binary, shards[:2]) + "\n")
        assert rust_json({"summary": prefeval.merge([again, shards[2]]).raw}) == cli_merge_line(binary, [again, shards[2]])


def test_merge_refuses_to_mix_comparisons_and_evaluations(binary: Path, tmp_path: Path) -> None:
    rng = random.Random(0xC1)
    compared = compare_output(binary, tmp_path, "c", compare_shard(rng, 10, 2, 0), "--models", "a,b")
    other_order = compare_output(binary, tmp_path, "d", compare_shard(rng, 10, 2, 100), "--models", "b,a")
    evaluated = eval_shard(binary, tmp_path, "e", shard(rng, 10))
    with pytest.raises(MergeError) as refused:
        prefeval.merge([compared, evaluated])
    assert refused.value.indices == (0, 1) and "do not merge" in str(refused.value)
    assert run(binary, "merge", compared, evaluated, check=False).returncode == 2
    with pytest.raises(MergeError) as refused:
        prefeval.merge([compared, other_order])
    assert refused.value.path == "summary.run.models"
    assert run(binary, "merge", compared, other_order, check=False).returncode == 2


# ------------------------------------------------------------------------------------------------
# The dataset-scale figures: groups, calibration, the least probable pairs, length.


def grouped_shard(rng: random.Random, lists: int, first: int) -> str:
    """Lists with groups (some without), ids of both kinds, and rewards on a grid of ½, so that many
    pairs share a probability across shards."""
    lines = []
    for index in range(first, first + lists):
        n = rng.randint(2, 6)
        items = [{"id": f"i{k}", "reward": rng.randint(-3, 3) / 2, "rank": rng.randint(1, n)} for k in range(n)]
        if all(item["rank"] == items[0]["rank"] for item in items):
            items[0]["rank"] += 1
        list_ = {"id": index if index % 3 == 0 else f"l{index}", "items": items}
        if rng.random() < 0.85:
            list_["group"] = rng.choice(["math", "code", "chat", "safety é"])
        lines.append(json.dumps(list_))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def dataset_outputs(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, List[Path]]:
    directory = tmp_path_factory.mktemp("merge-dataset")
    rng = random.Random(20261204)
    flags = ("--calibration-bins", "6", "--top-disagreements", "12", "--beta", "0.7")
    out: Dict[str, List[Path]] = {"figures": [], "k": [], "bins": []}
    first = 0
    for number, size in enumerate([30, 1, 75, 12]):
        text = grouped_shard(rng, size, first)
        first += size
        out["figures"].append(eval_shard(binary, directory, f"figures-{number}", text, *flags))
    text = grouped_shard(rng, 20, 0)
    out["k"] = [eval_shard(binary, directory, "k5", text, "--top-disagreements", "5", "--beta", "0.7")]
    out["bins"] = [eval_shard(binary, directory, "bins4", text, "--calibration-bins", "4", "--beta", "0.7")]
    out["plain"] = [eval_shard(binary, directory, "plain", text, "--beta", "0.7")]
    return out


def test_groups_calibration_and_disagreements_merge_as_the_binary_merges_them(
    binary: Path, dataset_outputs: Dict[str, List[Path]], tmp_path: Path
) -> None:
    files = dataset_outputs["figures"]
    for chosen in (files, files[::-1], files[1:3], files[2:]):
        expected = cli_merge_line(binary, chosen)
        merged = prefeval.merge(chosen)
        assert line(merged) == expected
    merged = prefeval.merge(files)
    assert merged.groups is not None and merged.macro_accuracy is not None
    assert merged.calibration is not None and merged.totals is not None and merged.totals.calibration is not None
    assert merged.disagreements is not None and len(merged.disagreements) == 12
    assert {d.input for d in merged.disagreements} <= {0, 1, 2, 3}
    assert merged.run is not None and merged.run.calibration_bins == 6 and merged.run.top_disagreements == 12
    # A merge of a merge: its disagreements' inputs index the flattened inputs.
    first_two = write_line(tmp_path / "first-two.out", prefeval.merge(files[:2]))
    assert line(prefeval.merge([first_two, *files[2:]])) == cli_merge_line(binary, [first_two, *files[2:]])


def test_length_counts_merge_as_the_binary_merges_them(binary: Path, outputs: Dict[str, List[Path]], tmp_path: Path) -> None:
    edited = []
    for number, path in enumerate(outputs["sum"][1:4]):
        summary = _summary(path)
        pairs = summary["totals"]["pairs"]
        longer, shorter = pairs // 3, pairs // 4
        summary["totals"]["length"] = {
            "pairs": pairs - number,
            "pairs_preferred_longer": longer,
            "agreeing_preferred_longer": longer - 0.5,
            "pairs_preferred_shorter": shorter,
            "agreeing_preferred_shorter": shorter / 2,
        }
        edited.append(_write(summary, tmp_path / f"length-{number}.out"))
    # With and without length counts: the ones without count no pair.
    for chosen in (edited, [outputs["sum"][0], *edited]):
        expected = cli_merge_line(binary, chosen)
        merged = prefeval.merge(chosen)
        assert line(merged) == expected
        assert merged.length is not None and merged.totals is not None and merged.totals.length is not None


@pytest.mark.parametrize(
    "pick, field",
    [
        (lambda o: [o["figures"][0], o["bins"][0]], "summary.run.calibration_bins"),
        (lambda o: [o["k"][0], o["figures"][0]], "summary.run.calibration_bins"),
        (lambda o: [o["plain"][0], o["k"][0]], "summary.run.top_disagreements"),
        (lambda o: [o["k"][0], o["plain"][0]], "summary.run.top_disagreements"),
    ],
)
def test_other_k_or_bins_and_summaries_without_them_are_refused_as_the_binary_refuses_them(
    binary: Path, dataset_outputs: Dict[str, List[Path]], pick: Any, field: str
) -> None:
    files = pick(dataset_outputs)
    assert f"{field} " in refusal(binary, files)
    error = refused(files)
    assert error.path == field and error.indices == (0, 1)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda s: s["totals"]["calibration"][0].update(count=s["totals"]["calibration"][0]["count"] + 1),
         "summary.totals.calibration"),
        (lambda s: s["totals"]["calibration"][1].update(sum_observed=0.25), "summary.totals.calibration[1].sum_observed"),
        (lambda s: s["disagreements"].reverse(), "summary.disagreements[1].probability"),
        (lambda s: s["groups"][0]["totals"].update(agreeing=1e9), "summary.groups[0].totals.agreeing"),
    ],
)  # fmt: skip
def test_broken_dataset_figures_are_refused_naming_the_field_as_the_binary_does(
    binary: Path, dataset_outputs: Dict[str, List[Path]], tmp_path: Path, change: Any, field: str
) -> None:
    summary = _summary(dataset_outputs["figures"][0])
    change(summary)
    edited = _write(summary, tmp_path / "edited.out")
    # The first check broken names its field (a bin's count, say, or the sums it no longer fits).
    path = refused([edited]).path
    assert path is not None and path.startswith(field) and f"{path}:" in refusal(binary, [edited])
