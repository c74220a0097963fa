"""``prefeval.merge`` of comparison summaries (``prefeval compare``, ``/v1/compare/stream``,
``prefeval diff``), as ``prefeval merge`` writes them: every model's totals and every pair of
models' sums are added, and the figures, p-values and Holm's adjustment are computed from the
merged sums with the service's formulas, so the merged summary equals the command's byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ._errors import ProtocolError
from ._html import headline_table, row_of
from ._length import U64_MAX, LengthCounts
from ._stats import (
    NeumaierSum,
    accuracy_interval,
    holm_adjust,
    interval,
    mean_standard_error,
    p_value,
    ratio_standard_error,
)

TWO_POW_64 = 18_446_744_073_709_551_616.0
OVERFLOW_SCALE = 1.0 / TWO_POW_64
F64_MAX_VALUE = 1.7976931348623157e308



@dataclass(frozen=True)
class ComparisonSummary:
    """A merged comparison summary: ``raw`` is the summary object ``prefeval merge`` prints (its
    ``models``, ``comparisons``, ``totals`` and ``run`` as the service writes them)."""

    normalization: str
    confidence: float
    lists: int
    pairs: int
    lines_failed: int
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ComparisonSummary":
        """The summary object of a comparison stream's last line, as the service wrote it."""
        try:
            return cls(
                normalization=data["normalization"],
                confidence=float(data["confidence"]),
                lists=data["lists"],
                pairs=data["pairs"],
                lines_failed=data["lines_failed"],
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected comparison summary: {str(data)[:300]}", code="invalid_response") from exc

    @property
    def models(self) -> List[Dict[str, Any]]:
        models: List[Dict[str, Any]] = self.raw["models"]
        return models

    @property
    def comparisons(self) -> List[Dict[str, Any]]:
        comparisons: List[Dict[str, Any]] = self.raw["comparisons"]
        return comparisons

    def _repr_html_(self) -> str:
        """Every model's headline figures as a table (Jupyter)."""
        rows = [row_of(str(m["model"]), self.lists, self.pairs, m.get("loss"), m) for m in self.models]
        caption = f"comparison summary, {self.normalization}"
        if self.lines_failed:
            caption += f", {self.lines_failed} lines failed"
        return headline_table(rows, caption)


class _Paired:
    """The service's ``PairedSums`` of one pair of models."""

    def __init__(self, json_sums: Mapping[str, Any]) -> None:
        # Exactly one of the two is present (checked by ``read_comparisons``).
        scaled = json_sums.get("loss_difference_sum_scaled")
        loss_sum = json_sums.get("loss_difference_sum")
        if loss_sum is None:
            loss_sum = float(scaled or 0.0) * TWO_POW_64
        squares = json_sums.get("loss_difference_squares")
        self.loss_sum = NeumaierSum(loss_sum)
        self.loss_squares = NeumaierSum(squares if squares is not None else math.inf)
        self.loss_scaled = NeumaierSum(scaled if scaled is not None else loss_sum / TWO_POW_64)
        self.lists = json_sums["lists"]
        self.e = float(json_sums["accuracy_difference_sum"])
        self.p = float(json_sums["pairs"])
        self.e2 = float(json_sums["accuracy_difference_squares"])
        self.ep = float(json_sums["accuracy_difference_pairs"])
        self.p2 = float(json_sums["pairs_squares"])
        self.a_better = json_sums["lists_a_better"]
        self.b_better = json_sums["lists_b_better"]
        self.tied = json_sums["lists_tied"]

    def merge(self, other: "_Paired") -> Optional[str]:
        """Adds ``other``; the name of a count or sum that would overflow instead."""
        for name in ("lists", "a_better", "b_better", "tied"):
            if getattr(self, name) + getattr(other, name) > U64_MAX:
                return {"lists": "lists", "a_better": "lists_a_better", "b_better": "lists_b_better", "tied": "lists_tied"}[name]
        scaled = self.loss_scaled.copy()
        scaled.merge(other.loss_scaled)
        sums = {
            "accuracy_difference_sum": self.e + other.e,
            "pairs": self.p + other.p,
            "accuracy_difference_squares": self.e2 + other.e2,
            "accuracy_difference_pairs": self.ep + other.ep,
            "pairs_squares": self.p2 + other.p2,
        }
        if not math.isfinite(scaled.value()):
            return "loss_difference_sum_scaled"
        for name, value in sums.items():
            if not math.isfinite(value):
                return name
        self.loss_sum.merge(other.loss_sum)
        self.loss_squares.merge(other.loss_squares)
        self.loss_scaled = scaled
        self.e, self.p, self.e2, self.ep, self.p2 = (sums[n] for n in sums)
        self.lists += other.lists
        self.a_better += other.a_better
        self.b_better += other.b_better
        self.tied += other.tied
        return None

    def loss_difference(self) -> Optional[float]:
        if self.lists == 0:
            return None
        mean = self.loss_sum.value() / float(self.lists)
        if math.isfinite(mean):
            return mean
        value = self.loss_scaled.value() / float(self.lists) / OVERFLOW_SCALE
        return min(max(value, -F64_MAX_VALUE), F64_MAX_VALUE)

    def to_json(self, a: str, b: str) -> Dict[str, Any]:
        out: Dict[str, Any] = {"a": a, "b": b, "lists": self.lists}
        loss_sum, squares = self.loss_sum.value(), self.loss_squares.value()
        if math.isfinite(loss_sum):
            out["loss_difference_sum"] = loss_sum
        else:
            out["loss_difference_sum_scaled"] = self.loss_scaled.value()
        if math.isfinite(squares):
            out["loss_difference_squares"] = squares
        out["accuracy_difference_sum"] = self.e
        out["accuracy_difference_squares"] = self.e2
        out["accuracy_difference_pairs"] = self.ep
        out["pairs"] = int(self.p)
        out["pairs_squares"] = self.p2
        out["lists_a_better"] = self.a_better
        out["lists_b_better"] = self.b_better
        out["lists_tied"] = self.tied
        return out


def model_pairs(models: int) -> List[Tuple[int, int]]:
    return [(a, b) for a in range(models) for b in range(a + 1, models)]


def read_comparisons(summary: Mapping[str, Any], models: List[str], fail: Any) -> List[_Paired]:
    """The comparisons' sums of a summary, checked as the service reads them back."""
    comparisons = summary.get("totals", {}).get("comparisons")
    pairs = model_pairs(len(models))
    if not isinstance(comparisons, list) or len(comparisons) != len(pairs):
        raise fail("summary.totals.comparisons", f"expected {len(pairs)} comparisons for {len(models)} models")
    read = []
    for r, (sums, (a, b)) in enumerate(zip(comparisons, pairs)):
        at = f"summary.totals.comparisons[{r}]"
        if not isinstance(sums, Mapping) or sums.get("a") != models[a] or sums.get("b") != models[b]:
            raise fail(f"{at}.a", f"expected `{models[a]}` with `{models[b]}` (run.models order)")
        for name in ("lists", "pairs", "lists_a_better", "lists_b_better", "lists_tied"):
            value = sums.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
                raise fail(f"{at}.{name}", f"expected an integer from 0 to 2^64 - 1, got {value!r}")
        if sums["lists_a_better"] + sums["lists_b_better"] + sums["lists_tied"] != sums["lists"]:
            raise fail(f"{at}.lists_tied", "lists_a_better + lists_b_better + lists_tied ≠ lists")
        for name in ("accuracy_difference_sum", "accuracy_difference_squares", "accuracy_difference_pairs", "pairs_squares"):
            value = sums.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise fail(f"{at}.{name}", "must be a finite number")
        if sums["accuracy_difference_squares"] < 0 or sums["pairs_squares"] < 0:
            raise fail(f"{at}.pairs_squares", "a sum of squares is never negative")
        loss_sum, scaled = sums.get("loss_difference_sum"), sums.get("loss_difference_sum_scaled")
        if (loss_sum is None) == (scaled is None):
            raise fail(f"{at}.loss_difference_sum", "give the finite loss_difference_sum, or loss_difference_sum_scaled when it overflows")
        read.append(_Paired(sums))
    return read


def read_lengths(summary: Mapping[str, Any], models: int, fail: Any) -> List[Optional[LengthCounts]]:
    """Each model's length counts, or ``None`` when its totals have no ``length``."""
    counts: List[Optional[LengthCounts]] = []
    for j, model in enumerate(summary["totals"]["models"][:models]):
        length = model.get("length") if isinstance(model, Mapping) else None
        at = f"summary.totals.models[{j}].length"
        counts.append(None if length is None else LengthCounts.read(length, at, fail))
    return counts


def comparison_json(
    normalization: str,
    confidence: float,
    models: List[str],
    totals: List[Any],
    lengths: List[LengthCounts],
    paired: List[_Paired],
) -> Dict[str, Any]:
    """``Comparison::of``: `/v1/compare`'s fields from the sums, in the service's order."""
    model_figures = []
    for name, t, counts in zip(models, totals, lengths):
        listed = t.lists > 0
        loss = t.loss()
        accuracy = (t.accuracy() or 0.0) if listed else None
        loss_se, accuracy_se = t.loss_standard_error(), t.accuracy_standard_error()
        figures: List[Tuple[str, Any]] = [
            ("model", name),
            ("loss", loss),
            ("loss_se", loss_se),
            ("loss_ci", list(interval(loss, loss_se, confidence)) if loss is not None and loss_se is not None else None),
            ("accuracy", accuracy),
            ("accuracy_se", accuracy_se),
            (
                "accuracy_ci",
                list(accuracy_interval(accuracy, accuracy_se, confidence))
                if accuracy is not None and accuracy_se is not None
                else None,
            ),
            ("chance_loss", (t.chance_loss() or 0.0) if listed else None),
            ("kendall_tau", t.kendall_tau()),
            ("length", counts.figures()),
        ]
        model_figures.append({key: value for key, value in figures if value is not None})
    comparisons = []
    for sums, (a, b) in zip(paired, model_pairs(len(models))):
        d = sums.loss_difference()
        d_se = mean_standard_error(sums.loss_sum.value(), sums.loss_squares.value(), sums.lists)
        delta = (sums.e / sums.p if sums.p != 0.0 else 0.0) if sums.lists > 0 else None
        delta_se = ratio_standard_error(sums.lists, sums.e, sums.p, sums.e2, sums.ep, sums.p2)
        loss_ci = loss_p = accuracy_ci = accuracy_p = None
        if d is not None and d_se is not None:
            loss_ci, loss_p = list(interval(d, d_se, confidence)), p_value(d, d_se)
        if delta is not None and delta_se is not None:
            accuracy_ci, accuracy_p = list(interval(delta, delta_se, confidence)), p_value(delta, delta_se)
        comparisons.append(
            [
                ("a", models[a]),
                ("b", models[b]),
                ("loss_difference", d),
                ("loss_difference_se", d_se),
                ("loss_difference_ci", loss_ci),
                ("loss_p_value", loss_p),
                ("loss_p_value_holm", None),
                ("accuracy_difference", delta),
                ("accuracy_difference_se", delta_se),
                ("accuracy_difference_ci", accuracy_ci),
                ("accuracy_p_value", accuracy_p),
                ("accuracy_p_value_holm", None),
                ("lists_a_better", sums.a_better),
                ("lists_b_better", sums.b_better),
                ("lists_tied", sums.tied),
            ]
        )
    for family in ("loss_p_value", "accuracy_p_value"):
        raw = [dict(entries)[family] for entries in comparisons]
        if all(p is not None for p in raw):
            for entries, adjusted in zip(comparisons, holm_adjust(raw)):
                entries[[key for key, _ in entries].index(f"{family}_holm")] = (f"{family}_holm", adjusted)
    first = totals[0]
    return {
        "normalization": normalization,
        "confidence": confidence,
        "lists": first.lists,
        "pairs": first.pairs,
        "models": model_figures,
        "comparisons": [{key: value for key, value in entries if value is not None} for entries in comparisons],
    }
