"""Typed results. Every class keeps the decoded JSON object it was made from in ``raw``, so fields
the service adds later are readable before this package knows them: ``result.raw["new_field"]``."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union, get_args, get_origin, get_type_hints

from . import _json
from ._errors import ProtocolError
from ._html import headline_table, row_of

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


class _Decoded:
    """``from_dict`` for the result classes, derived from their field annotations: a field with no
    default that is not ``Optional`` is required, any other may be absent; numbers become floats where the field is
    a float, intervals :class:`Interval`, nested results their class. The decoded object keeps the
    JSON it came from in ``raw``."""

    @classmethod
    def from_dict(cls, data: Json):  # type: ignore[no-untyped-def]
        try:
            hints = _hints(cls)
            values: Dict[str, Any] = {}
            for spec in fields(cls):  # type: ignore[arg-type]
                if spec.name == "raw":
                    continue
                hint = hints[spec.name]
                no_default = spec.default is MISSING and spec.default_factory is MISSING
                required = no_default and get_origin(hint) is not Union
                values[spec.name] = _convert(hint, data[spec.name] if required else data.get(spec.name))
            return cls(raw=data, **values)  # type: ignore[call-arg]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"unexpected {cls.__name__}: {str(data)[:300]}", code="invalid_response"
            ) from exc


_HINTS: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin is Union:
        (inner,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return _convert(inner, value)
    if origin is list:
        (inner,) = get_args(hint)
        return [_convert(inner, item) for item in value]
    if hint is float:
        return float(value)
    if hint is Interval:
        return _interval(value)
    if isinstance(hint, type) and issubclass(hint, _Decoded):
        return hint.from_dict(value)
    return value


def _require(data: Mapping[str, Any], what: str, *keys: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ProtocolError(f"{what} without {', '.join(missing)}: {str(dict(data))[:300]}", code="invalid_response")


@dataclass(frozen=True)
class Pair(_Decoded):
    """One implied preference: item ``preferred`` was ranked above item ``other`` (zero-based
    indices into the list's items as submitted), with the model's probability of it.
    ``preferred_id`` and ``other_id`` are the items' ids when they were asked for
    (``include_pair_ids=True``) and the items have ids; ``None`` otherwise."""

    preferred: int
    other: int
    probability: float
    log_probability: float
    preferred_id: Optional[str] = None
    other_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Json) -> "Pair":
        (pair,) = _pairs([data])
        return pair


_PAIR_KEYS = frozenset(("preferred", "other", "probability", "log_probability"))


def _pairs(values: List[Json]) -> List[Pair]:
    """Pairs built directly on their JSON objects (an answer with pairs holds millions): each
    object becomes the pair's attribute dictionary as it is (the service writes the probabilities
    as doubles; absent ids fall back to the class's ``None``), and is its ``raw``."""
    new = object.__new__
    set_attribute = object.__setattr__
    keys = _PAIR_KEYS
    pairs = []
    for data in values:
        if type(data) is not dict or not keys <= data.keys():
            raise ProtocolError(f"unexpected Pair: {str(data)[:300]}", code="invalid_response")
        pair = new(Pair)
        set_attribute(pair, "__dict__", data)
        pairs.append(pair)
    return pairs


class _OwnAttributes:
    """``Pair.raw`` of a pair built by ``_pairs``: its attribute dictionary, which is the JSON
    object. (A pair made by ``Pair(...)`` holds its own ``raw``, which takes precedence.)"""

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else instance.__dict__


setattr(Pair, "raw", _OwnAttributes())


@dataclass(frozen=True)
class ListResult(_Decoded):
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


@dataclass(frozen=True)
class StreamResult(ListResult):
    """One result line of a stream: a :class:`ListResult` and ``line``, the 1-based line number of
    its list in the body (blank lines count)."""

    line: int = 0

    #: ``True``: this line was evaluated (a :class:`LineError` has ``ok = False``).
    ok = True

    @classmethod
    def from_dict(cls, data: Json, pairs_from: Optional[Tuple[bytes, int]] = None) -> "StreamResult":
        """A stream answers one of these per list, hundreds of thousands a run: built directly
        from the line's own fields (not through the annotations, as the other classes are), and
        ``pairs`` and ``gradients`` are decoded on first access. ``pairs_from``: the line and the
        offset of its ``pairs`` array when ``data`` was decoded without it (``raw`` then adds
        it back when read)."""
        if not isinstance(data, dict) or not _RESULT_KEYS <= data.keys():
            raise ProtocolError(f"unexpected stream line: {str(data)[:300]}", code="invalid_response")
        result = object.__new__(cls)
        values = result.__dict__
        values.update(data)  # the service writes loss, accuracy, ... as doubles
        if "pairs" in values:
            del values["pairs"]
        if "gradients" in values:
            del values["gradients"]
        if "id" not in values:
            values["id"] = None
        if pairs_from is None:
            values["raw"] = data
        else:
            values["_head"] = data
            values["_pairs_from"] = pairs_from
        return result


_RESULT_KEYS = frozenset(("line", "n", "pairs_count", "loss", "accuracy"))


def _pairs_json(self: StreamResult) -> Optional[List[Json]]:
    source = self.__dict__.get("_pairs_from")
    if source is None:
        pairs: Optional[List[Json]] = self.raw.get("pairs")
        return pairs
    line, start = source
    try:
        return list(_json.loads(line[start:-1]))
    except ValueError:  # a line laid out otherwise than the service does today
        return list(_json.loads(line)["pairs"])


def _lazy_pairs(self: StreamResult) -> Optional[List[Pair]]:
    pairs = _pairs_json(self)
    return None if pairs is None else _pairs(pairs)


def _lazy_gradients(self: StreamResult) -> Optional[List[float]]:
    source = self.__dict__.get("_head", self.__dict__.get("raw", {}))
    gradients = source.get("gradients")
    return None if gradients is None else [float(g) for g in gradients]


def _lazy_raw(self: StreamResult) -> Json:
    raw = dict(self.__dict__["_head"])
    raw["pairs"] = _pairs_json(self)
    return raw


# Class attributes the dataclass machinery leaves alone (they are not annotated in StreamResult):
# an instance built by ``from_dict`` has no ``pairs`` or ``gradients`` of its own until they are
# read, then keeps them; one built by ``StreamResult(...)`` holds what it was given.
setattr(StreamResult, "pairs", cached_property(_lazy_pairs))
getattr(StreamResult, "pairs").__set_name__(StreamResult, "pairs")
setattr(StreamResult, "gradients", cached_property(_lazy_gradients))
getattr(StreamResult, "gradients").__set_name__(StreamResult, "gradients")
setattr(StreamResult, "raw", cached_property(_lazy_raw))
getattr(StreamResult, "raw").__set_name__(StreamResult, "raw")


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
class ListModelFigures(_Decoded):
    """One model's figures on one list of a comparison stream (``kendall_tau`` is ``None`` where it
    is undefined, e.g. a list of tied items)."""

    loss: float
    accuracy: float
    kendall_tau: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class CompareStreamResult:
    """One result line of ``/v1/compare/stream``: ``line``, the 1-based line number of its list in
    the body, its ``id``, and every model's figures on it in the order of ``models``."""

    line: int
    id: Optional[str]
    models: List[ListModelFigures]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    #: ``True``: this line was compared (a :class:`LineError` has ``ok = False``).
    ok = True

    @classmethod
    def from_dict(cls, data: Json, pairs_from: Optional[Tuple[bytes, int]] = None) -> "CompareStreamResult":
        # ``pairs_from`` is the evaluate stream's (its lines carry pairs); a comparison line has none.
        try:
            return cls(
                line=data["line"],
                id=data.get("id"),
                models=[ListModelFigures.from_dict(figures) for figures in data["models"]],
                raw=data,
            )
        except (KeyError, TypeError) as exc:
            raise ProtocolError(f"unexpected compare stream line: {str(data)[:300]}", code="invalid_response") from exc


CompareStreamItem = Union[CompareStreamResult, LineError]


@dataclass(frozen=True)
class Totals(_Decoded):
    """The sufficient statistics of a batch or stream: they add up exactly across shards."""

    lists: int
    pairs: int
    agreeing: float
    loss_sum: Optional[float] = None
    loss_sum_squares: Optional[float] = None
    chance_loss_sum: Optional[float] = None
    kendall_tau_sum: Optional[float] = None
    kendall_tau_lists: Optional[int] = None
    agreeing_squares: Optional[float] = None
    agreeing_pairs: Optional[float] = None
    pairs_squares: Optional[float] = None
    #: In a summary line with calibration: each bin's count, Σq, Σy and Σ(q − y)², in bin order.
    calibration: Optional[List["CalibrationBinTotals"]] = None
    #: In a summary line with length figures: their pair counts.
    length: Optional["LengthTotals"] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class CalibrationBinTotals(_Decoded):
    """The sums of one calibration bin (``totals.calibration``): they add up across shards."""

    count: int
    sum_predicted: float
    sum_observed: float
    sum_squared_error: float
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class LengthTotals(_Decoded):
    """The pair counts of the length figures (``totals.length``): they add up across shards."""

    pairs: int
    pairs_preferred_longer: int
    agreeing_preferred_longer: float
    pairs_preferred_shorter: int
    agreeing_preferred_shorter: float
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class LengthFigures(_Decoded):
    """``length`` of a summary: length bias over the pairs whose two items have a length. A ratio
    is ``None`` when it has no pair."""

    pairs: int
    baseline_accuracy: float
    pairs_preferred_longer: int
    pairs_preferred_shorter: int
    reward_follows_length: Optional[float] = None
    accuracy_preferred_longer: Optional[float] = None
    accuracy_preferred_shorter: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class InputFingerprint(_Decoded):
    """The input a summary summarises: its size in bytes as received and its XXH3-64 (16 hex
    digits). Two summaries with the same fingerprint summarise the same input."""

    bytes: int
    xxh3: str
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RunInfo(_Decoded):
    """``run`` of a summary: how it was made. ``prefeval`` is the version that wrote it;
    ``normalization``, ``beta``, ``format`` and ``confidence`` the options its figures were computed
    with (``format`` is ``"mixed"`` for a merge of several formats); ``model`` the label given, or
    ``None``. ``input`` is the fingerprint of the input a stream or ``prefeval eval`` read; a merge
    has ``inputs`` instead, one per input merged, in order (and no ``input``)."""

    prefeval: str
    normalization: str
    beta: float
    format: str
    confidence: float
    model: Optional[str] = None
    #: K of the calibration figures and k of the least probable pairs, when asked for.
    calibration_bins: Optional[int] = None
    top_disagreements: Optional[int] = None
    input: Optional[InputFingerprint] = None
    inputs: Optional[List[InputFingerprint]] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Summary(_Decoded):
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
    run: Optional[RunInfo] = field(default=None, compare=False)
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class StreamSummary(_Decoded):
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
    #: With groups in the data: the mean of the groups' accuracies, and each group's figures.
    macro_accuracy: Optional[float] = None
    groups: Optional[List["SummaryGroup"]] = None
    #: With ``calibration_bins``: the calibration of every pair evaluated.
    calibration: Optional["Calibration"] = None
    #: With ``top_disagreements``: the k least probable pairs, each named by its line.
    disagreements: Optional[List["SummaryDisagreement"]] = None
    #: When pairs have the lengths of both items: length bias.
    length: Optional[LengthFigures] = None
    totals: Optional[Totals] = None
    # How the summary was made, not what it found: left out of ``==``, so that summaries of the
    # same lists sent in different bytes compare equal.
    #: The fingerprint of the body, as services before ``run`` wrote it (now ``run.input``).
    input: Optional[InputFingerprint] = field(default=None, compare=False)
    #: How the summary was made; every current service writes it (``None`` from older ones).
    run: Optional[RunInfo] = field(default=None, compare=False)
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    def _repr_html_(self) -> str:
        """The headline figures as a table (Jupyter)."""
        model = (self.run.model if self.run is not None else None) or "model"
        caption = f"stream summary, {self.normalization}"
        if self.lines_failed:
            caption += f", {self.lines_failed} lines failed"
        return headline_table([row_of(model, self.lists, self.pairs, self.loss, self.raw)], caption)


@dataclass(frozen=True)
class CalibrationBin(_Decoded):
    lower: float
    upper: float
    count: int
    mean_predicted: Optional[float] = None
    observed: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Calibration(_Decoded):
    """``calibration`` (``calibration_bins=K``): ECE, Brier score and the bins on [½, 1]. ``ece``
    and ``brier`` are ``None`` only in a summary of no pairs."""

    bins: List[CalibrationBin]
    ece: Optional[float] = None
    brier: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Disagreement(_Decoded):
    """One of the implied pairs the model contests most (``top_disagreements=k``)."""

    list: int
    preferred: int
    other: int
    probability: float
    list_id: Optional[str] = None
    preferred_id: Optional[str] = None
    other_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SummaryDisagreement(_Decoded):
    """One of a summary line's least probable pairs: named by its ``line`` and, in a merged
    summary, by its ``input`` (an index into ``run.inputs``)."""

    line: int
    preferred: int
    other: int
    probability: float
    input: Optional[int] = None
    list_id: Optional[str] = None
    preferred_id: Optional[str] = None
    other_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SummaryGroup(_Decoded):
    """One group of a summary line: its figures and its own totals."""

    group: str
    lists: int
    pairs: int
    totals: Totals
    loss: Optional[float] = None
    accuracy: Optional[float] = None
    chance_loss: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class GroupFigures(_Decoded):
    """The figures of the lists sharing one ``group``."""

    group: str
    lists: int
    pairs: int
    loss: float
    accuracy: float
    chance_loss: Optional[float] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)


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

    def _repr_html_(self) -> str:
        """The headline figures as a table (Jupyter)."""
        summary = self.summary
        model = (summary.run.model if summary.run is not None else None) or "model"
        row = row_of(model, summary.lists, summary.pairs, self.loss, summary.raw)
        return headline_table([row], f"evaluation, {self.normalization}")

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
class ModelFigures(_Decoded):
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


@dataclass(frozen=True)
class Comparison(_Decoded):
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

    def _repr_html_(self) -> str:
        """Every model's headline figures as a table (Jupyter)."""
        rows = [row_of(m.model, self.lists, self.pairs, m.loss, m.raw) for m in self.models]
        return headline_table(rows, f"comparison, {self.normalization}")

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
