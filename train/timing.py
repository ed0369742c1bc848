"""Where a training run's wall time goes, for run.json's ``seconds``: data, model loading, training steps, dev
evaluations, checkpoint writes, the final write, and the total (``benchmarks/recipe_cost.py`` prints them)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from transformers import TrainerCallback


class PhaseClock:
    """Seconds per named phase of the entry point (``with clock.phase("data"): ...``) and since it was made."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def record(self) -> dict[str, float]:
        """Every phase and the total so far, rounded to 10 ms."""
        return {**{k: round(v, 2) for k, v in self.seconds.items()},
                "total": round(time.perf_counter() - self.start, 2)}


class TrainingPhases(TrainerCallback):
    """Splits ``trainer.train()`` into dev evaluations and checkpoint writes; the rest is training steps.

    The trainer ends a step (``on_step_end``), may log, then evaluates (``on_evaluate`` once the evaluation is
    done) and then saves (``on_save`` once the checkpoint is written): each phase is the time since the previous
    of these events."""

    def __init__(self) -> None:
        self.seconds = {"dev_evaluation": 0.0, "checkpoints": 0.0}
        self.mark: float | None = None

    def _since_mark(self, name: str | None) -> None:
        now = time.perf_counter()
        if name is not None and self.mark is not None:
            self.seconds[name] += now - self.mark
        self.mark = now

    def on_step_end(self, args, state, control, **kwargs):
        self._since_mark(None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in (logs or {}):  # the training log after a step is part of the step; an evaluation logs its
            self._since_mark(None)  # metrics before on_evaluate, which must still count the evaluation

    def on_evaluate(self, args, state, control, **kwargs):
        self._since_mark("dev_evaluation")

    def on_save(self, args, state, control, **kwargs):
        self._since_mark("checkpoints")

    def split(self, train_seconds: float) -> dict[str, float]:
        """The wall time of ``trainer.train()`` as training steps, dev evaluation and checkpoints."""
        steps = max(train_seconds - sum(self.seconds.values()), 0.0)
        return {"training_steps": steps, **self.seconds}
