"""Where one run's wall time goes: ``python -m data``, ``python -m train`` and ``python -m evaluate`` on a config, each
in its own process, with the phases each records (data/meta.json's ``seconds``, run.json's ``seconds``).

    python benchmarks/recipe_cost.py configs/quickstart.yaml --out /tmp/cost run_dir=/tmp/cost/run

Prints a Markdown table of each phase's seconds and share of the whole, and the CPU's flags that decide what
precision can be native (avx2, avx512_bf16, amx). Nothing is asserted: the figures go into the README.
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
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
TRAIN_PHASES = ("data", "load_model", "setup", "training_steps", "dev_evaluation", "checkpoints", "write_final")


def run_stage(stage: str, config: str, overrides: list[str], log: Path) -> float:
    """Wall seconds of ``python -m STAGE CONFIG overrides`` (stderr to ``log``); a failure stops the benchmark."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-m", stage, config, *overrides], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=handle, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        sys.exit(f"python -m {stage} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def phase_rows(walls: dict[str, float], meta: dict, record: dict) -> list[tuple[str, float]]:
    """(phase, seconds) for the table: each command's recorded phases, its start-up (imports, config, model
    checks: the wall time its records do not cover) and, for mining, the part of data preparation it took."""
    data_prep = meta["seconds"]["prepare"]
    seconds = record["seconds"]
    rows = [("data: start-up", walls["data"] - data_prep), ("data: preparation (without mining)",
                                                              data_prep - meta["seconds"]["mining"]),
            ("data: mining hard negatives", meta["seconds"]["mining"]),
            ("train: start-up", walls["train"] - seconds["total"])]
    rows += [(f"train: {name.replace('_', ' ')}", seconds.get(name, 0.0)) for name in TRAIN_PHASES]
    rows.append(("train: other", seconds["total"] - sum(seconds.get(n, 0.0) for n in TRAIN_PHASES)))
    rows.append(("evaluate (baseline and tuned, report)", walls["evaluate"]))
    return rows


def table(rows: list[tuple[str, float]]) -> str:
    total = sum(s for _, s in rows)
    lines = ["| phase | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {s:.1f} | {100 * s / total:.1f}% |" for name, s in rows]
    lines.append(f"| **total** | **{total:.1f}** | 100% |")
    return "\n".join(lines)


def cpu_flags() -> str:
    """Which of FLAGS this CPU has (from /proc/cpuinfo), and its model name."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    found = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS)
    return f"CPU: {model}, {os.cpu_count()} cores visible; {found}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--out", default="/tmp/recipe_cost", help="Folder for the stage logs.")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every stage (e.g. run_dir=/tmp/x)")
    args = parser.parse_intermixed_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    walls = {stage: run_stage(stage, args.config, args.overrides, out / f"{stage}.log")
             for stage in ("data", "train", "evaluate")}
    run_dir = Path(next((o.split("=", 1)[1] for o in args.overrides if o.startswith("run_dir=")), ""))
    if not run_dir.is_dir():
        sys.exit("give run_dir=... among the overrides, so the run's records can be read")
    meta = json.loads((run_dir / "data" / "meta.json").read_text())
    record = json.loads((run_dir / "run.json").read_text())
    print(table(phase_rows(walls, meta, record)))
    print(f"\nprecision: train {record['precision']['train']} ({record['precision']['why']}); "
          f"encoding {record['precision']['encode']}; data/ prepared by {record['data_prepared_by']}")
    print(cpu_flags())
    return 0


if __name__ == "__main__":
    sys.exit(main())
