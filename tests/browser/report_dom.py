"""What a report shows, read from the rendered DOM (its contract: data-report-kind, data-run,
data-table, data-figure/data-value, figure.chart with data-marks), and the checks every report's
test makes against the JSON it was drawn from."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

from playwright.sync_api import Frame, Page

# A Page or the Frame of /ui's iframe: both query the same way.
Doc = Any

HEADLINE_FIGURES = (
    "lists",
    "pairs",
    "loss",
    "loss_ci",
    "chance_loss",
    "accuracy",
    "accuracy_ci",
    "kendall_tau",
    "macro_accuracy",
)
COUNTS = {
    "lists", "pairs", "lists_a_better", "lists_b_better", "lists_tied", "pairs_preferred_longer",
    "pairs_preferred_shorter",
}  # fmt: skip
LENGTH_FIGURES = (
    "pairs",
    "baseline_accuracy",
    "reward_follows_length",
    "accuracy_preferred_longer",
    "pairs_preferred_longer",
    "accuracy_preferred_shorter",
    "pairs_preferred_shorter",
)
COMPARISON_FIGURES = (
    "loss_difference",
    "loss_difference_ci",
    "loss_p_value",
    "loss_p_value_holm",
    "accuracy_difference",
    "accuracy_difference_ci",
    "accuracy_p_value",
    "accuracy_p_value_holm",
    "lists_a_better",
    "lists_b_better",
    "lists_tied",
)


def summary_of(path: Path) -> Dict[str, Any]:
    """The `summary` of an output's last line."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    summary: Dict[str, Any] = json.loads(lines[-1])["summary"]
    return summary


def shown(value: float) -> str:
    """`value` rounded to four significant digits as the report states it shows numbers: fixed
    notation from 1e-4 to 1e6, else scientific; trailing zeros of a fraction dropped."""
    if value == 0:
        return "0"
    exponent = Decimal(value).adjusted()
    if not -4 <= exponent < 6:
        mantissa, power = f"{value:.3e}".split("e")
        return f"{_trim(mantissa)}e{int(power)}"
    return _trim(f"{value:.{max(3 - exponent, 0)}f}")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def shown_figure(name: str, value: Any) -> str:
    if isinstance(value, list):
        return f"[{shown(value[0])}, {shown(value[1])}]"
    if name in COUNTS:
        return str(value)
    return shown(value)


def cells(doc: Doc, selector: str) -> List[Dict[str, Optional[str]]]:
    """Every `[data-figure]` cell under `selector`: its row's data-model / data-pair, figure, JSON
    value and text."""
    found: List[Dict[str, Optional[str]]] = doc.eval_on_selector_all(
        f"{selector} [data-figure]",
        """cells => cells.map(cell => {
            const row = cell.closest('tr');
            return {
              model: row && row.getAttribute('data-model'),
              pair: row && row.getAttribute('data-pair'),
              figure: cell.getAttribute('data-figure'),
              value: cell.getAttribute('data-value'),
              text: cell.textContent,
              none: cell.classList.contains('none'),
            };
        })""",
    )
    return found


def check_figures(found: List[Dict[str, Any]], expected: Dict[str, Any], names: tuple, where: str) -> int:
    """Each of `names` that `expected` (the JSON) has: its cell's data-value parses to the same
    number exactly and its text is that number rounded; one it lacks is shown as absent. Returns
    how many figures were compared."""
    by_figure = {cell["figure"]: cell for cell in found}
    compared = 0
    for name in names:
        cell = by_figure.get(name)
        value = expected.get(name)
        if value is None:
            assert cell is None or cell["none"], f"{where}: {name} is shown but the JSON has none"
            continue
        assert cell is not None, f"{where}: {name} ({value}) is not shown"
        assert json.loads(cell["value"]) == value, f"{where}: {name} data-value {cell['value']} != JSON {value!r}"
        assert cell["text"] == shown_figure(name, value), f"{where}: {name} shown {cell['text']!r} for {value!r}"
        compared += 1
    return compared


def check_headline(doc: Doc, expected: Dict[str, Dict[str, Any]]) -> None:
    """One headline row per model of `expected` (model -> its JSON figures), every figure equal."""
    found = cells(doc, "section#headline table[data-table=headline]")
    models = doc.eval_on_selector_all(
        "table[data-table=headline] tbody tr", "rows => rows.map(r => r.getAttribute('data-model'))"
    )
    assert models == list(expected), f"headline rows {models} != models {list(expected)}"
    for model, figures in expected.items():
        compared = check_figures(
            [cell for cell in found if cell["model"] == model], figures, HEADLINE_FIGURES, f"headline {model}"
        )
        assert compared >= 7, f"headline {model}: only {compared} figures compared"


def run_table(doc: Doc) -> Dict[str, str]:
    rows: Dict[str, str] = doc.eval_on_selector_all(
        "section#run tr[data-run]",
        "rows => Object.fromEntries(rows.map(r => [r.getAttribute('data-run'), r.querySelector('td').textContent]))",
    )
    return rows


def check_run(doc: Doc, run: Dict[str, Any]) -> None:
    shown_run = run_table(doc)
    if "model" in run:
        assert shown_run["model"] == run["model"]
    if "models" in run:
        assert shown_run["models"] == ", ".join(run["models"])
    assert shown_run["normalization"] == run["normalization"]
    assert float(shown_run["beta"]) == run["beta"]
    assert shown_run["format"] == run["format"]
    assert float(shown_run["confidence"]) == run["confidence"]
    assert shown_run["prefeval"] == f"prefeval {run['prefeval']}"
    if "input" in run:
        assert shown_run["input"] == f"{run['input']['bytes']} bytes, xxh3 {run['input']['xxh3']}"


def charts(doc: Doc) -> List[Dict[str, Any]]:
    """Every figure.chart: its name, data-marks, whether it holds an <svg>, and its marks by class."""
    found: List[Dict[str, Any]] = doc.eval_on_selector_all(
        "figure",
        """figures => figures.map(figure => {
            const svg = figure.querySelector(':scope > svg');
            const marks = svg ? Array.from(svg.querySelectorAll('.mark')) : [];
            return {
              chart: figure.getAttribute('data-chart'),
              isChart: figure.classList.contains('chart'),
              declared: Number(figure.getAttribute('data-marks')),
              svg: svg !== null,
              rendered: svg ? svg.getBoundingClientRect().width > 0 : false,
              marks: marks.length,
              bars: svg ? svg.querySelectorAll('.mark.bar').length : 0,
              model: figure.closest('[data-model]') ? figure.closest('[data-model]').getAttribute('data-model') : null,
            };
        })""",
    )
    return found


def check_charts(doc: Doc, wanted: List[str]) -> List[Dict[str, Any]]:
    """Every figure is a chart holding a rendered <svg> whose `.mark` count is its data-marks (> 0),
    and each of `wanted` is drawn."""
    found = charts(doc)
    for chart in found:
        assert chart["isChart"], f"a figure that is no figure.chart: {chart}"
        assert chart["svg"] and chart["rendered"], f"chart {chart['chart']} has no rendered <svg>"
        assert chart["marks"] == chart["declared"] > 0, f"chart {chart['chart']}: {chart}"
    names = {chart["chart"] for chart in found}
    missing = [name for name in wanted if name not in names]
    assert not missing, f"charts missing: {missing} (drawn: {sorted(names)})"
    return found


def check_reliability(doc: Doc, model: str, calibration: Dict[str, Any]) -> None:
    """One `.mark.bar` per non-empty bin of the JSON; ECE and Brier equal to the JSON."""
    scope = f"div.model[data-model='{model}']"
    bars = doc.eval_on_selector(
        f"{scope} figure.chart[data-chart=reliability] svg", "svg => svg.querySelectorAll('.mark.bar').length"
    )
    non_empty = sum(1 for b in calibration["bins"] if b["count"] > 0)
    assert bars == non_empty > 0, f"{model}: {bars} reliability bars, {non_empty} non-empty bins"
    found = cells(doc, f"{scope} section[data-section=calibration]")
    check_figures(found, calibration, ("ece", "brier"), f"calibration {model}")


def check_groups(doc: Doc, model: str, groups: List[Dict[str, Any]]) -> None:
    scope = f"div.model[data-model='{model}'] table[data-table=groups]"
    names = doc.eval_on_selector_all(f"{scope} tbody tr", "rows => rows.map(r => r.getAttribute('data-group'))")
    assert names == [group["group"] for group in groups], f"groups rows {names}"
    found = cells(doc, scope)
    rows = doc.eval_on_selector_all(
        f"{scope} tbody tr",
        """rows => rows.map(r => Object.fromEntries(Array.from(r.querySelectorAll('[data-figure]'))
            .map(c => [c.getAttribute('data-figure'), c.getAttribute('data-value')])))""",
    )
    assert found
    for group, row in zip(groups, rows):
        for name in ("lists", "pairs", "accuracy", "loss"):
            if name in row and group.get(name) is not None:
                assert json.loads(row[name]) == group[name], f"group {group['group']}: {name}"


def check_length(doc: Doc, table: str, expected: List[Dict[str, Any]]) -> None:
    """The length-bias table under `table`: one row per `summary.length` of `expected`, in order,
    every figure equal."""
    rows = doc.eval_on_selector_all(
        f"{table} tbody tr",
        """rows => rows.map(r => Array.from(r.querySelectorAll('[data-figure]')).map(c => ({
            figure: c.getAttribute('data-figure'), value: c.getAttribute('data-value'),
            text: c.textContent, none: c.classList.contains('none') })))""",
    )
    assert len(rows) == len(expected) > 0, f"{len(rows)} length rows for {len(expected)} models"
    for index, (found, length) in enumerate(zip(rows, expected)):
        compared = check_figures(found, length, LENGTH_FIGURES, f"length row {index}")
        assert compared >= 5, f"length row {index}: {compared} figures"


def check_comparisons(doc: Doc, comparisons: List[Dict[str, Any]]) -> None:
    """One row per pair of models, every difference, p-value (Holm's too) and count equal."""
    pairs = doc.eval_on_selector_all(
        "section#comparison table[data-table=comparisons] tbody tr",
        "rows => rows.map(r => r.getAttribute('data-pair'))",
    )
    assert pairs == [f"{c['a']}|{c['b']}" for c in comparisons], f"comparison rows {pairs}"
    found = cells(doc, "section#comparison table[data-table=comparisons]")
    for comparison in comparisons:
        pair = f"{comparison['a']}|{comparison['b']}"
        compared = check_figures(
            [cell for cell in found if cell["pair"] == pair], comparison, COMPARISON_FIGURES, f"comparison {pair}"
        )
        assert compared == len(COMPARISON_FIGURES), f"comparison {pair}: {compared} figures"


def disagreement_rows(doc: Doc, table: str) -> List[Dict[str, Any]]:
    """The rows of a disagreements table in their order: each cell's JSON value by column, and
    whether the row is shown."""
    rows: List[Dict[str, Any]] = doc.eval_on_selector_all(
        f"{table} tbody tr",
        """rows => rows.map(r => ({
            shown: r.style.display !== 'none' && r.getClientRects().length > 0,
            text: r.textContent,
            cells: Object.fromEntries(Array.from(r.cells).map(c =>
              [c.getAttribute('data-figure'), c.getAttribute('data-value')])),
        }))""",
    )
    for row in rows:
        row["cells"] = {k: (json.loads(v) if v is not None else None) for k, v in row["cells"].items()}
    return rows


def check_disagreements(page: Page, model_index: int, expected: List[Dict[str, Any]], out_dir: Path, name: str) -> None:
    """The table holds the JSON's least probable pairs; clicking a header sorts it both ways;
    the filter hides rows; the CSV download holds the table's rows."""
    table = f"table#table-disagreements-m{model_index}"
    columns = ("line", "list_id", "preferred", "preferred_id", "other", "other_id", "probability")

    def key(row: Dict[str, Any]) -> tuple:
        return tuple(row.get(column) for column in columns)

    rows = disagreement_rows(page, table)
    assert sorted(map(key, [r["cells"] for r in rows]), key=repr) == sorted(map(key, expected), key=repr)
    assert [r["cells"]["probability"] for r in rows] == [e["probability"] for e in expected], "not in JSON order"

    def sort(column: str, direction: str) -> List[Any]:
        header = page.locator(f"{table} th[data-column={column}]")
        for _ in range(2):
            if header.get_attribute("aria-sort") == direction:
                break
            header.click()
        assert header.get_attribute("aria-sort") == direction
        values = [r["cells"][column] for r in disagreement_rows(page, table)]
        assert sorted(map(key, [r["cells"] for r in disagreement_rows(page, table)]), key=repr) == sorted(
            map(key, expected), key=repr
        ), "sorting lost or changed rows"
        return values

    probabilities = [e["probability"] for e in expected]
    assert len(set(probabilities)) > 1, "the test data needs distinct probabilities to see an order"
    descending = sort("probability", "descending")
    assert descending == sorted(probabilities, reverse=True)
    ascending = sort("probability", "ascending")
    assert ascending == sorted(probabilities)
    assert descending != ascending
    lines = [e["line"] for e in expected]
    assert sort("line", "ascending") == sorted(lines)
    assert sort("line", "descending") == sorted(lines, reverse=True)
    sort("probability", "ascending")

    # The filter: a list id (or a line number) that some rows hold and others do not.
    texts = [r["text"].lower() for r in disagreement_rows(page, table)]
    candidates = [str(row.get("list_id", row["line"])).lower() for row in expected]
    needle = next(c for c in candidates if 0 < sum(c in text for text in texts) < len(texts))
    filter_box = page.locator(f"input[data-filter=disagreements-m{model_index}]")
    filter_box.fill(str(needle))
    filtered = disagreement_rows(page, table)
    visible = [r for r in filtered if r["shown"]]
    assert visible and len(visible) < len(filtered), f"filter {needle!r} showed {len(visible)} of {len(filtered)}"
    assert all(str(needle).lower() in r["text"].lower() for r in visible)
    assert all(str(needle).lower() not in r["text"].lower() for r in filtered if not r["shown"])
    filter_box.fill("")
    assert all(r["shown"] for r in disagreement_rows(page, table))

    # The CSV download: the header's columns, then the rows in the table's order.
    with page.expect_download() as download_info:
        page.click(f"button[data-download=disagreements-m{model_index}]")
    download = download_info.value
    saved = out_dir / f"{name}-disagreements-m{model_index}.csv"
    download.save_as(saved)
    table_rows = [r["cells"] for r in disagreement_rows(page, table)]
    records = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    header_columns = page.eval_on_selector_all(
        f"{table} thead th", "cells => cells.map(c => c.getAttribute('data-column'))"
    )
    assert records[0] == header_columns
    assert len(records) - 1 == len(table_rows) == len(expected)
    for record, row in zip(records[1:], table_rows):
        as_read = dict(zip(records[0], record))
        for column in columns:
            value = row[column]
            if isinstance(value, float):
                assert float(as_read[column]) == value, f"CSV {column} {as_read[column]} != {value}"
            else:
                assert as_read[column] == ("" if value is None else str(value)), f"CSV {column}"
