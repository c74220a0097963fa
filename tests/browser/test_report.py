"""Reports written by the release binary as a user writes them (`prefeval eval`, `compare`,
`report`), opened from disk in headless Chromium: every number shown equals the JSON it came from,
every chart is an SVG with its marks, the disagreements table sorts, filters and downloads, and the
page makes no request and logs no error."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict

from conftest import REPO, Watched, run
from report_dom import (
    check_charts,
    check_comparisons,
    check_disagreements,
    check_groups,
    check_headline,
    check_length,
    check_reliability,
    check_run,
    summary_of,
)

HH_RLHF = REPO / "examples" / "exports" / "hh-rlhf.jsonl.gz"
HH_RLHF_FIELDS = "chosen_reward:chosen_score,rejected_reward:rejected_score"
SCORED = REPO / "examples" / "compare" / "hh-rlhf-scored.jsonl.gz"
SHARED_FLAGS = ("--format", "pairs", "--unknown-fields", "ignore", "--normalization", "comparisons", "--beta", "0.01")
COMPARE_FIELDS = (
    "chosen_rewards:chosen_scores,rejected_rewards:rejected_scores,"
    "chosen_length:chosen_chars,rejected_length:rejected_chars"
)
ANALYSIS = ("--calibration-bins", "10", "--top-disagreements", "20")


def open_report(watched: Watched, path: Path) -> str:
    """Opens a report from disk; the only request allowed afterwards is that file."""
    url = path.resolve().as_uri()
    response = watched.page.goto(url, wait_until="load")
    assert response is None or response.ok
    return url


def finish(watched: Watched, url: str, out_dir: Path, name: str) -> None:
    watched.page.screenshot(path=str(out_dir / f"{name}.png"), full_page=True)
    watched.assert_clean(lambda requested: requested == url)


def evaluation_checks(watched: Watched, summary: Dict[str, Any], model: str, out_dir: Path, name: str) -> None:
    page = watched.page
    assert page.get_attribute("html", "data-report-kind") == "evaluation"
    check_run(page, summary["run"])
    check_headline(page, {model: summary})
    check_reliability(page, model, summary["calibration"])
    check_disagreements(page, 0, summary["disagreements"], out_dir, name)


def test_plain_evaluation_report(prefeval: Path, watched: Watched, tmp_path: Path, out_dir: Path) -> None:
    """HH-RLHF rows as the README evaluates them, with calibration bins and disagreements: eval
    then `prefeval report`."""
    run(
        prefeval,
        "eval", str(HH_RLHF), "--model", "hh-baseline", "--format", "pairs", "--unknown-fields", "ignore",
        "--fields", HH_RLHF_FIELDS, *ANALYSIS, "-o", "out.ndjson",
        cwd=tmp_path,
    )  # fmt: skip
    run(prefeval, "report", "out.ndjson", "-o", "report.html", cwd=tmp_path)
    summary = summary_of(tmp_path / "out.ndjson")
    url = open_report(watched, tmp_path / "report.html")
    evaluation_checks(watched, summary, "hh-baseline", out_dir, "plain")
    check_charts(watched.page, ["reliability", "probabilities"])
    finish(watched, url, out_dir, "plain")


def test_eval_writes_the_report_in_the_same_run(
    prefeval: Path, watched: Watched, tmp_path: Path, out_dir: Path
) -> None:
    """`prefeval eval ... --report report.html`: the same report beside the usual output."""
    run(
        prefeval,
        "eval", str(HH_RLHF), "--model", "hh-baseline", "--format", "pairs", "--unknown-fields", "ignore",
        "--fields", HH_RLHF_FIELDS, *ANALYSIS, "-o", "out.ndjson", "--report", "report.html",
        cwd=tmp_path,
    )  # fmt: skip
    summary = summary_of(tmp_path / "out.ndjson")
    url = open_report(watched, tmp_path / "report.html")
    evaluation_checks(watched, summary, "hh-baseline", out_dir, "eval-report")
    check_charts(watched.page, ["reliability", "probabilities"])
    finish(watched, url, out_dir, "eval-report")


def grouped_lists(path: Path) -> None:
    """120 native lists of 2 to 4 items in four groups, each item with a length, seeded."""
    rng = random.Random(21)
    groups = ["chat", "code", "math", "safety"]
    with open(path, "w", encoding="utf-8") as out:
        for index in range(120):
            items = [
                {"id": f"r{rank}", "reward": round(rng.gauss(1.0 - 0.5 * rank, 1.0), 4), "length": rng.randint(20, 400)}
                for rank in range(rng.choice([2, 2, 3, 4]))
            ]
            out.write(json.dumps({"id": f"list-{index:03d}", "group": groups[index % 4], "items": items}) + "\n")


def test_grouped_report_with_lengths(prefeval: Path, watched: Watched, tmp_path: Path, out_dir: Path) -> None:
    grouped_lists(tmp_path / "grouped.ndjson")
    run(
        prefeval,
        "eval", "grouped.ndjson", "--model", "grouped-rm", *ANALYSIS, "-o", "out.ndjson",
        cwd=tmp_path,
    )  # fmt: skip
    run(prefeval, "report", "out.ndjson", "-o", "report.html", cwd=tmp_path)
    summary = summary_of(tmp_path / "out.ndjson")
    assert len(summary["groups"]) == 4 and summary["length"]["pairs"] > 0
    url = open_report(watched, tmp_path / "report.html")
    evaluation_checks(watched, summary, "grouped-rm", out_dir, "grouped")
    assert summary.get("macro_accuracy") is not None
    check_groups(watched.page, "grouped-rm", summary["groups"])
    check_length(watched.page, "div.model[data-model='grouped-rm'] table[data-table=length]", [summary["length"]])
    check_charts(watched.page, ["reliability", "probabilities", "groups", "length"])
    finish(watched, url, out_dir, "grouped")


def test_comparison_report(prefeval: Path, watched: Watched, tmp_path: Path, out_dir: Path) -> None:
    """The README's comparison of two models on the HH-RLHF pairs: `prefeval compare`, then
    `prefeval report` of its output."""
    run(
        prefeval,
        "compare", str(SCORED), "--models", "length,length-penalized", *SHARED_FLAGS,
        "--fields", COMPARE_FIELDS, "-o", "compare.out.ndjson",
        cwd=tmp_path,
    )  # fmt: skip
    run(prefeval, "report", "compare.out.ndjson", "-o", "report.html", cwd=tmp_path)
    summary = summary_of(tmp_path / "compare.out.ndjson")
    url = open_report(watched, tmp_path / "report.html")
    page = watched.page
    assert page.get_attribute("html", "data-report-kind") == "comparison"
    check_run(page, summary["run"])
    check_headline(
        page, {m["model"]: {"lists": summary["lists"], "pairs": summary["pairs"], **m} for m in summary["models"]}
    )
    check_comparisons(page, summary["comparisons"])
    check_length(page, "section#length-comparison table[data-table=length]", [m["length"] for m in summary["models"]])
    check_charts(page, ["comparison-accuracy", "comparison-loss", "wins", "length"])
    finish(watched, url, out_dir, "comparison")


def test_report_of_two_evaluations(prefeval: Path, watched: Watched, tmp_path: Path, out_dir: Path) -> None:
    """Two eval outputs of the same lists given both to `prefeval report`: the comparison `prefeval
    diff` writes, and each model's own calibration and disagreements."""
    for model, score in (("length", "length_score"), ("length-penalized", "penalized_score")):
        fields = (
            f"chosen_reward:chosen_{score},rejected_reward:rejected_{score},"
            "chosen_length:chosen_chars,rejected_length:rejected_chars"
        )
        run(
            prefeval,
            "eval", str(SCORED), "--model", model, *SHARED_FLAGS, "--fields", fields, *ANALYSIS,
            "-o", f"{model}.out.ndjson",
            cwd=tmp_path,
        )  # fmt: skip
    diff = run(prefeval, "diff", "length.out.ndjson", "length-penalized.out.ndjson", cwd=tmp_path)
    (tmp_path / "diff.ndjson").write_bytes(diff.stdout)
    run(prefeval, "report", "length.out.ndjson", "length-penalized.out.ndjson", "-o", "report.html", cwd=tmp_path)
    compared = summary_of(tmp_path / "diff.ndjson")
    url = open_report(watched, tmp_path / "report.html")
    page = watched.page
    assert page.get_attribute("html", "data-report-kind") == "comparison"
    check_headline(
        page, {m["model"]: {"lists": compared["lists"], "pairs": compared["pairs"], **m} for m in compared["models"]}
    )
    check_comparisons(page, compared["comparisons"])
    check_charts(page, ["comparison-accuracy", "comparison-loss", "wins", "reliability", "probabilities", "length"])
    for index, model in enumerate(("length", "length-penalized")):
        summary = summary_of(tmp_path / f"{model}.out.ndjson")
        check_reliability(page, model, summary["calibration"])
        check_length(page, f"div.model[data-model='{model}'] table[data-table=length]", [summary["length"]])
        check_disagreements(page, index, summary["disagreements"], out_dir, "two-evaluations")
    finish(watched, url, out_dir, "two-evaluations")

