"""``python -m train CONFIG [key=value ...]`` (also ``accelerate launch -m train`` / ``torchrun -m train``).

Prepares the data (exactly as ``python -m data``), fine-tunes the base model with the configured loss through
``SentenceTransformerTrainer``, evaluates on the dev split while training, and writes ``RUN_DIR/final/`` atomically
with ``run.json`` (seed, base model revision and weight hash, data fingerprints, library versions, throughput).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from configs.cli import parse, run
from configs.runs import atomic_dir, atomic_write_json, is_main_process, library_versions
from data.__main__ import save_run_data
from data.prepare import prepare
from evaluate.compare import check_tasks_fit
from train.losses import check_fit
from train.model import load_model
from train.trainer import build_trainer

log = logging.getLogger("train")


def main(argv: list[str] | None = None) -> int:
    # 1. Config and overrides.
    _, config = parse(argv, "python -m train", "Fine-tune a base model on the configured data.")
    run_dir = Path(config.run_dir)
    # 2. Data: the same splits `python -m data` writes; a loss that cannot read them stops us before any write.
    prepared = prepare(config)
    check_fit(config.loss.name, prepared.train.kind, f"data.train ({prepared.train.origin})")
    check_tasks_fit(config, prepared)
    stats = save_run_data(config, prepared)
    # 3. Base model, verified (bundled weights are hashed against the known release).
    model, resolved = load_model(config.model)
    # 4. Train; the library shows progress and logs dev metrics.
    trainer = build_trainer(config, model, prepared.train, prepared.dev)
    result = trainer.train()
    # 5. Only the main process writes: the final model atomically, then the run's provenance.
    if is_main_process():
        with atomic_dir(run_dir / "final") as tmp:
            trainer.model.save_pretrained(str(tmp))
        data_sha = json.loads((run_dir / "data" / "meta.json").read_text())["sha256"]
        atomic_write_json(run_dir / "run.json", {
            "seed": config.seed,
            "base_model": resolved.base_model,
            "model_revision": resolved.revision,
            "weights_sha256": resolved.weights_sha256,
            "base_fingerprint": resolved.fingerprint,
            "data_sha256": data_sha,
            "versions": library_versions(),
            "train": {**result.metrics, "rows": stats["splits"]["train"]["rows"], "steps": result.global_step},
            "dev_history": [e for e in trainer.state.log_history if any(k.startswith("eval_") for k in e)],
        })
        log.info("final model written to %s", run_dir / "final")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
