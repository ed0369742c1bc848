"""Two fine-tunes head to head: the paired difference B - A of every metric, on the same units of the same data.

The statistics are the baseline-vs-tuned ones (``evaluate.compare.metric_delta``), with run A in the baseline's
place and run B in the tuned model's, read from each run's ``eval/units.json``.
"""

from __future__ import annotations

import logging

import numpy as np

from configs.errors import UserError
from evaluate.compare import metric_delta, metric_entry
from evaluate.evaluators import EVALUATORS
from evaluate.report import STATISTICS_LEGEND, markdown_table, md_escape
from evaluate.tasks import TaskResult
from evaluate.units import FULL, result_from_units

log = logging.getLogger(__name__)


def check_same_units(name: str, a: TaskResult, b: TaskResult, runs: tuple[str, str]) -> None:
    """Paired statistics need the same units in the same order in both runs."""
    same_gold = a.gold is None or b.gold is None or np.array_equal(a.gold, b.gold)
    if a.query_ids != b.query_ids or not same_gold:
        raise UserError(f"{runs[1]} and {runs[0]} scored {name} on different units (queries, pairs or texts); "
                        "re-evaluate both with the same embtune version.")


def dataset_delta(name: str, task: str, a: TaskResult, b: TaskResult, seed: int) -> dict:
    """{task, main_metric, metrics: {metric: A as 'baseline', B as 'tuned', delta B - A, CI, p}} for one dataset."""
    metrics = {}
    for metric in EVALUATORS[task].metrics:
        stats = metric_delta(task, metric, a, b, seed)
        metrics[metric] = metric_entry(a.metrics[metric], b.metrics[metric], stats)
    return {"task": task, "main_metric": EVALUATORS[task].main, "metrics": metrics}


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
            out[level][name] = dataset_delta(name, task, ra, rb, seed=int(a.get("seed", 0)))
    return out


def head_to_head_markdown(runs: tuple[str, str], levels: dict[str, dict]) -> str:
    """The B - A table, with a dimension column when truncated sizes were evaluated too."""
    run_a, run_b = runs
    table = markdown_table(levels[FULL], names=("A", "B")) if list(levels) == [FULL] else \
        markdown_table({}, names=("A", "B"), levels=levels)
    return "\n".join([
        f"B - A: B = {md_escape(run_b)}, A = {md_escape(run_a)} (paired over the same queries, pairs or texts).",
        "", table, "", STATISTICS_LEGEND, ""])
