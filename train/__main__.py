"""``python -m train CONFIG [key=value ...]`` (also ``accelerate launch -m train`` / ``torchrun -m train``).

Trains on what ``python -m data`` wrote to ``RUN_DIR/data/`` while its recorded settings and sources match the config
(else prepares it again, exactly as ``python -m data`` would, and says why), fine-tunes the base model with the
configured loss through ``SentenceTransformerTrainer``, evaluates on the dev split while training, checkpoints as it
goes, and writes ``RUN_DIR/final/`` atomically with ``run.json`` (run id, config hash, base model and final model
fingerprints, data fingerprints, library versions, precision, wall time per phase, whole-run loss, dev history).
Run again after a crash or Ctrl-C and it resumes.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

from sentence_transformers.base.sampler import BatchSamplers

from configs.cli import parse, run
from configs.errors import UserError
from configs.runs import (
    atomic_dir,
    atomic_write_json,
    check_writable,
    clean_orphans,
    config_hash,
    is_main_process,
    move_aside_finished,
    new_run_id,
    run_lock,
    write_resolved,
)
from core.adapters import add_lora, name_adapter_base, parameter_counts
from core.bars import bars_on_terminal_only
from core.model import adapter_base_name, check_model_config, load_model
from core.run_record import run_record
from data.__main__ import data_for_training, save_run_data
from data.checks import check_classes_fill_batches
from evaluate.sets import resolve_sets
from train.checkpoints import (
    CompletionMarker,
    DivergenceGuard,
    Interrupt,
    NoCheckpointAtTheEnd,
    checkpoints_dir,
    resume_point,
    weights_finite,
)
from train.console import plan
from train.losses import check_fit, check_loss_fits_model
from train.timing import PhaseClock, TrainingPhases
from train.tracking import check_trackers, tracking_environment
from train.trainer import build_trainer, precision_record

log = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    # 1. Config and overrides; a folder we cannot write fails now, not after hours.
    argv = sys.argv[1:] if argv is None else argv
    _, config = parse(argv, "python -m train", "Fine-tune a base model on the configured data.")
    run_dir = Path(config.run_dir)
    check_writable(run_dir)
    # A second `python -m train` into this folder refuses while we live; a log file gets lines, never bars.
    with run_lock(run_dir), bars_on_terminal_only():
        return train(config, run_dir, "python -m train " + shlex.join(argv))


def train(config, run_dir: Path, command: str) -> int:
    clock = PhaseClock()  # wall time per phase, for run.json
    # 2. The folder: leftovers of a crash go, a finished run moves aside, an interrupted one resumes. The model
    #    section and the trackers are checked before any data work.
    checkpoint, marker = take_folder(config, run_dir)
    run_id = marker["run_id"] if marker else new_run_id()
    check_model_config(config.model)
    check_trackers(config)
    # 3. Data: data/ as `python -m data` wrote it while it matches, else prepared (and mined) here; a loss that
    #    cannot read it stops us before any write.
    with clock.phase("data"):
        prepared, stats, data_seconds = training_data(config)
    # 4. Base model, verified; the loss must fit it (Matryoshka sizes, guide model) before anything is written.
    with clock.phase("load_model"):
        model, resolved = base_model(config)
    stats, data_sha = record_data(config, run_dir, prepared, (stats, data_seconds), marker)
    # 5. Train, checkpointing as we go; resume where an earlier process stopped.
    phases = TrainingPhases()
    # Ctrl-C saves a checkpoint until training ends; train.report_to: TensorBoard dir, MLflow store and tags.
    with Interrupt() as interrupt, tracking_environment(config, run_dir, run_id):
        callbacks = [phases, CompletionMarker(run_id, config_hash(config), data_sha),
                     DivergenceGuard(config.train.learning_rate), interrupt, NoCheckpointAtTheEnd(interrupt)]
        trainer, result = fit(config, model, prepared, callbacks, checkpoint, clock, resolved.fingerprint)
    if interrupt.stopped:
        if is_main_process():  # under DDP every rank stops; one says how to resume
            print(f"Interrupted: checkpoint saved in {checkpoints_dir(config)}. Resume with:\n  {command}",
                  file=sys.stderr)
        return 130
    # 6. Only the main process writes: the final model atomically, then the run's record, which makes it finished.
    if is_main_process():
        with clock.phase("write_final"):
            write_final(config, trainer, run_dir, resolved)
        facts = {"resumed_at": marker["step"] if marker else 0, "precision": precision_record(config, model),
                 "seconds": run_seconds(clock, phases, data_seconds),
                 "data_prepared_by": "python -m data" if "read" in data_seconds else "python -m train"}
        atomic_write_json(run_dir / "run.json", run_record(config, trainer, result, resolved, run_id, data_sha,
                                                           stats, facts))
        shutil.rmtree(checkpoints_dir(config), ignore_errors=True)  # final/ holds the chosen weights now
        log.info("final model written to %s (run %s)", run_dir / "final", run_id)
    return 0


def take_folder(config, run_dir: Path) -> tuple[Path | None, dict | None]:
    """Clean a crash's leftovers and move a finished run aside (main process), then find where to resume:
    (checkpoint, its completion marker) or (None, None)."""
    if is_main_process():
        clean_orphans(run_dir)
        move_aside_finished(run_dir)
    return resume_point(config, "python -m train")


def training_data(config):
    """(prepared, stats or None, seconds) from ``data_for_training``, checked against the loss and the evaluation
    sets. A loss that cannot read mined tuples fails before mining, which takes minutes on a real corpus."""
    if config.data.hard_negatives:
        check_fit(config.loss.name, "tuples", "data.train after hard-negative mining")
    prepared, stats, seconds = data_for_training(config)
    spec = check_fit(config.loss.name, prepared.train.kind, f"data.train ({prepared.train.origin})")
    if spec.batch_sampler == BatchSamplers.GROUP_BY_LABEL:  # batch-triplet losses need labels with 2+ texts
        check_classes_fill_batches(prepared.train, config.train.batch_size)
    resolve_sets(config, prepared)  # tasks fit their splits; general (forgetting) sets load now, before training
    return prepared, stats, seconds


def base_model(config):
    """(model, ResolvedModel): the verified base (bundled files are fingerprinted against the known release), with
    a LoRA adapter when configured; the loss must fit it."""
    model, resolved = load_model(config.model)
    if config.model.adapter is not None:  # LoRA: the base is frozen, only the adapter trains
        add_lora(model, config.model.adapter, seed=config.seed)
    check_loss_fits_model(config.loss, model)
    return model, resolved


def record_data(config, run_dir: Path, prepared, read: tuple, marker: dict | None) -> tuple[dict, dict | None]:
    """Write data/ when it was prepared here (else only the resolved config: data/ is already there), and refuse to
    resume an interrupted run on other data. Returns (stats, data/meta.json's sha256, None off the main process).

    Args:
        read: (stats.json when data/ was read, else None; the data phase's seconds).
    """
    stats, seconds = read
    if stats is None:
        stats = save_run_data(config, prepared, seconds)
    elif is_main_process():
        write_resolved(config)
    if not is_main_process():  # only the main process wrote data/ (other ranks neither record nor check it)
        return stats, None
    data_sha = json.loads((run_dir / "data" / "meta.json").read_text())["sha256"]
    if marker and marker.get("data_sha256") not in (None, data_sha):
        raise UserError(f"The training data changed since the interrupted run in {run_dir} was checkpointed, so "
                        "resuming would mix two datasets. Restore the data, or start fresh in another run_dir=...")
    return stats, data_sha


def fit(config, model, prepared, callbacks: list, checkpoint: Path | None, clock: PhaseClock,
        base_fingerprint: str = ""):
    """(trainer, TrainOutput): the trainer built (phase 'setup') and run from ``checkpoint`` or the start
    (phase 'train'). ``base_fingerprint``: the base folder's, so the step-0 dev evaluation uses the embedding store."""
    with clock.phase("setup"):
        trainer = build_trainer(config, model, prepared.train, prepared.dev, callbacks, base_fingerprint)
    if is_main_process():
        log.info(plan(config, trainer, len(prepared.train.rows), parameter_counts(model)))
    with clock.phase("train"):
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return trainer, result


def run_seconds(clock: PhaseClock, phases: TrainingPhases, data_seconds: dict) -> dict:
    """run.json's ``seconds``: each phase of this process, trainer.train() split into training steps, dev evaluation
    and checkpoint writes; ``data_mining`` is the part of ``data`` spent mining (0 when data/ was read)."""
    record = clock.record()
    total = record.pop("total")
    split = {k: round(v, 2) for k, v in phases.split(record.pop("train", 0.0)).items()}
    return {**record, "data_mining": data_seconds.get("mining", 0.0), **split, "total": total}


def write_final(config, trainer, run_dir: Path, resolved) -> None:
    """``final/`` atomically; NaN weights never get there (the divergence guard also checks every step). A LoRA
    run's final/ is the adapter, naming its base as published (Hub id and commit) or as a local folder."""
    if not weights_finite(trainer.model):
        raise UserError("The trained weights hold NaN or infinite values; final/ was not written. Lower "
                        f"train.learning_rate (now {config.train.learning_rate:g}).")
    with atomic_dir(run_dir / "final") as tmp:
        trainer.model.save_pretrained(str(tmp))
        if config.model.adapter is not None:
            name_adapter_base(tmp, adapter_base_name(resolved), resolved.revision)


if __name__ == "__main__":
    sys.exit(run(main))
