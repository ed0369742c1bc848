"""Training throughput: ``python -m train`` against a plain SentenceTransformerTrainer script, in one run.

Same data (the quickstart's prepared training pairs), same model (bundled all-MiniLM-L6-v2), same hyperparameters
(MNRL, batch 32, no dev evaluation). Runs alternate A/B and swap which side goes first on every repeat, so drift
in machine load hits both. Throughput is pairs per second of the trainer's own ``train_runtime`` (the timed region:
the training loop, with everything embtune adds inside it -- callbacks and its per-epoch resumable checkpoint).
Reports mean, standard deviation, min and max of each side, and the ratio embtune / plain (target >= 0.97).

    .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--repeats 5] [--precision fp32] \
        [--embtune-override train.save_steps=100000] [--json out.json]

``--embtune-override`` adds ``key=value`` overrides to the embtune side only, e.g. pushing ``train.save_steps``
past ``--steps`` to measure embtune without its checkpoint.
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


def run_embtune(run_dir: Path, steps: int, batch: int, precision: str, overrides: list[str]) -> float:
    """Pairs/s of `python -m train` (dev split off so neither side evaluates)."""
    subprocess.run([sys.executable, "-m", "train", "configs/quickstart.yaml", f"run_dir={run_dir}",
                    f"train.max_steps={steps}", f"train.batch_size={batch}", f"train.precision={precision}",
                    "data.dev_fraction=0", "train.learning_rate=5e-5", "seed=42", *overrides],
                   cwd=REPO, env=ENV, check=True, capture_output=True)
    metrics = json.loads((run_dir / "run.json").read_text())["train"]
    return steps * batch / metrics["train_runtime"]


def run_plain(train_jsonl: Path, model_dir: str, steps: int, batch: int, precision: str) -> float:
    done = subprocess.run([sys.executable, "benchmarks/plain_trainer.py", str(train_jsonl), model_dir, str(steps),
                           str(batch), "5e-5", "42", precision],
                          cwd=REPO, env=ENV, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["samples"] / result["train_runtime"]


def spread(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "runs": values}


def summary(ours: list[float], plain: list[float], args) -> dict:
    ratios = [o / p for o, p in zip(ours, plain)]
    return {"precision": args.precision, "steps": args.steps, "batch_size": args.batch_size,
            "embtune_overrides": args.embtune_override, "embtune": spread(ours), "plain": spread(plain),
            "ratio_of_means": statistics.mean(ours) / statistics.mean(plain), "ratio_per_repeat": spread(ratios),
            "cpu_count": os.cpu_count(), "load_average_end": os.getloadavg()}


def table(s: dict) -> str:
    def cell(side: dict) -> str:
        return f"{side['mean']:.1f} ± {side['stdev']:.1f} ({side['min']:.1f}–{side['max']:.1f})"

    r = s["ratio_per_repeat"]
    return ("| precision | steps x batch | repeats | embtune pairs/s, mean ± sd (min–max) | plain pairs/s | "
            "ratio of means | per-repeat ratio (min–max) |\n|---|---|---:|---:|---:|---:|---:|\n"
            f"| {s['precision']} | {s['steps']} x {s['batch_size']} | {len(s['embtune']['runs'])} | "
            f"{cell(s['embtune'])} | {cell(s['plain'])} | {s['ratio_of_means']:.3f} | "
            f"{r['mean']:.3f} ({r['min']:.3f}–{r['max']:.3f}) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--embtune-override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from configs.schema import ModelConfig
    from core.model import resolve_model

    model_dir = str(resolve_model(ModelConfig()).path)
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # The plain side trains on the rows `python -m data` prepares (the same ones `python -m train` prepares).
        subprocess.run([sys.executable, "-m", "data", "configs/quickstart.yaml", f"run_dir={tmp}/data_run",
                        "data.dev_fraction=0", "seed=42"], cwd=REPO, env=ENV, check=True, capture_output=True)
        train_jsonl = Path(tmp) / "data_run" / "data" / "train.jsonl"
        for repeat in range(args.repeats):
            sides = [lambda: plain.append(run_plain(train_jsonl, model_dir, args.steps, args.batch_size,
                                                    args.precision)),
                     lambda: ours.append(run_embtune(Path(tmp) / f"run{repeat}", args.steps, args.batch_size,
                                                     args.precision, args.embtune_override))]
            for side in sides if repeat % 2 else sides[::-1]:  # swap which side goes first every repeat
                side()
            print(f"repeat {repeat + 1}: embtune {ours[-1]:.1f} pairs/s, plain {plain[-1]:.1f} pairs/s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    result = summary(ours, plain, args)
    print("\n" + table(result) + "\n\n" + json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
