"""How stream answers are decoded: many lines per call, orjson or the standard library alike, and
results whose pairs are decoded when first read."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import prefeval
from prefeval import _json
from prefeval._json import loads_lines


def lists(count: int) -> List[Dict[str, Any]]:
    return [
        {"id": f"l{i}", "items": [{"id": "a", "reward": i * 0.1}, {"id": "b", "reward": 0.3}, {"reward": -i}]}
        for i in range(count)
    ]


def test_lines_are_decoded_together_and_a_line_of_two_values_is_refused() -> None:
    assert loads_lines([b'{"a":1}', b"[2]", b'"x"']) == [{"a": 1}, [2], "x"]
    with pytest.raises(ValueError):
        loads_lines([b"1,2", b"3"])  # would decode as three values for two lines
    with pytest.raises(ValueError):
        loads_lines([b'{"a":', b"1}"])


def _results(url: str) -> List[Any]:
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lists(300), include_pairs=True, include_pair_ids=True) as stream:
            return [(item.raw, item.pairs, stream) for item in stream]


def test_the_standard_library_decodes_what_orjson_decodes(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _results(url)
    monkeypatch.setattr(_json, "loads", json.loads)
    plain = _results(url)
    assert [raw for raw, _, _ in plain] == [raw for raw, _, _ in fast]
    assert [pairs for _, pairs, _ in plain] == [pairs for _, pairs, _ in fast]
    assert plain[-1][2].summary.raw == fast[-1][2].summary.raw


def test_stream_results_read_their_pairs_when_asked_and_equal_the_batch_answer(url: str) -> None:
    with prefeval.Client(url) as client:
        batch = client.evaluate(lists(5), include_pairs=True, include_gradients=True)
        with client.evaluate_stream(lists(5), include_pairs=True, include_gradients=True) as stream:
            items = list(stream)
    for item, expected in zip(items, batch.lists):
        assert isinstance(item, prefeval.StreamResult)
        assert "pairs" not in vars(item)  # not decoded until read
        assert item.pairs == expected.pairs and item.gradients == expected.gradients
        assert item.pairs is item.pairs  # decoded once
        # The line's whole JSON, pairs included, as the batch answers the list (plus its line).
        assert {k: v for k, v in item.raw.items() if k != "line"} == expected.raw
        assert list(item.raw)[-1] == "pairs"
        assert (item.id, item.n, item.loss, item.kendall_tau) == (expected.id, expected.n, expected.loss, expected.kendall_tau)
    # Built by hand, a result holds what it was given.
    made = prefeval.StreamResult(id="x", n=2, pairs_count=1, loss=0.5, accuracy=1.0, pairs=[], line=3)
    assert made.pairs == [] and made.gradients is None and made.line == 3


def test_a_line_laid_out_otherwise_still_gives_its_pairs() -> None:
    line = b'{"line":1,"n":2,"pairs_count":1,"loss":0.5,"accuracy":1.0,"pairs":[{"preferred":0,"other":1,"probability":0.6,"log_probability":-0.5}],"later":[1]}'
    cut = line.find(b',"pairs":[')
    head = json.loads(line[:cut] + b"}")
    result = prefeval.StreamResult.from_dict(head, (line, cut + 9))
    assert result.pairs is not None and result.pairs[0].probability == 0.6
    assert result.raw["pairs"][0]["other"] == 1


def test_a_result_line_without_a_required_field_is_a_protocol_error() -> None:
    with pytest.raises(prefeval.ProtocolError):
        prefeval.StreamResult.from_dict({"line": 1, "n": 2})
    with pytest.raises(prefeval.ProtocolError):
        prefeval.Pair.from_dict({"preferred": 0})


RESULT = b'{"line":1,"n":2,"pairs_count":1,"loss":0.5,"accuracy":1.0,"pairs":[{"preferred":0,"other":1,"probability":0.6,"log_probability":-0.5}]}'
FAILED = b'{"line":2,"error":{"code":"too_few_items","message":"one item","path":"items"}}'
SUMMARY = b'{"summary":{"normalization":"sum","lists":1,"pairs":1,"lines_failed":1,"loss":0.5}}'


def _lines(summary_only: bool) -> Any:
    from prefeval._http11 import ResponseHead
    from prefeval._stream import _Lines

    request = prefeval.Client("http://127.0.0.1:9")._base._stream_request({}, None, "yield", summary_only)
    lines = _Lines(request)
    lines.handle([("head", ResponseHead(200, "OK", {}))])
    return lines


def test_a_block_with_a_line_that_is_not_json_gives_the_lines_before_it_then_a_protocol_error() -> None:
    lines = _lines(summary_only=False)
    lines.handle([("data", RESULT + b"\n" + FAILED + b"\n{not json\n" + SUMMARY + b"\n")])
    result, failed = lines.items
    assert result.pairs[0].probability == 0.6 and result.raw["pairs"][0]["other"] == 1
    assert isinstance(failed, prefeval.LineError) and failed.code == "too_few_items"
    assert isinstance(lines.take_error(), prefeval.ProtocolError)


def test_summary_only_skips_results_and_keeps_failed_lines_and_the_summary() -> None:
    lines = _lines(summary_only=True)
    lines.handle([("data", RESULT + b"\n" + FAILED + b"\n" + SUMMARY[:20])])
    lines.handle([("data", SUMMARY[20:] + b"\n"), ("end", None)])
    (failed,) = lines.items
    assert isinstance(failed, prefeval.LineError) and failed.line == 2
    assert lines.summary is not None and lines.summary.lines_failed == 1
    assert lines.take_error() is None
