"""BM25 with ``bm25s``, tokenised one way wherever the pipeline matches words: the keyword reference row and the
hybrids of evaluation (``evaluate.retrieval.keyword``), and the ``bm25`` window choice of ``data.chunking``.

Choices, stated once (``Bm25.record`` writes them into the BM25 row of report.json):

- Tokenisation is ``bm25s.tokenize``'s default, the one scikit-learn's ``CountVectorizer`` uses: lowercase, tokens
  matching ``\\b\\w\\w+\\b`` (one-character tokens are dropped), plus bm25s' English stopword list.
- Stemming (default ``english``): PyStemmer's Snowball English stemmer, as Elasticsearch's ``english`` analyzer
  (BEIR's BM25) stems; on SciFact test it lifts nDCG@10 from 0.6617 to 0.6863. Without PyStemmer installed the tokens
  are not stemmed, a warning says so and the report records ``none``.
- Scoring is bm25s' default Lucene variant (k1 = 1.5, b = 0.75).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import bm25s
import numpy as np

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG, so "Building index from tokens" reached the console once per index built;
# our own line below says what was indexed instead.
logging.getLogger("bm25s").setLevel(logging.WARNING)

BM25_OPTIONS = {"method": "lucene", "k1": 1.5, "b": 0.75}  # bm25s' defaults, written out so the report can say them
STOPWORDS = "en"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s.tokenize's default, written out for the report and the card's snippet
SCORE_BLOCK = 20_000_000  # floats scored at once: a block of queries times the corpus stays ~80 MB


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


def available(stemmer: str, key: str = "evaluate.keyword.stemmer") -> Bm25:
    """``Bm25(stemmer)``, or ``Bm25('none')`` with a warning naming ``key`` (the setting that asked for stemming)
    when PyStemmer cannot be imported."""
    if stemmer == "none":
        return Bm25("none")
    try:
        import Stemmer  # noqa: F401 - only whether it imports
    except ImportError:
        log.warning("%s: the '%s' stemmer needs PyStemmer, which is not installed: BM25 runs without stemming. "
                    "Install it with 'pip install PyStemmer'.", key, stemmer)
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


def score_blocks(retriever: bm25s.BM25, query_texts: list[str], bm25: Bm25 = Bm25("none")
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """``score_rows`` in blocks of queries of about ``SCORE_BLOCK`` floats: (index of the block's first query, its
    (block, n_docs) scores)."""
    step = max(1, SCORE_BLOCK // max(retriever.scores["num_docs"], 1))
    for start in range(0, len(query_texts), step):
        yield start, score_rows(retriever, query_texts[start:start + step], bm25)
