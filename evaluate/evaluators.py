"""The evaluator registry: name → which data kinds it reads, the texts it encodes, its maths, its metrics.

The same task code serves the dev evaluator during training (``TaskEvaluator``, a sentence-transformers evaluator)
and the baseline-vs-tuned evaluation, so the number a user watches while training is computed the way the final
report computes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from configs.errors import UserError
from data.sources import KINDS, Table
from evaluate import tasks
from evaluate.embed import embed
from evaluate.prompts import resolve_prompts


@dataclass(frozen=True)
class EvaluatorSpec:
    kinds: tuple[str, ...]  # data kinds it can read, see data.sources.KINDS
    texts: Callable  # (table, full_corpus) -> {role: texts} it will look up (roles: see evaluate.prompts)
    run: Callable  # (table, embeddings, full_corpus, ignore_identical_ids) -> tasks.TaskResult
    metrics: tuple[str, ...]
    main: str  # the metric that decides "better"


# Every run function takes (table, embeddings, full_corpus, ignore_identical_ids); only retrieval uses the last two.
EVALUATORS: dict[str, EvaluatorSpec] = {
    "sts": EvaluatorSpec(("scored", "labeled"), tasks.pair_texts, tasks.run_sts, tuple(tasks.STS_STATISTICS),
                         main="spearman_cosine"),
    "retrieval": EvaluatorSpec(("pairs", "triplets", "labeled"), tasks.retrieval_texts, tasks.run_retrieval,
                               tasks.RETRIEVAL_METRICS, main="ndcg@10"),
    "pair_classification": EvaluatorSpec(("labeled",), tasks.pair_texts, tasks.run_pair_classification,
                                         tuple(tasks.PAIR_STATISTICS), main="ap"),
    "classification": EvaluatorSpec(("classes",), tasks.class_texts, tasks.run_classification,
                                    tuple(tasks.CLASSIFICATION_METRICS), main="accuracy"),
    "clustering": EvaluatorSpec(("classes",), tasks.class_texts, tasks.run_clustering, ("v_measure",),
                                main="v_measure"),
}
DEFAULT_TASK = {"scored": "sts", "labeled": "pair_classification", "pairs": "retrieval", "triplets": "retrieval",
                "classes": "classification"}


def check_task(task: str, table: Table) -> EvaluatorSpec:
    """The task's spec, or an error when it cannot read the table or the table has too little to measure."""
    spec = EVALUATORS[task]
    if table.kind not in spec.kinds:
        have = ", ".join(KINDS[table.kind])
        raise UserError(f"evaluator '{task}' cannot read {table.origin} ({have}). Evaluators that can: "
                        f"{', '.join(t for t, s in EVALUATORS.items() if table.kind in s.kinds)}.")
    units = count_units(task, table)
    if units < 2:
        raise UserError(f"evaluator '{task}' on {table.origin}: {units} {UNIT_NAMES[task]} to measure; at least 2 "
                        "are needed (a correlation, a ranking or an interval needs more than one).")
    check_gold_varies(task, table)
    return spec


def check_gold_varies(task: str, table: Table) -> None:
    """A correlation with constant gold scores, or a pair classifier with one class, measures nothing: refuse it
    here rather than report NaN as 'no significant difference'."""
    if task not in ("sts", "pair_classification"):
        return
    column = "score" if task == "sts" and "score" in table.rows.column_names else "label"
    values = set(table.rows[column])
    if len(values) < 2:
        fix = ("use a set whose pairs have different scores" if task == "sts" else
               "use a set with both similar (1) and dissimilar (0) pairs")
        raise UserError(f"evaluator '{task}' on {table.origin}: every pair has the same {column} "
                        f"({next(iter(values))!r}), so the metric is undefined; {fix}.")


UNIT_NAMES = {"sts": "pairs", "pair_classification": "pairs", "retrieval": "queries with a relevant document",
              "classification": "texts in the smallest class", "clustering": "texts"}


def count_units(task: str, table: Table) -> int:
    if task == "retrieval":
        return len(tasks.retrieval_sets(table, full_corpus=False)[0])
    if task == "classification":
        return min(Counter(table.rows["label"]).values())
    return len(table.rows)


class TaskEvaluator(BaseEvaluator):
    """One task on one table as a sentence-transformers evaluator (for the trainer's dev evaluation)."""

    def __init__(self, task: str, table: Table, name: str, batch_size: int, full_corpus: bool = False,
                 prompts: dict[str, str] | None = None):
        """``prompts``: ``train.prompts`` (column -> prompt), so dev scores use the prompts the final report uses."""
        super().__init__()
        self.spec, self.task, self.table, self.name = check_task(task, table), task, table, name
        self.batch_size, self.full_corpus, self.train_prompts = batch_size, full_corpus, dict(prompts or {})
        self.primary_metric = self.spec.main

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        texts = self.spec.texts(self.table, self.full_corpus)
        embeddings = embed(model, texts, self.batch_size, prompts=resolve_prompts(model, texts, self.train_prompts))
        metrics = self.spec.run(self.table, embeddings, self.full_corpus).metrics
        return self.prefix_name_to_metrics(metrics, self.name)
