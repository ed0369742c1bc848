"""LoRA against full fine-tuning on one config, same seed, in one run.

Runs ``python -m train`` then ``python -m evaluate`` twice on the same config: once as written (full fine-tuning)
and once with a LoRA adapter (``--lora`` overrides, default every linear layer of a BERT encoder at r 16, with the
learning rate LoRA needs). Each training is its own process; its wall time and peak resident memory come from the
kernel (``os.wait4``), so model loading, data preparation and dev evaluation are inside both. Quality is the first
evaluation set's main metric for the base model and each tuned model, with the paired CI of the tuned-minus-base
delta from ``eval/report.json``.

    .venv/bin/python benchmarks/lora_vs_full.py configs/scifact_mnrl.yaml --out /tmp/lora_bench [--json out.json]

Prints a Markdown table (trainable parameters, quality, wall time, peak memory, and LoRA / full ratios). Run it on a
quiet machine: on 2 cores anything else running moves the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
DEFAULT_LORA = ["model.adapter={r: 16, alpha: 32, dropout: 0.1, target_modules: [query, key, value, dense]}",
                "train.learning_rate=1e-3"]


def timed(cmd: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of one child process; raises with the log's tail on failure."""
    start = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise SystemExit(f"{' '.join(cmd)} failed; {log} ends:\n{tail}")
    return wall, usage.ru_maxrss / 1024 / 1024  # ru_maxrss is in KiB on Linux


def variant(config: str, out: Path, name: str, overrides: list[str]) -> dict:
    run_dir = out / name
    base = [sys.executable, "-m"]
    args = [config, f"run_dir={run_dir}", *overrides]
    train_s, train_gb = timed([*base, "train", *args], out / f"{name}.train.log")
    eval_s, _ = timed([*base, "evaluate", *args], out / f"{name}.evaluate.log")
    run = json.loads((run_dir / "run.json").read_text())
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    set_name, data = next(iter(report["datasets"].items()))
    metric = data["main_metric"]
    row = data["metrics"][metric]
    params = run.get("parameters") or {}
    return {"variant": name, "overrides": overrides, "set": set_name, "metric": metric,
            "baseline": row["baseline"], "tuned": row["tuned"], "delta": row["delta"],
            "ci": [row["ci_low"], row["ci_high"]], "p_value": row["p_value"],
            "trainable": params.get("trainable"), "total": params.get("total"),
            "train_runtime_s": run["train"]["train_runtime"], "train_process_s": train_s,
            "train_peak_rss_gb": train_gb, "evaluate_s": eval_s}


def table(full: dict, lora: dict) -> str:
    def millions(n):
        return f"{n / 1e6:.2f} M" if n else "n/a"
    lines = [f"{full['set']}, {full['metric']}: base {full['baseline']:.4f}", "",
             "| variant | trainable | tuned | delta [95% CI] | trainer time | train process | peak RSS |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for r in (full, lora):
        lines.append(f"| {r['variant']} | {millions(r['trainable'])} | {r['tuned']:.4f} | {r['delta']:+.4f} "
                     f"[{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] | {r['train_runtime_s']:.0f} s | "
                     f"{r['train_process_s']:.0f} s | {r['train_peak_rss_gb']:.2f} GB |")
    lines.append(f"| LoRA / full | | | {lora['tuned'] - full['tuned']:+.4f} | "
                 f"{lora['train_runtime_s'] / full['train_runtime_s']:.2f}x | "
                 f"{lora['train_process_s'] / full['train_process_s']:.2f}x | "
                 f"{lora['train_peak_rss_gb'] / full['train_peak_rss_gb']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for both runs and their logs")
    parser.add_argument("--lora", nargs="+", default=DEFAULT_LORA, help="overrides that make the LoRA variant")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    full = variant(args.config, args.out, "full", [])
    lora = variant(args.config, args.out, "lora", args.lora)
    print(table(full, lora))
    if args.json:
        args.json.write_text(json.dumps({"full": full, "lora": lora}, indent=2))


if __name__ == "__main__":
    main()
