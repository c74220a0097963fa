"""`lists_from_pairs` and `list_from_ranking`: Python numbers, and anything with `.tolist()`
(numpy arrays, torch tensors) without either being imported by the package."""

from __future__ import annotations

import math
import sys
from typing import Any, List

import pytest

import prefeval
from prefeval import list_from_ranking, lists_from_pairs


class FakeTensor:
    """What the helpers rely on in a numpy array or a torch tensor: `.tolist()`."""

    def __init__(self, values: List[Any]) -> None:
        self.values = values

    def tolist(self) -> List[Any]:
        return self.values


class FakeScalar:
    """A 0-d tensor or numpy scalar: `.item()`."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_package_imports_neither_numpy_nor_torch() -> None:
    import subprocess

    code = "import sys, prefeval, prefeval.integrations.transformers; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_lists_from_pairs() -> None:
    lists = lists_from_pairs([1.2, 0.3], [0.4, 0.9], ids=["p1", "p2"])
    assert lists == [
        {"id": "p1", "items": [{"id": "chosen", "reward": 1.2}, {"id": "rejected", "reward": 0.4}]},
        {"id": "p2", "items": [{"id": "chosen", "reward": 0.3}, {"id": "rejected", "reward": 0.9}]},
    ]
    assert lists_from_pairs([1], [0]) == [{"items": [{"id": "chosen", "reward": 1.0}, {"id": "rejected", "reward": 0.0}]}]


def test_lists_from_pairs_duck_typed_arrays() -> None:
    # A reward head's output of shape (n, 1), and a list of 0-d tensors.
    chosen = FakeTensor([[1.5], [0.25]])
    rejected = [FakeScalar(0.5), FakeScalar(1.0)]
    lists = lists_from_pairs(chosen, rejected, ids=FakeTensor([7, 8]))
    assert [entry["id"] for entry in lists] == ["7", "8"]
    assert [[item["reward"] for item in entry["items"]] for entry in lists] == [[1.5, 0.5], [0.25, 1.0]]
    assert all(type(item["reward"]) is float for entry in lists for item in entry["items"])


def test_list_from_ranking() -> None:
    assert list_from_ranking([0.2, 1.5, -0.3]) == {"items": [{"reward": 0.2}, {"reward": 1.5}, {"reward": -0.3}]}
    ranked = list_from_ranking(FakeTensor([0.2, 1.5, -0.3]), ranks=FakeTensor([2.0, 1.0, 2.0]), ids=["a", "b", "c"], list_id="q")
    assert ranked == {
        "id": "q",
        "items": [
            {"id": "a", "reward": 0.2, "rank": 2},
            {"id": "b", "reward": 1.5, "rank": 1},
            {"id": "c", "reward": -0.3, "rank": 2},
        ],
    }


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: lists_from_pairs([1.0, 2.0], [0.0]), ValueError),
        (lambda: lists_from_pairs([1.0], [0.0], ids=["a", "b"]), ValueError),
        (lambda: lists_from_pairs([math.nan], [0.0]), ValueError),
        (lambda: lists_from_pairs([math.inf], [0.0]), ValueError),
        (lambda: lists_from_pairs(["1.0"], [0.0]), TypeError),
        (lambda: lists_from_pairs([True], [0.0]), TypeError),
        (lambda: lists_from_pairs(1.0, [0.0]), TypeError),
        (lambda: list_from_ranking([1.0, 0.0], ranks=[1]), ValueError),
        (lambda: list_from_ranking([1.0, 0.0], ranks=[1, 1.5]), TypeError),
    ],
)
def test_helpers_refuse_bad_input(call: Any, error: Any) -> None:
    with pytest.raises(error):
        call()


def test_numpy_arrays_if_installed(url: str) -> None:
    np = pytest.importorskip("numpy")
    chosen = np.array([1.0, 0.2, 3.0], dtype=np.float32)
    rejected = np.array([[0.0], [0.5], [1.0]])
    lists = lists_from_pairs(chosen, rejected)
    # numpy scalars inside hand-built lists are encoded too.
    lists.append({"items": [{"reward": np.float64(2.0)}, {"reward": np.int64(1)}]})
    with prefeval.Client(url) as client:
        result = client.evaluate(lists, normalization="comparisons", include_pairs=False)
    assert result.summary.lists == 4


def test_helpers_against_the_service(url: str) -> None:
    """The helpers' output is what the service takes, natively."""
    with prefeval.Client(url) as client:
        pairs = client.evaluate(lists_from_pairs([1.2, 0.3], [0.3, 1.2], ids=["p1", "p2"]), normalization="comparisons")
        assert pairs.summary.accuracy == 0.5
        assert pairs.lists[0].pairs is not None and pairs.lists[0].pairs[0].preferred_id is None
        named = client.evaluate(lists_from_pairs([1.2], [0.3]), normalization="comparisons", include_pair_ids=True)
        assert named.lists[0].pairs is not None
        assert (named.lists[0].pairs[0].preferred_id, named.lists[0].pairs[0].other_id) == ("chosen", "rejected")
        native = client.evaluate([{"id": "p1", "chosen_reward": 1.2, "rejected_reward": 0.3}], format="pairs", normalization="comparisons")
        assert native.lists[0].loss == pairs.lists[0].loss
        ranking = client.evaluate([list_from_ranking([0.2, 1.5, -0.3], ranks=[2, 1, 3])])
        assert ranking.lists[0].accuracy == 1.0 and ranking.lists[0].n == 3
