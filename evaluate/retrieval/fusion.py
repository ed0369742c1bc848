"""Hybrid search: fuse a dense run with a keyword run, by rank (RRF) or by normalised score (convex combination).

A run is ``{query_id: {doc_id: score}}`` (higher is better), as ``evaluate.retrieval.metrics.evaluate_run`` reads it.
Every function here is pure: runs in, a run out. Ranks are trec_eval's (score descending, then doc id descending), so a
fused run does not depend on the order the input dicts happen to be in. Each fused run keeps the top ``depth``
documents per query; a query in any input run is in the output.

| function | fuses | score of a document |
|---|---|---|
| ``rrf`` | ranks | sum over runs of 1 / (k + rank), rank from 1; absent from a run: nothing from it |
| ``convex`` | scores | weight * minmax(a) + (1 - weight) * minmax(b); absent from a run: 0 from it |

The convex weight is a choice that must be made on held-out queries: ``choose_weight`` picks it on DEV by nDCG@10;
choosing it on the test queries would report a number no user could reproduce on new queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evaluate.retrieval.metrics import evaluate_run, rank_documents

Run = Mapping[str, Mapping[str, float]]
RRF_K = 60  # Cormack et al. 2009, the constant every RRF implementation uses by default
DEPTH = 100  # documents kept per query, as the retrieval evaluator keeps them
WEIGHT_GRID = tuple(i / 10 for i in range(11))  # 0.0, 0.1, ..., 1.0: weight of the dense run


def top(doc_scores: Mapping[str, float], depth: int) -> dict[str, float]:
    """The ``depth`` best documents in trec_eval's order, as an ordered dict."""
    return {doc: doc_scores[doc] for doc in rank_documents(doc_scores)[:depth]}


def rrf(runs: Sequence[Run], k: int = RRF_K, depth: int = DEPTH) -> dict[str, dict[str, float]]:
    """Reciprocal rank fusion: each document scores the sum of 1 / (k + rank) over the runs that retrieved it.

    Args:
        runs: the runs to fuse (two or more; one is returned re-scored).
        k: RRF's constant; larger k flattens the difference between top and lower ranks.
        depth: documents kept per query.

    Returns:
        query id -> {doc id: fused score}, best first.
    """
    if k < 0:
        raise ValueError(f"RRF's k must be >= 0 (60 is the usual value); got {k}")
    fused: dict[str, dict[str, float]] = {}
    for run in runs:
        for q_id, doc_scores in run.items():
            target = fused.setdefault(q_id, {})
            for rank, doc in enumerate(rank_documents(doc_scores), start=1):
                target[doc] = target.get(doc, 0.0) + 1.0 / (k + rank)
    return {q_id: top(doc_scores, depth) for q_id, doc_scores in fused.items()}


def min_max(doc_scores: Mapping[str, float]) -> dict[str, float]:
    """Scores mapped linearly onto [0, 1] within one query (best 1, worst 0); all equal: all 1."""
    if not doc_scores:
        return {}
    low, high = min(doc_scores.values()), max(doc_scores.values())
    if high == low:
        return dict.fromkeys(doc_scores, 1.0)
    return {doc: (score - low) / (high - low) for doc, score in doc_scores.items()}


def convex(run_a: Run, run_b: Run, weight: float, depth: int = DEPTH) -> dict[str, dict[str, float]]:
    """weight * minmax(run_a) + (1 - weight) * minmax(run_b), per query.

    Args:
        run_a: e.g. the dense run; ``weight`` is its share.
        run_b: e.g. the BM25 run.
        weight: in [0, 1]; 1 keeps run_a's order, 0 run_b's (documents only the other run found come after).
        depth: documents kept per query.

    Returns:
        query id -> {doc id: fused score in [0, 1]}, best first.
    """
    _check_weight(weight)
    fused = {}
    for q_id in dict.fromkeys([*run_a, *run_b]):
        a, b = min_max(run_a.get(q_id, {})), min_max(run_b.get(q_id, {}))
        scores = {doc: weight * a.get(doc, 0.0) + (1 - weight) * b.get(doc, 0.0) for doc in dict.fromkeys([*a, *b])}
        fused[q_id] = top(scores, depth)
    return fused


def choose_weight(dense_dev_run: Run, bm25_dev_run: Run, dev_qrels: Mapping[str, Mapping[str, int]],
                  grid: Sequence[float] = WEIGHT_GRID) -> float:
    """The dense weight of ``convex`` with the best mean nDCG@10 on the DEV queries.

    Ties (common on small dev sets) go to the weight nearest 0.5, then to the smaller one, so a flat curve gives the
    even mix rather than an arbitrary end of the grid. Never pass test runs here.

    Returns:
        The chosen weight, one of ``grid``.
    """
    if not grid:
        raise ValueError("the weight grid is empty; pass weights in [0, 1], e.g. (0.0, 0.1, ..., 1.0)")
    ndcg = {}
    for weight in grid:
        fused = convex(dense_dev_run, bm25_dev_run, weight)
        ndcg[weight] = evaluate_run(fused, dev_qrels, k_values=(10,), missing_queries="zero")["mean"]["ndcg@10"]
    return min(grid, key=lambda w: (-ndcg[w], round(abs(w - 0.5), 9), w))


def _check_weight(weight: float) -> None:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"a convex weight must be in [0, 1]; got {weight}")
