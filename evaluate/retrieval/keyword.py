"""BM25 keyword search with ``bm25s``: the reference a tuned embedding model should beat on its own documents.

Tokenisation, stemming and scoring are ``core.keyword``'s (one definition for evaluation and for ``data.chunking``).

- The run is built from each query's full score row with ``run_from_scores``, so ties are broken as trec_eval breaks
  them (doc id descending) and the top k is exact. ``bm25_run`` keeps only documents sharing a term with the query,
  as a keyword engine returns them (what fusion reads); ``pad_unranked`` fills the rest of the top k with score-0
  documents for the BM25 row itself, so its recall@k is not held down by documents it never ranked.

Inputs: ``queries`` and ``corpus`` as ``{id: text}``; output: a run ``{query_id: {doc_id: score}}`` (top k per query,
in rank order), the shape ``evaluate.retrieval.metrics.evaluate_run`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import bm25s

from core.keyword import Bm25, build_index, score_blocks
from evaluate.retrieval.metrics import run_from_scores

UNRANKED = "score 0, after every matching document, in trec_eval's tie order (document id descending)"


def bm25_run(queries: Mapping[str, str], corpus: Mapping[str, str], k: int = 100,
             bm25: Bm25 = Bm25("none")) -> dict[str, dict[str, float]]:
    """Each query's top k documents by BM25 (only documents sharing a term with the query).

    Args:
        queries: query id -> text.
        corpus: doc id -> text.
        k: documents kept per query.
        bm25: the tokenisation (stemmer); see ``core.keyword.available``.

    Returns:
        query id -> {doc id: BM25 score}, best first in trec_eval's order; every query has an entry (maybe empty).
    """
    return search_index(build_index(corpus, bm25), list(corpus), queries, k, bm25)


def search_index(retriever: bm25s.BM25, doc_ids: list[str], queries: Mapping[str, str], k: int = 100,
                 bm25: Bm25 = Bm25("none")) -> dict[str, dict[str, float]]:
    """``bm25_run`` on an index already built (``doc_ids`` in the order the corpus was indexed)."""
    q_ids = list(queries)
    run: dict[str, dict[str, float]] = {}
    for start, scores in score_blocks(retriever, [queries[q] for q in q_ids], bm25):  # (block, n_docs)
        for q_id, docs in run_from_scores(q_ids[start:start + len(scores)], doc_ids, scores, k).items():
            run[q_id] = {doc: score for doc, score in docs.items() if score > 0}
    return run


def pad_unranked(run: Mapping[str, Mapping[str, float]], doc_ids: Iterable[str],
                 k: int) -> tuple[dict[str, dict[str, float]], int]:
    """Each query's BM25 documents followed by documents it did not match, at score 0, up to ``k`` in all.

    A dense model ranks every document, so leaving BM25's non-matching documents out would make its recall@k
    incomparable (0.22 where a random order gives 0.63 on a 160-document corpus). The filler follows trec_eval's order
    for equal scores (document id descending), so the ranking is the one trec_eval would read, whatever the ties.

    Returns:
        (the padded run, how many queries were padded).
    """
    filler = sorted(doc_ids, reverse=True)
    padded, touched = {}, 0
    for q_id, docs in run.items():
        extra = [d for d in filler[:k + len(docs)] if d not in docs][:max(0, k - len(docs))]
        padded[q_id] = {**docs, **dict.fromkeys(extra, 0.0)}
        touched += bool(extra)
    return padded, touched
