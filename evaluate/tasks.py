"""The maths of each evaluation task on precomputed embeddings: metrics plus what the statistics need.

| task                | reads (kind)               | unit   | metrics                                               |
|---------------------|----------------------------|--------|-------------------------------------------------------|
| sts                 | scored, labeled            | pair   | spearman_cosine, pearson_cosine (scipy's definitions)  |
| pair_classification | labeled                    | pair   | accuracy, f1 (best threshold), ap (average precision)  |
| retrieval           | pairs, triplets, labeled   | query  | ndcg@10, mrr@10, map@100, recall@1/10/100 (trec_eval) |
| classification      | classes                    | text   | accuracy, f1_macro, roc_auc (cross-validated probe)   |
| clustering          | classes                    | text   | v_measure of k-means (k = number of classes)           |

Whole-set metrics (correlations, AP, best-threshold accuracy) keep per-pair cosines and gold labels so a bootstrap
can recompute them; per-query metrics keep each query's value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, v_measure_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from configs.errors import UserError
from data.sources import Table
from evaluate.embed import Embeddings
from evaluate.retrieval_metrics import evaluate_run, rank_documents, run_from_scores
from evaluate.significance import pearson_rows, rowwise, spearman_rows

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "map@100", "recall@1", "recall@10", "recall@100")
TOP_K = 100
CORPUS_CHUNK = 50_000  # documents scored at once: memory stays (n_queries, CORPUS_CHUNK) floats


@dataclass
class TaskResult:
    metrics: dict[str, float]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> value per query (retrieval)
    query_ids: list[str] = field(default_factory=list)
    cosines: np.ndarray | None = None  # (n_pairs,) predicted cosine per pair (sts, pair_classification)
    gold: np.ndarray | None = None  # (n_pairs,) gold score or label
    proba: np.ndarray | None = None  # (n_texts, n_classes) cross-validated class probabilities (classification)
    predicted: np.ndarray | None = None  # (n_texts,) predicted class (classification) or cluster id (clustering)
    run: dict[str, dict[str, float]] = field(default_factory=dict)  # retrieval: query id -> top docs -> score
    retrieval: tuple = ()  # retrieval: (queries, corpus, qrels), for the report's per-query view


def pair_texts(table: Table, full_corpus: bool = True) -> dict[str, list[str]]:
    return {"sentence1": list(table.rows["sentence1"]), "sentence2": list(table.rows["sentence2"])}


def class_texts(table: Table, full_corpus: bool = True) -> dict[str, list[str]]:
    return {"text": list(table.rows["text"])}


def pair_cosines(table: Table, emb: Embeddings) -> np.ndarray:
    """(n_pairs,) the model's similarity of each pair: the cosine for a cosine model (hence the metric names)."""
    a, b = emb(table.rows["sentence1"], "sentence1"), emb(table.rows["sentence2"], "sentence2")  # (n_pairs, dim)
    return emb.pair_scores(a, b)


def gold_of(table: Table) -> np.ndarray:
    column = "score" if "score" in table.rows.column_names else "label"
    return np.asarray(table.rows[column], dtype=np.float64)


def run_sts(table: Table, emb: Embeddings, *options) -> TaskResult:
    cosines, gold = pair_cosines(table, emb).astype(np.float64), gold_of(table)
    metrics = {name: float(fn(cosines, gold)) for name, fn in STS_STATISTICS.items()}
    return TaskResult(metrics, cosines=cosines, gold=gold)


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


def run_pair_classification(table: Table, emb: Embeddings, *options) -> TaskResult:
    cosines, gold = pair_cosines(table, emb).astype(np.float64), gold_of(table)
    metrics = {name: float(fn(cosines, gold)) for name, fn in PAIR_STATISTICS.items()}
    return TaskResult(metrics, cosines=cosines, gold=gold)


def text_id(text: str) -> str:
    """A stable id for a text that has none of its own (non-BEIR data)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def retrieval_sets(table: Table, full_corpus: bool) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """(queries, corpus, qrels) from pair rows; BEIR ids are kept, other texts get content ids.

    pairs/triplets: each anchor is a query, its positives are relevant, negatives join the corpus.
    labeled: each sentence1 is a query, sentence2 with label 1 is relevant, label 0 joins the corpus.
    With ``full_corpus`` a source's own corpus (BEIR) is searched too, as the standard benchmarks do.
    """
    rows, labeled = table.rows, table.kind == "labeled"
    q_col, d_col = ("sentence1", "sentence2") if labeled else ("anchor", "positive")
    q_ids = rows["anchor_id"] if "anchor_id" in rows.column_names else [text_id(t) for t in rows[q_col]]
    d_ids = rows["positive_id"] if "positive_id" in rows.column_names else [text_id(t) for t in rows[d_col]]
    corpus = dict(table.corpus) if full_corpus else {}
    corpus.update(zip(d_ids, rows[d_col]))
    if "negative" in rows.column_names:
        corpus.update((text_id(t), t) for t in rows["negative"])
    keep = rows["label"] if labeled else [1] * len(rows)
    qrels: dict[str, dict[str, int]] = {}
    for q_id, d_id, label in zip(q_ids, d_ids, keep):
        if label == 1:
            qrels.setdefault(q_id, {})[d_id] = 1
    queries = {q: t for q, t in zip(q_ids, rows[q_col]) if q in qrels}  # a query with nothing relevant: no query
    return queries, corpus, qrels


def search(queries: dict[str, str], corpus: dict[str, str], emb: Embeddings, k: int = TOP_K) -> dict:
    """Top-k documents per query by the model's similarity (queries and documents under their own prompts)."""
    q_ids, d_ids = list(queries), list(corpus)
    chunks = ((d_ids[s:s + CORPUS_CHUNK], emb([corpus[i] for i in d_ids[s:s + CORPUS_CHUNK]], "document"))
              for s in range(0, len(d_ids), CORPUS_CHUNK))
    return search_vectors(q_ids, emb([queries[i] for i in q_ids], "query"), chunks, k, score=emb.scores)


def search_vectors(q_ids: list[str], q: np.ndarray, doc_chunks: Iterable[tuple[list[str], np.ndarray]],
                   k: int = TOP_K, score: Callable | None = None) -> dict[str, dict[str, float]]:
    """Running top k over corpus chunks: memory is one (n_queries, chunk) score block, whatever the corpus size.

    Args:
        q_ids: query ids, one per row of ``q``.
        q: (n_queries, dim) query vectors.
        doc_chunks: (doc ids, (chunk, dim) vectors) pairs covering the corpus.
        k: documents kept per query, in trec_eval's order (score desc, then doc id desc).
        score: (q, chunk vectors) -> (n_queries, chunk) similarity; None: the dot product.
    """
    run: dict[str, dict[str, float]] = {i: {} for i in q_ids}
    for chunk_ids, vectors in doc_chunks:
        scores = score(q, vectors) if score else q @ vectors.T  # (n_queries, chunk)
        for q_id, docs in run_from_scores(q_ids, chunk_ids, scores, k).items():
            merged = {**run[q_id], **docs}
            run[q_id] = {d: merged[d] for d in rank_documents(merged)[:k]}
    return run


def run_retrieval(table: Table, emb: Embeddings, full_corpus: bool = True,
                  ignore_identical_ids: bool = False) -> TaskResult:
    queries, corpus, qrels = retrieval_sets(table, full_corpus)
    run = search(queries, corpus, emb, k=TOP_K + int(ignore_identical_ids))  # one spare for the dropped self-match
    scores = evaluate_run(run, qrels, k_values=(1, 10, 100), missing_queries="zero",
                          ignore_identical_ids=ignore_identical_ids)
    q_ids = sorted(scores["per_query"])
    per_query = {m: np.array([scores["per_query"][q][m] for q in q_ids]) for m in RETRIEVAL_METRICS}
    return TaskResult({m: float(v.mean()) for m, v in per_query.items()}, per_query=per_query, query_ids=q_ids,
                      run=run, retrieval=(queries, corpus, qrels))


def retrieval_texts(table: Table, full_corpus: bool = True) -> dict[str, list[str]]:
    queries, corpus, _ = retrieval_sets(table, full_corpus)
    return {"query": list(queries.values()), "document": list(corpus.values())}


def class_ids(table: Table) -> np.ndarray:
    names = sorted(set(table.rows["label"]))
    return np.array([names.index(label) for label in table.rows["label"]])  # (n_texts,)


def run_classification(table: Table, emb: Embeddings, *options, seed: int = 0) -> TaskResult:
    """Logistic regression on the embeddings, scored by stratified k-fold cross-validated predictions (k <= 5,
    limited by the smallest class), so every text is predicted by a probe that never saw it."""
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


def run_clustering(table: Table, emb: Embeddings, *options, seed: int = 0) -> TaskResult:
    """k-means with k = number of classes (10 restarts), scored by V-measure against the labels."""
    x, y = emb(table.rows["text"], "text"), class_ids(table)
    clusters = KMeans(n_clusters=len(set(y.tolist())), n_init=10, random_state=seed).fit_predict(x)  # (n,)
    result = TaskResult({}, gold=y.astype(np.float64), predicted=clusters)
    result.metrics = {"v_measure": float(v_measure_score(y, clusters))}
    return result


def _ap(cosines: np.ndarray, labels: np.ndarray) -> float:
    return float(average_precision_score(labels, cosines)) if labels.sum() else 0.0


STS_STATISTICS: dict[str, Callable] = {"spearman_cosine": lambda c, g: spearman_rows(c[None], g)[0],
                                       "pearson_cosine": lambda c, g: pearson_rows(c[None], g)[0]}
STS_ROW_STATISTICS: dict[str, Callable] = {"spearman_cosine": spearman_rows, "pearson_cosine": pearson_rows}
PAIR_STATISTICS: dict[str, Callable] = {"accuracy": best_threshold_accuracy, "f1": best_threshold_f1, "ap": _ap}
PAIR_ROW_STATISTICS: dict[str, Callable] = {name: rowwise(fn) for name, fn in PAIR_STATISTICS.items()}
# Classification metrics of a result on the texts at ``idx`` (a bootstrap resample, or all of them).
CLASSIFICATION_METRICS: dict[str, Callable] = {"accuracy": _accuracy, "f1_macro": _f1_macro, "roc_auc": _roc_auc}
