"""What the two pair tasks (sts, pair_classification) share: texts, per-pair similarities, gold, details, map.

Both score each (sentence1, sentence2) pair by the model's similarity and compare a whole-set statistic of those
scores with the gold scores or labels; the unit is the pair.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from configs.errors import UserError
from core.embed import Embeddings
from data.table import Table
from evaluate.significance import DeltaStats, RowStatistic, compare_statistic
from evaluate.tasks.spec import TaskResult, TaskSpec
from evaluate.tasks.summaries import pairs_about, pairs_lines

MAX_PAIRS = 2000  # pairs listed in details.json


def pair_cosines(table: Table, emb: Embeddings) -> np.ndarray:
    """(n_pairs,) the model's similarity of each pair: the cosine for a cosine model (hence the metric names)."""
    a, b = emb(table.rows["sentence1"], "sentence1"), emb(table.rows["sentence2"], "sentence2")  # (n_pairs, dim)
    return emb.pair_scores(a, b)


def gold_of(table: Table, columns: tuple[str, ...] = ("score", "label")) -> np.ndarray:
    """(n_pairs,) the gold of each pair: the first of ``columns`` the table has."""
    column = next(c for c in columns if c in table.rows.column_names)
    return np.asarray(table.rows[column], dtype=np.float64)


class PairTask(TaskSpec):
    """A whole-set statistic of per-pair similarities against gold: ``statistics`` (metric -> (cosines, gold) ->
    float) computes the metrics, ``row_statistics`` (metric -> RowStatistic) the same on resampled rows."""

    unit = "pairs"
    statistics: dict[str, Callable[[np.ndarray, np.ndarray], float]]
    row_statistics: dict[str, RowStatistic]
    gold_columns: tuple[str, ...]  # where the gold is: the first of these columns the table has
    constant_gold_fix: str  # how to fix a set whose pairs all have the same gold

    def texts(self, table: Table) -> dict[str, list[str]]:
        return {"sentence1": list(table.rows["sentence1"]), "sentence2": list(table.rows["sentence2"])}

    def run(self, table: Table, emb: Embeddings) -> TaskResult:
        cosines, gold = pair_cosines(table, emb).astype(np.float64), gold_of(table, self.gold_columns)
        metrics = {name: float(fn(cosines, gold)) for name, fn in self.statistics.items()}
        return TaskResult(metrics, cosines=cosines, gold=gold)

    def check_gold(self, table: Table) -> None:
        """A correlation with constant gold scores, or a pair classifier with one class, measures nothing: refuse it
        here rather than report NaN as 'no significant difference'."""
        column = next(c for c in self.gold_columns if c in table.rows.column_names)
        values = set(table.rows[column])
        if len(values) < 2:
            raise UserError(f"evaluator '{self.name}' on {table.origin}: every pair has the same {column} "
                            f"({next(iter(values))!r}), so the metric is undefined; {self.constant_gold_fix}.")

    def delta(self, metric: str, base: TaskResult, tuned: TaskResult, *, seed: int) -> DeltaStats:
        return compare_statistic(self.row_statistics[metric], base.cosines, tuned.cosines, base.gold, seed=seed)

    def details(self, table: Table, base: TaskResult, tuned: TaskResult, embeddings: tuple[Embeddings, Embeddings],
                *, seed: int) -> dict:
        rows = table.rows.select(range(min(MAX_PAIRS, len(table.rows))))
        columns = zip(rows["sentence1"], rows["sentence2"], base.gold, base.cosines, tuned.cosines)
        return {"pairs": [{"sentence1": a, "sentence2": b, "gold": float(g), "baseline": float(x), "tuned": float(y)}
                          for a, b, g, x, y in columns]}

    def about(self, table: Table, result: TaskResult) -> dict:
        """Pairs, distinct texts and the gold levels (or range)."""
        return pairs_about(table.rows["sentence1"], table.rows["sentence2"], list(result.gold))

    def about_lines(self, about, quote=str) -> list[str]:
        return pairs_lines(about, quote)

    def map_inputs(self, table: Table, base: TaskResult) -> tuple[list[str], list[str], list[str]]:
        """Each distinct text once, labelled by its row's group (a topic when the data names one); a second text
        takes the group of its best-scored pair, so one text is never drawn twice in two colours."""
        rows, label = table.rows, {}
        groups = rows["group"] if "group" in rows.column_names else [""] * len(rows)
        for text, group in zip(rows["sentence1"], groups):
            label.setdefault(text, str(group))
        for text, group, _ in sorted(zip(rows["sentence2"], groups, base.gold), key=lambda t: -t[2]):
            label.setdefault(text, str(group))
        firsts = set(rows["sentence1"])
        texts = list(label)
        return texts, [label[t] for t in texts], ["sentence1" if t in firsts else "sentence2" for t in texts]
