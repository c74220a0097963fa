"""The transformers callback, with a fake trainer state (transformers need not be installed)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

import prefeval
from prefeval import lists_from_pairs
from prefeval.integrations.transformers import PrefevalCallback


def fake_state(step: int, main: bool = True) -> Any:
    return SimpleNamespace(global_step=step, is_world_process_zero=main, log_history=[])


class FakeModel:
    """Stands for the model being trained: its rewards move with the step."""

    def __init__(self) -> None:
        self.shift = 0.0

    def rewards(self) -> Any:
        chosen = [0.1 * i + self.shift for i in range(50)]
        rejected = [0.1 * ((i * 7) % 50) for i in range(50)]
        return chosen, rejected


def test_on_evaluate_adds_the_figures_and_labels_the_step(url: str, server: Any) -> None:
    model = FakeModel()
    calls: List[Any] = []

    def eval_lists(m: Any) -> Any:
        calls.append(m)
        return lists_from_pairs(*m.rewards())

    with prefeval.Client(url) as client:
        callback = PrefevalCallback(client, eval_lists, model_prefix="rm-test", normalization="comparisons")
        metrics: Dict[str, float] = {"eval_loss": 0.5}
        control = SimpleNamespace(should_save=False)
        returned = callback.on_evaluate(SimpleNamespace(), fake_state(120), control, metrics=metrics, model=model)
        assert returned is None
        assert calls == [model]  # called with the model, as it takes an argument
        expected = client.evaluate(lists_from_pairs(*model.rewards()), normalization="comparisons", include_pairs=False)
    assert metrics["eval_loss"] == 0.5
    assert metrics["prefeval_loss"] == expected.loss
    assert metrics["prefeval_accuracy"] == expected.summary.accuracy
    assert expected.summary.loss_ci is not None and expected.summary.accuracy_ci is not None
    assert (metrics["prefeval_loss_ci_lower"], metrics["prefeval_loss_ci_upper"]) == tuple(expected.summary.loss_ci)
    assert (metrics["prefeval_accuracy_ci_lower"], metrics["prefeval_accuracy_ci_upper"]) == tuple(expected.summary.accuracy_ci)
    assert metrics["prefeval_chance_loss"] == expected.summary.chance_loss
    assert "prefeval_kendall_tau" in metrics
    assert callback.last_figures == {k: v for k, v in metrics.items() if k.startswith("prefeval_")}
    # The service counted the lists under the step's label.
    assert server.metric("prefeval_lists_evaluated_total", 'model="rm-test/step-120"') == 50


def test_a_function_without_arguments_and_the_stream_path(url: str, server: Any) -> None:
    lists = lists_from_pairs([1.0, 2.0, 0.5], [0.0, 2.5, 0.5])
    trainer_logs: List[Dict[str, float]] = []
    trainer = SimpleNamespace(log=trainer_logs.append)
    with prefeval.Client(url) as client:
        callback = PrefevalCallback(
            client, lambda: iter(lists), model_prefix="rm-stream", metric_key_prefix="eval_", trainer=trainer
        )
        metrics: Dict[str, float] = {}
        callback.on_evaluate(None, fake_state(7), None, metrics=metrics, model=object())
        batch = client.evaluate(lists, include_pairs=False)
    # An iterator goes through the stream: same figures as the batch.
    assert metrics["eval_prefeval_loss"] == pytest.approx(batch.loss, rel=1e-12)
    assert metrics["eval_prefeval_accuracy"] == pytest.approx(batch.summary.accuracy, rel=1e-12)
    assert trainer_logs == [metrics]  # also handed to the trainer's loggers
    assert server.metric("prefeval_lists_evaluated_total", 'model="rm-stream/step-7"') == 3


def test_only_the_main_process_calls_the_service(url: str) -> None:
    called: List[int] = []
    with prefeval.Client(url) as client:
        callback = PrefevalCallback(client, lambda: called.append(1) or [])
        metrics: Dict[str, float] = {}
        callback.on_evaluate(None, fake_state(1, main=False), None, metrics=metrics)
    assert called == [] and metrics == {}


def test_errors_warn_by_default_and_raise_on_request(url: str, caplog: pytest.LogCaptureFixture) -> None:
    bad = [{"items": [{"reward": 1.0}]}]  # too few items: 422
    with prefeval.Client(url) as client:
        metrics: Dict[str, float] = {}
        with caplog.at_level(logging.WARNING, logger="prefeval"):
            PrefevalCallback(client, lambda: bad).on_evaluate(None, fake_state(3), None, metrics=metrics)
        assert metrics == {}
        assert any("too_few_items" in record.getMessage() for record in caplog.records)
        with pytest.raises(prefeval.UnprocessableError):
            PrefevalCallback(client, lambda: bad, on_error="raise").on_evaluate(None, fake_state(3), None, metrics={})


def test_is_a_trainer_callback_when_transformers_is_installed() -> None:
    try:
        import transformers
    except ImportError:
        # Without transformers the other events are harmless no-ops.
        callback = PrefevalCallback(None, list)
        assert callback.on_train_begin(None, None, None) is None
        assert callback.on_log(None, None, None, logs={}) is None
        with pytest.raises(AttributeError):
            callback.not_an_event  # noqa: B018
        return
    assert isinstance(PrefevalCallback(None, list), transformers.TrainerCallback)
