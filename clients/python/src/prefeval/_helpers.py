"""Building ranked lists from a reward model's outputs, and encoding them as JSON.

Rewards may be Python numbers, numpy arrays or torch tensors (on any device), or sequences of
their scalars: anything with ``.tolist()`` is read through it, so neither numpy nor torch is
imported here.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ._errors import InvalidInputError

__all__ = ["lists_from_pairs", "list_from_ranking"]


def _as_list(values: Any, name: str) -> List[Any]:
    if hasattr(values, "tolist"):  # numpy arrays and scalars, torch tensors (on any device)
        values = values.tolist()
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers, an array or a tensor, not {type(values).__name__}")
    return list(values)


def _scalar(value: Any) -> Any:
    # A column of shape (n, 1), as reward heads return it, gives one-element rows.
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    elif hasattr(value, "item"):  # a 0-d tensor or array, or a numpy scalar
        value = value.item()
    return value


def _rewards(values: Any, name: str) -> List[float]:
    out = []
    for index, value in enumerate(_as_list(values, name)):
        value = _scalar(value)
        if isinstance(value, (bool, str, bytes)):
            raise TypeError(f"{name}[{index}] is {value!r}, not a number")
        if not isinstance(value, (int, float)):
            try:
                value = float(value)  # Decimal, Fraction, ...
            except (TypeError, ValueError):
                raise TypeError(f"{name}[{index}] is {value!r}, not a number") from None
        reward = float(value)
        if not math.isfinite(reward):
            raise InvalidInputError(f"{name}[{index}] is {reward}; rewards must be finite", code="invalid_value")
        out.append(reward)
    return out


def _ranks(values: Any, count: int) -> List[int]:
    ranks = []
    for index, value in enumerate(_as_list(values, "ranks")):
        value = _scalar(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"ranks[{index}] is {value!r}, not an integer")
        ranks.append(value)
    if len(ranks) != count:
        raise ValueError(f"{count} rewards but {len(ranks)} ranks")
    return ranks


def _ids(ids: Optional[Sequence[Any]], count: int, name: str) -> Optional[List[str]]:
    if ids is None:
        return None
    out = [str(i) for i in _as_list(ids, name)]
    if len(out) != count:
        raise ValueError(f"{count} rewards but {len(out)} {name}")
    return out


def lists_from_pairs(
    chosen_rewards: Any,
    rejected_rewards: Any,
    ids: Optional[Sequence[Any]] = None,
) -> List[Dict[str, Any]]:
    """One list of two items per preference pair: the human preferred ``chosen`` to ``rejected``
    (TRL, RewardBench, HH-RLHF). ``chosen_rewards[i]`` and ``rejected_rewards[i]`` are the model's
    rewards of pair ``i``; ``ids`` (optional) names the lists.

    >>> lists_from_pairs([1.2, 0.3], [0.4, 0.9], ids=["p1", "p2"])[0]
    {'id': 'p1', 'items': [{'id': 'chosen', 'reward': 1.2}, {'id': 'rejected', 'reward': 0.4}]}
    """
    chosen = _rewards(chosen_rewards, "chosen_rewards")
    rejected = _rewards(rejected_rewards, "rejected_rewards")
    if len(chosen) != len(rejected):
        raise ValueError(f"{len(chosen)} chosen rewards but {len(rejected)} rejected rewards")
    names = _ids(ids, len(chosen), "ids")
    lists: List[Dict[str, Any]] = []
    for index, (c, r) in enumerate(zip(chosen, rejected)):
        entry: Dict[str, Any] = {}
        if names is not None:
            entry["id"] = names[index]
        entry["items"] = [{"id": "chosen", "reward": c}, {"id": "rejected", "reward": r}]
        lists.append(entry)
    return lists


def list_from_ranking(
    rewards: Any,
    ranks: Any = None,
    ids: Optional[Sequence[Any]] = None,
    *,
    list_id: Optional[str] = None,
) -> Dict[str, Any]:
    """One ranked list: the model's ``rewards`` of the responses to one prompt.

    Without ``ranks`` the responses are in the human's order, best first. With ``ranks``,
    ``ranks[k]`` is response ``k``'s rank (1 = best; ties and gaps allowed). ``ids`` (optional)
    names the responses, ``list_id`` the list.

    >>> list_from_ranking([0.2, 1.5, -0.3], ranks=[2, 1, 3], ids=["a", "b", "c"])
    {'items': [{'id': 'a', 'reward': 0.2, 'rank': 2}, {'id': 'b', 'reward': 1.5, 'rank': 1}, {'id': 'c', 'reward': -0.3, 'rank': 3}]}
    """
    values = _rewards(rewards, "rewards")
    rank_values = None if ranks is None else _ranks(ranks, len(values))
    names = _ids(ids, len(values), "ids")
    items: List[Dict[str, Any]] = []
    for index, reward in enumerate(values):
        item: Dict[str, Any] = {}
        if names is not None:
            item["id"] = names[index]
        item["reward"] = reward
        if rank_values is not None:
            item["rank"] = rank_values[index]
        items.append(item)
    entry: Dict[str, Any] = {}
    if list_id is not None:
        entry["id"] = list_id
    entry["items"] = items
    return entry


def _json_default(value: Any) -> Any:
    # numpy and torch scalars or arrays inside hand-built lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    default=_json_default,
)


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON. NaN and infinities are refused here (``ValueError``): JSON has no token
    for them, and the service would answer ``malformed_json``."""
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except ValueError as exc:
        if "Out of range" not in str(exc):
            raise
        message = f"{exc}: rewards must be finite numbers (NaN or an infinity was found)"
        raise InvalidInputError(message, code="invalid_value") from None
