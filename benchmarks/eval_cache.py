"""Embedding cache: evaluating a second fine-tune against the same baseline encodes only the tuned model.

Runs ``python -m evaluate`` on RUN_A with an empty cache (baseline and tuned are encoded), then on RUN_B, another
fine-tune of the same base model on the same data (only RUN_B's tuned model is encoded), in one process each,
timed end to end. Target: the second evaluation at least 1.9x faster.

    .venv/bin/python benchmarks/eval_cache.py runs/scifact_mnrl_bf16 runs/scifact_mnrl_fp32
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed_evaluate(run_dir: str, cache_dir: str) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "evaluate", run_dir, f"evaluate.cache_dir={cache_dir}"], cwd=REPO,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    first_run, second_run = argv
    with tempfile.TemporaryDirectory() as cache:
        first = timed_evaluate(first_run, cache)
        second = timed_evaluate(second_run, cache)
    encoding = json.loads((Path(second_run) / "eval" / "report.json").read_text())["encoding"]
    print("| evaluation | wall time | baseline encoding |\n|---|---:|---|")
    print(f"| {first_run} (empty cache) | {first:.1f} s | encoded |")
    print(f"| {second_run} (baseline cached) | {second:.1f} s | "
          f"{'loaded from cache' if encoding['baseline']['cached'] else 'encoded'} |")
    print(f"\nspeed-up of the second evaluation: {first / second:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
