"""A ``transformers`` training-loop callback: at each evaluation, the reward model's agreement with
human rankings, scored by prefeval, in the trainer's metrics.

    from prefeval import Client, lists_from_pairs
    from prefeval.integrations.transformers import PrefevalCallback

    def eval_lists(model):
        chosen, rejected = score_eval_pairs(model)   # your code: rewards of the eval set
        return lists_from_pairs(chosen, rejected)

    trainer = Trainer(..., callbacks=[PrefevalCallback(Client(url), eval_lists, model_prefix="rm-7b")])

The class is a ``transformers.TrainerCallback`` when ``transformers`` is installed; this package does
not require it (without it the class still works, for tests or other loops that call
``on_evaluate`` themselves).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Union

from .._models import StreamSummary, Summary

logger = logging.getLogger("prefeval")


class _NoTrainerCallback:
    """Stands in for ``transformers.TrainerCallback`` when transformers is not installed: every
    ``on_*`` event is a no-op."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


try:  # Only now, and only this module: `import prefeval` never imports transformers.
    from transformers import TrainerCallback as _CallbackBase  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # transformers is optional
    _CallbackBase = _NoTrainerCallback


class PrefevalCallback(_CallbackBase):  # type: ignore[misc, valid-type, unused-ignore]
    """Scores the model being trained with prefeval at each evaluation.

    - ``client``: a :class:`prefeval.Client`.
    - ``eval_lists_fn``: returns the eval set's ranked lists with the current model's rewards
      (e.g. :func:`prefeval.lists_from_pairs`). It is called with the model when it takes an
      argument and the trainer passes the model to its callbacks, else with no argument.
    - ``model_prefix``: the service's ``model`` label is ``f"{model_prefix}/step-{global_step}"``, so
      the service's per-model metrics (and dashboards) follow the checkpoints.
    - ``metric_prefix``, ``metric_key_prefix``: the keys added to ``metrics`` are
      ``f"{metric_key_prefix}{metric_prefix}_{figure}"``: ``prefeval_loss``,
      ``prefeval_loss_ci_lower``, ``prefeval_loss_ci_upper``, ``prefeval_accuracy``,
      ``prefeval_accuracy_ci_lower``, ``prefeval_accuracy_ci_upper``, ``prefeval_chance_loss`` and
      ``prefeval_kendall_tau`` (the intervals with two lists or more). Set
      ``metric_key_prefix="eval_"`` to select checkpoints on them with ``metric_for_best_model``.
    - ``trainer``: the ``Trainer``, if the figures should also go to its loggers (see below).
    - ``on_error``: ``"warn"`` (default: log and let training go on) or ``"raise"``.
    - ``stream_threshold``: above this many lists, or for an iterable that is not a sequence,
      the lists go through the stream endpoint instead of one batch.
    - other keywords are options of the evaluation (``normalization``, ``beta``, ``confidence``).

    The ``Trainer`` logs its evaluation metrics *before* it calls ``on_evaluate``: the keys added
    here reach the dict that ``trainer.evaluate()`` returns (and best-model selection), and the
    loggers (TensorBoard, W&B, ...) only when the callback knows the trainer (``trainer=``), as it
    then calls ``trainer.log()`` with them. Only the main process (``state.is_world_process_zero``)
    calls the service. ``last_figures`` holds the figures of the latest evaluation.
    """

    def __init__(
        self,
        client: Any,
        eval_lists_fn: Callable[..., Iterable[Mapping[str, Any]]],
        model_prefix: str = "model",
        *,
        metric_prefix: str = "prefeval",
        metric_key_prefix: str = "",
        trainer: Any = None,
        on_error: str = "warn",
        stream_threshold: int = 10_000,
        **evaluate_options: Any,
    ) -> None:
        super().__init__()
        if on_error not in ("warn", "raise"):
            raise ValueError("on_error must be 'warn' or 'raise'")
        self.client = client
        self.eval_lists_fn = eval_lists_fn
        self.model_prefix = model_prefix
        self.metric_prefix = metric_prefix
        self.metric_key_prefix = metric_key_prefix
        self.trainer = trainer
        self.on_error = on_error
        self.stream_threshold = stream_threshold
        self.evaluate_options = evaluate_options
        self.last_figures: Optional[Dict[str, float]] = None

    def model_label(self, state: Any) -> str:
        return f"{self.model_prefix}/step-{getattr(state, 'global_step', 0)}"

    def _eval_lists(self, model: Any) -> Iterable[Mapping[str, Any]]:
        if model is not None and _takes_an_argument(self.eval_lists_fn):
            return self.eval_lists_fn(model)
        return self.eval_lists_fn()

    def score(self, state: Any, model: Any = None) -> Dict[str, float]:
        """Evaluates the lists of ``eval_lists_fn`` under the label of ``state``'s step and returns
        the figures (keys as added to ``metrics``)."""
        lists = self._eval_lists(model)
        label = self.model_label(state)
        options = {"include_pairs": False, **self.evaluate_options}
        figures: Union[Summary, StreamSummary]
        if isinstance(lists, Sequence) and len(lists) <= self.stream_threshold:
            result = self.client.evaluate(lists, model=label, **options)
            loss, figures = result.loss, result.summary
        else:
            with self.client.evaluate_stream(lists, model=label, line_errors="skip", **options) as stream:
                for _ in stream:
                    pass
                summary: Optional[StreamSummary] = stream.summary
            if summary is None or summary.loss is None:
                raise ValueError("prefeval: no list of the eval set could be evaluated")
            loss, figures = summary.loss, summary
        key = f"{self.metric_key_prefix}{self.metric_prefix}_"
        out: Dict[str, float] = {f"{key}loss": loss}
        if figures.loss_ci is not None:
            out[f"{key}loss_ci_lower"], out[f"{key}loss_ci_upper"] = figures.loss_ci
        if figures.accuracy is not None:
            out[f"{key}accuracy"] = figures.accuracy
        if figures.accuracy_ci is not None:
            out[f"{key}accuracy_ci_lower"], out[f"{key}accuracy_ci_upper"] = figures.accuracy_ci
        if figures.chance_loss is not None:
            out[f"{key}chance_loss"] = figures.chance_loss
        if figures.kendall_tau is not None:
            out[f"{key}kendall_tau"] = figures.kendall_tau
        return out

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: Optional[Dict[str, float]] = None,
        **kwargs: Any,
    ) -> None:
        if not getattr(state, "is_world_process_zero", True):
            return None
        try:
            figures = self.score(state, kwargs.get("model"))
        except Exception as exc:
            if self.on_error == "raise":
                raise
            logger.warning("prefeval: the evaluation at step %s failed: %s", getattr(state, "global_step", "?"), exc)
            return None
        self.last_figures = figures
        if metrics is not None:
            metrics.update(figures)
        if self.trainer is not None:
            self.trainer.log(dict(figures))
        return None


def _takes_an_argument(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional or p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)


__all__ = ["PrefevalCallback"]
