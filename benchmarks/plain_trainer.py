"""The same fine-tune written as a plain sentence-transformers script, for benchmarks/train_throughput.py.

Reads the (anchor, positive) rows embtune prepared, so both sides train on identical data with identical
hyperparameters. Prints one JSON line with the trainer's metrics.

    python benchmarks/plain_trainer.py TRAIN_JSONL MODEL_DIR MAX_STEPS BATCH_SIZE LR SEED PRECISION
"""

from __future__ import annotations

import json
import sys
import tempfile

from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss


def main(argv: list[str]) -> int:
    train_jsonl, model_dir, max_steps, batch_size, lr, seed, precision = argv
    rows = [json.loads(line) for line in open(train_jsonl, encoding="utf-8")]
    dataset = Dataset.from_dict({"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]})
    model = SentenceTransformer(model_dir, local_files_only=True)
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out, max_steps=int(max_steps), per_device_train_batch_size=int(batch_size),
            learning_rate=float(lr), warmup_steps=0.1, weight_decay=0.01, seed=int(seed), data_seed=int(seed),
            bf16=precision == "bf16", batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
            report_to="none", logging_steps=10, dataloader_pin_memory=False,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model, scale=20.0))
        metrics = trainer.train().metrics
    print(json.dumps({"train_runtime": metrics["train_runtime"], "samples": int(max_steps) * int(batch_size)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
