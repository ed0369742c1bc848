"""A thin layer over ``SentenceTransformerTrainer``: our config in, the library's trainer out.

Nothing here changes how sentence-transformers trains; it picks arguments, columns and the dev evaluator from the
config so every run is the same few lines a careful user would write by hand.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from transformers import EarlyStoppingCallback, PrinterCallback

from configs.errors import UserError, did_you_mean
from configs.schema import RunConfig
from core.adapters import load_adapter_weights
from core.embed import resolve_precision, training_precision
from data.table import Table
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS, TaskEvaluator
from train.console import console_callbacks
from train.losses import LOSSES, check_fit, training_columns
from train.tracking import tracking_arguments

log = logging.getLogger(__name__)


def precision_record(config: RunConfig, model) -> dict[str, str]:
    """run.json's ``precision``: what training ran in and why (``train.precision``), and what the encode-only
    phases (dev evaluation, mining, the final evaluation) use on this hardware (``evaluate.precision``)."""
    train, why = training_precision(config.train.precision)
    return {"train": train, "why": why, "encode": resolve_precision(config.evaluate.precision, model)}


class AdapterTrainer(SentenceTransformerTrainer):
    """The library's trainer, except that resuming and loading the best checkpoint read the adapter weights into
    the wrapped model: the library would load the checkpoint as a new model, which an adapter folder is not."""

    def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
        load_adapter_weights(self.model, Path(checkpoint_path))



def training_arguments(config: RunConfig, dev: Table | None) -> SentenceTransformerTrainingArguments:
    try:
        return _training_arguments(config, dev)
    except ValueError as err:  # transformers checks combinations of settings; say it as a config error
        raise UserError(f"The train settings do not fit together: {err}") from None


def _training_arguments(config: RunConfig, dev: Table | None) -> SentenceTransformerTrainingArguments:
    t = config.train
    precision, _ = training_precision(t.precision)
    if precision == "fp16" and not torch.cuda.is_available():
        raise UserError("train.precision=fp16 needs a CUDA GPU; on CPU use bf16 (if supported) or fp32.")
    eval_strategy = "no" if dev is None else ("steps" if t.eval_steps else "epoch")
    return SentenceTransformerTrainingArguments(
        output_dir=str(Path(config.run_dir) / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=config.evaluate.batch_size,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a share of the total steps
        weight_decay=t.weight_decay,
        **memory_arguments(config),
        # Without a GPU, torchrun and accelerate only form real CPU ranks (gloo) when told the run is on CPU.
        use_cpu=not torch.cuda.is_available(),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        batch_sampler=LOSSES[config.loss.name].batch_sampler,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        # the base model's dev score as step 0: the dev curve (run.json, report.html) starts where training started
        eval_on_start=dev is not None,
        logging_steps=t.logging_steps,
        **saving_arguments(config, dev),
        prompts=dict(t.prompts) or None,
        **tracking(config),
        disable_tqdm=not sys.stderr.isatty(),  # a log file gets the trainer's line per logging step, not a bar
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=t.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def memory_arguments(config: RunConfig) -> dict:
    """The levers that trade time for memory, and the schedule. Gradient accumulation adds up the gradients of
    several batches per optimiser step; it does not add in-batch negatives (each batch still ranks only its own
    texts), for which the cached losses are the lever."""
    t = config.train
    return {
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        # transformers 5 calls gradient checkpointing "activation checkpointing" (non-reentrant by default, so
        # gradients reach LoRA weights although the frozen embeddings need none).
        "activation_checkpointing": t.gradient_checkpointing,
        "max_grad_norm": t.max_grad_norm,
        "lr_scheduler_type": t.scheduler,
    }


def tracking(config: RunConfig) -> dict:
    """Where the loss and dev metrics go while training (train.report_to; the environment the trackers read is set
    by ``train.tracking.tracking_environment`` around training)."""
    return tracking_arguments(config, Path(config.run_dir))


def saving_arguments(config: RunConfig, dev: Table | None) -> dict:
    """Resumable checkpoints in RUN_DIR/checkpoints (every save_steps, else every epoch) and, with select_best,
    the dev evaluation that picks which checkpoint becomes final/."""
    t = config.train
    selecting = bool(t.select_best or t.early_stopping_patience)
    if selecting and dev is None:
        raise UserError("train.select_best and train.early_stopping_patience pick checkpoints by their dev score, "
                        "but this run has no dev split. Set data.dev_fraction (e.g. 0.1) or data.dev.")
    strategy = "steps" if (t.save_steps or (selecting and t.eval_steps)) else "epoch"
    save_steps = t.save_steps or (t.eval_steps if selecting else None)
    # The library keeps the best of the *evaluated* checkpoints: saving and evaluating must fall on the same steps.
    out_of_step = (strategy == "steps") != bool(t.eval_steps) or bool(save_steps and save_steps % t.eval_steps)
    if selecting and out_of_step:
        raise UserError(f"train.select_best and early stopping keep the best evaluated checkpoint, so train.save_steps "
                        f"({save_steps}) must be a multiple of train.eval_steps ({t.eval_steps}); leave "
                        "save_steps empty to save at every evaluation.")
    return {
        "save_strategy": strategy, "save_steps": save_steps, "save_total_limit": t.save_total_limit,
        "load_best_model_at_end": selecting,
        "metric_for_best_model": dev_metric(dev) if selecting else None,
        "greater_is_better": True if selecting else None,
    }


def trainer_dataset(table: Table) -> Dataset:
    """Only the columns the loss reads, in the order it reads them (the collator passes them positionally)."""
    rows = table.rows.select_columns(training_columns(table.kind, table.rows.column_names)).flatten_indices()
    if table.kind == "classes":  # the batch triplet losses compare integer class ids, not names
        ids = {name: i for i, name in enumerate(sorted(set(rows["label"])))}
        rows = rows.remove_columns("label").add_column("label", [ids[name] for name in table.rows["label"]])
    return rows


def check_prompts(config: RunConfig, train: Table) -> None:
    """Prompts must name columns the training data has (a typo would silently train without the prompt)."""
    columns = training_columns(train.kind, train.rows.column_names)
    for column in config.train.prompts:
        if column not in columns:
            raise UserError(f"train.prompts names column '{column}', but data.train ({train.origin}) gives the loss "
                            f"{', '.join(columns)}.{did_you_mean(column, columns)}")


def base_store(config: RunConfig, base_fingerprint: str) -> tuple[str, str] | None:
    """(fingerprint, cache folder) for the step-0 dev evaluation, or None: no cache, no fingerprint, or a LoRA
    adapter (the model is wrapped, so its vectors are not keyed as the plain base model's)."""
    if not base_fingerprint or not config.evaluate.cache_dir or config.model.adapter is not None:
        return None
    return base_fingerprint, config.evaluate.cache_dir


def build_trainer(config: RunConfig, model, train: Table, dev: Table | None,
                  callbacks: list | tuple = (), base_fingerprint: str = "") -> SentenceTransformerTrainer:
    """Trainer with the configured loss and, when there is a dev split, the matching evaluator.

    ``base_fingerprint``: the base model folder's fingerprint (full fine-tuning): the dev evaluation at step 0 reads
    and fills the embedding store (``evaluate.cache_dir``) instead of encoding the base model's texts again."""
    check_prompts(config, train)
    spec = check_fit(config.loss.name, train.kind, f"data.train ({train.origin})")
    evaluator = None
    if dev is not None:
        # Dev retrieval ranks among the dev split's own documents: the full corpus would cost minutes per eval.
        # It encodes at the final evaluation's precision and chunks long documents by the same rule (evaluate.chunking).
        evaluator = TaskEvaluator(DEFAULT_TASK[dev.kind], dev, "dev", config.evaluate.batch_size, full_corpus=False,
                                  prompts=dict(config.train.prompts), seed=config.evaluate.seed,
                                  precision=resolve_precision(config.evaluate.precision, model),
                                  settings=config.evaluate, base_store=base_store(config, base_fingerprint))
    args = training_arguments(config, dev)
    trainer_class = SentenceTransformerTrainer if config.model.adapter is None else AdapterTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=trainer_dataset(train),
        loss=spec.build(model, config.loss),
        evaluator=evaluator,
        callbacks=[*callbacks, *early_stopping(config)],
    )
    if args.disable_tqdm:  # our progress lines replace the raw dicts transformers prints without a bar
        trainer.remove_callback(PrinterCallback)
    for callback in console_callbacks(dev_metric(dev), quiet_bars=args.disable_tqdm):
        trainer.add_callback(callback)
    return trainer


def dev_metric(dev: Table | None) -> str | None:
    """The trainer's name of the dev primary metric (what select_best compares), or None without a dev split."""
    return None if dev is None else f"eval_dev_{EVALUATORS[DEFAULT_TASK[dev.kind]].main}"


def early_stopping(config: RunConfig) -> list:
    patience = config.train.early_stopping_patience
    return [EarlyStoppingCallback(early_stopping_patience=patience)] if patience else []
