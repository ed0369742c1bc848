"""Legends under a metrics table, asked of each task's spec (its unit, how its interval and p are computed)."""

from __future__ import annotations

from collections.abc import Sequence

from evaluate.evaluators import EVALUATORS, statistics_legend
from evaluate.report.wording import P_FLOOR, STATISTICS_LEGEND


def task_legend(task: str) -> str:
    """A task's statistical unit and how its interval and p are computed: its evaluator spec's ``legend``."""
    return getattr(EVALUATORS.get(task), "legend", "")


def table_legend(tasks: Sequence[str]) -> str:
    """The legend under a metrics table: each evaluated task's sentence, the verdict rule and the p floor."""
    if not tasks:
        return P_FLOOR
    known = [task for task in dict.fromkeys(tasks) if task in EVALUATORS]
    compose = statistics_legend
    return f"{compose(known) if compose else STATISTICS_LEGEND} {P_FLOOR}"
