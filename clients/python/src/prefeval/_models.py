"""Typed results. Every class keeps the decoded JSON object it was made from in ``raw``, so fields
the service adds later are readable before this package knows them: ``result.raw["new_field"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union

from ._errors import ProtocolError

Json = Dict[str, Any]


class Interval(NamedTuple):
    """A confidence interval ``[lower, upper]`` (a tuple, so ``lo, hi = summary.loss_ci`` works)."""

    lower: float
    upper: float


def _interval(value: Any) -> Optional[Interval]:
    if value is None:
        return None
    lower, upper = value
    return Interval(float(lower), float(upper))


def _opt_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _require(data: Mapping[str, Any], what: str, *keys: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ProtocolError(f"{what} without {', '.join(missing)}: {str(dict(data))[:300]}", code="invalid_response")


@dataclass(frozen=True)
class Pair:
    """One implied preference: item ``preferred`` was ranked above item ``other`` (zero-based
    indices into the list's items as submitted), with the model's probability of it."""

    preferred: int
    other: int
    probability: float
    log_probability: float
    preferred_id: Optional[str] = None
    other_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Pair":
        return cls(
            preferred=data["preferred"],
            other=data["other"],
            probability=float(data["probability"]),
            log_probability=float(data["log_probability"]),
            preferred_id=data.get("preferred_id"),
            other_id=data.get("other_id"),
            raw=data,
        )


def _list_fields(data: Json) -> Dict[str, Any]:
    pairs = data.get("pairs")
    gradients = data.get("gradients")
    return dict(
        id=data.get("id"),
        n=data["n"],
        pairs_count=data["pairs_count"],
        loss=float(data["loss"]),
        accuracy=float(data["accuracy"]),
        chance_loss=_opt_float(data.get("chance_loss")),
        kendall_tau=_opt_float(data.get("kendall_tau")),
        pairs=None if pairs is None else [Pair.from_dict(p) for p in pairs],
        gradients=None if gradients is None else [float(g) for g in gradients],
        raw=data,
    )


@dataclass(frozen=True)
class ListResult:
    """The evaluation of one list (``lists[i]`` of ``/v1/evaluate``).

    ``pairs`` is ``None`` when pairs were not asked for (``include_pairs=False``), ``gradients``
    unless ``include_gradients=True``; ``kendall_tau`` is ``None`` where it is undefined.
    """

    id: Optional[str]
    n: int
    pairs_count: int
    loss: float
    accuracy: float
    chance_loss: Optional[float] = None
    kendall_tau: Optional[float] = None
    pairs: Optional[List[Pair]] = None
    gradients: Optional[List[float]] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "ListResult":
        try:
            return cls(**_list_fields(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected list result: {str(data)[:300]}", code="invalid_response") from exc


@dataclass(frozen=True)
class StreamResult(ListResult):
    """One result line of a stream: a :class:`ListResult` and ``line``, the 1-based line number of
    its list in the body (blank lines count)."""

    line: int = 0

    #: ``True``: this line was evaluated (a :class:`LineError` has ``ok = False``).
    ok = True

    @classmethod
    def from_dict(cls, data: Json) -> "StreamResult":
        try:
            return cls(line=data["line"], **_list_fields(data))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected stream line: {str(data)[:300]}", code="invalid_response") from exc


@dataclass(frozen=True)
class LineError:
    """A line of a stream that could not be evaluated; the stream went on after it."""

    line: int
    code: str
    message: str
    path: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    #: ``False``: this line was not evaluated.
    ok = False

    @classmethod
    def from_dict(cls, data: Json) -> "LineError":
        error = data.get("error") or {}
        return cls(
            line=data["line"],
            code=error.get("code", ""),
            message=error.get("message", ""),
            path=error.get("path"),
            raw=data,
        )


StreamItem = Union[StreamResult, LineError]


@dataclass(frozen=True)
class Totals:
    """The sufficient statistics of a batch or stream: they add up exactly across shards."""

    lists: int
    pairs: int
    agreeing: float
    loss_sum: Optional[float] = None
    loss_sum_squares: Optional[float] = None
    chance_loss_sum: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Totals":
        return cls(
            lists=data["lists"],
            pairs=data["pairs"],
            agreeing=float(data["agreeing"]),
            loss_sum=_opt_float(data.get("loss_sum")),
            loss_sum_squares=_opt_float(data.get("loss_sum_squares")),
            chance_loss_sum=_opt_float(data.get("chance_loss_sum")),
            raw=data,
        )


def _opt_totals(value: Any) -> Optional[Totals]:
    return None if value is None else Totals.from_dict(value)


@dataclass(frozen=True)
class Summary:
    """``summary`` of ``/v1/evaluate``: the batch figures. The standard errors and intervals are
    present with two lists or more (at ``confidence``, default 0.95)."""

    lists: int
    pairs: int
    accuracy: float
    chance_loss: Optional[float] = None
    kendall_tau: Optional[float] = None
    loss_se: Optional[float] = None
    loss_ci: Optional[Interval] = None
    accuracy_se: Optional[float] = None
    accuracy_ci: Optional[Interval] = None
    macro_accuracy: Optional[float] = None
    totals: Optional[Totals] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Summary":
        return cls(
            lists=data["lists"],
            pairs=data["pairs"],
            accuracy=float(data["accuracy"]),
            chance_loss=_opt_float(data.get("chance_loss")),
            kendall_tau=_opt_float(data.get("kendall_tau")),
            loss_se=_opt_float(data.get("loss_se")),
            loss_ci=_interval(data.get("loss_ci")),
            accuracy_se=_opt_float(data.get("accuracy_se")),
            accuracy_ci=_interval(data.get("accuracy_ci")),
            macro_accuracy=_opt_float(data.get("macro_accuracy")),
            totals=_opt_totals(data.get("totals")),
            raw=data,
        )


@dataclass(frozen=True)
class StreamSummary:
    """The last line of a complete stream: the figures of every list evaluated, and
    ``lines_failed``. ``loss``, ``accuracy`` and ``chance_loss`` are ``None`` when no list was."""

    normalization: str
    lists: int
    pairs: int
    lines_failed: int
    loss: Optional[float] = None
    accuracy: Optional[float] = None
    chance_loss: Optional[float] = None
    kendall_tau: Optional[float] = None
    loss_se: Optional[float] = None
    loss_ci: Optional[Interval] = None
    accuracy_se: Optional[float] = None
    accuracy_ci: Optional[Interval] = None
    totals: Optional[Totals] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "StreamSummary":
        try:
            return cls(
                normalization=data["normalization"],
                lists=data["lists"],
                pairs=data["pairs"],
                lines_failed=data["lines_failed"],
                loss=_opt_float(data.get("loss")),
                accuracy=_opt_float(data.get("accuracy")),
                chance_loss=_opt_float(data.get("chance_loss")),
                kendall_tau=_opt_float(data.get("kendall_tau")),
                loss_se=_opt_float(data.get("loss_se")),
                loss_ci=_interval(data.get("loss_ci")),
                accuracy_se=_opt_float(data.get("accuracy_se")),
                accuracy_ci=_interval(data.get("accuracy_ci")),
                totals=_opt_totals(data.get("totals")),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected stream summary: {str(data)[:300]}", code="invalid_response") from exc


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_predicted: Optional[float] = None
    observed: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Calibration:
    """``calibration`` (``calibration_bins=K``): ECE, Brier score and the bins on [½, 1]."""

    ece: float
    brier: float
    bins: List[CalibrationBin]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Calibration":
        bins = [
            CalibrationBin(
                lower=float(b["lower"]),
                upper=float(b["upper"]),
                count=b["count"],
                mean_predicted=_opt_float(b.get("mean_predicted")),
                observed=_opt_float(b.get("observed")),
                raw=b,
            )
            for b in data.get("bins", [])
        ]
        return cls(ece=float(data["ece"]), brier=float(data["brier"]), bins=bins, raw=data)


@dataclass(frozen=True)
class Disagreement:
    """One of the implied pairs the model contests most (``top_disagreements=k``)."""

    list: int
    preferred: int
    other: int
    probability: float
    list_id: Optional[str] = None
    preferred_id: Optional[str] = None
    other_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Disagreement":
        return cls(
            list=data["list"],
            preferred=data["preferred"],
            other=data["other"],
            probability=float(data["probability"]),
            list_id=data.get("list_id"),
            preferred_id=data.get("preferred_id"),
            other_id=data.get("other_id"),
            raw=data,
        )


@dataclass(frozen=True)
class GroupFigures:
    """The figures of the lists sharing one ``group``."""

    group: str
    lists: int
    pairs: int
    loss: float
    accuracy: float
    chance_loss: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "GroupFigures":
        return cls(
            group=data["group"],
            lists=data["lists"],
            pairs=data["pairs"],
            loss=float(data["loss"]),
            accuracy=float(data["accuracy"]),
            chance_loss=_opt_float(data.get("chance_loss")),
            raw=data,
        )


def _timing(headers: Mapping[str, str], name: str) -> Optional[float]:
    value = headers.get(name)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class EvaluateResult:
    """The answer of ``/v1/evaluate``.

    ``loss`` is the batch loss (the mean of the list losses); ``lists[i]`` answers ``lists[i]`` of
    the request. ``request_id`` is the ``x-request-id`` of the answer; ``queue_time_ms`` and
    ``compute_time_ms`` say where the service spent its time.
    """

    loss: float
    normalization: str
    summary: Summary
    lists: List[ListResult]
    calibration: Optional[Calibration] = None
    disagreements: Optional[List[Disagreement]] = None
    groups: Optional[List[GroupFigures]] = None
    request_id: Optional[str] = None
    queue_time_ms: Optional[float] = None
    compute_time_ms: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_response(cls, data: Json, headers: Optional[Mapping[str, str]] = None) -> "EvaluateResult":
        headers = headers or {}
        try:
            _require(data, "evaluate answer", "loss", "normalization", "summary", "lists")
            calibration = data.get("calibration")
            disagreements = data.get("disagreements")
            groups = data.get("groups")
            return cls(
                loss=float(data["loss"]),
                normalization=data["normalization"],
                summary=Summary.from_dict(data["summary"]),
                lists=[ListResult.from_dict(item) for item in data["lists"]],
                calibration=None if calibration is None else Calibration.from_dict(calibration),
                disagreements=None if disagreements is None else [Disagreement.from_dict(d) for d in disagreements],
                groups=None if groups is None else [GroupFigures.from_dict(g) for g in groups],
                request_id=headers.get("x-request-id"),
                queue_time_ms=_timing(headers, "x-queue-time-ms"),
                compute_time_ms=_timing(headers, "x-compute-time-ms"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected evaluate answer: {exc!r}", code="invalid_response") from exc


@dataclass(frozen=True)
class ModelFigures:
    """One model of a comparison, evaluated on every list as ``/v1/evaluate`` would alone."""

    model: str
    loss: float
    accuracy: float
    chance_loss: float
    loss_se: Optional[float] = None
    loss_ci: Optional[Interval] = None
    accuracy_se: Optional[float] = None
    accuracy_ci: Optional[Interval] = None
    kendall_tau: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "ModelFigures":
        return cls(
            model=data["model"],
            loss=float(data["loss"]),
            accuracy=float(data["accuracy"]),
            chance_loss=float(data["chance_loss"]),
            loss_se=_opt_float(data.get("loss_se")),
            loss_ci=_interval(data.get("loss_ci")),
            accuracy_se=_opt_float(data.get("accuracy_se")),
            accuracy_ci=_interval(data.get("accuracy_ci")),
            kendall_tau=_opt_float(data.get("kendall_tau")),
            raw=data,
        )


@dataclass(frozen=True)
class Comparison:
    """Models ``a`` and ``b`` compared on the same lists; every difference is a − b (a negative
    ``loss_difference`` favours ``a``). A difference is significant at the request's confidence when
    its ``_ci`` excludes 0; with more than two models, read the Holm-adjusted p-values."""

    a: str
    b: str
    loss_difference: float
    accuracy_difference: float
    lists_a_better: int
    lists_b_better: int
    lists_tied: int
    loss_difference_se: Optional[float] = None
    loss_difference_ci: Optional[Interval] = None
    loss_p_value: Optional[float] = None
    loss_p_value_holm: Optional[float] = None
    accuracy_difference_se: Optional[float] = None
    accuracy_difference_ci: Optional[Interval] = None
    accuracy_p_value: Optional[float] = None
    accuracy_p_value_holm: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Comparison":
        return cls(
            a=data["a"],
            b=data["b"],
            loss_difference=float(data["loss_difference"]),
            accuracy_difference=float(data["accuracy_difference"]),
            lists_a_better=data["lists_a_better"],
            lists_b_better=data["lists_b_better"],
            lists_tied=data["lists_tied"],
            loss_difference_se=_opt_float(data.get("loss_difference_se")),
            loss_difference_ci=_interval(data.get("loss_difference_ci")),
            loss_p_value=_opt_float(data.get("loss_p_value")),
            loss_p_value_holm=_opt_float(data.get("loss_p_value_holm")),
            accuracy_difference_se=_opt_float(data.get("accuracy_difference_se")),
            accuracy_difference_ci=_interval(data.get("accuracy_difference_ci")),
            accuracy_p_value=_opt_float(data.get("accuracy_p_value")),
            accuracy_p_value_holm=_opt_float(data.get("accuracy_p_value_holm")),
            raw=data,
        )


@dataclass(frozen=True)
class CompareResult:
    """The answer of ``/v1/compare``: every model's figures, then every pair of models compared,
    in the order (0, 1), (0, 2), …, (1, 2), …"""

    normalization: str
    confidence: float
    lists: int
    pairs: int
    models: List[ModelFigures]
    comparisons: List[Comparison]
    request_id: Optional[str] = None
    queue_time_ms: Optional[float] = None
    compute_time_ms: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    def model(self, name: str) -> ModelFigures:
        """The figures of the model called ``name``."""
        for figures in self.models:
            if figures.model == name:
                return figures
        raise KeyError(name)

    def comparison(self, a: str, b: str) -> Comparison:
        """The comparison of ``a`` with ``b`` (differences a − b), in either order of the request:
        asked the other way round, the answer's comparison is turned around too."""
        for item in self.comparisons:
            if (item.a, item.b) == (a, b):
                return item
            if (item.a, item.b) == (b, a):
                return _reversed(item)
        raise KeyError((a, b))

    @classmethod
    def from_response(cls, data: Json, headers: Optional[Mapping[str, str]] = None) -> "CompareResult":
        headers = headers or {}
        try:
            return cls(
                normalization=data["normalization"],
                confidence=float(data["confidence"]),
                lists=data["lists"],
                pairs=data["pairs"],
                models=[ModelFigures.from_dict(m) for m in data["models"]],
                comparisons=[Comparison.from_dict(c) for c in data["comparisons"]],
                request_id=headers.get("x-request-id"),
                queue_time_ms=_timing(headers, "x-queue-time-ms"),
                compute_time_ms=_timing(headers, "x-compute-time-ms"),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"unexpected compare answer: {exc!r}", code="invalid_response") from exc


def _negated(interval: Optional[Interval]) -> Optional[Interval]:
    return None if interval is None else Interval(-interval.upper, -interval.lower)


def _reversed(item: Comparison) -> Comparison:
    return Comparison(
        a=item.b,
        b=item.a,
        loss_difference=-item.loss_difference,
        accuracy_difference=-item.accuracy_difference,
        lists_a_better=item.lists_b_better,
        lists_b_better=item.lists_a_better,
        lists_tied=item.lists_tied,
        loss_difference_se=item.loss_difference_se,
        loss_difference_ci=_negated(item.loss_difference_ci),
        loss_p_value=item.loss_p_value,
        loss_p_value_holm=item.loss_p_value_holm,
        accuracy_difference_se=item.accuracy_difference_se,
        accuracy_difference_ci=_negated(item.accuracy_difference_ci),
        accuracy_p_value=item.accuracy_p_value,
        accuracy_p_value_holm=item.accuracy_p_value_holm,
        raw=item.raw,  # the answer's own object, a and b as the service wrote them
    )
