"""Baseline vs tuned, per dataset and metric: the delta, its paired interval and p-value, and the verdict.

The statistics are each task's own (``TaskSpec.delta``); this module only pairs results up and writes the entries of
report.json. ``python -m evaluate compare`` pairs two runs the same way (``evaluate.compare``).
"""

from __future__ import annotations

import math

from configs.schema import RunConfig
from evaluate.evaluators import EVALUATORS
from evaluate.leakage import fingerprint
from evaluate.sets import EvalSet
from evaluate.significance import DeltaStats
from evaluate.tasks.spec import TaskResult

UNDEFINED_WHY = ("not a finite number, e.g. a correlation of a model that gives every pair the same score, or no "
                 "bootstrap resample in which the metric is defined")


def metric_delta(task: str, metric: str, base: TaskResult, tuned: TaskResult, seed: int) -> DeltaStats:
    """Paired bootstrap CI and p-value of one metric's delta, over the task's units (the task's spec decides how)."""
    return EVALUATORS[task].delta(metric, base, tuned, seed=seed)


def metric_entry(b: float, t: float, stats: DeltaStats) -> dict:
    """One metric's numbers for report.json; a non-finite value becomes null with the reason under "undefined",
    and then nothing about the delta is significant. A missing p alone (clustering) is no fault."""
    entry = {"baseline": b, "tuned": t, "delta": t - b, "ci_low": stats.ci_low, "ci_high": stats.ci_high,
             "p_value": None if math.isnan(stats.p_value) else stats.p_value, "significant": stats.significant,
             "n_units": stats.n_units, "n_resamples": stats.n_resamples}
    bad = [k for k in ("baseline", "tuned", "delta", "ci_low", "ci_high") if not math.isfinite(entry[k])]
    if bad:
        entry.update({k: None for k in bad}, p_value=None, significant=False,
                     undefined=f"{', '.join(bad)}: {UNDEFINED_WHY}")
    return entry


def task_entries(task: str, base: TaskResult, tuned: TaskResult, seed: int) -> dict[str, dict]:
    """{metric: metric_entry} of every metric of ``task``."""
    return {metric: metric_entry(base.metrics[metric], tuned.metrics[metric],
                                 metric_delta(task, metric, base, tuned, seed))
            for metric in EVALUATORS[task].metrics}


def pair_up(sets: list[EvalSet], baseline: dict, tuned: dict, seed: int = 0) -> dict:
    """Per dataset and metric: baseline, tuned, delta = tuned - baseline, its 95% CI, p-value and verdict."""
    out = {}
    for item in sets:
        name, task = item.config.name, item.config.task
        out[name] = {"task": task, "rows": len(item.table.rows), "source": item.table.origin,
                     "fingerprint": fingerprint(item.table), "main_metric": EVALUATORS[task].main,
                     "metrics": task_entries(task, baseline[name], tuned[name], seed)}
    return out


def primary(config: RunConfig, datasets: dict) -> dict:
    """The one number that says whether the fine-tune is better: 'dataset/metric' or the first main metric.
    ``evaluate.primary`` was checked against the evaluated metrics when the sets were resolved (evaluate.sets)."""
    if config.evaluate.primary:
        name, _, metric = config.evaluate.primary.partition("/")
    else:
        name = next(iter(datasets))
        metric = datasets[name]["main_metric"]
    values = datasets[name]["metrics"][metric]
    return {"dataset": name, "metric": metric, **values,
            "improved": bool(values["delta"] is not None and values["delta"] > 0)}
