"""What ``python -m train`` says: the plan before the first step, one line per dev evaluation, and (in a log file,
where a progress bar would be carriage returns) one progress line per logging step, and one at the end of any
step that finishes a minute or more after the last line, so a slow run is never silent for long."""

from __future__ import annotations

import datetime
import logging
import math
import time

from transformers import TrainerCallback

from core.embed import training_precision

log = logging.getLogger("train")

HEARTBEAT = 60.0  # seconds after which a step that is not a logging step still gets a progress line


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def plan(config, trainer, rows: int, counts: dict[str, int]) -> str:
    """One paragraph: rows, batches, optimiser steps, epochs, precision, what is trained, when dev is evaluated."""
    t = config.train
    precision, why = training_precision(t.precision)
    batches = len(trainer.get_train_dataloader())  # per epoch, with the loss's batch sampler (and per rank)
    per_epoch = max(-(-batches // t.gradient_accumulation_steps), 1)  # the trainer's own rounding (ceil)
    steps = t.max_steps if t.max_steps > 0 else math.ceil(t.epochs * per_epoch)
    accumulate = (f", {t.gradient_accumulation_steps} batches per optimiser step (effective batch "
                  f"{t.batch_size * t.gradient_accumulation_steps})" if t.gradient_accumulation_steps > 1 else "")
    share = f"{counts['trainable']:,} of {counts['total']:,} parameters trainable"
    adapter = config.model.adapter
    percent = 100 * counts["trainable"] / max(counts["total"], 1)
    what = (f"LoRA adapter r={adapter.r} alpha={adapter.alpha} ({share}, {percent:.2f}%)" if adapter
            else f"full fine-tuning ({share})")
    dev = "no dev split" if getattr(trainer, "evaluator", None) is None else (
        f"dev evaluated every {t.eval_steps} steps" if t.eval_steps else "dev evaluated every epoch")
    return (f"plan: {rows:,} training rows in {batches:,} batches of {t.batch_size} per epoch{accumulate}; "
            f"{steps:,} optimiser steps ({steps / per_epoch:.2f} epochs); precision {precision} ({why}); {what}; {dev}"
            + ("; gradient checkpointing" if t.gradient_checkpointing else ""))


class DevLines(TrainerCallback):
    """``step 20/39: dev cosine_spearman 0.8123 (best 0.8123 at step 20)`` after every dev evaluation."""

    def __init__(self, metric: str):
        self.metric = metric
        self.best: tuple[float, int] | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is None or not state.is_world_process_zero:
            return
        if self.best is None or value > self.best[0]:
            self.best = (value, state.global_step)
        log.info("step %d/%d: dev %s %.4f (best %.4f at step %d)", state.global_step, state.max_steps,
                 self.metric.removeprefix("eval_dev_"), value, *self.best)


class ProgressLines(TrainerCallback):
    """``step 10/39 (26%): loss 0.4123, lr 1.95e-05, 0:00:12 elapsed, ~0:00:35 left`` per logging step, and
    a closing line; stands in for the transformers' raw dicts where no progress bar is drawn. Where steps are slow
    (a CPU at 80 s a step with ``logging_steps: 10`` would be silent for 13 minutes), a step ending ``interval``
    seconds (``HEARTBEAT``) or more after the last line gets ``step 3/12 (25%): 0:04:01 elapsed, ~0:12:03 left``
    (no loss: the trainer reports it only at logging steps)."""

    def __init__(self, interval: float | None = None):
        self.interval = HEARTBEAT if interval is None else interval
        self.clock = time.perf_counter

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first_step = self.clock(), state.global_step  # a resumed run starts mid-way
        self.last_line = self.start

    def _times(self, state) -> tuple[str, str]:
        now = self.clock()
        self.last_line = now
        elapsed = now - self.start
        done = max(state.global_step - self.first_step, 1)
        return _duration(elapsed), _duration(elapsed / done * (state.max_steps - state.global_step))

    def on_step_end(self, args, state, control, **kwargs):
        # the trainer's own flow callback runs first and has set should_log on a logging step: on_log says it then
        if (not state.is_world_process_zero or control.should_log
                or self.clock() - self.last_line < self.interval):
            return
        log.info("step %d/%d (%d%%): %s elapsed, ~%s left", state.global_step, state.max_steps,
                 100 * state.global_step // max(state.max_steps, 1), *self._times(state))

    def on_evaluate(self, args, state, control, **kwargs):
        self.last_line = self.clock()  # a dev evaluation ends with its own line (DevLines)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or "loss" not in (logs or {}):
            return
        log.info("step %d/%d (%d%%): loss %.4f, lr %.2e, %s elapsed, ~%s left", state.global_step, state.max_steps,
                 100 * state.global_step // max(state.max_steps, 1), logs["loss"], logs.get("learning_rate", 0.0),
                 *self._times(state))

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            log.info("trained to step %d in %s", state.global_step, _duration(self.clock() - self.start))


def console_callbacks(dev_metric: str | None, quiet_bars: bool) -> list[TrainerCallback]:
    """Dev lines always (when there is a dev split); progress lines only where no bar is drawn."""
    return [*([DevLines(dev_metric)] if dev_metric else []), *([ProgressLines()] if quiet_bars else [])]
