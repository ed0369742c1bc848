"""Baseline vs tuned: run each configured evaluator on both models and pair up their metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from configs.errors import UserError, did_you_mean
from configs.schema import EvalDatasetConfig, RunConfig
from data.prepare import Prepared, load_table
from data.sources import KINDS, Table
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS, build_evaluator, pick_metrics

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    config: EvalDatasetConfig
    table: Table


def eval_sets(config: RunConfig, prepared: Prepared) -> list[EvalSet]:
    """The configured datasets, or the test split with its kind's default task."""
    wanted = config.evaluate.datasets or (
        EvalDatasetConfig(name="test", task=DEFAULT_TASK[prepared.test.kind], split="test"),
    )
    sets = []
    for item in wanted:
        if item.source is not None:
            table = load_table(item.source, f"evaluate.datasets[{item.name}].source")
        else:
            table = getattr(prepared, item.split)
            if table is None:
                raise UserError(f"evaluate.datasets[{item.name}]: the run has no {item.split} split.")
        sets.append(EvalSet(item, table))
    return sets


def check_tasks_fit(config: RunConfig, prepared: Prepared) -> None:
    """Fail before training when an evaluation task cannot read the split it is given."""
    for item in config.evaluate.datasets:
        table = getattr(prepared, item.split) if item.source is None else None
        if table is not None and table.kind not in EVALUATORS[item.task].kinds:
            fitting = [t for t, spec in EVALUATORS.items() if table.kind in spec.kinds]
            raise UserError(f"evaluate.datasets[{item.name}]: task '{item.task}' cannot read the {item.split} split "
                            f"({', '.join(KINDS[table.kind])}). Tasks that can: {', '.join(fitting)}.")
        if table is None and item.source is None:
            raise UserError(f"evaluate.datasets[{item.name}]: the run has no {item.split} split.")


def evaluate_model(model, sets: list[EvalSet], batch_size: int) -> tuple[dict[str, dict[str, float]], float]:
    """{dataset: {metric: value}} for one model, and the seconds it took."""
    start, results = time.perf_counter(), {}
    for item in sets:
        name = item.config.name
        evaluator = build_evaluator(item.config.task, item.table, name, batch_size, progress=True)
        log.info("evaluating %s (%s, %d rows)", name, item.config.task, len(item.table.rows))
        results[name] = pick_metrics(item.config.task, name, evaluator(model))
    return results, time.perf_counter() - start


def pair_up(sets: list[EvalSet], baseline: dict, tuned: dict) -> dict:
    """Per dataset and metric: baseline, tuned and delta = tuned - baseline."""
    out = {}
    for item in sets:
        name, task = item.config.name, item.config.task
        metrics = {
            metric: {"baseline": baseline[name][metric], "tuned": tuned[name][metric],
                     "delta": tuned[name][metric] - baseline[name][metric]}
            for metric in EVALUATORS[task].metrics
        }
        out[name] = {"task": task, "rows": len(item.table.rows), "source": item.table.origin,
                     "main_metric": EVALUATORS[task].main, "metrics": metrics}
    return out


def primary(config: RunConfig, datasets: dict) -> dict:
    """The one number that says whether the fine-tune is better: 'dataset/metric' or the first main metric."""
    if config.evaluate.primary:
        name, _, metric = config.evaluate.primary.partition("/")
    else:
        name = next(iter(datasets))
        metric = datasets[name]["main_metric"]
    if name not in datasets or metric not in datasets[name]["metrics"]:
        options = [f"{d}/{m}" for d, info in datasets.items() for m in info["metrics"]]
        raise UserError(f"evaluate.primary '{config.evaluate.primary}' names no evaluated metric."
                        f"{did_you_mean(config.evaluate.primary or '', options)}")
    values = datasets[name]["metrics"][metric]
    return {"dataset": name, "metric": metric, **values, "improved": values["delta"] > 0}
