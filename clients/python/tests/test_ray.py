"""``prefeval.integrations.ray``: a Ray Dataset evaluated block by block on a local Ray, through the
service and through ``prefeval eval``, against one ``prefeval eval`` of the same rows."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")

import prefeval  # noqa: E402
from prefeval._arrow_json import ndjson  # noqa: E402
from prefeval.integrations.ray import (  # noqa: E402
    BlockLineError,
    DuplicateBlocksError,
    evaluate_ray_dataset,
)

BLOCKS = 4
PATHS = ["service", "cli"]


@pytest.fixture(scope="module", autouse=True)
def local_ray(binary: Path) -> Iterator[None]:
    # The workers find the binary through $PREFEVAL_BINARY when binary= is not given.
    runtime_env = {"env_vars": {"PREFEVAL_BINARY": str(binary)}}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, runtime_env=runtime_env)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def native_rows(lists: int, seed: int = 7) -> List[Dict[str, Any]]:
    """Ranked lists of 2 to 5 items, with ties in the ranking now and then."""
    rng = random.Random(seed)
    rows = []
    for index in range(lists):
        size = rng.randint(2, 5)
        rewards = [rng.gauss(0.0, 1.5) for _ in range(size)]
        ranks = list(range(1, size + 1))
        rng.shuffle(ranks)
        if size > 2 and rng.random() < 0.1:
            ranks[-1] = ranks[0]
        rows.append({"id": f"l{index}", "items": [{"reward": r, "rank": k} for r, k in zip(rewards, ranks)]})
    return rows


def pairs_rows(lists: int, seed: int = 11) -> List[Dict[str, Any]]:
    """Pairs under the data's own column names, with a text column no format reads."""
    rng = random.Random(seed)
    return [
        {
            "score_chosen": rng.gauss(0.4, 1.0),
            "score_rejected": rng.gauss(0.0, 1.0),
            "subset": rng.choice(["chat", "code", "safety"]),
            "prompt": "x" * rng.randint(0, 40),
        }
        for _ in range(lists)
    ]


def single_eval(binary: Path, table: Any, *flags: str) -> Dict[str, Any]:
    """One ``prefeval eval -`` of the whole table: its summary object."""
    body = ndjson(table.combine_chunks().to_batches()[0]) if table.num_rows else b""
    done = subprocess.run(
        [str(binary), "eval", "-", "--quiet", "--results=errors", *flags], input=body, capture_output=True, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    summary: Dict[str, Any] = json.loads(done.stdout.splitlines()[-1])["summary"]
    return summary


def assert_same_figures(merged: prefeval.StreamSummary, whole: Dict[str, Any]) -> None:
    for name in ("lists", "pairs", "lines_failed"):
        assert merged.raw[name] == whole[name], name
    assert merged.totals is not None
    for name in ("lists", "pairs", "kendall_tau_lists"):
        assert merged.totals.raw[name] == whole["totals"][name], name
    for name in ("loss", "accuracy", "chance_loss", "kendall_tau", "loss_se", "accuracy_se", "loss_ci", "accuracy_ci"):
        mine, theirs = merged.raw.get(name), whole.get(name)
        assert (mine is None) == (theirs is None), name
        for a, b in zip(mine if isinstance(mine, list) else [mine], theirs if isinstance(theirs, list) else [theirs]):
            if a is not None:
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300), (name, a, b)
    for name in ("normalization", "beta", "format", "confidence", "model"):
        assert merged.raw["run"].get(name) == whole["run"].get(name), name


def evaluate(path: str, ds: Any, url: str, binary: Path, **options: Any) -> prefeval.StreamSummary:
    if path == "service":
        return evaluate_ray_dataset(ds, url, **options)
    return evaluate_ray_dataset(ds, binary=str(binary), **options)


@pytest.mark.parametrize("path", PATHS)
def test_blocks_merge_to_one_evaluation_of_the_whole(path: str, url: str, binary: Path) -> None:
    table = pa.Table.from_pylist(native_rows(3000))
    ds = ray.data.from_arrow(table).repartition(BLOCKS)
    merged = evaluate(path, ds, url, binary)
    assert merged.run is not None and merged.run.inputs is not None
    assert len(merged.run.inputs) == BLOCKS  # one summary per block, each a distinct input
    assert sum(fingerprint.bytes for fingerprint in merged.run.inputs) == len(ndjson(table.to_batches()[0]))
    assert_same_figures(merged, single_eval(binary, table))
    assert merged.lines_failed == 0


@pytest.mark.parametrize("path", PATHS)
def test_options_reach_every_block(path: str, url: str, binary: Path) -> None:
    table = pa.Table.from_pylist(pairs_rows(2500))
    ds = ray.data.from_arrow(table).repartition(BLOCKS)
    fields = {"chosen_reward": "score_chosen", "rejected_reward": "score_rejected"}
    merged = evaluate(
        path, ds, url, binary,
        format="pairs", fields=fields, unknown_fields="ignore", model="rm-7b",
        normalization="sum", beta=2.5, confidence=0.9,
    )  # fmt: skip
    whole = single_eval(
        binary, table, "--format=pairs", "--fields=chosen_reward:score_chosen,rejected_reward:score_rejected",
        "--unknown-fields=ignore", "--model=rm-7b", "--normalization=sum", "--beta=2.5", "--confidence=0.9",
    )  # fmt: skip
    assert merged.lists == 2500 and merged.lines_failed == 0  # no block refused the unread columns
    assert_same_figures(merged, whole)
    assert merged.run is not None and merged.run.inputs is not None and len(merged.run.inputs) == BLOCKS
    # merge refuses summaries whose beta, normalization or model differ from the first's: every
    # block was evaluated with them.
    assert (merged.run.beta, merged.run.normalization, merged.run.model) == (2.5, "sum", "rm-7b")
    assert merged.run.confidence == 0.9


def bad_table() -> Any:
    rows = pairs_rows(2000, seed=3)
    rows[1234]["score_rejected"] = None  # left out of its line: a required field missing
    return pa.Table.from_pylist(rows)


@pytest.mark.parametrize("path", PATHS)
def test_a_bad_line_is_counted_and_raised_after_the_merge(path: str, url: str, binary: Path) -> None:
    table = bad_table()
    ds = ray.data.from_arrow(table).repartition(BLOCKS)
    fields = {"chosen_reward": "score_chosen", "rejected_reward": "score_rejected"}
    options: Dict[str, Any] = dict(format="pairs", fields=fields, unknown_fields="ignore")
    whole = single_eval(
        binary, table, "--format=pairs", "--fields=chosen_reward:score_chosen,rejected_reward:score_rejected",
        "--unknown-fields=ignore",
    )  # fmt: skip
    assert whole["lines_failed"] == 1

    with pytest.raises(BlockLineError) as raised:
        evaluate(path, ds, url, binary, **options)
    error = raised.value
    assert "score_rejected" in error.message and error.path == "score_rejected"
    assert error.code and error.line >= 1
    assert error.summary.lines_failed == 1
    assert_same_figures(error.summary, whole)

    returned = evaluate(path, ds, url, binary, line_errors="return", **options)
    assert returned.lines_failed == 1 and returned.lists == 1999
    first: Optional[Dict[str, Any]] = returned.raw["first_error"]
    assert first is not None and "score_rejected" in first["error"]["message"]
    assert_same_figures(returned, whole)


def test_skip_only_counts(url: str, binary: Path) -> None:
    ds = ray.data.from_arrow(bad_table()).repartition(BLOCKS)
    fields = {"chosen_reward": "score_chosen", "rejected_reward": "score_rejected"}
    skipped = evaluate_ray_dataset(ds, url, format="pairs", fields=fields, unknown_fields="ignore", line_errors="skip")
    assert skipped.lines_failed == 1 and skipped.lists == 1999
    assert "first_error" not in skipped.raw


def test_identical_blocks_are_refused_not_dropped(binary: Path) -> None:
    # A repetitive dataset cut into equal blocks: the blocks hold the same bytes.
    ds = ray.data.from_items([{"chosen_reward": 1.0, "rejected_reward": 0.0}] * 400).repartition(BLOCKS)
    with pytest.raises(DuplicateBlocksError, match="same bytes .* `id` column"):
        evaluate_ray_dataset(ds, format="pairs", binary=str(binary))
    # With an id per row (which the formats read), every block is distinct. (No binary=: the
    # workers' $PREFEVAL_BINARY.)
    with_ids = [{"id": str(i), "chosen_reward": 1.0, "rejected_reward": 0.0} for i in range(400)]
    merged = evaluate_ray_dataset(ray.data.from_items(with_ids).repartition(BLOCKS), format="pairs")
    assert merged.lists == 400 and merged.accuracy == 1.0


def test_a_missing_binary_is_a_clear_error() -> None:
    ds = ray.data.from_items([{"chosen_reward": 1.0, "rejected_reward": 0.0}])
    with pytest.raises(Exception, match="is not an executable file"):
        evaluate_ray_dataset(ds, format="pairs", binary="/nonexistent/prefeval")


def test_bad_options_are_refused_on_the_driver() -> None:
    ds = ray.data.from_items([{"chosen_reward": 1.0, "rejected_reward": 0.0}])
    with pytest.raises(ValueError, match="unknown_fields"):
        evaluate_ray_dataset(ds, "http://127.0.0.1:9", unknown_fields="drop")
    with pytest.raises(ValueError, match="line_errors"):
        evaluate_ray_dataset(ds, "http://127.0.0.1:9", line_errors="yield")
    with pytest.raises(TypeError, match="results"):
        evaluate_ray_dataset(ds, "http://127.0.0.1:9", results="all")


def test_importing_without_ray_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['ray'] = None; sys.modules['ray.data'] = None\n"
        "try:\n    import prefeval.integrations.ray\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'prefeval[ray]'" in done.stdout


def compare_rows(lists: int, models: int, seed: int = 13) -> List[Dict[str, Any]]:
    """Lists in /v1/compare's shape: 2 to 5 items, one reward per model, ranked by array order."""
    rng = random.Random(seed)
    return [
        {"id": f"c{index}", "items": [{"rewards": [rng.gauss(0.0, 1.5) for _ in range(models)]} for _ in range(rng.randint(2, 5))]}
        for index in range(lists)
    ]


def single_compare(binary: Path, table: Any, *flags: str) -> Dict[str, Any]:
    """One ``prefeval compare -`` of the whole table: its summary object."""
    body = ndjson(table.combine_chunks().to_batches()[0])
    done = subprocess.run(
        [str(binary), "compare", "-", "--quiet", "--results=errors", *flags], input=body, capture_output=True, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    summary: Dict[str, Any] = json.loads(done.stdout.splitlines()[-1])["summary"]
    return summary


def assert_close_values(mine: Any, theirs: Any, at: str) -> None:
    """Equal, numbers within 1e-12 relative (the blocks' sums are added in another order)."""
    if isinstance(theirs, dict):
        assert set(mine) == set(theirs), at
        for key in theirs:
            assert_close_values(mine[key], theirs[key], f"{at}.{key}")
    elif isinstance(theirs, list):
        assert len(mine) == len(theirs), at
        for k, (a, b) in enumerate(zip(mine, theirs)):
            assert_close_values(a, b, f"{at}[{k}]")
    elif isinstance(theirs, float):
        assert math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-300), (at, mine, theirs)
    else:
        assert mine == theirs, at


@pytest.mark.parametrize("path", PATHS)
def test_blocks_of_a_comparison_merge_to_one_comparison_of_the_whole(path: str, url: str, binary: Path) -> None:
    from prefeval.integrations.ray import compare_ray_dataset

    table = pa.Table.from_pylist(compare_rows(2400, 3))
    ds = ray.data.from_arrow(table).repartition(BLOCKS)
    models = ["rm-a", "rm-b", "rm-c"]
    options: Dict[str, Any] = {"normalization": "comparisons", "beta": 0.5}
    if path == "service":
        merged = compare_ray_dataset(ds, models, url, **options)
    else:
        merged = compare_ray_dataset(ds, models, binary=str(binary), **options)
    whole = single_compare(binary, table, "--models=rm-a,rm-b,rm-c", "--normalization=comparisons", "--beta=0.5")
    assert merged.lists == 2400 and merged.lines_failed == 0
    assert len(merged.raw["run"]["inputs"]) == BLOCKS
    for field in ("normalization", "confidence", "lists", "pairs", "models", "comparisons"):
        assert_close_values(merged.raw[field], whole[field], field)
    assert merged.raw["run"]["models"] == models
