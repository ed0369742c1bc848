"""``python -m train CONFIG [key=value ...]`` (also ``accelerate launch -m train`` / ``torchrun -m train``).

Prepares the data (exactly as ``python -m data``), fine-tunes the base model with the configured loss through
``SentenceTransformerTrainer``, evaluates on the dev split while training, checkpoints as it goes, and writes
``RUN_DIR/final/`` atomically with ``run.json`` (run id, config hash, base model and final model fingerprints, data
fingerprints, library versions, throughput, dev history). Run again after a crash or Ctrl-C and it resumes.
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
)
from core.adapters import add_lora, name_adapter_base, parameter_counts
from core.model import adapter_base_name, check_model_config, load_model
from core.run_record import run_record
from data.__main__ import save_run_data
from data.checks import check_classes_fill_batches
from data.prepare import prepare
from evaluate.sets import resolve_sets
from train.checkpoints import (
    CompletionMarker,
    DivergenceGuard,
    Interrupt,
    checkpoints_dir,
    resume_point,
    weights_finite,
)
from train.console import plan
from train.losses import check_fit, check_loss_fits_model
from train.tracking import check_trackers, tracking_environment
from train.trainer import build_trainer

log = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    # 1. Config and overrides; a folder we cannot write fails now, not after hours.
    argv = sys.argv[1:] if argv is None else argv
    _, config = parse(argv, "python -m train", "Fine-tune a base model on the configured data.")
    run_dir = Path(config.run_dir)
    check_writable(run_dir)
    with run_lock(run_dir):  # a second `python -m train` into this folder refuses while we live
        return train(config, run_dir, "python -m train " + shlex.join(argv))


def train(config, run_dir: Path, command: str) -> int:
    # 2. The folder: leftovers of a crash go, a finished run moves aside, an interrupted one resumes.
    if is_main_process():
        clean_orphans(run_dir)
        move_aside_finished(run_dir)
    checkpoint, marker = resume_point(config, "python -m train")
    run_id = marker["run_id"] if marker else new_run_id()
    check_model_config(config.model)  # model.kwargs, custom code, adapter on adapter: before any data work
    check_trackers(config)  # a tracker in train.report_to that is not installed: before any data work
    # 3. Data: the same splits `python -m data` writes; a loss that cannot read them stops us before any write
    #    (before mining too, which takes minutes on a real corpus).
    if config.data.hard_negatives:
        check_fit(config.loss.name, "tuples", "data.train after hard-negative mining")
    prepared = prepare(config)
    spec = check_fit(config.loss.name, prepared.train.kind, f"data.train ({prepared.train.origin})")
    if spec.batch_sampler == BatchSamplers.GROUP_BY_LABEL:  # batch-triplet losses need labels with 2+ texts
        check_classes_fill_batches(prepared.train, config.train.batch_size)
    # Tasks fit their splits; general (forgetting) sets load now, before hours of training.
    resolve_sets(config, prepared)
    # 4. Base model, verified (bundled files are fingerprinted against the known release); the loss must fit it
    #    (Matryoshka sizes, guide model) before anything is written.
    model, resolved = load_model(config.model)
    if config.model.adapter is not None:  # LoRA: the base is frozen, only the adapter trains
        add_lora(model, config.model.adapter, seed=config.seed)
    check_loss_fits_model(config.loss, model)
    stats = save_run_data(config, prepared)
    # Only the main process wrote data/ (other ranks neither record nor check it).
    data_sha = json.loads((run_dir / "data" / "meta.json").read_text())["sha256"] if is_main_process() else None
    if is_main_process() and marker and marker.get("data_sha256") not in (None, data_sha):
        raise UserError(f"The training data changed since the interrupted run in {run_dir} was checkpointed, so "
                        "resuming would mix two datasets. Restore the data, or start fresh in another run_dir=...")
    # 5. Train, checkpointing as we go; resume where an earlier process stopped.
    interrupt = Interrupt().install()
    callbacks = [CompletionMarker(run_id, config_hash(config), data_sha), DivergenceGuard(config.train.learning_rate),
                 interrupt]
    with tracking_environment(config, run_dir, run_id):  # train.report_to: TensorBoard dir, MLflow store and tags
        trainer = build_trainer(config, model, prepared.train, prepared.dev, callbacks)
        if is_main_process():
            log.info(plan(config, trainer, len(prepared.train.rows), parameter_counts(model)))
        try:
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        finally:
            interrupt.uninstall()
    if interrupt.stopped:
        if is_main_process():  # under DDP every rank stops; one says how to resume
            print(f"Interrupted: checkpoint saved in {checkpoints_dir(config)}. Resume with:\n  {command}",
                  file=sys.stderr)
        return 130
    # 6. Only the main process writes: the final model atomically, then the run's record, which makes it finished.
    if is_main_process():
        write_final(config, trainer, run_dir, resolved)
        atomic_write_json(run_dir / "run.json", run_record(config, trainer, result, resolved, run_id, data_sha, stats))
        shutil.rmtree(checkpoints_dir(config), ignore_errors=True)  # final/ holds the chosen weights now
        log.info("final model written to %s (run %s)", run_dir / "final", run_id)
    return 0


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
