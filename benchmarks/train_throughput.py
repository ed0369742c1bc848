"""Training throughput: ``python -m train`` against a plain SentenceTransformerTrainer script, in one run.

Same data (the quickstart's prepared training pairs), same model (bundled all-MiniLM-L6-v2), same hyperparameters
(MNRL, batch 32, no dev evaluation, no checkpoints), alternating A/B runs so drift in machine load hits both.
Throughput is pairs per second of the trainer's own ``train_runtime``; the ratio is embtune / plain (target ≥ 0.97).

    .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--repeats 2] [--precision fp32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_embtune(run_dir: Path, steps: int, batch: int, precision: str) -> float:
    """Pairs/s of `python -m train` (dev split off so neither side evaluates)."""
    subprocess.run([sys.executable, "-m", "train", "configs/quickstart.yaml", f"run_dir={run_dir}",
                    f"train.max_steps={steps}", f"train.batch_size={batch}", f"train.precision={precision}",
                    "data.dev_fraction=0", "train.learning_rate=5e-5", "seed=42"],
                   cwd=REPO, env=ENV, check=True, capture_output=True)
    metrics = json.loads((run_dir / "run.json").read_text())["train"]
    return steps * batch / metrics["train_runtime"]


def run_plain(train_jsonl: Path, model_dir: str, steps: int, batch: int, precision: str) -> float:
    done = subprocess.run([sys.executable, "benchmarks/plain_trainer.py", str(train_jsonl), model_dir, str(steps),
                           str(batch), "5e-5", "42", precision],
                          cwd=REPO, env=ENV, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["samples"] / result["train_runtime"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from configs.schema import ModelConfig
    from train.model import resolve_model

    model_dir = str(resolve_model(ModelConfig()).path)
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            run_dir = Path(tmp) / f"run{repeat}"
            ours.append(run_embtune(run_dir, args.steps, args.batch_size, args.precision))
            plain.append(run_plain(run_dir / "data" / "train.jsonl", model_dir, args.steps, args.batch_size,
                                   args.precision))
            print(f"repeat {repeat + 1}: embtune {ours[-1]:.1f} pairs/s, plain {plain[-1]:.1f} pairs/s", flush=True)
    ratio = statistics.median(o / p for o, p in zip(ours, plain))
    print(f"\n| precision | steps x batch | embtune pairs/s | plain pairs/s | ratio |\n|---|---|---:|---:|---:|\n"
          f"| {args.precision} | {args.steps} x {args.batch_size} | {statistics.median(ours):.1f} | "
          f"{statistics.median(plain):.1f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
