"""``python -m evaluate compare RUN_A RUN_B [...]``: runs evaluated on the same data, head to head or ranked."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from configs.errors import UserError
from evaluate.head_to_head import head_to_head, head_to_head_markdown
from evaluate.report import md_escape, num
from evaluate.units import load_units


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
