"""`report` (``POST /v1/report``): the HTML report of the lists the stream methods take, written
whole or not at all, whose headline figures are the stream summary's; and the headline tables
that results show in Jupyter (``_repr_html_``)."""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple

import pytest

import prefeval
from prefeval._html import shown

FIGURES = ("loss", "loss_ci", "chance_loss", "accuracy", "accuracy_ci", "kendall_tau")


def ranked_lists(count: int, seed: int) -> List[Dict[str, Any]]:
    """Lists of 2 to 5 ranked items in two groups; rewards that often disagree with the ranks."""
    rng = random.Random(seed)
    lists = []
    for i in range(count):
        n = rng.randint(2, 5)
        items = [{"reward": rng.uniform(-2, 2) + 0.3 * (n - rank), "rank": rank} for rank in range(1, n + 1)]
        lists.append({"id": f"l{i}", "group": "ab"[i % 2], "items": items})
    return lists


def compared_lists(count: int, seed: int) -> List[Dict[str, Any]]:
    """Lists of items with one reward per model (two models), in rank order."""
    rng = random.Random(seed)
    lists = []
    for i in range(count):
        n = rng.randint(2, 4)
        items = [{"rewards": [rng.uniform(-2, 2) + 0.5 * (n - k), rng.uniform(-2, 2)]} for k in range(n)]
        lists.append({"id": f"c{i}", "items": items})
    return lists


class Report(HTMLParser):
    """What the tests read of a report: the kind, and the headline table's cells per model
    (figure -> (data-value, the text shown))."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.kind: Optional[str] = None
        self.headline: Dict[str, Dict[str, Tuple[Optional[str], str]]] = {}
        self.pairs: List[str] = []
        self._in_headline = False
        self._model: Optional[str] = None
        self._cell: Optional[Tuple[str, Optional[str]]] = None
        self._text: List[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.kind = a.get("data-report-kind")
        elif tag == "table":
            self._in_headline = a.get("data-table") == "headline"
        elif tag == "tr" and "data-pair" in a:
            self.pairs.append(a["data-pair"] or "")
        elif tag == "tr" and self._in_headline and "data-model" in a:
            self._model = a["data-model"]
            self.headline[self._model or ""] = {}
        elif tag == "td" and self._model is not None and "data-figure" in a:
            self._cell = (a["data-figure"] or "", a.get("data-value"))
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._model is not None:
            figure, value = self._cell
            self.headline[self._model][figure] = (value, "".join(self._text))
            self._cell = None
        elif tag == "tr":
            self._model = None
        elif tag == "table":
            self._in_headline = False


def check_headline(cells: Dict[str, Tuple[Optional[str], str]], figures: Dict[str, Any], lists: int, pairs: int) -> None:
    """The row's data-values are the summary's numbers exactly; the text is them rounded as
    prefeval._html.shown rounds (the same rounding as the report's, checked on every figure)."""
    assert cells["lists"] == (str(lists), str(lists))
    assert cells["pairs"] == (str(pairs), str(pairs))
    for figure in FIGURES:
        expected = figures.get(figure)
        value, text = cells[figure]
        if expected is None:
            assert (value, text) == (None, "–"), figure
            continue
        assert value is not None, figure
        assert json.loads(value) == expected, figure
        if figure.endswith("_ci"):
            assert text == f"[{shown(expected[0])}, {shown(expected[1])}]", figure
        else:
            assert text == shown(expected), figure


def without_date(document: str) -> str:
    """The report without the day it was made (the one line that may differ between two runs)."""
    return re.sub(r'<tr data-run="report_date">.*?</tr>', "", document, flags=re.S)


def without_input(document: str) -> str:
    """The report without the fingerprint of the body (a compressed body's is of its bytes as sent)."""
    return re.sub(r'<tr data-run="input">.*?</tr>', "", without_date(document), flags=re.S)


OPTIONS: Dict[str, Any] = {"calibration_bins": 5, "top_disagreements": 3, "normalization": "sum"}


@pytest.fixture(scope="module")
def lists() -> List[Dict[str, Any]]:
    return ranked_lists(60, seed=7)


@pytest.fixture(scope="module")
def summary(url: str, lists: List[Dict[str, Any]]) -> prefeval.StreamSummary:
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lists, model="rm-7", **OPTIONS) as stream:
            for _ in stream:
                pass
    assert stream.summary is not None
    return stream.summary


def assert_report_of(document: str, summary: prefeval.StreamSummary, model: str = "rm-7") -> None:
    assert document.startswith("<!DOCTYPE html>")
    report = Report(document)
    assert report.kind == "evaluation"
    assert list(report.headline) == [model]
    check_headline(report.headline[model], summary.raw, summary.lists, summary.pairs)


def test_report_of_lists_is_the_stream_summary(url: str, tmp_path: Path, lists: List[Dict[str, Any]], summary: prefeval.StreamSummary) -> None:
    target = tmp_path / "report.html"
    with prefeval.Client(url) as client:
        written = client.report(lists, target, model="rm-7", **OPTIONS)
    assert written == target and isinstance(written, Path)
    document = target.read_text(encoding="utf-8")
    assert_report_of(document, summary)
    assert 'data-chart="reliability"' in document and 'data-table="disagreements"' in document
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary left


def test_report_of_files_plain_gzip_and_zstd(url: str, tmp_path: Path, lists: List[Dict[str, Any]], summary: prefeval.StreamSummary) -> None:
    text = "".join(json.dumps(entry) + "\n" for entry in lists).encode()
    plain = tmp_path / "lists.ndjson"
    plain.write_bytes(text)
    packed = tmp_path / "lists.ndjson.gz"
    packed.write_bytes(gzip.compress(text))
    inputs = [plain, str(packed)]
    zstd = shutil.which("zstd")
    if zstd is not None:  # sent as it is, with Content-Encoding: zstd
        subprocess.run([zstd, "-q", "-19", str(plain), "-o", str(tmp_path / "lists.ndjson.zst")], check=True)
        inputs.append(tmp_path / "lists.ndjson.zst")
    with prefeval.Client(url) as client:
        documents = [client.report(source, None, model="rm-7", **OPTIONS) for source in inputs]
        in_file = client.report(packed, tmp_path / "from-gz.html", model="rm-7", **OPTIONS)
    for document in documents:
        assert_report_of(document, summary)
    # The same lists, the same bytes; the .gz file is sent decompressed, the .zst one as it is.
    assert without_date(documents[1]) == without_date(documents[0])
    for document in documents[2:]:
        assert without_input(document) == without_input(documents[0])
        assert without_date(document) != without_date(documents[0])
    assert without_date(in_file.read_text(encoding="utf-8")) == without_date(documents[0])


def test_path_none_returns_the_document_written_otherwise(url: str, tmp_path: Path, lists: List[Dict[str, Any]]) -> None:
    with prefeval.Client(url) as client:
        document = client.report(lists, path=None, model="rm-7", **OPTIONS)
        written = client.report(lists, tmp_path / "r.html", model="rm-7", **OPTIONS)
    assert isinstance(document, str)
    assert without_date(document) == without_date(written.read_text(encoding="utf-8"))


def test_report_of_a_comparison_is_the_compare_stream_summary(url: str, tmp_path: Path) -> None:
    lists = compared_lists(50, seed=3)
    models = ["rm-a", "rm-b"]
    with prefeval.Client(url) as client:
        with client.compare_stream(lists, models, normalization="comparisons") as stream:
            for _ in stream:
                pass
        written = client.report(lists, tmp_path / "compare.html", models=models, normalization="comparisons")
    summary = stream.summary
    assert summary is not None
    document = written.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>")
    report = Report(document)
    assert report.kind == "comparison"
    assert list(report.headline) == models
    for figures in summary.models:
        check_headline(report.headline[figures["model"]], figures, summary.lists, summary.pairs)
    assert report.pairs == ["rm-a|rm-b"]


def test_a_bad_option_raises_naming_it_and_leaves_no_file(url: str, tmp_path: Path, lists: List[Dict[str, Any]]) -> None:
    target = tmp_path / "report.html"
    with prefeval.Client(url, max_retries=0) as client:
        with pytest.raises(prefeval.PrefevalError) as raised:
            client.report(lists, target, calibration_bins=0)
        assert raised.value.status == 422 and raised.value.path == "calibration_bins", raised.value
        # An older report stays as it was.
        target.write_text("older")
        with pytest.raises(prefeval.PrefevalError) as raised:
            client.report(lists, target, models=["only-one"])
        assert raised.value.path == "models", raised.value
    assert target.read_text() == "older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_body_whose_every_line_fails_raises_the_first_lines_error(url: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    with prefeval.Client(url, max_retries=0) as client:
        with pytest.raises(prefeval.UnprocessableError) as raised:
            client.report([{"id": "x", "items": [{"reward": 1.0}]}] * 2, target)
        assert (raised.value.code, raised.value.path) == ("too_few_items", "items")
        assert "line 1" in raised.value.message
        with pytest.raises(prefeval.UnprocessableError) as raised:
            client.report([], target)
        assert raised.value.code == "empty_batch"
    assert list(tmp_path.iterdir()) == []


def test_a_model_name_is_escaped_in_the_report(url: str, lists: List[Dict[str, Any]]) -> None:
    with prefeval.Client(url) as client:
        document = client.report(lists[:5], None, model="<b>&")
    assert "<b>&" not in document
    assert list(Report(document).headline) == ["<b>&"]


def test_an_interrupt_leaves_no_file_and_no_temporary(url: str, tmp_path: Path, lists: List[Dict[str, Any]]) -> None:
    def interrupted() -> Iterator[Dict[str, Any]]:
        yield from lists[:10]
        raise KeyboardInterrupt

    with prefeval.Client(url) as client:
        with pytest.raises(KeyboardInterrupt):
            client.report(interrupted(), tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_raises_before_sending(url: str, tmp_path: Path) -> None:
    with prefeval.Client(url) as client:
        with pytest.raises(FileNotFoundError):
            client.report(tmp_path / "absent.ndjson", tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_async_report_of_an_async_iterable(url: str, tmp_path: Path, lists: List[Dict[str, Any]], summary: prefeval.StreamSummary) -> None:
    async def produce() -> AsyncIterator[Dict[str, Any]]:
        for entry in lists:
            yield entry

    async with prefeval.AsyncClient(url) as client:
        written = await client.report(produce(), tmp_path / "async.html", model="rm-7", **OPTIONS)
        document = await client.report(lists, None, model="rm-7", **OPTIONS)
        with pytest.raises(prefeval.PrefevalError) as raised:
            await client.report(lists, tmp_path / "bad.html", calibration_bins=0)
    assert raised.value.path == "calibration_bins"
    assert_report_of(written.read_text(encoding="utf-8"), summary)
    assert_report_of(document, summary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["async.html"]


# ------------------------------------------------------------------------------------------------
# _repr_html_

NAME = "<b>&"


def check_table(html: str, model: str, lists: int, pairs: int, figures: Dict[str, Any]) -> None:
    """The table names the model escaped, and shows each figure rounded with its exact value in
    ``title``."""
    assert html.startswith("<table") and html.endswith("</table>")
    escaped = model.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f'<th scope="row">{escaped}</th><td>{lists}</td><td>{pairs}</td>' in html
    for figure in FIGURES:
        value = figures.get(figure)
        if value is None:
            continue
        if figure.endswith("_ci"):
            lo, hi = value
            assert f'<td title="[{lo!r}, {hi!r}]">[{shown(lo)}, {shown(hi)}]</td>' in html, figure
        else:
            assert f'<td title="{value!r}">{shown(value)}</td>' in html, figure


def test_repr_html_of_every_result(url: str, lists: List[Dict[str, Any]]) -> None:
    compared = compared_lists(30, seed=5)
    models = [NAME, "rm-b"]
    with prefeval.Client(url) as client:
        evaluated = client.evaluate(lists, model=NAME, include_pairs=False)
        shards = []
        for part in (lists[:30], lists[30:]):
            with client.evaluate_stream(part, model=NAME, include_pairs=False) as stream:
                for _ in stream:
                    pass
            shards.append(stream.summary)
        batch = client.compare(compared, models)
        comparison_shards = []
        for part in (compared[:15], compared[15:]):
            with client.compare_stream(part, models) as compare_stream:
                for _ in compare_stream:
                    pass
            comparison_shards.append(compare_stream.summary)

    summary = evaluated.summary
    html = evaluated._repr_html_()
    check_table(html, NAME, summary.lists, summary.pairs, {**summary.raw, "loss": evaluated.loss})
    assert NAME not in html

    for stream_summary in [*shards, prefeval.merge(shards)]:
        assert isinstance(stream_summary, prefeval.StreamSummary)
        html = stream_summary._repr_html_()
        check_table(html, NAME, stream_summary.lists, stream_summary.pairs, stream_summary.raw)
        assert NAME not in html and shown(stream_summary.loss or 0) in html

    html = batch._repr_html_()
    for figures in batch.models:
        check_table(html, figures.model, batch.lists, batch.pairs, figures.raw)
    assert NAME not in html

    for comparison in [*comparison_shards, prefeval.merge(comparison_shards)]:
        assert isinstance(comparison, prefeval.ComparisonSummary)
        html = comparison._repr_html_()
        for model_figures in comparison.models:
            check_table(html, model_figures["model"], comparison.lists, comparison.pairs, model_figures)
        assert NAME not in html


@pytest.mark.parametrize(
    "value, text",
    [
        (0.447, "0.447"),
        (1.3276874813822475, "1.328"),
        (-0.023065862884125765, "-0.02307"),
        (1.2344e-12, "1.234e-12"),
        (0.00012346, "0.0001235"),
        (663.8437406911237, "663.8"),
        (123456.0, "123456"),
        (1.5e7, "1.5e7"),
        (9.99996, "10"),
        (0.0, "0"),
    ],
)
def test_shown_rounds_as_the_report(value: float, text: str) -> None:
    assert shown(value) == text
