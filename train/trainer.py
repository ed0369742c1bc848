"""A thin layer over ``SentenceTransformerTrainer``: our config in, the library's trainer out.

Nothing here changes how sentence-transformers trains; it picks arguments, columns and the dev evaluator from the
config so every run is the same few lines a careful user would write by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from configs.errors import UserError
from configs.schema import RunConfig
from data.sources import Table
from evaluate.evaluators import DEFAULT_TASK, TaskEvaluator
from train.losses import LOSSES, check_fit, training_columns

log = logging.getLogger(__name__)


def training_arguments(config: RunConfig, has_dev: bool) -> SentenceTransformerTrainingArguments:
    t = config.train
    if t.precision == "fp16" and not torch.cuda.is_available():
        raise UserError("train.precision=fp16 needs a CUDA GPU; on CPU use bf16 (if supported) or fp32.")
    eval_strategy = "no" if not has_dev else ("steps" if t.eval_steps else "epoch")
    return SentenceTransformerTrainingArguments(
        output_dir=str(Path(config.run_dir) / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=config.evaluate.batch_size,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a share of the total steps
        weight_decay=t.weight_decay,
        # Without a GPU, torchrun and accelerate only form real CPU ranks (gloo) when told the run is on CPU.
        use_cpu=not torch.cuda.is_available(),
        bf16=t.precision == "bf16",
        fp16=t.precision == "fp16",
        batch_sampler=LOSSES[config.loss.name].batch_sampler,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        logging_steps=t.logging_steps,
        save_strategy="no",  # the final model is written once, atomically, by train/__main__.py
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=t.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def trainer_dataset(table: Table) -> Dataset:
    """Only the columns the loss reads, in the order it reads them (the collator passes them positionally)."""
    rows = table.rows.select_columns(training_columns(table.kind, table.rows.column_names)).flatten_indices()
    if table.kind == "classes":  # the batch triplet losses compare integer class ids, not names
        ids = {name: i for i, name in enumerate(sorted(set(rows["label"])))}
        rows = rows.remove_columns("label").add_column("label", [ids[name] for name in table.rows["label"]])
    return rows


def build_trainer(config: RunConfig, model, train: Table, dev: Table | None) -> SentenceTransformerTrainer:
    """Trainer with the configured loss and, when there is a dev split, the matching evaluator."""
    spec = check_fit(config.loss.name, train.kind, f"data.train ({train.origin})")
    evaluator = None
    if dev is not None:
        # Dev retrieval ranks among the dev split's own documents: the full corpus would cost minutes per eval.
        evaluator = TaskEvaluator(DEFAULT_TASK[dev.kind], dev, "dev", config.evaluate.batch_size, full_corpus=False)
    return SentenceTransformerTrainer(
        model=model,
        args=training_arguments(config, dev is not None),
        train_dataset=trainer_dataset(train),
        loss=spec.build(model, config.loss),
        evaluator=evaluator,
    )
