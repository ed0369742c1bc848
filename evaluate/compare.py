"""``python -m evaluate compare RUN_A RUN_B [...]``: runs evaluated on the same data, head to head or ranked.

Two runs: the paired difference B - A of every metric, on the same units of the same data, with the
baseline-vs-tuned statistics (``evaluate.pairing``) with run A in the baseline's place and run B in the tuned
model's, read from each run's ``eval/units.json``. Then (and for one, or three and more runs) the leaderboard.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np

from configs.errors import UserError
from evaluate.evaluators import EVALUATORS
from evaluate.pairing import task_entries
from evaluate.report.markdown import markdown_table, md_escape
from evaluate.report.writers import STATISTICS_LEGEND, num
from evaluate.tasks.spec import TaskResult
from evaluate.units import FULL, load_units, result_from_units

log = logging.getLogger(__name__)


def check_same_units(name: str, a: TaskResult, b: TaskResult, runs: tuple[str, str]) -> None:
    """Paired statistics need the same units in the same order in both runs."""
    same_gold = a.gold is None or b.gold is None or np.array_equal(a.gold, b.gold)
    if a.query_ids != b.query_ids or not same_gold:
        raise UserError(f"{runs[1]} and {runs[0]} scored {name} on different units (queries, pairs or texts); "
                        "re-evaluate both with the same embtune version.")


def dataset_delta(task: str, a: TaskResult, b: TaskResult, seed: int) -> dict:
    """{task, main_metric, metrics: {metric: A as 'baseline', B as 'tuned', delta B - A, CI, p}} for one dataset."""
    return {"task": task, "main_metric": EVALUATORS[task].main, "metrics": task_entries(task, a, b, seed)}


def head_to_head(units: dict[str, dict]) -> dict[str, dict]:
    """{level ('full' or a dimension): {dataset: dataset_delta}} for the two runs in ``units`` (A first)."""
    (run_a, a), (run_b, b) = units.items()
    if a["tasks"] != b["tasks"]:
        raise UserError(f"{run_b} and {run_a} ran different tasks on their datasets ({b['tasks']} vs {a['tasks']}): "
                        "a paired difference needs the same tasks.")
    levels = [level for level in a["levels"] if level in b["levels"]]
    skipped = sorted(set(a["levels"]) ^ set(b["levels"]))
    if skipped:
        log.warning("Only one of the runs was evaluated at dimensions %s; they are left out.", ", ".join(skipped))
    out = {}
    for level in levels:
        out[level] = {}
        for name, task in a["tasks"].items():
            ra, rb = result_from_units(a["levels"][level][name]), result_from_units(b["levels"][level][name])
            check_same_units(name, ra, rb, (run_a, run_b))
            out[level][name] = dataset_delta(task, ra, rb, seed=int(a.get("seed", 0)))
    return out


def head_to_head_markdown(runs: tuple[str, str], levels: dict[str, dict]) -> str:
    """The B - A table, with a dimension column when truncated sizes were evaluated too."""
    run_a, run_b = runs
    table = markdown_table(levels[FULL], names=("A", "B")) if list(levels) == [FULL] else \
        markdown_table({}, names=("A", "B"), levels=levels)
    return "\n".join([
        f"B - A: B = {md_escape(run_b)}, A = {md_escape(run_a)} (paired over the same queries, pairs or texts).",
        "", table, "", STATISTICS_LEGEND, ""])


def load_report(run_dir: str) -> dict:
    path = Path(run_dir) / "eval" / "report.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist: run 'python -m evaluate {run_dir}' first.")
    return json.loads(path.read_text(encoding="utf-8"))


def check_same_data(reports: dict[str, dict]) -> None:
    """Refuse to rank runs whose evaluation data differ (names, rows or corpus)."""
    first_run, first = next(iter(reports.items()))
    expected = {name: info.get("fingerprint") for name, info in first["datasets"].items()}
    for run_dir, report in reports.items():
        if report["base_model"] != first["base_model"]:
            raise UserError(f"{run_dir} tunes {report['base_model']}, {first_run} tunes {first['base_model']}: "
                            "one leaderboard needs one baseline.")
        got = {name: info.get("fingerprint") for name, info in report["datasets"].items()}
        if got != expected:
            differing = sorted(n for n in set(got) | set(expected) if got.get(n) != expected.get(n))
            raise UserError(f"{run_dir} was evaluated on different data than {first_run} (datasets: "
                            f"{', '.join(differing)}). Only runs evaluated on the same data can be compared.")


def leaderboard(reports: dict[str, dict]) -> str:
    """Markdown: a row per run (baseline first), a column per dataset's main metric, best run first."""
    first = next(iter(reports.values()))
    columns = [(name, info["main_metric"]) for name, info in first["datasets"].items()]
    header = "| run | " + " | ".join(f"{md_escape(n)} {m}" for n, m in columns) + " |"
    rows = [header, "|---|" + "---:|" * len(columns)]
    base = [first["datasets"][n]["metrics"][m]["baseline"] for n, m in columns]
    rows.append(f"| baseline ({md_escape(first['base_model'])}) | " + " | ".join(num(v) for v in base) + " |")
    lead, lead_metric = columns[0]
    ranked = sorted(reports.items(), key=lambda kv: -(kv[1]["datasets"][lead]["metrics"][lead_metric]["tuned"]
                                                      or -math.inf))
    for run_dir, report in ranked:
        cells = []
        for n, m in columns:
            v = report["datasets"][n]["metrics"][m]
            mark = "" if v.get("significant") else " (n.s.)"
            cells.append(f"{num(v['tuned'])} ({num(v['delta'], '+.4f')}{mark})")
        rows.append(f"| {md_escape(run_dir)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


USAGE = """Compare runs evaluated on the same data (their eval/report.json and eval/units.json).

Two runs: the paired difference B - A of every metric (bootstrap 95% CI, randomization p-value) over the same
queries, pairs or texts, then the leaderboard. One, or three and more runs: the leaderboard (each run's tuned
value and its delta from the shared baseline). Runs on different data, or tuning different base models, are
refused."""


def parse_compare(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluate compare", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (A then B for a head-to-head)")
    parser.add_argument("--leaderboard", action="store_true",
                        help="print only the leaderboard, also for two runs (e.g. runs evaluated before "
                        "eval/units.json existed)")
    return parser.parse_args(argv)


def compare_main(argv: list[str]) -> int:
    args = parse_compare(argv)
    reports = {run_dir: load_report(run_dir) for run_dir in args.runs}
    check_same_data(reports)
    if len(args.runs) == 2 and not args.leaderboard:
        units = {run_dir: load_units(run_dir) for run_dir in args.runs}
        print(head_to_head_markdown(tuple(args.runs), head_to_head(units)))
    print(leaderboard(reports))
    return 0
