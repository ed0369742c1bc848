"""BM25 keyword search with ``bm25s``: the reference a tuned embedding model should beat on its own documents.

Choices, stated once:

- Tokenisation is ``bm25s.tokenize``'s default, the one scikit-learn's ``CountVectorizer`` uses: lowercase, tokens
  matching ``\\b\\w\\w+\\b`` (one-character tokens are dropped), plus bm25s' English stopword list. No stemming:
  a stemmer (PyStemmer) is not a dependency of this project, and keyword matching without one is the plainer, more
  reproducible reference. Elasticsearch's ``english`` analyzer (BEIR's BM25) stems, so expect bm25s to land a little
  below BEIR's published BM25 numbers on sets where inflections matter.
- Scoring is bm25s' default Lucene variant (k1 = 1.5, b = 0.75).
- The run is built from each query's full score row with ``run_from_scores``, so ties are broken as trec_eval breaks
  them (doc id descending) and the top k is exact. A document sharing no term with the query scores 0 and is left out
  of the run, as a keyword engine returns only matching documents.

Inputs: ``queries`` and ``corpus`` as ``{id: text}``; output: a run ``{query_id: {doc_id: score}}`` (top k per query,
in rank order), the shape ``evaluate.retrieval.metrics.evaluate_run`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import bm25s
import numpy as np

from evaluate.retrieval.metrics import run_from_scores

BM25_OPTIONS = {"method": "lucene", "k1": 1.5, "b": 0.75}  # bm25s' defaults, written out so the report can say them
STOPWORDS = "en"
SCORE_BLOCK = 20_000_000  # floats scored at once: a block of queries times the corpus stays ~80 MB
DESCRIPTION = "BM25 (bm25s, Lucene variant k1 1.5 b 0.75, lowercase, English stopwords, no stemming)"


def tokenize(texts: Iterable[str]) -> list[list[str]]:
    """Each text as a list of lowercase word tokens without English stopwords (see the module docstring)."""
    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False)


def build_index(corpus: Mapping[str, str]) -> bm25s.BM25:
    """A BM25 index of the corpus texts, in the corpus' order.

    Raises:
        ValueError: when the corpus is empty.
    """
    if not corpus:
        raise ValueError("the corpus is empty: BM25 needs at least one document to index")
    retriever = bm25s.BM25(**BM25_OPTIONS)
    retriever.index(tokenize(corpus.values()), show_progress=False)
    return retriever


def score_rows(retriever: bm25s.BM25, query_texts: list[str]) -> np.ndarray:
    """(n_queries, n_docs) BM25 scores; a query with no indexed term scores 0 everywhere."""
    scores = np.zeros((len(query_texts), retriever.scores["num_docs"]), dtype=np.float32)
    for row, tokens in enumerate(tokenize(query_texts)):
        ids = retriever.get_tokens_ids([t for t in tokens if t])  # terms the corpus never uses are dropped
        if ids:
            scores[row] = retriever.get_scores_from_ids(ids)  # (n_docs,)
    return scores


def bm25_run(queries: Mapping[str, str], corpus: Mapping[str, str], k: int = 100) -> dict[str, dict[str, float]]:
    """Each query's top k documents by BM25 (only documents sharing a term with the query).

    Args:
        queries: query id -> text.
        corpus: doc id -> text.
        k: documents kept per query.

    Returns:
        query id -> {doc id: BM25 score}, best first in trec_eval's order; every query has an entry (maybe empty).
    """
    return search_index(build_index(corpus), list(corpus), queries, k)


def search_index(retriever: bm25s.BM25, doc_ids: list[str], queries: Mapping[str, str],
                 k: int = 100) -> dict[str, dict[str, float]]:
    """``bm25_run`` on an index already built (``doc_ids`` in the order the corpus was indexed)."""
    q_ids = list(queries)
    step = max(1, SCORE_BLOCK // len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(q_ids), step):
        block = q_ids[start:start + step]
        scores = score_rows(retriever, [queries[q] for q in block])  # (len(block), n_docs)
        for q_id, docs in run_from_scores(block, doc_ids, scores, k).items():
            run[q_id] = {doc: score for doc, score in docs.items() if score > 0}
    return run
