"""classification: a linear probe on the embeddings, scored by cross-validated predictions.

| reads (kind) | unit | metrics                                             |
|--------------|------|-----------------------------------------------------|
| classes      | text | accuracy, f1_macro, roc_auc (cross-validated probe) |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from configs.errors import UserError
from core.embed import Embeddings
from data.table import Table
from evaluate.significance import DeltaStats, bootstrap_test, compare_means
from evaluate.tasks.spec import TaskResult, TaskSpec
from evaluate.tasks.summaries import PROBE_MEANINGS, classes_about, classes_lines


def class_texts(table: Table) -> dict[str, list[str]]:
    return {"text": list(table.rows["text"])}


def class_ids(table: Table) -> np.ndarray:
    names = sorted(set(table.rows["label"]))
    return np.array([names.index(label) for label in table.rows["label"]])  # (n_texts,)


def class_map(table: Table) -> tuple[list[str], list[str], list[str]]:
    return list(table.rows["text"]), list(table.rows["label"]), ["text"] * len(table.rows)


def _accuracy(result: TaskResult, idx: np.ndarray) -> float:
    return float((result.predicted[idx] == result.gold[idx]).mean())


def _f1_macro(result: TaskResult, idx: np.ndarray) -> float:
    return float(f1_score(result.gold[idx], result.predicted[idx], average="macro"))


def _roc_auc(result: TaskResult, idx: np.ndarray) -> float:
    """One-vs-rest macro ROC AUC; NaN when a resample lacks a class (the bootstrap leaves those out)."""
    gold, proba = result.gold[idx].astype(int), result.proba[idx]
    present = np.unique(gold)
    if len(present) < 2:
        return float("nan")
    scores = proba[:, present] / proba[:, present].sum(axis=1, keepdims=True)
    if len(present) == 2:
        return float(roc_auc_score(gold == present[1], scores[:, 1]))
    return float(roc_auc_score(np.searchsorted(present, gold), scores, multi_class="ovr", average="macro"))


# Classification metrics of a result on the texts at ``idx`` (a bootstrap resample, or all of them).
CLASSIFICATION_METRICS: dict[str, Callable[[TaskResult, np.ndarray], float]] = {
    "accuracy": _accuracy, "f1_macro": _f1_macro, "roc_auc": _roc_auc}


class ClassesTask(TaskSpec):
    """What every task over (text, class) tables shares: its map, its set summary."""

    def map_inputs(self, table: Table, base: TaskResult) -> tuple[list[str], list[str], list[str]]:
        return class_map(table)

    def about(self, table: Table, result: TaskResult) -> dict:
        return classes_about(list(table.rows["label"]))

    def about_lines(self, about, quote=str) -> list[str]:
        return classes_lines(about, quote)


class ClassificationTask(ClassesTask):
    name = "classification"
    kinds = ("classes",)
    metrics = tuple(CLASSIFICATION_METRICS)
    main = "accuracy"
    unit = "texts in the smallest class"
    metric_meanings = PROBE_MEANINGS
    hub_task_type = "text-classification"  # the Hub's task id (sentence-transformers has no such evaluator)
    legend = ("classification: units are texts; accuracy by a paired sign-flip test, F1 and ROC AUC by a paired "
              "bootstrap over texts.")

    def texts(self, table: Table) -> dict[str, list[str]]:
        return class_texts(table)

    def run(self, table: Table, emb: Embeddings, *, seed: int) -> TaskResult:
        """Logistic regression on the embeddings, scored by stratified k-fold cross-validated predictions (k <= 5,
        limited by the smallest class; folds shuffled by ``seed``), so every text is predicted by a probe that never
        saw it."""
        x, y = emb(table.rows["text"], "text"), class_ids(table)  # (n, dim), (n,)
        folds = int(min(5, np.bincount(y).min()))
        if folds < 2:
            raise UserError(f"{table.origin}: classification needs at least 2 texts of every class; "
                            f"{np.bincount(y).tolist()} per class.")
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        proba = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=cv, method="predict_proba")  # (n, C)
        result = TaskResult({}, gold=y.astype(np.float64), proba=proba, predicted=proba.argmax(axis=1))
        result.metrics = {name: float(fn(result, np.arange(len(y)))) for name, fn in CLASSIFICATION_METRICS.items()}
        return result

    def count_units(self, table: Table) -> int:
        return min(Counter(table.rows["label"]).values())

    def delta(self, metric: str, base: TaskResult, tuned: TaskResult, *, seed: int) -> DeltaStats:
        """Texts are the units: a mean over texts (accuracy) by ``compare_means``; F1 and ROC AUC recomputed on
        resampled texts, the same texts for both models (probabilities and predictions move with their text)."""
        if metric == "accuracy":  # a mean over texts
            return compare_means(base.predicted == base.gold, tuned.predicted == tuned.gold, seed=seed)
        metric_fn = CLASSIFICATION_METRICS[metric]
        return bootstrap_test(lambda idx: metric_fn(tuned, idx) - metric_fn(base, idx), len(base.gold), seed)



CLASSIFICATION = ClassificationTask()
