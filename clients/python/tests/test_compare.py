"""`compare`, typed: docs/api.md's comparison of two baselines on 500 HH-RLHF pairs, figure for
figure (examples/compare/request.json and response.json in the repository)."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from conftest import REPO

import prefeval

EXAMPLE = REPO / "examples" / "compare"


def close(got: float, expected: float) -> bool:
    return abs(got - expected) <= max(1e-12 * abs(expected), 1e-15)


@pytest.fixture(scope="module")
def example() -> Dict[str, Any]:
    request = json.loads((EXAMPLE / "request.json").read_text(encoding="utf-8"))
    response = json.loads((EXAMPLE / "response.json").read_text(encoding="utf-8"))
    return {"request": request, "response": response}


def check(result: prefeval.CompareResult, expected: Dict[str, Any]) -> None:
    assert result.normalization == expected["normalization"]
    assert result.confidence == expected["confidence"]
    assert (result.lists, result.pairs) == (expected["lists"], expected["pairs"])
    assert [m.model for m in result.models] == [m["model"] for m in expected["models"]]
    for mine, theirs in zip(result.models, expected["models"]):
        for name in ("loss", "loss_se", "accuracy", "accuracy_se", "chance_loss", "kendall_tau"):
            assert close(getattr(mine, name), theirs[name]), name
        for name in ("loss_ci", "accuracy_ci"):
            interval = getattr(mine, name)
            assert isinstance(interval, prefeval.Interval)
            assert close(interval.lower, theirs[name][0]) and close(interval.upper, theirs[name][1])
    assert len(result.comparisons) == len(expected["comparisons"]) == 1
    mine_c, theirs_c = result.comparisons[0], expected["comparisons"][0]
    assert (mine_c.a, mine_c.b) == (theirs_c["a"], theirs_c["b"])
    for name in (
        "loss_difference", "loss_difference_se", "loss_p_value", "loss_p_value_holm",
        "accuracy_difference", "accuracy_difference_se", "accuracy_p_value", "accuracy_p_value_holm",
    ):  # fmt: skip
        assert close(getattr(mine_c, name), theirs_c[name]), name
    for name in ("lists_a_better", "lists_b_better", "lists_tied"):
        assert getattr(mine_c, name) == theirs_c[name]
    assert mine_c.loss_difference_ci is not None
    assert close(mine_c.loss_difference_ci.lower, theirs_c["loss_difference_ci"][0])


def test_compare_the_readme_example(url: str, example: Dict[str, Any]) -> None:
    request = example["request"]
    with prefeval.Client(url) as client:
        result = client.compare(request["lists"], models=request["models"], **request["options"])
    check(result, example["response"])
    assert result.request_id
    assert result.model("length").accuracy == pytest.approx(0.447)
    # Asked the other way round, the comparison is turned around.
    turned = result.comparison("length-penalized", "length")
    assert turned.loss_difference == -result.comparisons[0].loss_difference
    assert turned.lists_a_better == result.comparisons[0].lists_b_better
    assert turned.loss_difference_ci is not None and result.comparisons[0].loss_difference_ci is not None
    assert turned.loss_difference_ci.lower == -result.comparisons[0].loss_difference_ci.upper
    with pytest.raises(KeyError):
        result.model("rm-c")


@pytest.mark.anyio
async def test_async_compare_matches(url: str, example: Dict[str, Any]) -> None:
    request = example["request"]
    async with prefeval.AsyncClient(url) as client:
        result = await client.compare(request["lists"], models=request["models"], **request["options"])
    check(result, example["response"])


def test_three_models_and_one_list(url: str) -> None:
    lists = [{"id": "p1", "items": [{"id": "x", "rewards": [1.2, 0.3, 0.0]}, {"id": "y", "rewards": [0.1, 0.9, 0.0]}]}]
    with prefeval.Client(url) as client:
        result = client.compare(lists, models=["rm-a", "rm-b", "rm-c"], normalization="comparisons")
        assert [(c.a, c.b) for c in result.comparisons] == [("rm-a", "rm-b"), ("rm-a", "rm-c"), ("rm-b", "rm-c")]
        # One list: no standard errors, intervals or p-values.
        assert result.models[0].loss_se is None and result.models[0].loss_ci is None
        assert result.comparisons[0].loss_p_value is None
        with pytest.raises(prefeval.UnprocessableError) as caught:
            client.compare(lists, models=["rm-a", "rm-b"])
    assert caught.value.code == "invalid_value"
    assert caught.value.path == "lists[0].items[0].rewards"
