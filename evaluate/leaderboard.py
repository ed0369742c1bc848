"""``python -m evaluate compare RUN_DIR [RUN_DIR ...]``: one leaderboard across runs evaluated on the same data."""

from __future__ import annotations

import json
from pathlib import Path

from configs.errors import UserError


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
    header = "| run | " + " | ".join(f"{n} {m}" for n, m in columns) + " |"
    rows = [header, "|---|" + "---:|" * len(columns)]
    base = [first["datasets"][n]["metrics"][m]["baseline"] for n, m in columns]
    rows.append(f"| baseline ({first['base_model']}) | " + " | ".join(f"{v:.4f}" for v in base) + " |")
    lead, lead_metric = columns[0]
    ranked = sorted(reports.items(), key=lambda kv: -kv[1]["datasets"][lead]["metrics"][lead_metric]["tuned"])
    for run_dir, report in ranked:
        cells = []
        for n, m in columns:
            v = report["datasets"][n]["metrics"][m]
            mark = "" if v.get("significant") else " (n.s.)"
            cells.append(f"{v['tuned']:.4f} ({v['delta']:+.4f}{mark})")
        rows.append(f"| {run_dir} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def compare_main(run_dirs: list[str]) -> int:
    if len(run_dirs) < 1:
        raise UserError("usage: python -m evaluate compare RUN_DIR [RUN_DIR ...]")
    reports = {run_dir: load_report(run_dir) for run_dir in run_dirs}
    check_same_data(reports)
    print(leaderboard(reports))
    return 0
