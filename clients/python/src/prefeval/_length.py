"""Length bias as the service counts it (``LengthCounts``): five pair counts, agreements in halves,
read from and written to a summary's ``totals.length``, merged with checked arithmetic, and the
``length`` figures computed from them. Shared by the merge of evaluations and of comparisons."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

U64_MAX = 2**64 - 1

#: ``totals.length``'s fields, in the service's order.
LENGTH_FIELDS = (
    "pairs",
    "pairs_preferred_longer",
    "agreeing_preferred_longer",
    "pairs_preferred_shorter",
    "agreeing_preferred_shorter",
)


class LengthCounts:
    """Implied pairs whose two items have a length; of those, the pairs whose preferred item is the
    longer and the shorter, and the model's agreement on each (in halves: a reward tie is one)."""

    def __init__(self) -> None:
        self.pairs = 0
        self.longer = 0
        self.agreeing_longer = 0
        self.shorter = 0
        self.agreeing_shorter = 0

    @classmethod
    def read(cls, data: Any, field: str, fail: Any) -> "LengthCounts":
        """``totals.length`` at ``field``: its fields present, counts of pairs, consistent."""
        if not isinstance(data, Mapping):
            raise fail(field, "expected an object")
        for key in data:
            if key not in LENGTH_FIELDS:
                raise fail(f"{field}.{key}", "unknown field")

        def count(name: str) -> int:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
                raise fail(f"{field}.{name}", "is no count of pairs")
            return value

        def halves(name: str) -> int:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise fail(f"{field}.{name}", "is no count of pairs")
            doubled = float(value) * 2.0
            if not (math.isfinite(doubled) and doubled >= 0.0 and math.modf(doubled)[0] == 0.0 and doubled <= 2.0**53):
                raise fail(f"{field}.{name}", "is no count of pairs")
            return int(doubled)

        length = cls()
        length.pairs = count("pairs")
        length.longer = count("pairs_preferred_longer")
        length.agreeing_longer = halves("agreeing_preferred_longer")
        length.shorter = count("pairs_preferred_shorter")
        length.agreeing_shorter = halves("agreeing_preferred_shorter")
        broken = length.inconsistency()
        if broken is not None:
            raise fail(f"{field}.{broken}", "is no count of pairs")
        return length

    def inconsistency(self) -> Optional[str]:
        """The first count larger than the whole it is a share of."""
        if self.longer + self.shorter > self.pairs:
            return "pairs_preferred_longer"
        if self.agreeing_longer > 2 * self.longer:
            return "agreeing_preferred_longer"
        if self.agreeing_shorter > 2 * self.shorter:
            return "agreeing_preferred_shorter"
        return None

    def checked_merge(self, other: "LengthCounts") -> Optional[str]:
        """Adds ``other``, unless a count would pass 2^64 − 1: then that count's JSON name, and
        nothing changed."""
        names = {
            "pairs": "pairs",
            "longer": "pairs_preferred_longer",
            "agreeing_longer": "agreeing_preferred_longer",
            "shorter": "pairs_preferred_shorter",
            "agreeing_shorter": "agreeing_preferred_shorter",
        }
        merged = {name: getattr(self, name) + getattr(other, name) for name in names}
        for name, value in merged.items():
            if value > U64_MAX:
                return names[name]
        for name, value in merged.items():
            setattr(self, name, value)
        return None

    def figures(self) -> Optional[Dict[str, Any]]:
        """``length`` of a summary, its fields in the service's order; ``None`` without pairs."""
        if self.pairs == 0:
            return None

        def ratio(halves: int, pairs: int) -> Optional[float]:
            return float(halves) / float(2 * pairs) if pairs > 0 else None

        equal = self.pairs - self.longer - self.shorter
        follows = self.agreeing_longer + (2 * self.shorter - self.agreeing_shorter)
        fields: List[Tuple[str, Any]] = [
            ("pairs", self.pairs),
            ("baseline_accuracy", float(2 * self.longer + equal) / float(2 * self.pairs)),
            ("reward_follows_length", ratio(follows, self.longer + self.shorter)),
            ("accuracy_preferred_longer", ratio(self.agreeing_longer, self.longer)),
            ("pairs_preferred_longer", self.longer),
            ("accuracy_preferred_shorter", ratio(self.agreeing_shorter, self.shorter)),
            ("pairs_preferred_shorter", self.shorter),
        ]
        return {name: value for name, value in fields if value is not None}

    def to_json(self) -> Dict[str, Any]:
        """``totals.length``."""
        return {
            "pairs": self.pairs,
            "pairs_preferred_longer": self.longer,
            "agreeing_preferred_longer": float(self.agreeing_longer) / 2.0,
            "pairs_preferred_shorter": self.shorter,
            "agreeing_preferred_shorter": float(self.agreeing_shorter) / 2.0,
        }
