"""Long documents scored by their best token window (MaxP); the windows come from ``core.windows``.

A model reads at most ``max_seq_length`` tokens, so without chunking everything past that point of a document is
ignored. Here each document becomes windows of at most ``max_tokens`` tokens, consecutive windows sharing at least
``overlap`` tokens; every window is encoded like a document, and a document scores its best window's score (MaxP,
Dai & Callan 2019).

- Each window is a substring of the original text, cut with the fast tokenizer's offset mapping, so no text is
  normalised or lost. Cuts fall between words (``word_ids``) whenever a word boundary is within reach, so a window
  re-tokenises to the same tokens instead of starting with a ``##`` piece that would tokenise differently.
- A document that fits in one window keeps its exact text (it encodes, and caches, exactly as without chunking).
- Windows as long as the model reads (the default) start with the whole document, which the model truncates exactly
  as without chunking: the first window is the truncated document's own vector, and a document's MaxP score is never
  below its truncated score; chunking only adds the text past the cut.
- Window ids are ``f"{doc_id}#{i}"``; ``Windows.doc_of`` maps them back, so ids never have to be parsed.

Flow for a retrieval set (``corpus`` is ``{doc_id: text}``)::

    size = resolve_max_tokens(max_tokens, overlap, token_limit(model))
    windows = split_documents(corpus, model.tokenizer, size, overlap, first_whole=size == token_limit(model))
    window_run = search(queries, windows.corpus, emb, k=search_depth(TOP_K, windows))
    run = maxp(window_run, windows.doc_of, k=TOP_K)   # then evaluate_run as usual; report windows.chunked
"""

from __future__ import annotations

from collections.abc import Mapping

from core.windows import Windows
from evaluate.retrieval.fusion import top


def search_depth(k: int, windows: Windows) -> int:
    """Windows to retrieve per query so that ``maxp`` finds the true top k documents: k times the most windows of one
    document (each of the k best documents can hold at most that many windows above the k-th best document)."""
    return k * windows.max_windows


def maxp(window_run: Mapping[str, Mapping[str, float]], doc_of: Mapping[str, str],
         k: int = 100) -> dict[str, dict[str, float]]:
    """A document run from a window run: each document scores its best window (MaxP).

    Args:
        window_run: query id -> {window id: score}.
        doc_of: window id -> document id (``Windows.doc_of``).
        k: documents kept per query, in trec_eval's order.

    Returns:
        query id -> {doc id: best window score}, best first.
    """
    run = {}
    for q_id, window_scores in window_run.items():
        best: dict[str, float] = {}
        for window, score in window_scores.items():
            doc = doc_of[window]
            best[doc] = max(score, best.get(doc, score))
        run[q_id] = top(best, k)
    return run
