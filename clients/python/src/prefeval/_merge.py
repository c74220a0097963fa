"""``prefeval.merge``: the summaries of shards of one dataset into the summary of the whole, as
``prefeval merge`` writes it. The totals are sums (the sufficient statistics merge exactly); the
figures are recomputed from them with the service's formulas (``_stats``), so the merged summary
equals the command's, value for value and field for field.

Each summary is read back as the command reads it (``read_summary_line``): its ``run`` is required
and checked (``prefeval``, a known ``normalization``, a finite ``beta`` > 0, a ``confidence``
strictly between 0 and 1, a known ``format`` or ``mixed``, and exactly one of ``input`` or a
non-empty ``inputs``), the top-level ``normalization`` must be ``run.normalization``, and the totals
must be totals an evaluation could have written (the invariants of the service's ``totals_check``).
Then, summary by summary in order, as the command does file by file: a path given twice is refused;
``run.normalization``, ``run.beta`` (exactly) and ``run.model`` must be the first summary's; an
input fingerprint seen before (in ``run.input`` or ``run.inputs``) is refused; counts must not
overflow. Every refusal is a :class:`MergeError` naming the field and the summaries (by index).

The dataset-scale figures merge as the command merges them: ``groups`` by name in order of first
appearance (each group's ``totals`` added), the calibration bins' sums (``totals.calibration``; the
summaries must have the same ``run.calibration_bins``), the k least probable pairs of the union
(the same ``run.top_disagreements``; each named by its ``input`` in the merged ``run.inputs``, ties
by input, then line, then pair), and the length counts (``totals.length``).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ._errors import PrefevalError
from ._length import U64_MAX, LengthCounts
from ._merge_compare import ComparisonSummary, comparison_json, model_pairs, read_comparisons, read_lengths
from ._models import StreamSummary
from ._stats import (
    NeumaierSum,
    accuracy_interval,
    fmin,
    interval,
    mean_standard_error,
    ratio_standard_error,
)
from ._version import __version__

NORMALIZATIONS = ("ordered_pairs", "comparisons", "sum")
FORMATS = ("native", "pairs", "ranking", "ratings", "ranks_zero_based")
#: ``run.format`` of a merge of summaries of different input formats.
MIXED_FORMATS = "mixed"
DEFAULT_CONFIDENCE = 0.95

TWO_POW_64 = 18_446_744_073_709_551_616.0
OVERFLOW_SCALE = 1.0 / TWO_POW_64
SLACK = 1e-9
TINY = 1e-300
EXACT = 4_503_599_627_370_496.0  # 2^52: below it, sums of halves and quarters are exact
F64_MAX = 1.7976931348623157e308

SummaryArg = Union[StreamSummary, ComparisonSummary, Mapping[str, Any], str, bytes, "os.PathLike[str]"]

#: The float fields of the totals, in the order they are written.
_SUM_FIELDS = ("chance_loss_sum", "kendall_tau_sum", "agreeing_squares", "agreeing_pairs", "pairs_squares")
_COUNT_FIELDS = ("lists", "pairs", "kendall_tau_lists")

#: Distinct groups a run (or a merge) keeps figures for.
MAX_GROUPS = 10_000
MAX_CALIBRATION_BINS = 100
MAX_TOP_DISAGREEMENTS = 1000

#: An input's fingerprint: (bytes, xxh3 as 16 lowercase hex digits).
_Fingerprint = Tuple[int, str]


class MergeError(PrefevalError, ValueError):
    """Summaries that cannot be merged. ``path`` names the field at fault
    (``summary.totals.agreeing``, ``summary.run.beta``); ``indices`` the summaries concerned, by
    their position in the argument (the first summary's, then the one refused, when two disagree)."""

    def __init__(self, message: str, *, path: Optional[str], indices: Tuple[int, ...]) -> None:
        super().__init__(message, code="invalid_summary", path=path)
        self.indices = indices


def merge(
    summaries: Iterable[SummaryArg], *, confidence: float = DEFAULT_CONFIDENCE
) -> Union[StreamSummary, ComparisonSummary]:
    """The summary of the whole from the summaries of its shards, as ``prefeval merge`` writes it.

    Summaries of comparisons (``prefeval compare``, ``/v1/compare/stream``, ``prefeval diff``: their
    summary has ``comparisons``) merge into a :class:`ComparisonSummary` (its ``raw`` is the line's
    summary object), every model's totals and every pair of models' sums added, the p-values and
    Holm's adjustment computed from the merged sums; the two kinds do not mix (:class:`MergeError`),
    and comparisons must be of the same ``run.models`` in the same order.

    Each summary may be a :class:`StreamSummary` or :class:`ComparisonSummary` (``stream.summary``,
    or what this function returned), its JSON object (with or without the ``{"summary": ...}``
    wrapper), a summary line (``str``/``bytes``), or the path of a result file (a
    ``pathlib.Path``: its last non-empty line). ``confidence`` is that of the merged
    intervals (the command's ``--confidence``).

    The merged ``run`` is the command's: ``prefeval`` is this package's ``__version__`` (the
    version of the service it matches, whose binary writes its own there); ``model``,
    ``normalization`` and ``beta`` the summaries' common values; ``format`` their common one, or
    ``"mixed"``; ``confidence`` this merge's; and ``inputs``, every input's fingerprint in order (a
    merged summary's own ``inputs`` in its place), with no ``input``. The merged summary can
    itself be merged again.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    objects: List[Dict[str, Any]] = []
    files_seen: Dict[Tuple[int, int], int] = {}
    for index, argument in enumerate(summaries):
        summary, file_id = _summary_object(argument, index)
        if file_id is not None:
            if file_id in files_seen:
                where = files_seen[file_id]
                raise MergeError(
                    f"summaries {where} and {index} are the same file: its totals would be counted twice",
                    path=None,
                    indices=(where, index),
                )
            files_seen[file_id] = index
        if objects and ("comparisons" in summary) != ("comparisons" in objects[0]):
            kind = {True: "a comparison", False: "an evaluation"}
            raise MergeError(
                f"summary {index} is the summary of {kind['comparisons' in summary]} and summary 0 that of "
                f"{kind['comparisons' in objects[0]]}: the two kinds do not merge",
                path="summary",
                indices=(0, index),
            )
        objects.append(summary)
    if objects and "comparisons" in objects[0]:
        return _merge_comparisons(objects, float(confidence))
    dataset: Optional[_Dataset] = None
    lines_failed = 0
    first: Optional[Tuple[Dict[str, Any], int]] = None
    formats_differ = False
    inputs = _Inputs()
    for index, summary in enumerate(objects):
        shard = _read(summary, index)
        run = shard["run"]
        if first is None:
            first = (run, index)
        else:
            _check_same_run(first[0], first[1], run, index)
            formats_differ |= first[0]["format"] != run["format"]
        first_input = len(inputs.all)
        inputs.add(run, index)
        if dataset is None:
            dataset = _Dataset(run)
        dataset.merge_summary(shard, first_input, index)
        lines_failed += shard["lines_failed"]
        if lines_failed > U64_MAX:
            raise _overflow("summary.lines_failed", index)
    if first is None or dataset is None:
        raise MergeError("no summary to merge", path=None, indices=())
    common = first[0]
    run_json: Dict[str, Any] = {"prefeval": __version__}
    if common["model"] is not None:
        run_json["model"] = common["model"]
    run_json["normalization"] = common["normalization"]
    run_json["beta"] = common["beta"]
    run_json["format"] = MIXED_FORMATS if formats_differ else common["format"]
    run_json["confidence"] = float(confidence)
    if common["calibration_bins"] is not None:
        run_json["calibration_bins"] = common["calibration_bins"]
    if common["top_disagreements"] is not None:
        run_json["top_disagreements"] = common["top_disagreements"]
    run_json["inputs"] = inputs.json()
    data = dataset.summary_json(common["normalization"], lines_failed, float(confidence))
    data["run"] = run_json
    merged: StreamSummary = StreamSummary.from_dict(data)
    return merged


class _Inputs:
    """The inputs of the summaries merged so far, each once."""

    def __init__(self) -> None:
        self.seen: Dict[_Fingerprint, int] = {}
        self.all: List[_Fingerprint] = []

    def add(self, run: Mapping[str, Any], index: int) -> None:
        for fingerprint in run["fingerprints"]:
            if fingerprint in self.seen:
                where = self.seen[fingerprint]
                raise MergeError(
                    f"summaries {where} and {index} summarise the same input (summary.run.input: "
                    f"{fingerprint[0]} bytes, xxh3 {fingerprint[1]}): it would be counted twice",
                    path="summary.run.input",
                    indices=(where, index) if where != index else (index,),
                )
            self.seen[fingerprint] = index
            self.all.append(fingerprint)

    def json(self) -> List[Dict[str, Any]]:
        return [{"bytes": size, "xxh3": digest} for size, digest in self.all]


def _merge_comparisons(objects: List[Dict[str, Any]], confidence: float) -> ComparisonSummary:
    """``prefeval merge`` of comparison summaries: the same models in the same order, normalization
    and β; every model's totals and every pair's sums added; the figures from the merged sums."""
    first: Optional[Tuple[Dict[str, Any], int]] = None
    formats_differ = False
    inputs = _Inputs()
    lines_failed = 0
    model_totals: List[_Totals] = []
    lengths: List[LengthCounts] = []
    paired: List[Any] = []
    for index, summary in enumerate(objects):

        def fail(field: str, message: str) -> MergeError:
            return MergeError(f"summary {index}: {field}: {message}", path=field, indices=(index,))

        normalization = _string(summary, "normalization", "summary", fail)
        shard_failed = _count(summary, "lines_failed", "summary", fail)
        run = _run(summary.get("run"), fail)
        models = run["models"]
        if models is None:
            raise fail("summary.run.models", "missing field `models`")
        if normalization != run["normalization"]:
            raise fail("summary.normalization", f"`{normalization}` differs from summary.run.normalization")
        totals_json = summary.get("totals")
        if not isinstance(totals_json, Mapping) or not isinstance(totals_json.get("models"), list):
            raise fail("summary.totals.models", "missing, or not a list")
        if len(totals_json["models"]) != len(models):
            raise fail("summary.totals.models", f"{len(totals_json['models'])} model totals for {len(models)} models")
        shard_totals = []
        for j, model_json in enumerate(totals_json["models"]):
            prefix = f"summary.totals.models[{j}]"
            if not isinstance(model_json, Mapping):
                raise fail(prefix, "not an object")
            totals = _read_totals(model_json, prefix, fail)
            violation = check_totals(totals)
            if violation is not None:
                field, message = violation
                raise fail(f"{prefix}.{field[len('totals.'):]}", message)
            shard_totals.append(_Totals.from_json(totals))
        shard_lengths = [counts or LengthCounts() for counts in read_lengths(summary, len(models), fail)]
        shard_paired = read_comparisons(summary, models, fail)
        for r, sums in enumerate(shard_paired):
            if sums.lists != shard_totals[0].lists or int(sums.p) != shard_totals[0].pairs:
                raise fail(f"summary.totals.comparisons[{r}].lists", "its lists and pairs are not those of the models' totals")
        if first is None:
            first = (run, index)
            model_totals, lengths, paired = shard_totals, shard_lengths, shard_paired
        else:
            _check_same_run(first[0], first[1], run, index)
            if run["models"] != first[0]["models"]:
                raise MergeError(
                    f"summary {index}: summary.run.models {','.join(run['models'])} differs from summary "
                    f"{first[1]}'s {','.join(first[0]['models'])}: comparisons merge only of the same models in the same order",
                    path="summary.run.models",
                    indices=(first[1], index),
                )
            formats_differ |= first[0]["format"] != run["format"]
            for j, other in enumerate(shard_totals):
                model_totals[j].checked_merge(other, index)
            for j, counts in enumerate(shard_lengths):
                overflowed = lengths[j].checked_merge(counts)
                if overflowed is not None:
                    raise _overflow(f"summary.totals.models[{j}].length.{overflowed}", index)
            for r, sums in enumerate(paired):
                overflowed = sums.merge(shard_paired[r])
                if overflowed is not None:
                    raise _overflow(f"summary.totals.comparisons[{r}].{overflowed}", index)
        inputs.add(run, index)
        lines_failed += shard_failed
        if lines_failed > U64_MAX:
            raise _overflow("summary.lines_failed", index)
    if first is None:
        raise MergeError("no summary to merge", path=None, indices=())
    common = first[0]
    models = common["models"]
    data = comparison_json(common["normalization"], confidence, models, model_totals, lengths, paired)
    data["lines_failed"] = lines_failed
    any_length = any(counts.pairs > 0 for counts in lengths)
    totals_models = []
    for model, counts in zip(model_totals, lengths):
        entry = model.to_json()
        if any_length:
            entry["length"] = counts.to_json()
        totals_models.append(entry)
    data["totals"] = {
        "models": totals_models,
        "comparisons": [sums.to_json(models[a], models[b]) for sums, (a, b) in zip(paired, model_pairs(len(models)))],
    }
    run_json: Dict[str, Any] = {"prefeval": __version__, "models": list(models)}
    run_json["normalization"] = common["normalization"]
    run_json["beta"] = common["beta"]
    run_json["format"] = MIXED_FORMATS if formats_differ else common["format"]
    run_json["confidence"] = confidence
    run_json["inputs"] = inputs.json()
    data["run"] = run_json
    return ComparisonSummary(
        normalization=data["normalization"],
        confidence=confidence,
        lists=data["lists"],
        pairs=data["pairs"],
        lines_failed=lines_failed,
        raw=data,
    )


def _check_same_run(first: Mapping[str, Any], where: int, run: Mapping[str, Any], index: int) -> None:
    """Refuses ``run`` (of summary ``index``) unless its normalization, β and model are those of
    the first summary's (``where``)."""

    def differ(field: str, mine: str, theirs: str, why: str) -> MergeError:
        return MergeError(
            f"summary {index}: summary.run.{field} {mine} differs from summary {where}'s {theirs}: {why}",
            path=f"summary.run.{field}",
            indices=(where, index),
        )

    if run["normalization"] != first["normalization"]:
        why = "losses of different normalizations do not merge"
        raise differ("normalization", f"`{run['normalization']}`", f"`{first['normalization']}`", why)
    if run["beta"] != first["beta"]:
        why = "losses and accuracies at different β are of different models"
        raise differ("beta", repr(run["beta"]), repr(first["beta"]), why)

    def option(value: Optional[int]) -> str:
        return "(none)" if value is None else str(value)

    if run["calibration_bins"] != first["calibration_bins"]:
        why = "calibration bins of different widths do not add (evaluate every shard with the same K)"
        raise differ("calibration_bins", option(run["calibration_bins"]), option(first["calibration_bins"]), why)
    if run["top_disagreements"] != first["top_disagreements"]:
        why = "the k least probable pairs of the whole are those of the shards only for the same k"
        raise differ("top_disagreements", option(run["top_disagreements"]), option(first["top_disagreements"]), why)
    if run["model"] != first["model"]:

        def name(model: Optional[str]) -> str:
            return "(none)" if model is None else f"`{model}`"

        why = "figures of different models do not merge (name the same model, or none, in every run)"
        raise differ("model", name(run["model"]), name(first["model"]), why)


# ------------------------------------------------------------------------------------------------
# reading


def _summary_object(summary: SummaryArg, index: int) -> Tuple[Dict[str, Any], Optional[Tuple[int, int]]]:
    """The ``summary`` object of one argument, and the identity of its file when it is a path."""
    file_id: Optional[Tuple[int, int]] = None
    if isinstance(summary, (StreamSummary, ComparisonSummary)):
        return dict(summary.raw), None
    if isinstance(summary, os.PathLike):
        summary, file_id = _last_line(summary, index)
    if isinstance(summary, (str, bytes)):
        try:
            summary = json.loads(summary)
        except ValueError as exc:
            message = f"summary {index} is not a summary (not JSON: {exc}); did its run finish?"
            raise MergeError(message, path="summary", indices=(index,)) from None
    if not isinstance(summary, Mapping):
        raise MergeError(f"summary {index} is not a JSON object", path="summary", indices=(index,))
    if "summary" in summary:
        inner = summary["summary"]
        if not isinstance(inner, Mapping):
            raise MergeError(f"summary {index}: summary is not an object", path="summary", indices=(index,))
        return dict(inner), file_id
    if "error" in summary and "normalization" not in summary:
        raise MergeError(
            f"summary {index} is an error line, not a summary; did its run finish? A stream cut short "
            "ends with an error line instead",
            path="summary",
            indices=(index,),
        )
    return dict(summary), file_id


def _last_line(path: "os.PathLike[str]", index: int) -> Tuple[bytes, Tuple[int, int]]:
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 1024 * 1024))
        tail = handle.read()
    for line in reversed(tail.split(b"\n")):
        if line.strip():
            return line, (status.st_dev, status.st_ino)
    raise MergeError(f"summary {index}: {os.fspath(path)} is empty", path="summary", indices=(index,))


def _read(summary: Mapping[str, Any], index: int) -> Dict[str, Any]:
    """The fields merge reads, checked as the service reads them back: their types, then ``run``,
    then the normalization against ``run``'s, then the totals' invariants."""

    def fail(field: str, message: str) -> MergeError:
        return MergeError(f"summary {index}: {field}: {message}", path=field, indices=(index,))

    normalization = _string(summary, "normalization", "summary", fail)
    lines_failed = _count(summary, "lines_failed", "summary", fail)
    totals_json = summary.get("totals")
    totals = _read_totals(totals_json, "summary.totals", fail)
    assert isinstance(totals_json, Mapping)
    run = _run(summary.get("run"), fail)
    if normalization != run["normalization"]:
        raise fail(
            "summary.normalization",
            f"`{normalization}` differs from summary.run.normalization `{run['normalization']}`: the summary "
            "was edited",
        )
    violation = check_totals(totals)
    if violation is not None:
        field, message = violation
        raise fail(f"summary.{field}", message)
    groups = _read_groups(summary, totals, fail)
    calibration = _read_calibration(totals_json, totals, run, fail)
    disagreements = _read_disagreements(summary, run, fail)
    length = _read_length(totals_json, totals, fail)
    return {
        "lines_failed": lines_failed,
        "totals": totals,
        "run": run,
        "groups": groups,
        "calibration": calibration,
        "disagreements": disagreements,
        "length": length,
    }


def _read_totals(data: Any, parent: str, fail: Any) -> Dict[str, Any]:
    if not isinstance(data, Mapping):
        raise fail(parent, "missing, or not an object")
    totals: Dict[str, Any] = {}
    for name in ("lists", "pairs"):
        totals[name] = _count(data, name, parent, fail)
    totals["agreeing"] = _number(data, "agreeing", parent, fail, required=True)
    for name in ("loss_sum", "loss_sum_scaled", "loss_sum_squares"):
        totals[name] = _number(data, name, parent, fail, required=False)
    for name in ("chance_loss_sum", "kendall_tau_sum"):
        totals[name] = _number(data, name, parent, fail, required=True)
    totals["kendall_tau_lists"] = _count(data, "kendall_tau_lists", parent, fail)
    for name in ("agreeing_squares", "agreeing_pairs", "pairs_squares"):
        totals[name] = _number(data, name, parent, fail, required=True)
    return totals


def _read_groups(summary: Mapping[str, Any], totals: Mapping[str, Any], fail: Any) -> List[Tuple[str, Dict[str, Any]]]:
    """``summary.groups``: at most ``MAX_GROUPS`` distinct names, each with totals an evaluation can
    write, together no more lists than the whole."""
    groups = summary.get("groups")
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise fail("summary.groups", "expected a list")
    if len(groups) > MAX_GROUPS:
        raise fail("summary.groups", f"{len(groups)} groups; a run has at most {MAX_GROUPS}")
    read: List[Tuple[str, Dict[str, Any]]] = []
    names = set()
    lists = 0
    for index, group in enumerate(groups):
        at = f"summary.groups[{index}]"
        if not isinstance(group, Mapping):
            raise fail(at, "expected an object")
        name = _string(group, "group", at, fail)
        if name in names:
            raise fail(f"{at}.group", f"`{name}` is listed twice")
        names.add(name)
        group_totals = _read_totals(group.get("totals"), f"{at}.totals", fail)
        violation = check_totals(group_totals)
        if violation is not None:
            field, message = violation
            raise fail(f"{at}.{field}", message)
        lists += group_totals["lists"]
        read.append((name, group_totals))
    if lists > totals["lists"]:
        raise fail("summary.groups", f"the groups hold {lists} lists of {totals['lists']}")
    return read


def _read_calibration(
    totals_json: Mapping[str, Any], totals: Mapping[str, Any], run: Mapping[str, Any], fail: Any
) -> Optional[List[Tuple[int, float, int, float]]]:
    """``totals.calibration``: ``run.calibration_bins`` bins (both or neither), each (count, Σq,
    Σy in halves, Σ(q − y)²) with sums its count can have, together every pair."""
    bins = totals_json.get("calibration")
    k = run["calibration_bins"]
    field = "summary.totals.calibration"
    if bins is None and k is None:
        return None
    if not isinstance(bins, list) or k is None or len(bins) != k:
        count = len(bins) if isinstance(bins, list) else 0
        raise fail(field, f"has {count} bins where summary.run.calibration_bins is {'absent' if k is None else k}")
    read = []
    pairs = 0
    for index, item in enumerate(bins):
        at = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise fail(at, "expected an object")
        count = _count(item, "count", at, fail)
        predicted = _required_number(item, "sum_predicted", at, fail)
        observed = _required_number(item, "sum_observed", at, fail)
        squared = _required_number(item, "sum_squared_error", at, fail)
        slack = 1e-9 * float(count) + 1e-300
        if not (0.5 * count - slack <= predicted <= count + slack):
            raise fail(f"{at}.sum_predicted", f"{predicted} is no sum of {count} values in [1/2, 1]")
        if not (math.modf(observed * 2.0)[0] == 0.0 and 0.0 <= observed <= count):
            raise fail(f"{at}.sum_observed", f"{observed} is no count of halves of {count} pairs")
        if not (0.0 <= squared <= count + slack):
            raise fail(f"{at}.sum_squared_error", f"{squared} is no sum of {count} values in [0, 1]")
        pairs += count
        if pairs > U64_MAX:
            raise fail(f"{at}.count", "the counts overflow")
        read.append((count, predicted, _round_half_away(observed * 2.0), squared))
    if pairs != totals["pairs"]:
        raise fail(field, f"the bins count {pairs} pairs where the totals have {totals['pairs']}")
    return read


def _disagreement_key(entry: Mapping[str, Any]) -> Tuple[float, int, int, int, int]:
    return (entry["probability"], entry.get("input") or 0, entry["line"], entry["preferred"], entry["other"])


def _read_disagreements(summary: Mapping[str, Any], run: Mapping[str, Any], fail: Any) -> Optional[List[Dict[str, Any]]]:
    """``summary.disagreements``: at most ``run.top_disagreements`` pairs (both or neither), least
    probable first, each a probability of a line of one of the summary's inputs."""
    found = summary.get("disagreements")
    k = run["top_disagreements"]
    if found is None and k is None:
        return None
    if found is None or k is None or not isinstance(found, list):
        raise fail(
            "summary.disagreements",
            f"present or absent where summary.run.top_disagreements is {'absent' if k is None else k}",
        )
    if len(found) > k:
        raise fail("summary.disagreements", f"{len(found)} pairs where k is {k}")
    inputs = len(run["fingerprints"])
    read: List[Dict[str, Any]] = []
    for index, entry in enumerate(found):
        at = f"summary.disagreements[{index}]"
        if not isinstance(entry, Mapping):
            raise fail(at, "expected an object")
        known = {"input", "line", "list_id", "preferred", "other", "preferred_id", "other_id", "probability"}
        for key in entry:
            if key not in known:
                raise fail(f"{at}.{key}", "unknown field")
        pair: Dict[str, Any] = {}
        if "input" in entry:
            pair["input"] = _count(entry, "input", at, fail)
        pair["line"] = _count(entry, "line", at, fail)
        for name in ("list_id", "preferred", "other", "preferred_id", "other_id"):
            if name in ("preferred", "other"):
                pair[name] = _count(entry, name, at, fail)
            elif entry.get(name) is not None:
                value = entry[name]
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise fail(f"{at}.{name}", f"expected a string or an integer id, got {value!r}")
                pair[name] = value
        probability = _required_number(entry, "probability", at, fail)
        pair["probability"] = probability
        if not 0.0 <= probability <= 1.0:
            raise fail(f"{at}.probability", f"{probability} is no probability")
        if pair["line"] == 0:
            raise fail(f"{at}.line", "lines are numbered from 1")
        if pair.get("input") is not None and pair["input"] >= inputs:
            raise fail(f"{at}.input", f"the run has {inputs} inputs")
        if read and _disagreement_key(read[-1]) > _disagreement_key(pair):
            raise fail(f"{at}.probability", "the pairs are not least probable first")
        read.append(pair)
    return read


def _read_length(totals_json: Mapping[str, Any], totals: Mapping[str, Any], fail: Any) -> Optional[LengthCounts]:
    """``totals.length``: counts of pairs, consistent, no more pairs than the whole's."""
    data = totals_json.get("length")
    if data is None:
        return None
    field = "summary.totals.length"
    length = LengthCounts.read(data, field, fail)
    if length.pairs > totals["pairs"]:
        raise fail(f"{field}.pairs", f"{length.pairs} pairs with lengths of {totals['pairs']} pairs")
    return length


def _run(run: Any, fail: Any) -> Dict[str, Any]:
    """``summary.run``, typed and checked as the service's ``Run::check``."""
    if run is None:
        raise fail(
            "summary.run",
            "missing field `run`: a summary without it (of an older prefeval) says neither how it was made nor "
            "what it summarises",
        )
    if not isinstance(run, Mapping):
        raise fail("summary.run", "expected an object")
    prefix = "summary.run"
    read: Dict[str, Any] = {"prefeval": _string(run, "prefeval", prefix, fail)}
    model = run.get("model")
    if model is not None and not isinstance(model, str):
        raise fail(f"{prefix}.model", f"expected a string, got {model!r}")
    read["model"] = model
    models = run.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(name, str) for name in models)):
        raise fail(f"{prefix}.models", f"expected a list of model names, got {models!r}")
    read["models"] = models
    read["normalization"] = _string(run, "normalization", prefix, fail)
    read["beta"] = _number(run, "beta", prefix, fail, required=True)
    read["format"] = _string(run, "format", prefix, fail)
    read["confidence"] = _number(run, "confidence", prefix, fail, required=True)
    for name, most in (("calibration_bins", MAX_CALIBRATION_BINS), ("top_disagreements", MAX_TOP_DISAGREEMENTS)):
        read[name] = None
        if run.get(name) is not None:
            value = _count(run, name, prefix, fail)
            if not 1 <= value <= most:
                raise fail(f"{prefix}.{name}", f"must be from 1 to {most}")
            read[name] = value
    single = run.get("input")
    several = run.get("inputs")
    fingerprints: List[_Fingerprint] = []
    if single is not None:
        fingerprints.append(_fingerprint(single, f"{prefix}.input", fail))
    if several is not None:
        if not isinstance(several, list):
            raise fail(f"{prefix}.inputs", f"expected a list of fingerprints, got {several!r}")
        fingerprints.extend(_fingerprint(item, f"{prefix}.inputs", fail) for item in several)
    if read["normalization"] not in NORMALIZATIONS:
        raise fail(f"{prefix}.normalization", f"unknown normalization `{read['normalization']}`")
    if not (math.isfinite(read["beta"]) and read["beta"] > 0.0):
        raise fail(f"{prefix}.beta", f"must be a finite number > 0, got {read['beta']}")
    if not 0.0 < read["confidence"] < 1.0:
        raise fail(f"{prefix}.confidence", f"must be strictly between 0 and 1, got {read['confidence']}")
    if read["format"] not in FORMATS and read["format"] != MIXED_FORMATS:
        raise fail(f"{prefix}.format", f"unknown format `{read['format']}`")
    if single is None and several is None:
        raise fail(
            f"{prefix}.input",
            "missing field `input`: without the fingerprint of what it summarises, an input given twice cannot be told",
        )
    if single is None and not several:
        raise fail(f"{prefix}.inputs", "must hold at least one fingerprint")
    if single is not None and several is not None:
        raise fail(f"{prefix}.inputs", "a run has `input` (one input) or `inputs` (a merge), not both")
    read["fingerprints"] = fingerprints
    return read


def _string(data: Mapping[str, Any], name: str, parent: str, fail: Any) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise fail(f"{parent}.{name}", f"missing, or not a string: {value!r}")
    return value


def _count(data: Mapping[str, Any], name: str, parent: str, fail: Any) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise fail(f"{parent}.{name}", f"expected an integer from 0 to 2^64 - 1, got {value!r}")
    return value


def _number(data: Mapping[str, Any], name: str, parent: str, fail: Any, *, required: bool) -> Optional[float]:
    if name not in data and not required:
        return None
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{parent}.{name}", f"expected a number, got {value!r}")
    return float(value)


def _required_number(data: Mapping[str, Any], name: str, parent: str, fail: Any) -> float:
    value = _number(data, name, parent, fail, required=True)
    assert value is not None  # required: never absent
    return value


def _fingerprint(value: Any, field: str, fail: Any) -> _Fingerprint:
    if not isinstance(value, Mapping):
        raise fail(field, 'expected {"bytes", "xxh3"}')
    size = _count(value, "bytes", field, fail)
    digest = value.get("xxh3")
    if not isinstance(digest, str) or len(digest) != 16 or any(c not in "0123456789abcdef" for c in digest):
        raise fail(f"{field}.xxh3", f"expected 16 lowercase hex digits, got {digest!r}")
    return size, digest


# ------------------------------------------------------------------------------------------------
# the totals and their invariants


def _at_most(x: float, y: float) -> bool:
    return x <= y + SLACK * abs(y) + TINY


def _granular(value: float, per_unit: float) -> bool:
    return value >= EXACT or math.modf(value * per_unit)[0] == 0.0


def check_totals(t: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """The first invariant of the totals that no evaluation could break, broken: (field, why)."""
    sums = [
        ("agreeing", t["agreeing"]),
        ("loss_sum", t["loss_sum"]),
        ("loss_sum_scaled", t["loss_sum_scaled"]),
        ("loss_sum_squares", t["loss_sum_squares"]),
        ("chance_loss_sum", t["chance_loss_sum"]),
        ("agreeing_squares", t["agreeing_squares"]),
        ("agreeing_pairs", t["agreeing_pairs"]),
        ("pairs_squares", t["pairs_squares"]),
    ]
    for field, value in sums:
        if value is not None and not (math.isfinite(value) and value >= 0.0):
            return f"totals.{field}", f"{value} is not a finite number ≥ 0"
    if not math.isfinite(t["kendall_tau_sum"]):
        return "totals.kendall_tau_sum", f"{t['kendall_tau_sum']} is not finite"
    lists, pairs, agreeing = float(t["lists"]), float(t["pairs"]), t["agreeing"]
    if t["lists"] == 0:
        return _check_empty(t)
    rules = [
        ("pairs", t["pairs"] >= t["lists"], "every list implies at least one pair"),
        ("agreeing", _granular(agreeing, 2.0) and agreeing * 2.0 < TWO_POW_64, f"{agreeing} is not a count of halves"),
        ("agreeing", agreeing <= pairs, f"{agreeing} agreeing pairs out of {t['pairs']} pairs"),
        ("kendall_tau_lists", t["kendall_tau_lists"] <= t["lists"], "more lists with a τ-b than lists"),
        (
            "kendall_tau_sum",
            _at_most(abs(t["kendall_tau_sum"]), float(t["kendall_tau_lists"])),
            "not a sum of values in [-1, 1]",
        ),
    ]
    for field, holds, message in rules:
        if not holds:
            return f"totals.{field}", message
    loss = _check_loss(t, lists)
    if loss is not None:
        return loss
    return _check_square_sums(t, lists, pairs)


def _check_empty(t: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    fields = [
        ("pairs", float(t["pairs"])),
        ("agreeing", t["agreeing"]),
        ("loss_sum", t["loss_sum"] or 0.0),
        ("loss_sum_scaled", t["loss_sum_scaled"] or 0.0),
        ("loss_sum_squares", t["loss_sum_squares"] or 0.0),
        ("chance_loss_sum", t["chance_loss_sum"]),
        ("kendall_tau_sum", t["kendall_tau_sum"]),
        ("kendall_tau_lists", float(t["kendall_tau_lists"])),
        ("agreeing_squares", t["agreeing_squares"]),
        ("agreeing_pairs", t["agreeing_pairs"]),
        ("pairs_squares", t["pairs_squares"]),
    ]
    for field, value in fields:
        if value != 0.0:
            return f"totals.{field}", f"{value} with 0 lists"
    if t["loss_sum"] is None:
        return "totals.loss_sum", "missing"
    if t["loss_sum_squares"] is None:
        return "totals.loss_sum_squares", "missing, although a sum of no losses cannot overflow"
    return None


def _check_loss(t: Mapping[str, Any], lists: float) -> Optional[Tuple[str, str]]:
    loss_sum, scaled = t["loss_sum"], t["loss_sum_scaled"]
    if loss_sum is None and scaled is None:
        return "totals.loss_sum", "missing (and no loss_sum_scaled instead)"
    if loss_sum is not None and scaled is not None:
        return "totals.loss_sum_scaled", "present beside loss_sum: one of them is written"
    if loss_sum is None:
        if not _at_most(F64_MAX / TWO_POW_64, scaled):
            return "totals.loss_sum_scaled", f"{scaled} is given instead of loss_sum, which it does not overflow"
        return None
    square = loss_sum * loss_sum
    squares = t["loss_sum_squares"]
    if squares is None:
        if _at_most(F64_MAX, square):
            return None
        return "totals.loss_sum_squares", f"missing, although it is at most loss_sum² = {square}"
    if not _at_most(square / lists, squares):
        return "totals.loss_sum_squares", f"{squares} is below loss_sum²/lists = {square / lists}"
    if not _at_most(squares, square):
        return "totals.loss_sum_squares", f"{squares} is above loss_sum² = {square}"
    return None


def _check_square_sums(t: Mapping[str, Any], lists: float, pairs: float) -> Optional[Tuple[str, str]]:
    agreeing = t["agreeing"]
    a2, ap, p2 = t["agreeing_squares"], t["agreeing_pairs"], t["pairs_squares"]
    rules = [
        ("agreeing_squares", _granular(a2, 4.0), f"{a2} is not a sum of squared halves"),
        ("agreeing_pairs", _granular(ap, 2.0), f"{ap} is not a sum of halves times counts"),
        ("pairs_squares", _granular(p2, 1.0), f"{p2} is not a sum of squared counts"),
        ("pairs_squares", _at_most(pairs * pairs / lists, p2), f"{p2} is below pairs²/lists"),
        ("pairs_squares", _at_most(p2, pairs * pairs), f"{p2} is above pairs²"),
        ("pairs_squares", _at_most(pairs, p2), f"{p2} is below pairs = {pairs}"),
        ("agreeing_squares", _at_most(agreeing * agreeing / lists, a2), f"{a2} is below agreeing²/lists"),
        ("agreeing_squares", _at_most(a2, agreeing * agreeing), f"{a2} is above agreeing²"),
        ("agreeing_squares", _at_most(a2, ap), f"{a2} is above agreeing_pairs = {ap}"),
        ("agreeing_pairs", _at_most(ap, p2), f"{ap} is above pairs_squares = {p2}"),
        ("agreeing_pairs", _at_most(ap, agreeing * pairs), f"{ap} is above agreeing × pairs"),
        ("agreeing_pairs", _at_most(agreeing, ap), f"{ap} is below agreeing = {agreeing}"),
    ]
    for field, holds, message in rules:
        if not holds:
            return f"totals.{field}", message
    return None


def _overflow(field: str, index: int) -> MergeError:
    return MergeError(
        f"summary {index}: adding its {field} overflows the merged total; the summaries cannot be of one dataset",
        path=field,
        indices=(index,),
    )


def _round_half_away(value: float) -> int:
    """Rust's ``f64::round`` then ``as u64`` (saturating), for the non-negative values here."""
    floor = math.floor(value)
    rounded = floor + 1 if value - floor >= 0.5 else floor
    return min(max(int(rounded), 0), U64_MAX)


class _Totals:
    """The service's ``Totals``: counts, and compensated sums."""

    def __init__(self) -> None:
        self.lists = 0
        self.pairs = 0
        self.agreeing_halves = 0
        self.kendall_tau_lists = 0
        self.loss_sum = NeumaierSum()
        self.loss_sum_scaled = NeumaierSum()
        self.loss_sum_squares = NeumaierSum()
        self.sums = {name: NeumaierSum() for name in _SUM_FIELDS}

    @classmethod
    def from_json(cls, json_totals: Mapping[str, Any]) -> "_Totals":
        totals = cls()
        totals.lists = json_totals["lists"]
        totals.pairs = json_totals["pairs"]
        totals.kendall_tau_lists = json_totals["kendall_tau_lists"]
        totals.agreeing_halves = _round_half_away(json_totals["agreeing"] * 2.0)
        scaled = json_totals["loss_sum_scaled"]
        loss_sum = json_totals["loss_sum"]
        if loss_sum is None:
            loss_sum = (scaled if scaled is not None else 0.0) * TWO_POW_64
        totals.loss_sum = NeumaierSum(loss_sum)
        totals.loss_sum_scaled = NeumaierSum(scaled if scaled is not None else loss_sum / TWO_POW_64)
        squares = json_totals["loss_sum_squares"]
        totals.loss_sum_squares = NeumaierSum(squares if squares is not None else math.inf)
        totals.sums = {name: NeumaierSum(json_totals[name]) for name in _SUM_FIELDS}
        return totals

    def checked_merge(self, other: "_Totals", index: int) -> None:
        """Adds ``other``, unless a count would pass 2^64 - 1 or a sum (other than the loss sum
        kept scaled beside it, and the sum of squares) would leave the finite numbers."""
        counts = {}
        for name in ("lists", "pairs", "agreeing_halves", "kendall_tau_lists"):
            counts[name] = getattr(self, name) + getattr(other, name)
            if counts[name] > U64_MAX:
                field = "agreeing" if name == "agreeing_halves" else name
                raise _overflow(f"summary.totals.{field}", index)
        merged = {name: self.sums[name].copy() for name in _SUM_FIELDS}
        scaled = self.loss_sum_scaled.copy()
        scaled.merge(other.loss_sum_scaled)
        for name in _SUM_FIELDS:
            merged[name].merge(other.sums[name])
        for name, total in (("loss_sum_scaled", scaled), *merged.items()):
            if not math.isfinite(total.value()):
                raise _overflow(f"summary.totals.{name}", index)
        for name, value in counts.items():
            setattr(self, name, value)
        self.loss_sum.merge(other.loss_sum)
        self.loss_sum_scaled = scaled
        self.loss_sum_squares.merge(other.loss_sum_squares)
        self.sums = merged

    # The figures, as the service computes them from its totals.

    def loss(self) -> Optional[float]:
        if self.lists == 0:
            return None
        count = float(self.lists)
        mean = self.loss_sum.value() / count
        if math.isfinite(mean):
            return mean
        return fmin(self.loss_sum_scaled.value() / count / OVERFLOW_SCALE, F64_MAX)

    def accuracy(self) -> Optional[float]:
        if self.pairs == 0:
            return None
        return float(self.agreeing_halves) / (2.0 * float(self.pairs))

    def chance_loss(self) -> Optional[float]:
        return self.sums["chance_loss_sum"].value() / float(self.lists) if self.lists > 0 else None

    def kendall_tau(self) -> Optional[float]:
        if self.kendall_tau_lists == 0:
            return None
        return self.sums["kendall_tau_sum"].value() / float(self.kendall_tau_lists)

    def loss_standard_error(self) -> Optional[float]:
        return mean_standard_error(self.loss_sum.value(), self.loss_sum_squares.value(), self.lists)

    def accuracy_standard_error(self) -> Optional[float]:
        return ratio_standard_error(
            self.lists,
            float(self.agreeing_halves) / 2.0,
            float(self.pairs),
            self.sums["agreeing_squares"].value(),
            self.sums["agreeing_pairs"].value(),
            self.sums["pairs_squares"].value(),
        )

    def to_json(self) -> Dict[str, Any]:
        loss_sum = self.loss_sum.value()
        squares = self.loss_sum_squares.value()
        out: Dict[str, Any] = {"lists": self.lists, "pairs": self.pairs, "agreeing": float(self.agreeing_halves) / 2.0}
        if math.isfinite(loss_sum):
            out["loss_sum"] = loss_sum
        else:
            out["loss_sum_scaled"] = self.loss_sum_scaled.value()
        if math.isfinite(squares):
            out["loss_sum_squares"] = squares
        out["chance_loss_sum"] = self.sums["chance_loss_sum"].value()
        out["kendall_tau_sum"] = self.sums["kendall_tau_sum"].value()
        out["kendall_tau_lists"] = self.kendall_tau_lists
        for name in ("agreeing_squares", "agreeing_pairs", "pairs_squares"):
            out[name] = self.sums[name].value()
        return out


class _Bin:
    __slots__ = ("count", "predicted", "observed_halves", "squared_error")

    def __init__(self) -> None:
        self.count = 0
        self.predicted = NeumaierSum()
        self.observed_halves = 0
        self.squared_error = NeumaierSum()


class _Dataset:
    """The service's ``Dataset`` of a merge: the totals, the groups in order of first appearance,
    the calibration bins, the k least probable pairs and the length counts."""

    def __init__(self, run: Mapping[str, Any]) -> None:
        self.totals = _Totals()
        self.groups: Dict[str, _Totals] = {}
        bins = run["calibration_bins"]
        self.bins: Optional[List[_Bin]] = [_Bin() for _ in range(bins)] if bins is not None else None
        self.top = run["top_disagreements"]
        self.disagreements: List[Dict[str, Any]] = []
        self.length = LengthCounts()

    def merge_summary(self, shard: Mapping[str, Any], first_input: int, index: int) -> None:
        self.totals.checked_merge(_Totals.from_json(shard["totals"]), index)
        for position, (name, totals) in enumerate(shard["groups"]):
            if name not in self.groups:
                if len(self.groups) >= MAX_GROUPS:
                    raise MergeError(
                        f"summary {index}: summary.groups[{position}]: the merged summaries have more than "
                        f"{MAX_GROUPS} distinct groups together",
                        path=f"summary.groups[{position}]",
                        indices=(index,),
                    )
                self.groups[name] = _Totals()
            self.groups[name].checked_merge(_Totals.from_json(totals), index)
        if self.bins is not None and shard["calibration"]:
            for mine, (count, predicted, halves, squared) in zip(self.bins, shard["calibration"]):
                mine.count += count
                mine.predicted.merge(NeumaierSum(predicted))
                mine.observed_halves += halves
                mine.squared_error.merge(NeumaierSum(squared))
            if any(b.count > U64_MAX or b.observed_halves > U64_MAX for b in self.bins):
                raise _overflow("summary.totals.calibration", index)
        if shard["length"] is not None:
            overflowed = self.length.checked_merge(shard["length"])
            if overflowed is not None:
                raise _overflow(f"summary.totals.length.{overflowed}", index)
        if self.top is not None and shard["disagreements"]:
            for entry in shard["disagreements"]:
                shifted = dict(entry)
                shifted["input"] = first_input + (entry.get("input") or 0)
                self.disagreements.append(shifted)
            # Python's sort is stable, as the service's: equal keys keep their order.
            self.disagreements.sort(key=_disagreement_key)
            del self.disagreements[self.top :]

    def summary_json(self, normalization: str, lines_failed: int, confidence: float) -> Dict[str, Any]:
        """The summary object, its fields in the order the service writes them."""
        data = _summary_json(normalization, self.totals, lines_failed, confidence)
        out: Dict[str, Any] = {}
        for name, value in data.items():
            if name == "lines_failed":
                if self.groups:
                    out["macro_accuracy"] = _macro_accuracy([t.accuracy() for t in self.groups.values()])
                out[name] = value
                if self.groups:
                    out["groups"] = [_group_json(group, totals) for group, totals in self.groups.items()]
                if self.bins is not None:
                    out["calibration"] = _calibration_json(self.bins)
                if self.top is not None:
                    out["disagreements"] = [_disagreement_json(entry) for entry in self.disagreements]
                length = self.length.figures()
                if length is not None:
                    out["length"] = length
            elif name == "totals":
                if self.bins is not None:
                    value["calibration"] = [
                        {
                            "count": b.count,
                            "sum_predicted": b.predicted.value(),
                            "sum_observed": float(b.observed_halves) / 2.0,
                            "sum_squared_error": b.squared_error.value(),
                        }
                        for b in self.bins
                    ]
                if self.length.pairs > 0:
                    value["length"] = self.length.to_json()
                out[name] = value
            else:
                out[name] = value
        return {key: value for key, value in out.items() if value is not None}


def _macro_accuracy(accuracies: List[Optional[float]]) -> Optional[float]:
    """The mean of the groups' accuracies, added left to right as the service adds them (not with
    ``sum``, which compensates since Python 3.12)."""
    present = [accuracy for accuracy in accuracies if accuracy is not None]
    if not present:
        return None
    total = 0.0
    for accuracy in present:
        total += accuracy
    return total / float(len(present))


def _group_json(group: str, totals: _Totals) -> Dict[str, Any]:
    fields = [
        ("group", group),
        ("lists", totals.lists),
        ("pairs", totals.pairs),
        ("loss", totals.loss()),
        ("accuracy", totals.accuracy()),
        ("chance_loss", totals.chance_loss()),
        ("totals", totals.to_json()),
    ]
    return {name: value for name, value in fields if value is not None}


def _calibration_json(bins: List[_Bin]) -> Dict[str, Any]:
    """``calibration`` from the bins' sums, as the service's ``Calibration`` computes it."""
    k = len(bins)
    pairs = sum(b.count for b in bins)
    out: Dict[str, Any] = {}
    if pairs > 0:
        ece = NeumaierSum()
        for b in bins:
            if b.count > 0:
                mean_predicted = b.predicted.value() / float(b.count)
                observed = float(b.observed_halves) / (2.0 * float(b.count))
                ece.add(float(b.count) / float(pairs) * abs(mean_predicted - observed))
        squared = NeumaierSum()
        for b in bins:
            squared.merge(b.squared_error)
        out["ece"] = ece.value()
        out["brier"] = squared.value() / float(pairs)
    out["bins"] = []
    for j, b in enumerate(bins):
        entry: Dict[str, Any] = {
            "lower": 0.5 + float(j) / float(2 * k),
            "upper": 0.5 + float(j + 1) / float(2 * k),
            "count": b.count,
        }
        if b.count > 0:
            entry["mean_predicted"] = b.predicted.value() / float(b.count)
            entry["observed"] = float(b.observed_halves) / (2.0 * float(b.count))
        out["bins"].append(entry)
    return out


def _disagreement_json(entry: Mapping[str, Any]) -> Dict[str, Any]:
    order = ("input", "line", "list_id", "preferred", "other", "preferred_id", "other_id", "probability")
    return {name: entry[name] for name in order if entry.get(name) is not None}


def _summary_json(normalization: str, totals: _Totals, lines_failed: int, confidence: float) -> Dict[str, Any]:
    """The summary object, its fields in the order the service writes them."""
    loss = totals.loss()
    accuracy = totals.accuracy()
    loss_se = totals.loss_standard_error()
    accuracy_se = totals.accuracy_standard_error()
    figures: List[Tuple[str, Any]] = [
        ("loss", loss),
        ("normalization", normalization),
        ("lists", totals.lists),
        ("pairs", totals.pairs),
        ("accuracy", accuracy),
        ("chance_loss", totals.chance_loss()),
        ("kendall_tau", totals.kendall_tau()),
        ("loss_se", loss_se),
        ("loss_ci", list(interval(loss, loss_se, confidence)) if loss is not None and loss_se is not None else None),
        ("accuracy_se", accuracy_se),
        (
            "accuracy_ci",
            list(accuracy_interval(accuracy, accuracy_se, confidence))
            if accuracy is not None and accuracy_se is not None
            else None,
        ),
        ("lines_failed", lines_failed),
        ("totals", totals.to_json()),
    ]
    return {name: value for name, value in figures if value is not None}
