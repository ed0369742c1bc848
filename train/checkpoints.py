"""Checkpoints a crash cannot fake, resume from the newest complete one, Ctrl-C that saves, divergence that stops.

The library's trainer writes ``RUN_DIR/checkpoints/checkpoint-N`` (model, optimizer, scheduler, RNG states, trainer
state) but not atomically: a kill during the write leaves a folder that looks like any other. ``CompletionMarker``
writes ``embtune_checkpoint.json`` (run id, config hash, step) only after the library's ``on_save``, which it calls
once every file is written; a checkpoint without it is incomplete and never resumed from.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import signal
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config
from configs.runs import atomic_write_json, changed_settings, is_main_process
from configs.schema import RunConfig

log = logging.getLogger(__name__)

MARKER = "embtune_checkpoint.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def checkpoints_dir(config: RunConfig) -> Path:
    return Path(config.run_dir) / "checkpoints"


def complete_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints with a completion marker, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _STEP.match(p.name) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: int(_STEP.match(p.name).group(1)))


def drop_incomplete(folder: Path) -> None:
    """Remove checkpoint folders a crash left half-written (main process only)."""
    if not folder.is_dir() or not is_main_process():
        return
    for item in folder.iterdir():
        if _STEP.match(item.name) and not (item / MARKER).is_file():
            log.warning("removing incomplete checkpoint %s (the run stopped while writing it)", item)
            shutil.rmtree(item, ignore_errors=True)


def resume_point(config: RunConfig, command: str) -> tuple[Path | None, dict | None]:
    """The checkpoint to resume from and its completion marker (run id, config hash, data fingerprint), or
    (None, None) for a fresh start.

    Refuses a resume whose training settings differ from the interrupted run's (listing them), and refuses to
    start over existing checkpoints when ``train.resume`` is 'never'."""
    folder = checkpoints_dir(config)
    drop_incomplete(folder)
    done = complete_checkpoints(folder)
    if not done:
        return None, None
    newest = done[-1]
    if config.train.resume == "never":
        raise UserError(f"{folder} holds checkpoints of an interrupted run (newest: {newest.name}) and train.resume "
                        f"is 'never'. Resume with train.resume=auto, or start fresh in another run_dir=... "
                        f"(or delete {folder}).")
    resolved = Path(config.run_dir) / RESOLVED_NAME
    if resolved.is_file():
        differing = changed_settings(load_config(resolved), config)
        if differing:
            raise UserError(
                f"{config.run_dir} holds an interrupted run whose training settings differ from this config, so "
                f"resuming would mix two runs:\n  " + "\n  ".join(differing) + "\nResume with the original settings "
                f"({command} {resolved}), or start fresh in another run_dir=... (or delete {folder})."
            )
    marker = json.loads((newest / MARKER).read_text())
    log.warning("resuming from %s (step %s of run %s)", newest, marker["step"], marker["run_id"])
    return newest, marker


class CompletionMarker(TrainerCallback):
    """Marks a checkpoint complete once the trainer has written every file of it."""

    def __init__(self, run_id: str, config_hash: str, data_sha256: dict):
        self.run_id, self.config_hash, self.data_sha256 = run_id, config_hash, data_sha256

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                atomic_write_json(folder / MARKER, {"run_id": self.run_id, "config_hash": self.config_hash,
                                                    "data_sha256": self.data_sha256, "step": state.global_step})
        return control


def weights_finite(model) -> bool:
    """One norm over every trainable weight: NaN or inf anywhere makes it non-finite (so do weights beyond ~1e19,
    which is divergence too). One reduction per step instead of one per tensor: about 30 ms for MiniLM on a CPU."""
    weights = [p.detach() for p in model.parameters() if p.requires_grad]
    return not weights or bool(torch.isfinite(torch.nn.utils.get_total_norm(weights)))


class DivergenceGuard(TrainerCallback):
    """Stops training when the loss is NaN/inf or a weight became NaN/inf, naming the step; nothing is saved."""

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and not weights_finite(model):
            self._stop(state.global_step, "some weights are NaN or infinite")
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self._stop(state.global_step, f"the training loss is {loss}")
        return control

    def _stop(self, step: int, what: str) -> None:
        suggestion = min(self.learning_rate / 10, 2e-5)  # 2e-5 is a safe start for fine-tuning sentence encoders
        raise UserError(f"Training diverged at step {step}: {what}. No final/ model was written. Lower "
                        f"train.learning_rate (now {self.learning_rate:g}; try {suggestion:g}) or add "
                        "warm-up (train.warmup_ratio); checkpoints from before the divergence are kept.")


class NoCheckpointAtTheEnd(TrainerCallback):
    """No resumable checkpoint at the last step: final/ is written next, so it would be written twice (about 2 s for
    MiniLM with its optimizer state). Kept when the best checkpoint is loaded at the end (it may be the last one)
    and when an interrupt asked for it."""

    def __init__(self, interrupt: Interrupt):
        self.interrupt = interrupt

    def on_step_end(self, args, state, control, **kwargs):
        return self._skip(args, state, control)

    def on_epoch_end(self, args, state, control, **kwargs):
        return self._skip(args, state, control)

    def _skip(self, args, state, control):
        if state.global_step >= state.max_steps and not args.load_best_model_at_end and not self.interrupt.stopped:
            control.should_save = False
        return control


class Interrupt(TrainerCallback):
    """Ctrl-C (SIGINT) or SIGTERM: finish the current step, save a checkpoint, stop; the caller says how to resume.

    Under DDP every rank must stop at the same step, so the flag is agreed on with an all-reduce each step."""

    def __init__(self):
        self.requested = False
        self.stopped = False
        self._previous = {}

    def install(self) -> Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __enter__(self) -> Interrupt:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C: the user really wants out now
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after this step and saving a checkpoint (Ctrl-C again to abort without saving)...",
              file=sys.stderr)

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed():
            control.should_save = True
            control.should_training_stop = True
            self.stopped = True
        return control

    def _agreed(self) -> bool:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1 if self.requested else 0])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            return bool(flag.item())
        return self.requested
