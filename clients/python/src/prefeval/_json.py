"""JSON decoding of answers: orjson when it is installed (``prefeval[fast]``), else the standard
library. A stream answers one line per list, so lines are decoded many at a time: one call for
every line of a received block, as the elements of one array."""

from __future__ import annotations

import json
from typing import Any, Callable, List

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    FAST = True
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads
    FAST = False


def loads_lines(lines: List[bytes]) -> List[Any]:
    """The values of ``lines`` (each one JSON text), in order. Raises ``ValueError`` when any line
    is not JSON; the caller then decodes them one by one to name the line."""
    if len(lines) == 1:
        return [loads(lines[0])]
    values = loads(b"[" + b",".join(lines) + b"]")  # this module's loads, as set now
    if not isinstance(values, list) or len(values) != len(lines):
        # A line holding two values separated by a comma would shift the others.
        raise ValueError("lines are not one JSON value each")
    return values
