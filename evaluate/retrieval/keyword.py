"""BM25 keyword search with ``bm25s``: the reference a tuned embedding model should beat on its own documents.

Choices, stated once (``Bm25.record`` writes them into the BM25 row of report.json):

- Tokenisation is ``bm25s.tokenize``'s default, the one scikit-learn's ``CountVectorizer`` uses: lowercase, tokens
  matching ``\\b\\w\\w+\\b`` (one-character tokens are dropped), plus bm25s' English stopword list.
- Stemming (``evaluate.keyword.stemmer``, default ``english``): PyStemmer's Snowball English stemmer, as
  Elasticsearch's ``english`` analyzer (BEIR's BM25) stems; on SciFact test it lifts nDCG@10 from 0.6617 to 0.6863.
  Without PyStemmer installed the tokens are not stemmed, a warning says so and the report records ``none``.
- Scoring is bm25s' default Lucene variant (k1 = 1.5, b = 0.75).
- The run is built from each query's full score row with ``run_from_scores``, so ties are broken as trec_eval breaks
  them (doc id descending) and the top k is exact. ``bm25_run`` keeps only documents sharing a term with the query,
  as a keyword engine returns them (what fusion reads); ``pad_unranked`` fills the rest of the top k with score-0
  documents for the BM25 row itself, so its recall@k is not held down by documents it never ranked.

Inputs: ``queries`` and ``corpus`` as ``{id: text}``; output: a run ``{query_id: {doc_id: score}}`` (top k per query,
in rank order), the shape ``evaluate.retrieval.metrics.evaluate_run`` reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import bm25s
import numpy as np

from evaluate.retrieval.metrics import run_from_scores

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG, so "Building index from tokens" reached the console once per index built;
# our own line below says what was indexed instead.
logging.getLogger("bm25s").setLevel(logging.WARNING)

BM25_OPTIONS = {"method": "lucene", "k1": 1.5, "b": 0.75}  # bm25s' defaults, written out so the report can say them
STOPWORDS = "en"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s.tokenize's default, written out for the report and the card's snippet
SCORE_BLOCK = 20_000_000  # floats scored at once: a block of queries times the corpus stays ~80 MB
UNRANKED = "score 0, after every matching document, in trec_eval's tie order (document id descending)"


@dataclass(frozen=True)
class Bm25:
    """How BM25 tokenises: ``stemmer`` is 'english' (PyStemmer's Snowball) or 'none'."""

    stemmer: str = "english"

    def stem(self):
        """PyStemmer's stemmer object, or None for 'none'."""
        if self.stemmer == "none":
            return None
        import Stemmer  # PyStemmer; imported here so 'none' runs without it

        return Stemmer.Stemmer(self.stemmer)

    def record(self) -> dict:
        """What the BM25 row of report.json says about the tokenizer and parameters."""
        return {"library": f"bm25s {bm25s.__version__}", "lowercase": True, "token_pattern": TOKEN_PATTERN,
                "stopwords": STOPWORDS, "stemmer": self.stemmer, **BM25_OPTIONS}

    def description(self) -> str:
        stem = "Snowball English stemmer" if self.stemmer == "english" else "no stemming"
        return (f"BM25 (bm25s, Lucene variant k1 {BM25_OPTIONS['k1']:g} b {BM25_OPTIONS['b']:g}, lowercase, "
                f"English stopwords, {stem})")


def available(stemmer: str) -> Bm25:
    """``Bm25(stemmer)``, or ``Bm25('none')`` with a warning when PyStemmer cannot be imported."""
    if stemmer == "none":
        return Bm25("none")
    try:
        import Stemmer  # noqa: F401 - only whether it imports
    except ImportError:
        log.warning("evaluate.keyword.stemmer is '%s' but PyStemmer is not installed: BM25 runs without stemming "
                    "(the report says so). Install it with 'pip install PyStemmer'.", stemmer)
        return Bm25("none")
    return Bm25(stemmer)


def tokenize(texts: Iterable[str], bm25: Bm25 = Bm25("none")) -> list[list[str]]:
    """Each text as a list of lowercase word tokens without English stopwords, stemmed as ``bm25`` says."""
    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=bm25.stem(), return_ids=False,
                          show_progress=False)


def build_index(corpus: Mapping[str, str], bm25: Bm25 = Bm25("none")) -> bm25s.BM25:
    """A BM25 index of the corpus texts, in the corpus' order.

    Raises:
        ValueError: when the corpus is empty.
    """
    if not corpus:
        raise ValueError("the corpus is empty: BM25 needs at least one document to index")
    start = time.perf_counter()
    retriever = bm25s.BM25(**BM25_OPTIONS)
    retriever.index(tokenize(corpus.values(), bm25), show_progress=False)
    log.info("BM25 index of %d documents (stemmer: %s) in %.1f s", len(corpus), bm25.stemmer,
             time.perf_counter() - start)
    return retriever


def score_rows(retriever: bm25s.BM25, query_texts: list[str], bm25: Bm25 = Bm25("none")) -> np.ndarray:
    """(n_queries, n_docs) BM25 scores; a query with no indexed term scores 0 everywhere."""
    scores = np.zeros((len(query_texts), retriever.scores["num_docs"]), dtype=np.float32)
    for row, tokens in enumerate(tokenize(query_texts, bm25)):
        ids = retriever.get_tokens_ids([t for t in tokens if t])  # terms the corpus never uses are dropped
        if ids:
            scores[row] = retriever.get_scores_from_ids(ids)  # (n_docs,)
    return scores


def bm25_run(queries: Mapping[str, str], corpus: Mapping[str, str], k: int = 100,
             bm25: Bm25 = Bm25("none")) -> dict[str, dict[str, float]]:
    """Each query's top k documents by BM25 (only documents sharing a term with the query).

    Args:
        queries: query id -> text.
        corpus: doc id -> text.
        k: documents kept per query.
        bm25: the tokenisation (stemmer); see ``available``.

    Returns:
        query id -> {doc id: BM25 score}, best first in trec_eval's order; every query has an entry (maybe empty).
    """
    return search_index(build_index(corpus, bm25), list(corpus), queries, k, bm25)


def search_index(retriever: bm25s.BM25, doc_ids: list[str], queries: Mapping[str, str], k: int = 100,
                 bm25: Bm25 = Bm25("none")) -> dict[str, dict[str, float]]:
    """``bm25_run`` on an index already built (``doc_ids`` in the order the corpus was indexed)."""
    q_ids = list(queries)
    step = max(1, SCORE_BLOCK // len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(q_ids), step):
        block = q_ids[start:start + step]
        scores = score_rows(retriever, [queries[q] for q in block], bm25)  # (len(block), n_docs)
        for q_id, docs in run_from_scores(block, doc_ids, scores, k).items():
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
