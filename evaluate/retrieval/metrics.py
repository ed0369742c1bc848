"""Retrieval metrics identical to trec_eval (as pytrec_eval exposes it, the way BEIR and MTEB call it).

Inputs, in BEIR's shapes:

| argument | type | meaning |
|---|---|---|
| ``run`` | ``dict[str, dict[str, float]]`` | query id -> doc id -> score (higher is better) |
| ``qrels`` | ``dict[str, dict[str, int]]`` | query id -> doc id -> graded relevance (may hold 0 or negatives) |

trec_eval's conventions, each checked against pytrec_eval in ``tests/test_retrieval_metrics.py``:

- Ranking: score descending, ties broken by doc id descending (byte order, as ``strcmp``). The rank a run file or
  the dict's order suggests is ignored.
- ``ndcg@k`` is ``ndcg_cut_k``: gain = relevance level (not ``2**rel - 1``), discount ``log2(rank + 1)``; negative
  and unjudged documents gain 0; the ideal DCG ranks the query's judged positive levels, highest first, cut at k.
  It ignores ``relevance_level``.
- ``map@k`` (``map_cut_k``), ``recall@k`` (``recall_k``) and ``mrr@k`` count a document as relevant when its level
  is ``>= relevance_level`` (1 by default); map and recall divide by every relevant document in the qrels, retrieved
  or not.
- ``mrr@k`` is trec_eval's ``recip_rank`` on the run cut to its top k (trec_eval's own ``recip_rank`` is uncut):
  1 / rank of the first relevant document within the top k, else 0. MTEB computes the same number in Python, except
  that it breaks score ties by the run dict's order rather than by doc id.
- Which queries count: those in both ``run`` and ``qrels``. A qrels query whose judgments are all ``<= 0`` is
  evaluated and scores 0 on every metric (it drags the mean down); a qrels query with no judgments at all is
  dropped, like one absent from the qrels; a query in the run but not the qrels is ignored; a query in the run with
  no documents scores 0. A qrels query missing from the run is ignored by trec_eval (``missing_queries="ignore"``);
  ``missing_queries="zero"`` scores it 0 instead, which is what BEIR/MTEB users get (their search returns a result
  list, possibly empty, for every query), so a run cannot look better by leaving queries out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, TypedDict

import numpy as np

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]
MISSING_QUERY_CHOICES = ("ignore", "zero")
METRICS = ("ndcg", "map", "recall", "mrr")


class RetrievalScores(TypedDict):
    """What ``evaluate_run`` returns: metric name -> mean, and query id -> metric name -> value."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]


def rank_documents(doc_scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval's order: score descending, then doc id descending.

    Args:
        doc_scores: doc id -> score for one query.

    Returns:
        The doc ids, best first.
    """
    # Sorting (score, doc id) pairs in reverse is exactly trec_eval's comparator: sim desc, then strcmp desc
    # (Python compares str by code point, which is the byte order of their UTF-8 encoding).
    return [doc for _, doc in sorted(((score, doc) for doc, score in doc_scores.items()), reverse=True)]


def ndcg_at_k(ranked_levels: Sequence[int], judged_levels: Iterable[int], k: int) -> float:
    """trec_eval's ``ndcg_cut_k`` for one query.

    Args:
        ranked_levels: relevance level of each ranked document, best first (0 for unjudged ones).
        judged_levels: every relevance level in the query's qrels, retrieved or not.
        k: the cut-off.

    Returns:
        DCG@k / ideal DCG@k, or 0 when the query has no positive judgment.
    """
    ideal = sorted((level for level in judged_levels if level > 0), reverse=True)
    ideal_dcg = _dcg(ideal, k)
    if ideal_dcg == 0.0:
        return 0.0
    return _dcg([max(level, 0) for level in ranked_levels], k) / ideal_dcg


def _dcg(gains: Sequence[int], k: int) -> float:
    # sum() adds left to right, rank by rank as trec_eval does, so the floating-point result is the same.
    return sum((gain / math.log2(i + 2) for i, gain in enumerate(gains[:k]) if gain), 0.0)


def average_precision_at_k(hits: Sequence[bool], num_relevant: int, k: int) -> float:
    """trec_eval's ``map_cut_k`` for one query: precision at each relevant rank within k, over all relevant docs.

    Args:
        hits: whether each ranked document is relevant, best first.
        num_relevant: number of relevant documents in the qrels (retrieved or not).
        k: the cut-off.

    Returns:
        Average precision at k, or 0 when the query has no relevant document.
    """
    if num_relevant == 0:
        return 0.0
    found, total = 0, 0.0
    for i, hit in enumerate(hits[:k]):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / num_relevant


def recall_at_k(hits: Sequence[bool], num_relevant: int, k: int) -> float:
    """trec_eval's ``recall_k``: relevant documents in the top k over relevant documents in the qrels (0 if none)."""
    return sum(hits[:k]) / num_relevant if num_relevant else 0.0


def reciprocal_rank_at_k(hits: Sequence[bool], k: int) -> float:
    """trec_eval's ``recip_rank`` on the top k: 1 / rank of the first relevant document there, else 0."""
    return next((1.0 / (i + 1) for i, hit in enumerate(hits[:k]) if hit), 0.0)


def query_metrics(
    ranked: Sequence[str], judgments: Mapping[str, int], k_values: Sequence[int], relevance_level: int = 1
) -> dict[str, float]:
    """Every metric at every cut-off for one query.

    Args:
        ranked: doc ids in trec_eval's order (see ``rank_documents``).
        judgments: doc id -> relevance level for this query.
        k_values: cut-offs.
        relevance_level: lowest level that counts as relevant for map, recall and mrr.

    Returns:
        ``{"ndcg@10": ..., "map@10": ..., "recall@10": ..., "mrr@10": ..., ...}``.
    """
    levels = [judgments.get(doc, 0) for doc in ranked]
    hits = [level >= relevance_level for level in levels]
    num_relevant = sum(level >= relevance_level for level in judgments.values())
    values: dict[str, float] = {}
    for k in k_values:
        values[f"ndcg@{k}"] = ndcg_at_k(levels, judgments.values(), k)
        values[f"map@{k}"] = average_precision_at_k(hits, num_relevant, k)
        values[f"recall@{k}"] = recall_at_k(hits, num_relevant, k)
        values[f"mrr@{k}"] = reciprocal_rank_at_k(hits, k)
    return values


def evaluate_run(
    run: Run,
    qrels: Qrels,
    k_values: Sequence[int] = (1, 10, 100),
    ignore_identical_ids: bool = False,
    missing_queries: Literal["ignore", "zero"] = "ignore",
    relevance_level: int = 1,
) -> RetrievalScores:
    """nDCG@k, MAP@k, recall@k and MRR@k per query and averaged, equal to pytrec_eval's values.

    Args:
        run: query id -> doc id -> score. Ids must be ``str``, as in pytrec_eval.
        qrels: query id -> doc id -> relevance level.
        k_values: cut-offs, each a positive int.
        ignore_identical_ids: drop a document whose id equals the query id before ranking (BEIR/MTEB, for ArguAna-like
            sets where a query is also in the corpus). The qrels are left as they are.
        missing_queries: what a qrels query absent from the run scores: ``"ignore"`` (trec_eval) or ``"zero"``.
        relevance_level: lowest level counted as relevant by map, recall and mrr (trec_eval's ``-l``).

    Returns:
        ``{"mean": {"ndcg@10": ...}, "per_query": {query_id: {"ndcg@10": ...}}}``; the mean is over evaluated queries.

    Raises:
        ValueError: on a bad option, a NaN score, or when no query is in both run and qrels.
    """
    _check_options(k_values, missing_queries, relevance_level)
    judged = {q: docs for q, docs in qrels.items() if docs}  # trec_eval has no record of a query without judgments
    query_ids = [q for q in judged if q in run or missing_queries == "zero"]
    if not query_ids:
        raise ValueError("no query id is in both the run and the qrels: check that both use the same str ids")
    per_query = {}
    for q in query_ids:
        doc_scores = run.get(q, {})
        if ignore_identical_ids:  # BEIR/MTEB drop it from the run only
            doc_scores = {doc: score for doc, score in doc_scores.items() if doc != q}
        _check_scores(q, doc_scores)
        per_query[q] = query_metrics(rank_documents(doc_scores), judged[q], k_values, relevance_level)
    names = [f"{metric}@{k}" for metric in METRICS for k in k_values]
    mean = {name: math.fsum(values[name] for values in per_query.values()) / len(per_query) for name in names}
    return {"mean": mean, "per_query": per_query}


def _check_options(k_values: Sequence[int], missing_queries: str, relevance_level: int) -> None:
    if not k_values or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in k_values):
        raise ValueError(f"k_values must be positive ints, e.g. (1, 10, 100); got {k_values!r}")
    if missing_queries not in MISSING_QUERY_CHOICES:
        raise ValueError(f"missing_queries must be one of {MISSING_QUERY_CHOICES}; got {missing_queries!r}")
    if isinstance(relevance_level, bool) or not isinstance(relevance_level, int) or relevance_level < 1:
        raise ValueError(f"relevance_level must be an int >= 1, as in trec_eval; got {relevance_level!r}")


def _check_scores(query_id: str, doc_scores: Mapping[str, float]) -> None:
    for doc, score in doc_scores.items():
        if math.isnan(score):
            raise ValueError(f"run[{query_id!r}][{doc!r}] is NaN: a NaN score has no rank; fix or drop it")


def run_from_scores(
    query_ids: Sequence[str], doc_ids: Sequence[str], scores: np.ndarray, k: int
) -> dict[str, dict[str, float]]:
    """A run holding each query's top k documents, chosen in trec_eval's order (score desc, then doc id desc).

    Args:
        query_ids: one id per row of ``scores``.
        doc_ids: one id per column of ``scores``.
        scores: ``(n_queries, n_docs)`` similarity matrix, higher is better, no NaN.
        k: documents to keep per query (all of them when k exceeds n_docs).

    Returns:
        query id -> {doc id: score as a Python float}, each inner dict in rank order. Ties at the k-th score keep
        the documents trec_eval would rank first, so every metric at a cut-off <= k equals its full-matrix value.

    Raises:
        ValueError: on a shape that does not match the ids, duplicate ids, NaN scores or k < 1.
    """
    scores = np.asarray(scores)
    _check_score_matrix(query_ids, doc_ids, scores, k)
    id_rank = np.empty(len(doc_ids), dtype=np.int64)  # (n_docs,), 0 = the largest doc id
    id_rank[sorted(range(len(doc_ids)), key=doc_ids.__getitem__, reverse=True)] = np.arange(len(doc_ids))
    run = {}
    for q_id, row in zip(query_ids, scores):
        row = row.astype(np.float64)  # (n_docs,), exact for float16/32 and ints, so ties stay ties
        run[q_id] = {doc_ids[j]: float(row[j]) for j in _top_k(row, id_rank, k)}
    return run


def _top_k(row: np.ndarray, id_rank: np.ndarray, k: int) -> np.ndarray:
    """Column indices of one row's top k in trec_eval's order, without sorting the whole row."""
    k = min(k, len(row))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(row, len(row) - k)[len(row) - k]  # the k-th largest score
    candidates = np.flatnonzero(row >= kth)  # every document that can make the top k, boundary ties included
    order = np.lexsort((id_rank[candidates], -row[candidates]))  # primary key last: score desc, then doc id desc
    return candidates[order[:k]]


def _check_score_matrix(query_ids: Sequence[str], doc_ids: Sequence[str], scores: np.ndarray, k: int) -> None:
    expected = (len(query_ids), len(doc_ids))
    if scores.shape != expected:
        raise ValueError(f"scores has shape {scores.shape}; expected (n_queries, n_docs) = {expected}")
    for name, ids in (("query_ids", query_ids), ("doc_ids", doc_ids)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name} holds duplicate ids; a run keys documents and queries by id, so make them unique")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    if np.issubdtype(scores.dtype, np.inexact) and np.isnan(scores).any():
        raise ValueError("scores holds NaN; a NaN score has no rank, so fix the embeddings or drop those rows")
