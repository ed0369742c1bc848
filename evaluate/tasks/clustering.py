"""clustering: k-means on the embeddings (k = number of classes), scored by V-measure against the labels.

| reads (kind) | unit | metrics   |
|--------------|------|-----------|
| classes      | text | v_measure |
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import v_measure_score

from core.embed import Embeddings
from data.table import Table
from evaluate.significance import DeltaStats, bootstrap_interval
from evaluate.tasks.classification import ClassesTask, class_ids, class_texts
from evaluate.tasks.spec import TaskResult
from evaluate.tasks.summaries import CLUSTER_MEANINGS


class ClusteringTask(ClassesTask):
    name = "clustering"
    kinds = ("classes",)
    metrics = ("v_measure",)
    main = "v_measure"
    unit = "texts"
    metric_meanings = CLUSTER_MEANINGS
    hub_task_type = "clustering"  # as MTEB's cards on the Hub name it
    legend = ("clustering: units are texts; paired bootstrap interval over texts and no p (cluster ids of two "
              "models cannot be swapped), so it is judged by its interval.")

    def texts(self, table: Table) -> dict[str, list[str]]:
        return class_texts(table)

    def run(self, table: Table, emb: Embeddings, *, seed: int) -> TaskResult:
        """k-means with k = number of classes (10 restarts seeded by ``seed``), scored by V-measure."""
        x, y = emb(table.rows["text"], "text"), class_ids(table)
        clusters = KMeans(n_clusters=len(set(y.tolist())), n_init=10, random_state=seed).fit_predict(x)  # (n,)
        return TaskResult({"v_measure": float(v_measure_score(y, clusters))}, gold=y.astype(np.float64),
                          predicted=clusters)

    def delta(self, metric: str, base: TaskResult, tuned: TaskResult, *, seed: int) -> DeltaStats:
        """Bootstrap CI over texts only: cluster ids of two models are not interchangeable, so a test that swaps
        them between models has no meaning. Significant here means the 95% interval excludes 0; p is NaN."""
        def delta_of(idx: np.ndarray) -> float:  # (n,) resampled text indices -> V-measure delta on them
            return (v_measure_score(tuned.gold[idx], tuned.predicted[idx])
                    - v_measure_score(base.gold[idx], base.predicted[idx]))

        return bootstrap_interval(delta_of, len(base.gold), seed)



CLUSTERING = ClusteringTask()
