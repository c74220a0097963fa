"""The duplex stream: constant memory over 300,000 generated lists, order, files, the iterable's
own errors, stopping early."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import prefeval

LISTS = 300_000
RSS_BUDGET_BYTES = 100 * 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def generated(count: int) -> Iterator[Dict[str, Any]]:
    """Lists made on the fly: none of them is held anywhere but in the generator's frame."""
    for i in range(count):
        yield {
            "id": f"list-{i}",
            "items": [{"reward": ((i * 37) % 101) / 10.0}, {"reward": ((i * 53) % 103) / 10.0}, {"reward": 0.5}],
        }


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc/self/status (Linux)")
def test_300k_lists_stream_in_bounded_memory(url: str, record_property: Any) -> None:
    with prefeval.Client(url, timeout=60) as client:
        # Warm up (imports, first connection, allocator pools) before the baseline.
        with client.evaluate_stream(generated(1000), include_pairs=False) as stream:
            for _ in stream:
                pass
        before = rss_bytes()
        peak = before
        count = 0
        loss_sum = 0.0
        started = time.monotonic()
        with client.evaluate_stream(generated(LISTS), include_pairs=False, model="rss-test") as stream:
            for item in stream:
                assert isinstance(item, prefeval.StreamResult)
                count += 1
                loss_sum += item.loss
                if count % 10_000 == 0:
                    assert item.line == count and item.id == f"list-{count - 1}"
                    peak = max(peak, rss_bytes())
        after = rss_bytes()
        elapsed = time.monotonic() - started
    growth = max(peak, after) - before
    record_property("rss_growth_bytes", growth)
    print(
        f"\n300,000-list stream: RSS {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after, "
        f"peak {peak / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB, {elapsed:.1f} s"
    )
    assert count == LISTS
    summary = stream.summary
    assert summary is not None
    assert summary.lists == LISTS and summary.lines_failed == 0 and summary.pairs == 3 * LISTS
    assert summary.loss is not None and abs(summary.loss - loss_sum / LISTS) <= 1e-9 * summary.loss
    assert growth < RSS_BUDGET_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB"


def test_results_arrive_while_the_body_is_still_being_sent(url: str) -> None:
    """The duplex at work: the first results come back long before the generator is done."""
    produced = [0]
    seen_while_producing: List[int] = []

    def lists() -> Iterator[Dict[str, Any]]:
        for i in range(60_000):
            produced[0] = i
            yield {"items": [{"reward": float(i % 7)}, {"reward": 0.25}]}

    with prefeval.Client(url) as client:
        with client.evaluate_stream(lists(), include_pairs=False) as stream:
            for item in stream:
                if item.line == 1:
                    seen_while_producing.append(produced[0])
    assert seen_while_producing and seen_while_producing[0] < 59_999


def test_a_large_answer_does_not_deadlock(url: str) -> None:
    """With pairs the answer is many times the body: a client that wrote its whole body first
    would block once the socket buffers fill. 4,000 lists of 20 items give 760,000 pairs."""
    lists = (
        {"id": f"l{i}", "items": [{"id": f"i{k}", "reward": float((i + k * 13) % 17)} for k in range(20)]}
        for i in range(4000)
    )
    with prefeval.Client(url, timeout=60) as client:
        with client.evaluate_stream(lists, include_pairs=True) as stream:
            pairs = 0
            for item in stream:
                assert isinstance(item, prefeval.StreamResult) and item.pairs is not None
                pairs += len(item.pairs)
    assert pairs == 4000 * 190
    assert stream.summary is not None and stream.summary.pairs == pairs


def test_options_and_gradients(url: str) -> None:
    lists = [{"id": "p1", "chosen_reward": 1.2, "rejected_reward": 0.3}, {"id": "p2", "chosen_reward": 0.0, "rejected_reward": 0.4}]
    with prefeval.Client(url) as client:
        options = dict(format="pairs", normalization="comparisons", beta=0.5, include_gradients=True, confidence=0.9,
                       include_pairs=True)
        batch = client.evaluate(lists, **options, include_pair_ids=True)
        with client.evaluate_stream(lists, **options, include_pair_ids=True) as stream:
            items = list(stream)
        with client.evaluate_stream(lists, **options) as plain_stream:
            plain = list(plain_stream)
    assert [item.gradients for item in items] == [result.gradients for result in batch.lists]
    assert items[0].gradients is not None and len(items[0].gradients) == 2
    assert [item.pairs for item in items] == [result.pairs for result in batch.lists]
    assert items[0].pairs is not None and items[0].pairs[0].preferred_id == "chosen"
    assert items[0].pairs[0].other_id == "rejected"
    # Without the option, the pairs name their items by index only.
    assert plain[0].pairs is not None and (plain[0].pairs[0].preferred_id, plain[0].pairs[0].other_id) == (None, None)
    assert [p.probability for p in plain[0].pairs] == [p.probability for p in items[0].pairs]
    assert stream.summary is not None and stream.summary.normalization == "comparisons"
    assert stream.summary.loss_ci == batch.summary.loss_ci
    assert stream.summary.accuracy_ci == batch.summary.accuracy_ci


def test_ndjson_lines_as_strings_and_bytes(url: str) -> None:
    lines = [
        '{"items": [{"reward": 1.0}, {"reward": 0.0}]}',
        b'{"items": [{"reward": 0.0}, {"reward": 1.0}]}\n',
        {"items": [{"reward": 2.0}, {"reward": 1.0}]},
    ]
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lines, include_pairs=False) as stream:
            items = list(stream)
    assert [item.line for item in items] == [1, 2, 3]
    assert items[0].accuracy == 1.0 and items[1].accuracy == 0.0


def test_evaluate_file_keeps_the_file_line_numbers(url: str, tmp_path: Path) -> None:
    text = "\n".join(
        [
            json.dumps({"id": "a", "items": [{"reward": 1.0}, {"reward": 0.0}]}),
            "",
            json.dumps({"id": "b", "items": [{"reward": 0.0}, {"reward": 1.0}]}),
            json.dumps({"id": "c", "items": [{"reward": "x"}, {"reward": 1.0}]}),
        ]
    )  # no newline at the end
    plain = tmp_path / "data.ndjson"
    plain.write_text(text)
    packed = tmp_path / "data.ndjson.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    paths = [plain, packed]
    zstd = shutil.which("zstd")
    if zstd is not None:  # sent as it is, with Content-Encoding: zstd
        paths.append(tmp_path / "data.ndjson.zst")
        subprocess.run([zstd, "-q", str(plain), "-o", str(paths[-1])], check=True)
    with prefeval.Client(url) as client:
        for path in paths:
            with client.evaluate_file(path, include_pairs=False) as stream:
                items = list(stream)
            assert [(item.line, item.ok) for item in items] == [(1, True), (3, True), (4, False)]
            assert [getattr(item, "id", None) for item in items[:2]] == ["a", "b"]
            assert stream.summary is not None and stream.summary.lines_failed == 1
        with pytest.raises(FileNotFoundError):
            client.evaluate_file(tmp_path / "missing.ndjson")


def test_evaluate_file_with_the_pairs_ids(url: str, tmp_path: Path) -> None:
    path = tmp_path / "named.ndjson"
    path.write_text(json.dumps({"items": [{"id": "x", "reward": 0.2}, {"reward": 0.9}, {"id": "z", "reward": -1}]}) + "\n")
    with prefeval.Client(url) as client:
        with client.evaluate_file(path, include_pairs=True, include_pair_ids=True) as stream:
            (named,) = list(stream)
        with client.evaluate_file(path, include_pairs=True) as stream:
            (plain,) = list(stream)
    assert named.pairs is not None and plain.pairs is not None
    assert [(p.preferred, p.other, p.preferred_id, p.other_id) for p in named.pairs] == [
        (0, 1, "x", None), (0, 2, "x", "z"), (1, 2, None, "z"),
    ]  # fmt: skip
    assert [(p.preferred_id, p.other_id) for p in plain.pairs] == [(None, None)] * 3
    assert [p.probability for p in plain.pairs] == [p.probability for p in named.pairs]


def test_an_exception_of_the_iterable_is_raised_to_the_reader(url: str) -> None:
    class Broken(Exception):
        pass

    def lists() -> Iterator[Dict[str, Any]]:
        for i in range(5000):
            yield {"items": [{"reward": float(i)}, {"reward": 0.0}]}
        raise Broken("the eval set ran out of disk")

    with prefeval.Client(url) as client:
        stream = client.evaluate_stream(lists(), include_pairs=False)
        with pytest.raises(Broken, match="ran out of disk"):
            for _ in stream:
                pass
        assert stream.summary is None
        # The client is still fine afterwards.
        assert client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}]).summary.lists == 1


def test_a_non_finite_reward_in_the_stream(url: str) -> None:
    lists = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": float("inf")}, {"reward": 0.0}]}]
    with prefeval.Client(url) as client:
        with pytest.raises(prefeval.InvalidInputError, match="list #1 of the stream") as caught:
            with client.evaluate_stream(lists) as stream:
                list(stream)
    assert caught.value.path == "lists[1]" and caught.value.code == "invalid_value"


def test_stopping_early_releases_the_connection(url: str, server: Any) -> None:
    def endless() -> Iterator[Dict[str, Any]]:
        i = 0
        while True:
            i += 1
            yield {"items": [{"reward": float(i % 5)}, {"reward": 0.0}]}

    threads_before = threading.active_count()
    with prefeval.Client(url) as client:
        with client.evaluate_stream(endless(), include_pairs=False) as stream:
            for item in stream:
                if item.line >= 20_000:
                    break
        assert stream.summary is None
        with pytest.raises(ValueError, match="closed"):
            next(stream)
        # The service noticed and moved on: a new request is answered at once.
        assert client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}]).summary.lists == 1
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before


def test_an_empty_stream(url: str) -> None:
    with prefeval.Client(url) as client:
        with client.evaluate_stream([]) as stream:
            assert list(stream) == []
    summary = stream.summary
    assert summary is not None and summary.lists == 0 and summary.loss is None and summary.accuracy is None
    assert stream.request_id and stream.headers["content-type"] == "application/x-ndjson"


def test_unknown_fields_stay_readable(url: str) -> None:
    with prefeval.Client(url) as client:
        result = client.evaluate([{"items": [{"reward": 1.0}, {"reward": 0.0}]}] * 2)
        with client.evaluate_stream([{"items": [{"reward": 1.0}, {"reward": 0.0}]}] * 2) as stream:
            item = next(stream)
            list(stream)
    # Everything the service sent is in .raw, known to this client or not.
    assert result.summary.raw["totals"]["kendall_tau_lists"] == 2
    assert result.summary.totals is not None and result.summary.totals.raw["kendall_tau_sum"] == 2.0
    assert item.raw["line"] == 1
    assert stream.summary is not None and "totals" in stream.summary.raw


def test_totals_carry_every_field_the_service_sends(url: str) -> None:
    lists = [{"items": [{"reward": 1.0}, {"reward": 0.0}, {"reward": 0.5}]}, {"items": [{"reward": 0.0}, {"reward": 1.0}]}]
    with prefeval.Client(url) as client:
        result = client.evaluate(lists)
        with client.evaluate_stream(lists) as stream:
            list(stream)
    for summary in (result.summary, stream.summary):
        assert summary is not None and summary.totals is not None
        totals = summary.totals
        for name, value in summary.raw["totals"].items():
            assert getattr(totals, name) == value, name
        assert totals.kendall_tau_lists == 2 and totals.pairs_squares == 10.0


def test_results_errors_answers_only_the_error_lines_and_the_summary(url: str, tmp_path: Path) -> None:
    lists: List[Any] = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": 1.0}]}] * 3
    path = tmp_path / "lists.ndjson"
    path.write_text("".join(json.dumps(item) + "\n" for item in lists))
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lists, results="errors") as stream:
            items = list(stream)
        with client.evaluate_file(path, results="errors") as from_file:
            file_items = list(from_file)
        with client.evaluate_stream(lists, results="all") as every:
            all_items = list(every)
        with pytest.raises(ValueError, match="results"):
            client.evaluate_stream(lists, results="none")
    for got in (items, file_items):
        assert [(type(item).__name__, item.line) for item in got] == [("LineError", 2), ("LineError", 4), ("LineError", 6)]
    assert [item.line for item in all_items] == [1, 2, 3, 4, 5, 6]
    for summary in (stream.summary, from_file.summary, every.summary):
        assert summary is not None and summary.lists == 3 and summary.lines_failed == 3
    assert stream.summary == every.summary


def test_the_summary_says_how_it_was_made(url: str) -> None:
    lists = [{"items": [{"reward": 1.0}, {"reward": 0.0}]}, {"items": [{"reward": 0.0}, {"reward": 1.0}]}]
    body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in lists).encode()  # as sent
    with prefeval.Client(url) as client:
        with client.evaluate_stream(lists, model="rm-7b/step-1200", beta=0.5, confidence=0.9) as stream:
            list(stream)
        with client.evaluate_stream(lists, format="native") as unnamed:
            list(unnamed)
    assert stream.summary is not None and unnamed.summary is not None
    run = stream.summary.run
    assert isinstance(run, prefeval.RunInfo) and isinstance(run.input, prefeval.InputFingerprint)
    assert (run.prefeval, run.model, run.normalization, run.beta, run.format, run.confidence) == (
        prefeval.__version__, "rm-7b/step-1200", "ordered_pairs", 0.5, "native", 0.9,
    )  # fmt: skip
    assert run.input.bytes == len(body) and len(run.input.xxh3) == 16 and run.inputs is None
    assert unnamed.summary.run is not None and unnamed.summary.run.model is None and unnamed.summary.run.beta == 1.0
