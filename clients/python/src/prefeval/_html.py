"""The headline table that result objects show in Jupyter (``_repr_html_``): one row per model,
numbers rounded as the service's HTML report rounds them, each with its exact value in a
``title`` (shown on hover). Plain HTML, no style or script: notebooks render it as they render a
data frame."""

from __future__ import annotations

import math
from html import escape
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple


def shown(value: float) -> str:
    """``value`` to four significant digits, as the report shows it: fixed notation from 1e-4 to
    1e6 (whole numbers up to 999999 keep their digits), else scientific (``1.234e-12``); trailing
    zeros of the fraction dropped."""
    if value == 0.0:
        return "0"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    exponent = math.floor(math.log10(abs(value)))
    if not -4 <= exponent < 6:
        mantissa, power = f"{value:.3e}".split("e")
        return f"{_trim_fraction(mantissa)}e{int(power)}"
    decimals = max(3 - exponent, 0)
    return _trim_fraction(f"{value:.{decimals}f}")


def _trim_fraction(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


class HeadlineRow(NamedTuple):
    """One model's headline figures (``None`` where the summary has none)."""

    model: str
    lists: int
    pairs: int
    loss: Optional[float]
    loss_ci: Optional[Tuple[float, float]]
    chance_loss: Optional[float]
    accuracy: Optional[float]
    accuracy_ci: Optional[Tuple[float, float]]
    kendall_tau: Optional[float]
    macro_accuracy: Optional[float] = None


def row_of(model: str, lists: int, pairs: int, loss: Optional[float], figures: Mapping[str, Any]) -> HeadlineRow:
    """A row from the figures of a summary object (a JSON mapping, as decoded)."""

    def interval(name: str) -> Optional[Tuple[float, float]]:
        value = figures.get(name)
        return None if value is None else (float(value[0]), float(value[1]))

    def number(name: str) -> Optional[float]:
        value = figures.get(name)
        return None if value is None else float(value)

    return HeadlineRow(
        model=model,
        lists=lists,
        pairs=pairs,
        loss=loss,
        loss_ci=interval("loss_ci"),
        chance_loss=number("chance_loss"),
        accuracy=number("accuracy"),
        accuracy_ci=interval("accuracy_ci"),
        kendall_tau=number("kendall_tau"),
        macro_accuracy=number("macro_accuracy"),
    )


_COLUMNS = ("model", "lists", "pairs", "loss", "loss interval", "chance loss", "accuracy", "accuracy interval", "τ-b")
_NONE = "<td>–</td>"


def _figure(value: Optional[float]) -> str:
    if value is None:
        return _NONE
    return f'<td title="{value!r}">{shown(value)}</td>'


def _interval(value: Optional[Tuple[float, float]]) -> str:
    if value is None:
        return _NONE
    lower, upper = value
    return f'<td title="[{lower!r}, {upper!r}]">[{shown(lower)}, {shown(upper)}]</td>'


def headline_table(rows: Sequence[HeadlineRow], caption: Optional[str] = None) -> str:
    """The table: a row per model; a macro accuracy column when a row has one."""
    macro = any(row.macro_accuracy is not None for row in rows)
    head = "".join(f"<th>{name}</th>" for name in _COLUMNS) + ("<th>macro accuracy</th>" if macro else "")
    parts: List[str] = ['<table class="prefeval-headline">']
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append(f"<thead><tr>{head}</tr></thead><tbody>")
    for row in rows:
        cells: Iterable[str] = (
            f'<th scope="row">{escape(row.model)}</th>',
            f"<td>{row.lists}</td>",
            f"<td>{row.pairs}</td>",
            _figure(row.loss),
            _interval(row.loss_ci),
            _figure(row.chance_loss),
            _figure(row.accuracy),
            _interval(row.accuracy_ci),
            _figure(row.kendall_tau),
        )
        macro_cell = _figure(row.macro_accuracy) if macro else ""
        parts.append(f"<tr>{''.join(cells)}{macro_cell}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)
