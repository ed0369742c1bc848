"""The evaluator registry: name → which data kinds it reads, how to build it, which metrics it reports.

The same builders serve the dev evaluator during training and the baseline-vs-tuned evaluation, so the number a
user watches while training is computed the way the final report computes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sentence_transformers.sentence_transformer.evaluation import (
    BinaryClassificationEvaluator,
    EmbeddingSimilarityEvaluator,
    InformationRetrievalEvaluator,
)
from sentence_transformers.util import cos_sim

from configs.errors import UserError
from data.sources import KINDS, Table


@dataclass(frozen=True)
class EvaluatorSpec:
    kinds: tuple[str, ...]  # data kinds it can read, see data.sources.KINDS
    build: Callable  # (table, name, batch_size, full_corpus) -> sentence-transformers evaluator
    metrics: dict[str, str]  # our metric name -> key suffix in the evaluator's output
    main: str  # the metric that decides "better"


def _sts(table: Table, name: str, batch_size: int, full_corpus: bool) -> EmbeddingSimilarityEvaluator:
    rows = table.rows
    gold = rows["score"] if "score" in rows.column_names else [float(v) for v in rows["label"]]
    return EmbeddingSimilarityEvaluator(rows["sentence1"], rows["sentence2"], gold, batch_size=batch_size,
                                        similarity_fn_names=["cosine"], name=name, write_csv=False)


def _pair_classification(table: Table, name: str, batch_size: int, full_corpus: bool):
    rows = table.rows
    return BinaryClassificationEvaluator(rows["sentence1"], rows["sentence2"], rows["label"], name=name,
                                         batch_size=batch_size, similarity_fn_names=["cosine"], write_csv=False)


def text_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def retrieval_sets(table: Table, full_corpus: bool) -> tuple[dict, dict, dict[str, set[str]]]:
    """(queries, corpus, relevant docs) from pair rows; BEIR ids are kept, other texts get content ids.

    pairs/triplets: each anchor is a query, its positives are relevant, negatives join the corpus.
    labeled: each sentence1 is a query, sentence2 with label 1 is relevant, label 0 joins the corpus.
    With ``full_corpus`` a source's own corpus (BEIR) is searched too, as the standard benchmarks do.
    """
    rows = table.rows
    labeled = table.kind == "labeled"
    q_col, d_col = ("sentence1", "sentence2") if labeled else ("anchor", "positive")
    q_ids = rows["anchor_id"] if "anchor_id" in rows.column_names else [text_id(t) for t in rows[q_col]]
    d_ids = rows["positive_id"] if "positive_id" in rows.column_names else [text_id(t) for t in rows[d_col]]
    queries = dict(zip(q_ids, rows[q_col]))
    corpus = dict(table.corpus) if full_corpus else {}
    corpus.update(zip(d_ids, rows[d_col]))
    if "negative" in rows.column_names:
        corpus.update((text_id(t), t) for t in rows["negative"])
    keep = rows["label"] if labeled else [1] * len(rows)
    relevant: dict[str, set[str]] = {}
    for q_id, d_id, label in zip(q_ids, d_ids, keep):
        if label == 1:
            relevant.setdefault(q_id, set()).add(d_id)
    queries = {q: t for q, t in queries.items() if q in relevant}  # a query with nothing relevant scores nothing
    return queries, corpus, relevant


def _retrieval(table: Table, name: str, batch_size: int, full_corpus: bool) -> InformationRetrievalEvaluator:
    queries, corpus, relevant = retrieval_sets(table, full_corpus)
    return InformationRetrievalEvaluator(
        queries, corpus, relevant, name=name, batch_size=batch_size, write_csv=False,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10, 100], map_at_k=[100],
        main_score_function="cosine", score_functions={"cosine": cos_sim},
    )


EVALUATORS: dict[str, EvaluatorSpec] = {
    "sts": EvaluatorSpec(("scored", "labeled"), _sts,
                         {"spearman_cosine": "spearman_cosine", "pearson_cosine": "pearson_cosine"},
                         main="spearman_cosine"),
    "retrieval": EvaluatorSpec(("pairs", "triplets", "labeled"), _retrieval,
                               {"ndcg@10": "cosine_ndcg@10", "mrr@10": "cosine_mrr@10", "map@100": "cosine_map@100",
                                "recall@1": "cosine_recall@1", "recall@10": "cosine_recall@10",
                                "recall@100": "cosine_recall@100"},
                               main="ndcg@10"),
    "pair_classification": EvaluatorSpec(("labeled",), _pair_classification,
                                         {"accuracy": "cosine_accuracy", "f1": "cosine_f1", "ap": "cosine_ap"},
                                         main="ap"),
}
DEFAULT_TASK = {"scored": "sts", "labeled": "pair_classification", "pairs": "retrieval", "triplets": "retrieval"}


def build_evaluator(task: str, table: Table, name: str, batch_size: int, full_corpus: bool = True,
                    progress: bool = False):
    """The evaluator for ``task`` on ``table``; ``progress`` shows encoding progress bars (final evaluation)."""
    spec = EVALUATORS[task]
    if table.kind not in spec.kinds:
        have = ", ".join(KINDS[table.kind])
        raise UserError(f"evaluator '{task}' cannot read {table.origin} ({have}). Evaluators that can: "
                        f"{', '.join(t for t, s in EVALUATORS.items() if table.kind in s.kinds)}.")
    evaluator = spec.build(table, name, batch_size, full_corpus)
    evaluator.show_progress_bar = progress
    return evaluator


def pick_metrics(task: str, name: str, raw: dict[str, float]) -> dict[str, float]:
    """Our metric names from an evaluator's ``{name}_{suffix}`` keys (prefix ``eval_`` in the trainer's logs)."""
    spec = EVALUATORS[task]
    return {metric: float(raw[f"{name}_{suffix}"]) for metric, suffix in spec.metrics.items()}
