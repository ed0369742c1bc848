"""Baseline vs tuned: encode each model's texts once, run every task on both, and test every delta."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError, did_you_mean
from configs.schema import EvalDatasetConfig, RunConfig
from data.prepare import Prepared, load_table
from data.sources import KINDS, Table
from evaluate import tasks
from evaluate.cache import cached_embed
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS, check_task
from evaluate.leakage import fingerprint
from evaluate.significance import DeltaStats, compare_means, compare_statistic

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
        table = load_table(item.source, f"evaluate.datasets[{item.name}].source") if item.source else \
            getattr(prepared, item.split)
        if table is None:
            raise UserError(f"evaluate.datasets[{item.name}]: the run has no {item.split} split.")
        check_task(item.task, table)
        sets.append(EvalSet(item, table))
    return sets


def check_tasks_fit(config: RunConfig, prepared: Prepared) -> None:
    """Fail before training when an evaluation task cannot read the split it is given."""
    for item in config.evaluate.datasets:
        table = getattr(prepared, item.split) if item.source is None else None
        if item.source is None and table is None:
            raise UserError(f"evaluate.datasets[{item.name}]: the run has no {item.split} split.")
        if table is not None and table.kind not in EVALUATORS[item.task].kinds:
            fitting = [t for t, spec in EVALUATORS.items() if table.kind in spec.kinds]
            raise UserError(f"evaluate.datasets[{item.name}]: task '{item.task}' cannot read the {item.split} split "
                            f"({', '.join(KINDS[table.kind])}). Tasks that can: {', '.join(fitting)}.")


def evaluate_model(model, sets: list[EvalSet], batch_size: int, fingerprint: str = "",
                   cache_dir: Path | None = None, precision: str = "fp32") -> tuple[dict[str, tasks.TaskResult], dict]:
    """Every task's result for one model, encoding each distinct text once; and how the encoding went (with the
    embeddings themselves under "embeddings", for the report's pictures)."""
    texts = [t for s in sets for t in EVALUATORS[s.config.task].texts(s.table, True)]
    cache_dir = cache_dir if fingerprint else None  # no fingerprint, no safe cache key
    embeddings = cached_embed(model, texts, batch_size, f"{fingerprint}-{precision}", cache_dir, precision)
    log.info("%d distinct texts %s in %.1f s", len(embeddings.index),
             "loaded from the cache" if embeddings.cached else "encoded", embeddings.seconds)
    results = {s.config.name: EVALUATORS[s.config.task].run(s.table, embeddings, True) for s in sets}
    return results, {"seconds": embeddings.seconds, "texts": len(embeddings.index), "cached": embeddings.cached,
                     "precision": precision,
                     "embeddings": embeddings}


def delta_stats(task: str, metric: str, base: tasks.TaskResult, tuned: tasks.TaskResult, seed: int) -> DeltaStats:
    """Paired bootstrap CI and randomization p-value of one metric's delta, over queries or pairs."""
    if task == "retrieval":
        if base.query_ids != tuned.query_ids:
            raise RuntimeError("baseline and tuned were scored on different queries")
        return compare_means(base.per_query[metric], tuned.per_query[metric], seed=seed)
    statistics = tasks.STS_ROW_STATISTICS if task == "sts" else tasks.PAIR_ROW_STATISTICS
    return compare_statistic(statistics[metric], base.cosines, tuned.cosines, base.gold, seed=seed)


def pair_up(sets: list[EvalSet], baseline: dict, tuned: dict, seed: int = 0) -> dict:
    """Per dataset and metric: baseline, tuned, delta = tuned - baseline, its 95% CI, p-value and verdict."""
    out = {}
    for item in sets:
        name, task = item.config.name, item.config.task
        metrics = {}
        for metric in EVALUATORS[task].metrics:
            b, t = baseline[name].metrics[metric], tuned[name].metrics[metric]
            stats = delta_stats(task, metric, baseline[name], tuned[name], seed)
            metrics[metric] = {"baseline": b, "tuned": t, "delta": t - b, "ci_low": stats.ci_low,
                               "ci_high": stats.ci_high, "p_value": stats.p_value, "significant": stats.significant,
                               "n_units": stats.n_units}
        out[name] = {"task": task, "rows": len(item.table.rows), "source": item.table.origin,
                     "fingerprint": fingerprint(item.table), "main_metric": EVALUATORS[task].main, "metrics": metrics}
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
    return {"dataset": name, "metric": metric, **values, "improved": bool(values["delta"] > 0)}
