"""Baseline vs tuned: encode each model's texts once, run every task on both, and test every delta."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import v_measure_score

from configs.errors import UserError, did_you_mean
from configs.schema import EvalDatasetConfig, RunConfig
from data.prepare import Prepared, load_table
from data.sources import KINDS, Table
from evaluate import tasks
from evaluate.cache import cached_embed
from evaluate.embed import Embeddings
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS, check_task
from evaluate.leakage import fingerprint
from evaluate.prompts import prompts_record, resolve_prompts
from evaluate.significance import DeltaStats, compare_means, compare_statistic, rowwise

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
    check_primary(config, [(s.config.name, s.config.task) for s in sets])
    return sets


def check_tasks_fit(config: RunConfig, prepared: Prepared) -> None:
    """Fail before training when an evaluation task cannot read its split, or ``evaluate.primary`` names nothing."""
    for item in config.evaluate.datasets:
        table = getattr(prepared, item.split) if item.source is None else None
        if item.source is None and table is None:
            raise UserError(f"evaluate.datasets[{item.name}]: the run has no {item.split} split.")
        if table is not None and table.kind not in EVALUATORS[item.task].kinds:
            fitting = [t for t, spec in EVALUATORS.items() if table.kind in spec.kinds]
            raise UserError(f"evaluate.datasets[{item.name}]: task '{item.task}' cannot read the {item.split} split "
                            f"({', '.join(KINDS[table.kind])}). Tasks that can: {', '.join(fitting)}.")
        if table is not None:
            check_task(item.task, table)
    wanted = config.evaluate.datasets or (EvalDatasetConfig(name="test", task=DEFAULT_TASK[prepared.test.kind]),)
    check_primary(config, [(d.name, d.task) for d in wanted])


def check_primary(config: RunConfig, named_tasks: list[tuple[str, str]]) -> None:
    options = [f"{name}/{m}" for name, task in named_tasks for m in EVALUATORS[task].metrics]
    if config.evaluate.primary and config.evaluate.primary not in options:  # fail before minutes of encoding
        raise UserError(f"evaluate.primary '{config.evaluate.primary}' names no evaluated metric."
                        f"{did_you_mean(config.evaluate.primary, options)}")


def check_dims(dims: tuple[int, ...], model) -> None:
    """Fail before any encoding when ``evaluate.truncate_dims`` asks for more coordinates than the model has."""
    size = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    for dim in dims:
        if dim < 1 or (size is not None and dim > size):
            raise UserError(f"evaluate.truncate_dims: {dim} is not a size the model's {size}-dimensional embeddings "
                            f"can be truncated to; use sizes from 1 to {size}, e.g. [{size // 2}, {size // 4}].")


def set_texts(sets: list[EvalSet]) -> dict[str, list[str]]:
    """role -> every text the tasks of ``sets`` look up in that role (see evaluate.prompts)."""
    texts: dict[str, list[str]] = {}
    for s in sets:
        for role, items in EVALUATORS[s.config.task].texts(s.table, True).items():
            texts.setdefault(role, []).extend(items)
    return texts


def run_sets(sets: list[EvalSet], embeddings: Embeddings) -> dict[str, tasks.TaskResult]:
    return {s.config.name: EVALUATORS[s.config.task].run(s.table, embeddings, True, s.config.ignore_identical_ids)
            for s in sets}


def evaluate_model(model, sets: list[EvalSet], batch_size: int, fingerprint: str = "",
                   cache_dir: Path | None = None, precision: str = "fp32",
                   train_prompts: dict[str, str] | None = None) -> tuple[dict[str, tasks.TaskResult], dict]:
    """Every task's result for one model, encoding each distinct (prompt, text) once; and how the encoding went
    (prompts, similarity, and the embeddings themselves under "embeddings", for the report's pictures).

    ``train_prompts`` is ``train.prompts``: the prompts the user trained with, which win over the model's own."""
    texts = set_texts(sets)
    prompts = resolve_prompts(model, texts, train_prompts)
    cache_dir = cache_dir if fingerprint else None  # no fingerprint, no safe cache key
    embeddings = cached_embed(model, texts, batch_size, f"{fingerprint}-{precision}", cache_dir, precision, prompts)
    log.info("%d distinct texts %s in %.1f s", len(embeddings.index),
             "loaded from the cache" if embeddings.cached else "encoded", embeddings.seconds)
    return run_sets(sets, embeddings), {
        "seconds": embeddings.seconds, "texts": len(embeddings.index), "cached": embeddings.cached,
        "precision": precision, "similarity": embeddings.similarity, "dim": int(embeddings.vectors.shape[1]),
        "prompts": prompts_record(prompts), "embeddings": embeddings}


def evaluate_dims(sets: list[EvalSet], embeddings: Embeddings, dims: tuple[int, ...]) -> dict[int, dict]:
    """Every task's result with the embeddings truncated to each of ``dims`` (re-normalised for cosine)."""
    return {dim: run_sets(sets, embeddings.truncated(dim)) for dim in dims}


def metric_delta(task: str, metric: str, base: tasks.TaskResult, tuned: tasks.TaskResult, seed: int) -> DeltaStats:
    """Paired bootstrap CI and randomization p-value of one metric's delta, over queries, pairs or texts."""
    if task == "retrieval":
        if base.query_ids != tuned.query_ids:
            raise RuntimeError("baseline and tuned were scored on different queries")
        return compare_means(base.per_query[metric], tuned.per_query[metric], seed=seed)
    if task == "classification":
        return classification_stats(metric, base, tuned, seed)
    if task == "clustering":
        return clustering_stats(base, tuned, seed)
    statistics = tasks.STS_ROW_STATISTICS if task == "sts" else tasks.PAIR_ROW_STATISTICS
    return compare_statistic(statistics[metric], base.cosines, tuned.cosines, base.gold, seed=seed)


def classification_stats(metric: str, base: tasks.TaskResult, tuned: tasks.TaskResult, seed: int) -> DeltaStats:
    """Texts are the units. Unit i is row i of the baseline and row n + i of the tuned model in one stacked result,
    so resampling or swapping unit indices resamples or swaps whole predictions (probabilities included)."""
    if metric == "accuracy":
        return compare_means(base.predicted == base.gold, tuned.predicted == tuned.gold, seed=seed)
    n = len(base.gold)
    stacked = tasks.TaskResult({}, gold=np.concatenate([base.gold, base.gold]),
                               proba=np.vstack([base.proba, tuned.proba]),  # (2n, n_classes)
                               predicted=np.concatenate([base.predicted, tuned.predicted]))
    metric_fn = tasks.CLASSIFICATION_METRICS[metric]
    statistic = rowwise(lambda idx, gold: metric_fn(stacked, idx.astype(int)))
    return compare_statistic(statistic, np.arange(n, dtype=float), np.arange(n, 2 * n, dtype=float), base.gold,
                             seed=seed)


def clustering_stats(base: tasks.TaskResult, tuned: tasks.TaskResult, seed: int, n_resamples: int = 1000) -> DeltaStats:
    """Bootstrap CI over texts only: cluster ids of two models are not interchangeable, so a test that swaps them
    between models has no meaning. Significant here means the 95% interval excludes 0; p is not computed."""
    rng, n = np.random.default_rng(seed), len(base.gold)
    deltas = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        deltas.append(v_measure_score(tuned.gold[idx], tuned.predicted[idx])
                      - v_measure_score(base.gold[idx], base.predicted[idx]))
    low, high = np.percentile(deltas, [2.5, 97.5])
    delta = tuned.metrics["v_measure"] - base.metrics["v_measure"]
    return DeltaStats(delta, float(low), float(high), float("nan"), bool(not low <= 0 <= high), n)


UNDEFINED_WHY = ("not a finite number, e.g. a correlation of a model that gives every pair the same score, or no "
                 "bootstrap resample in which the metric is defined")


def metric_entry(b: float, t: float, stats: DeltaStats) -> dict:
    """One metric's numbers for report.json; a non-finite value becomes null with the reason under "undefined",
    and then nothing about the delta is significant. A missing p alone (clustering) is no fault."""
    entry = {"baseline": b, "tuned": t, "delta": t - b, "ci_low": stats.ci_low, "ci_high": stats.ci_high,
             "p_value": None if math.isnan(stats.p_value) else stats.p_value, "significant": stats.significant,
             "n_units": stats.n_units}
    bad = [k for k in ("baseline", "tuned", "delta", "ci_low", "ci_high") if not math.isfinite(entry[k])]
    if bad:
        entry.update({k: None for k in bad}, p_value=None, significant=False,
                     undefined=f"{', '.join(bad)}: {UNDEFINED_WHY}")
    return entry


def pair_up(sets: list[EvalSet], baseline: dict, tuned: dict, seed: int = 0) -> dict:
    """Per dataset and metric: baseline, tuned, delta = tuned - baseline, its 95% CI, p-value and verdict."""
    out = {}
    for item in sets:
        name, task = item.config.name, item.config.task
        metrics = {}
        for metric in EVALUATORS[task].metrics:
            stats = metric_delta(task, metric, baseline[name], tuned[name], seed)
            metrics[metric] = metric_entry(baseline[name].metrics[metric], tuned[name].metrics[metric], stats)
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
    return {"dataset": name, "metric": metric, **values,
            "improved": bool(values["delta"] is not None and values["delta"] > 0)}
