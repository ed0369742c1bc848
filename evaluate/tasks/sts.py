"""sts: how well the model's similarity of each pair ranks and tracks the gold similarity scores.

| reads (kind)    | unit | metrics                                               |
|-----------------|------|-------------------------------------------------------|
| scored, labeled | pair | spearman_cosine, pearson_cosine (scipy's definitions) |
"""

from __future__ import annotations

from evaluate.significance import pearson_rows, spearman_rows
from evaluate.tasks.pairs import PairTask
from evaluate.tasks.summaries import CORRELATION_MEANINGS


class StsTask(PairTask):
    name = "sts"
    kinds = ("scored", "labeled")
    metrics = ("spearman_cosine", "pearson_cosine")
    main = "spearman_cosine"
    metric_meanings = CORRELATION_MEANINGS
    hub_task_type = "semantic-similarity"  # sentence-transformers' EmbeddingSimilarityEvaluator
    legend = ("sts: units are pairs; paired bootstrap over pairs (each model's correlation of its own scores), p the "
              "share of resampled deltas beyond 0, doubled.")
    gold_columns = ("score", "label")
    constant_gold_fix = "use a set whose pairs have different scores"
    statistics = {"spearman_cosine": lambda c, g: spearman_rows(c[None], g)[0],
                  "pearson_cosine": lambda c, g: pearson_rows(c[None], g)[0]}
    row_statistics = {"spearman_cosine": spearman_rows, "pearson_cosine": pearson_rows}


STS = StsTask()
