"""`/ui` of the release binary in headless Chromium: a file uploaded through the page with the
options set in it, the report shown in its iframe carrying the figures `prefeval eval` (or
`prefeval compare`) gives for the same file and options; with tokens configured the page asks for
one and works with it. No request leaves the server's origin; the console shows no error."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict, List

from conftest import PAGE_TIMEOUT_MS, Server, Watched, run
from playwright.sync_api import Frame, Page
from report_dom import HEADLINE_FIGURES, cells, check_charts, check_comparisons, check_figures, check_run, summary_of

# A report of a few hundred lists is drawn in well under a second; the bound only stops a hang.
REPORT_TIMEOUT_MS = 30_000
TOKEN = "ui-test-token-7f3a"


def scored_lists(path: Path, models: int) -> None:
    """90 native lists, items with lengths; `models` == 0 gives each item a `reward` and each list
    one of three groups, else each item `rewards`, one reward per model (the compare form). Seeded."""
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as out:
        for index in range(90):
            items: List[Dict[str, Any]] = []
            for rank in range(rng.choice([2, 3, 4])):
                item: Dict[str, Any] = {"id": f"r{rank}", "length": rng.randint(10, 300)}
                if models:
                    item["rewards"] = [round(rng.gauss(1.0 - 0.4 * rank, 1.0), 4) for _ in range(models)]
                else:
                    item["reward"] = round(rng.gauss(1.0 - 0.4 * rank, 1.0), 4)
                items.append(item)
            line: Dict[str, Any] = {"id": f"l{index}", "items": items}
            if not models:
                line["group"] = ("a", "b", "c")[index % 3]  # a comparison has no groups
            out.write(json.dumps(line) + "\n")


def set_field(page: Page, element_id: str, value: str) -> None:
    """Sets a form control whatever its kind (a select or an input)."""
    control = page.locator(f"#{element_id}")
    if control.evaluate("element => element.tagName") == "SELECT":
        control.select_option(value)
    else:
        control.fill(value)


def report_frame(page: Page) -> Frame:
    """The report the page shows in iframe#report, once its headline is there (bounded). Through
    Playwright's frame API, so it works whatever the iframe's origin (srcdoc, blob: or a URL)."""
    page.frame_locator("iframe#report").locator(
        "section#headline table[data-table=headline] tbody tr"
    ).first.wait_for(state="attached", timeout=REPORT_TIMEOUT_MS)
    handle = page.locator("iframe#report").element_handle(timeout=PAGE_TIMEOUT_MS)
    frame = handle.content_frame() if handle else None
    assert frame is not None, "iframe#report holds no document"
    return frame


def headline_rows(frame: Frame) -> List[str]:
    rows: List[str] = frame.eval_on_selector_all(
        "table[data-table=headline] tbody tr", "rows => rows.map(r => r.getAttribute('data-model'))"
    )
    return rows


def upload(page: Page, path: Path, options: Dict[str, str]) -> None:
    page.set_input_files("#file", str(path))
    for element_id, value in options.items():
        set_field(page, element_id, value)
    page.click("#submit")


def open_ui(watched: Watched, server: Server) -> None:
    response = watched.page.goto(f"{server.url}/ui", wait_until="load")
    assert response is not None and response.ok, f"GET /ui answered {response.status if response else None}"


def same_origin(server: Server):
    prefixes = (f"{server.url}/", f"blob:{server.url}/")
    return lambda requested: requested.startswith(prefixes) or requested in ("about:blank", "about:srcdoc")


def check_evaluation_frame(frame: Frame, summary: Dict[str, Any]) -> None:
    assert frame.get_attribute("html", "data-report-kind") == "evaluation"
    # The options the page sent are the run's (the input's fingerprint is the upload's, not compared).
    check_run(frame, {key: value for key, value in summary["run"].items() if key != "input"})
    models = headline_rows(frame)
    assert len(models) == 1
    compared = check_figures(
        [c for c in cells(frame, "table[data-table=headline]") if c["model"] == models[0]],
        summary,
        HEADLINE_FIGURES,
        "ui headline",
    )
    assert compared >= 7
    bars = frame.eval_on_selector(
        "figure.chart[data-chart=reliability] svg", "svg => svg.querySelectorAll('.mark.bar').length"
    )
    assert bars == sum(1 for b in summary["calibration"]["bins"] if b["count"] > 0)
    disagreements = frame.eval_on_selector_all("table[data-table=disagreements] tbody tr", "rows => rows.length")
    assert disagreements == len(summary["disagreements"])
    check_charts(frame, ["reliability", "probabilities", "groups", "length"])


# The same options set in the page and given to `prefeval eval`.
EVAL_OPTIONS = {"format": "native", "calibration_bins": "10", "top_disagreements": "20"}
EVAL_FLAGS = ("--format", "native", "--calibration-bins", "10", "--top-disagreements", "20")
CONTROLS = (
    "file", "paste", "format", "normalization", "beta", "calibration_bins", "top_disagreements", "models",
    "token", "submit", "status",
)  # fmt: skip


def test_ui_evaluates_an_uploaded_file(
    prefeval: Path, start_server, watched: Watched, tmp_path: Path, out_dir: Path
) -> None:
    scored_lists(tmp_path / "lists.ndjson", models=0)
    run(prefeval, "eval", "lists.ndjson", *EVAL_FLAGS, "-o", "out.ndjson", cwd=tmp_path)
    summary = summary_of(tmp_path / "out.ndjson")
    server = start_server()
    open_ui(watched, server)
    page = watched.page
    page.screenshot(path=str(out_dir / "ui-empty.png"), full_page=True)
    upload(page, tmp_path / "lists.ndjson", EVAL_OPTIONS)
    frame = report_frame(page)
    check_evaluation_frame(frame, summary)
    page.screenshot(path=str(out_dir / "ui-evaluation.png"), full_page=True)
    watched.assert_clean(same_origin(server))


def test_ui_compares_models(prefeval: Path, start_server, watched: Watched, tmp_path: Path, out_dir: Path) -> None:
    scored_lists(tmp_path / "lists.ndjson", models=2)
    run(prefeval, "compare", "lists.ndjson", "--models", "base,tuned", "-o", "compare.out.ndjson", cwd=tmp_path)
    summary = summary_of(tmp_path / "compare.out.ndjson")
    server = start_server()
    open_ui(watched, server)
    page = watched.page
    upload(page, tmp_path / "lists.ndjson", {"format": "native", "models": "base,tuned"})
    frame = report_frame(page)
    assert frame.get_attribute("html", "data-report-kind") == "comparison"
    assert headline_rows(frame) == ["base", "tuned"]
    found = cells(frame, "table[data-table=headline]")
    for model in summary["models"]:
        expected = {"lists": summary["lists"], "pairs": summary["pairs"], **model}
        figures = [c for c in found if c["model"] == model["model"]]
        assert check_figures(figures, expected, HEADLINE_FIGURES, f"ui {model['model']}") >= 7
    check_comparisons(frame, summary["comparisons"])
    check_charts(frame, ["comparison-accuracy", "comparison-loss", "wins"])
    page.screenshot(path=str(out_dir / "ui-comparison.png"), full_page=True)
    watched.assert_clean(same_origin(server))


def test_ui_asks_for_the_token_and_sends_it(
    prefeval: Path, start_server, watched: Watched, tmp_path: Path, out_dir: Path
) -> None:
    scored_lists(tmp_path / "lists.ndjson", models=0)
    run(prefeval, "eval", "lists.ndjson", *EVAL_FLAGS, "-o", "out.ndjson", cwd=tmp_path)
    summary = summary_of(tmp_path / "out.ndjson")
    server = start_server("--api-tokens", TOKEN)
    open_ui(watched, server)
    page = watched.page
    token = page.locator("#token")
    assert token.is_visible(), "with tokens configured, /ui does not ask for one"
    page.screenshot(path=str(out_dir / "ui-token.png"), full_page=True)
    token.fill(TOKEN)
    upload(page, tmp_path / "lists.ndjson", EVAL_OPTIONS)
    check_evaluation_frame(report_frame(page), summary)
    watched.assert_clean(same_origin(server))


def test_ui_has_its_controls_and_no_token_field_without_tokens(start_server, watched: Watched) -> None:
    server = start_server()
    open_ui(watched, server)
    assert not watched.page.locator("#token").is_visible()
    for element_id in CONTROLS:
        assert watched.page.locator(f"#{element_id}").count() == 1, f"/ui has no #{element_id}"
    watched.assert_clean(same_origin(server))

