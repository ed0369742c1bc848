"""Peak memory and speed of ``cached_mnrl`` (GradCache) against plain ``mnrl``, in one run.

Each configuration trains in a fresh subprocess, so its peak resident memory (``ru_maxrss``, the kernel's
high-water mark of that process) is its own: the bundled all-MiniLM-L6-v2 (``core.model.load_model``), the
quickstart incident pairs (jargon -> anchor, plain -> positive, all 640 rows), the loss built by embtune's
registry, a handful of optimiser steps through ``SentenceTransformerTrainer`` (no checkpoints, no evaluation).

Memory is reported twice: total peak RSS, and the peak *above* the baseline measured after the model and data are
loaded (what training itself adds: activations, gradients, optimizer state). Throughput is pairs per second over
the steps after the first (the first step also allocates the optimizer state). Target: cached at 256 needs at most
0.5x the memory above baseline of plain mnrl at 256.

    .venv/bin/python benchmarks/cached_memory.py [--steps 3] [--json out.json]

With ``--run RUN_DIR`` (a run whose data/ ``python -m data`` wrote, e.g. scifact_recipe's mined tuples) the same
comparison runs on that training split at ``--batch`` (default 64): cached_mnrl (mini-batch 32) against mnrl, the
choice a recipe makes between memory and the extra no-grad forward pass GradCache costs.

    .venv/bin/python benchmarks/cached_memory.py --run runs/scifact_recipe --batch 64 --steps 2

``--mini-batches 8,16,32`` runs ``cached_mnrl`` at each mini-batch size instead (with ``--run``; ``--plain`` adds
plain ``mnrl`` too). GradCache computes the same loss and gradient whatever the mini-batch, so this is a pure speed
and memory choice; the table compares each with the largest mini-batch given (with ``--plain``, with plain mnrl).

    .venv/bin/python benchmarks/cached_memory.py --run runs/scifact_recipe --mini-batches 8,16,32 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "examples" / "incidents" / "incidents.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# (label, loss config, batch size); cached at 256 is the point: plain at 256 is what it replaces, plain at 32 is
# what fits when memory is short (32 candidates per anchor instead of 256).
CONFIGS = (
    ("cached_mnrl b256 mb32", {"name": "cached_mnrl", "mini_batch_size": 32}, 256),
    ("mnrl b256", {"name": "mnrl"}, 256),
    ("mnrl b32", {"name": "mnrl"}, 32),
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def training_rows(run: str | None):
    """The quickstart pairs, or the train split of RUN_DIR/data (canonical columns only)."""
    from datasets import Dataset

    if run is None:
        rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
        return Dataset.from_dict({"anchor": [r["jargon"] for r in rows], "positive": [r["plain"] for r in rows]})
    from data.prepare import load_prepared
    from train.trainer import trainer_dataset

    return trainer_dataset(load_prepared(Path(run)).train)


def child(loss: dict, batch: int, steps: int, run: str | None = None) -> dict:
    """Train ``steps`` steps in this process; returns its memory and speed figures."""
    sys.path.insert(0, str(REPO))
    from pydantic import TypeAdapter
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    from configs.schema import LossConfig, ModelConfig
    from core.model import load_model
    from train.losses import LOSSES

    model, _ = load_model(ModelConfig())
    dataset = training_rows(run)
    config = TypeAdapter(LossConfig).validate_python(loss)
    spec = LOSSES[config.name]
    baseline = peak_rss_mb()  # model + data + libraries, before any training

    class StepClock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    clock = StepClock()

    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=5e-5, seed=42,
            batch_sampler=spec.batch_sampler, save_strategy="no", report_to="none", logging_steps=steps,
            use_cpu=True, dataloader_pin_memory=False)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=spec.build(model, config), callbacks=[clock])
        trainer.train()
    ends = clock.ends
    return {"baseline_mb": baseline, "peak_mb": peak_rss_mb(), "steps": steps, "batch": batch,
            "pairs_per_s": (len(ends) - 1) * batch / (ends[-1] - ends[0]) if len(ends) > 1 else None}


def measure(label: str, loss: dict, batch: int, steps: int, run: str | None = None) -> dict:
    """One configuration in a fresh interpreter (its ru_maxrss is its own)."""
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps([loss, batch, steps, run])], cwd=REPO,
                          env=ENV, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["label"] = label
    result["above_baseline_mb"] = result["peak_mb"] - result["baseline_mb"]
    return result


def table(results: list[dict], reference: str = "mnrl b256") -> str:
    plain = next(r for r in results if r["label"] == reference)
    lines = [f"| configuration | steps | peak RSS MB | above baseline MB | vs {reference} (above / total) | rows/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        ratio = f"{r['above_baseline_mb'] / plain['above_baseline_mb']:.2f} / {r['peak_mb'] / plain['peak_mb']:.2f}"
        lines.append(f"| {r['label']} | {r['steps']} | {r['peak_mb']:.0f} | {r['above_baseline_mb']:.0f} | {ratio} | "
                     f"{r['pairs_per_s']:.2f} |")
    return "\n".join(lines)


def mini_batch_sizes(text: str) -> list[int]:
    """``--mini-batches``: comma-separated positive integers, e.g. ``8,16,32`` (sorted, without repeats)."""
    try:
        sizes = sorted({int(n) for n in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers, e.g. 8,16,32")
    if sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"mini-batch sizes must be 1 or more, got {sizes[0]}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="optimiser steps at batch 256 (batch 32 gets 8x more)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--run", help="train on RUN_DIR/data's train split (as python -m data wrote it)")
    parser.add_argument("--batch", type=int, default=64, help="batch size with --run")
    parser.add_argument("--mini-batches", type=mini_batch_sizes,
                        help="with --run: cached_mnrl at each of these mini-batch sizes (comma-separated, e.g. "
                        "8,16,32) instead of mini-batch 32 against plain mnrl")
    parser.add_argument("--plain", action="store_true", help="with --mini-batches: add plain mnrl at --batch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.mini_batches or args.plain) and not args.run:
        parser.error("--mini-batches and --plain compare settings on a run's own rows: add --run RUN_DIR")
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return 0
    results, load_before = [], os.getloadavg()
    configs = list(CONFIGS)
    if args.run is not None:
        configs = [(f"cached_mnrl b{args.batch} mb{size}", {"name": "cached_mnrl", "mini_batch_size": size}, args.batch)
                   for size in args.mini_batches or [32]]
        if args.plain or not args.mini_batches:
            configs.append((f"mnrl b{args.batch}", {"name": "mnrl"}, args.batch))
    reference = "mnrl b256" if args.run is None else configs[-1][0]  # plain mnrl, or the largest mini-batch
    for label, loss, batch in configs:
        steps = args.steps if args.run else args.steps * 256 // batch  # same number of rows for every configuration
        results.append(measure(label, loss, batch, steps, args.run))
        print(f"{label}: {json.dumps(results[-1])}", flush=True)
    print("\n" + table(results, reference) + "\n")
    summary = {"cpu_count": os.cpu_count(), "load_average_before_after": [load_before, os.getloadavg()],
               "results": results}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
