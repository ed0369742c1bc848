"""pair_classification: how well a threshold on the model's similarity separates similar (1) from dissimilar (0).

| reads (kind) | unit | metrics                                               |
|--------------|------|-------------------------------------------------------|
| labeled      | pair | accuracy, f1 (best threshold), ap (average precision) |
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from evaluate.significance import rowwise
from evaluate.tasks.pairs import PairTask
from evaluate.tasks.summaries import PAIR_CLASS_MEANINGS


def best_threshold_accuracy(cosines: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of ``cosine > t`` at the best threshold t (every cut between sorted scores is tried)."""
    order = np.argsort(-cosines, kind="stable")
    positives_above = np.concatenate([[0], np.cumsum(labels[order])])  # positives among the top i
    negatives_below = (1 - labels).sum() - (np.arange(len(labels) + 1) - positives_above)
    cuttable = np.concatenate([[True], cosines[order][:-1] != cosines[order][1:], [True]])  # no cut inside ties
    return float(((positives_above + negatives_below)[cuttable]).max() / len(labels))


def best_threshold_f1(cosines: np.ndarray, labels: np.ndarray) -> float:
    """F1 of ``cosine > t`` at the threshold that maximises it."""
    order = np.argsort(-cosines, kind="stable")
    true_pos = np.cumsum(labels[order])  # predicting the top i+1 positive
    predicted = np.arange(1, len(labels) + 1)
    f1 = 2 * true_pos / (predicted + labels.sum())
    cuttable = np.concatenate([cosines[order][:-1] != cosines[order][1:], [True]])
    return float(f1[cuttable].max()) if labels.sum() else 0.0


def average_precision(cosines: np.ndarray, labels: np.ndarray) -> float:
    return float(average_precision_score(labels, cosines)) if labels.sum() else 0.0


STATISTICS = {"accuracy": best_threshold_accuracy, "f1": best_threshold_f1, "ap": average_precision}


class PairClassificationTask(PairTask):
    name = "pair_classification"
    kinds = ("labeled",)
    metrics = tuple(STATISTICS)
    main = "ap"
    metric_meanings = PAIR_CLASS_MEANINGS
    hub_task_type = "binary-classification"  # sentence-transformers' BinaryClassificationEvaluator
    legend = ("pair classification: units are pairs; paired bootstrap over pairs (each model's metric of its own "
              "scores), p the share of resampled deltas beyond 0, doubled.")
    gold_columns = ("label",)
    constant_gold_fix = "use a set with both similar (1) and dissimilar (0) pairs"
    statistics = STATISTICS
    row_statistics = {name: rowwise(fn) for name, fn in STATISTICS.items()}


PAIR_CLASSIFICATION = PairClassificationTask()
