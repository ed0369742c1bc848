"""Legends asked of each task's spec: its unit and how its interval and p are computed, and what its metrics mean."""

from __future__ import annotations

from collections.abc import Sequence

from evaluate.evaluators import EVALUATORS, statistics_legend
from evaluate.report.wording import P_FLOOR, STATISTICS_LEGEND, metric_meanings


def task_meanings(task: str, metrics: Sequence[str]) -> str:
    """What the metrics mean, in the words of their task's spec (``TaskSpec.metric_meanings``)."""
    return metric_meanings(metrics, getattr(EVALUATORS.get(task), "metric_meanings", ()))


def map_look_for(task: str) -> str:
    """What to look for in the task's 2-D map (``TaskSpec.map_look_for``); '' for a task no longer registered."""
    return getattr(EVALUATORS.get(task), "map_look_for", "")


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
