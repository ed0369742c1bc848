"""Token windows: split long documents into windows of the model's tokenizer, for training data (``data.chunking``)
and for evaluation (``evaluate.chunking``) alike.

A model reads at most ``max_seq_length`` tokens, so without windows everything past that point of a document is
ignored. Here each document becomes windows of at most ``max_tokens`` tokens, consecutive windows sharing at least
``overlap`` tokens.

- Each window is a substring of the original text, cut with the fast tokenizer's offset mapping, so no text is
  normalised or lost. Cuts fall between words (``word_ids``) whenever a word boundary is within reach, so a window
  re-tokenises to the same tokens instead of starting with a ``##`` piece that would tokenise differently.
- A document that fits in one window keeps its exact text (it encodes, and caches, exactly as without chunking).
- With ``first_whole`` (windows as long as the model reads), a long document's first window is its whole text: the
  model truncates it to exactly what it reads without chunking, so that window is the truncated document's own
  vector (one encoding serves both), and chunking only adds the text past it. The second window starts ``overlap``
  tokens before the truncation point.
- Window ids are ``f"{doc_id}#{i}"``; ``Windows.doc_of`` maps them back, so ids never have to be parsed.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from configs.errors import UserError


@dataclass(frozen=True)
class Windows:
    """What ``split_documents`` returns."""

    corpus: dict[str, str]  # window id -> text, a substring of its document
    doc_of: dict[str, str]  # window id -> document id
    chunked: int  # documents split into more than one window (the rest kept whole)
    max_windows: int  # most windows of one document

    def describe(self, n_documents: int) -> str:
        """E.g. "12 of 5,183 documents chunked into 31 windows (at most 4 per document)"."""
        return (f"{self.chunked:,} of {n_documents:,} documents chunked into {len(self.corpus):,} windows "
                f"(at most {self.max_windows} per document)")


def token_limit(model, prompt: str = "") -> int:
    """Tokens of document text the model reads: max_seq_length minus special tokens and the document prompt."""
    tokenizer = model.tokenizer
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
    return model.max_seq_length - tokenizer.num_special_tokens_to_add(pair=False) - prompt_tokens


def resolve_max_tokens(max_tokens: int | None, overlap: int, limit: int, key: str = "evaluate.chunking") -> int:
    """``KEY.max_tokens`` checked against what the model reads (``limit``); empty means ``limit``. ``key`` names the
    config section in errors."""
    size = limit if max_tokens is None else max_tokens
    if size > limit:
        raise UserError(f"{key}.max_tokens is {size}, but the model reads at most {limit} tokens of a "
                        f"document (max_seq_length minus special and prompt tokens), so each window would be "
                        f"truncated. Set max_tokens to {limit} or less, or leave it empty to use {limit}.")
    if overlap >= size:
        raise UserError(f"{key}.overlap ({overlap}) must be smaller than max_tokens ({size}): windows "
                        f"would never move forward. Use e.g. overlap: {size // 8}.")
    return size


def split_documents(corpus: Mapping[str, str], tokenizer, max_tokens: int, overlap: int,
                    key: str = "evaluate.chunking", first_whole: bool = False) -> Windows:
    """Every document as windows of at most ``max_tokens`` tokens (special tokens not counted).

    Args:
        corpus: doc id -> text.
        tokenizer: the model's fast tokenizer (``model.tokenizer``); offsets locate each window in the text.
        max_tokens: window length in tokens (see ``resolve_max_tokens``).
        overlap: tokens consecutive windows share (at least this many, when a word boundary allows).
        key: the config section that asked for windows, named in errors.
        first_whole: ``max_tokens`` is what the model reads: a long document's first window is its whole text
            (the model's own truncation, exactly ``max_tokens`` tokens), the next starts before that cut.

    Returns:
        ``Windows``: the window corpus, each window's document, and how many documents were chunked.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"{key} needs a fast (Rust) tokenizer to locate windows in the text; this model's "
                        f"tokenizer is {type(tokenizer).__name__}. Remove {key} or use a model with a "
                        "tokenizer.json.")
    doc_ids = list(corpus)
    encoded = tokenizer([corpus[d] for d in doc_ids], add_special_tokens=False, return_offsets_mapping=True,
                        truncation=False, verbose=False)  # verbose=False: long documents are the point here
    texts, doc_of, chunked, most = {}, {}, 0, 1
    for i, doc in enumerate(doc_ids):
        offsets, words = encoded["offset_mapping"][i], encoded.word_ids(i)
        spans = window_spans([j == 0 or words[j] != words[j - 1] for j in range(len(offsets))], max_tokens, overlap,
                             first_exact=first_whole)
        if len(spans) == 1:
            pieces = [corpus[doc]]  # whole: the exact text, so it encodes as it would without chunking
        else:
            pieces = [corpus[doc][offsets[s][0]:offsets[e - 1][1]] for s, e in spans]
            if first_whole:
                pieces[0] = corpus[doc]  # read (and truncated) by the model exactly as without chunking
            chunked, most = chunked + 1, max(most, len(spans))
        for n, piece in enumerate(pieces):
            texts[f"{doc}#{n}"], doc_of[f"{doc}#{n}"] = piece, doc
    return Windows(texts, doc_of, chunked, most)


def window_spans(word_starts: Sequence[bool], max_tokens: int, overlap: int,
                 first_exact: bool = False) -> list[tuple[int, int]]:
    """Token spans ``[start, end)`` covering every token, each at most ``max_tokens`` long.

    Args:
        word_starts: per token, whether it begins a word (a window may start or end there without splitting a word).
        max_tokens: longest window.
        overlap: tokens consecutive windows should share.
        first_exact: the first span ends at exactly ``max_tokens`` (where the model's truncation cuts), not at the
            last word boundary before it.

    Returns:
        The spans in order; one span ``(0, n)`` when everything fits.
    """
    n = len(word_starts)
    cuts = [j for j in range(1, n) if word_starts[j]]  # token indices where a window may begin or end
    spans, start = [], 0
    while n - start > max_tokens:
        end = start + max_tokens if first_exact and not spans else \
            _last_cut(cuts, start, start + max_tokens) or start + max_tokens  # a word longer than a window: cut it
        spans.append((start, end))
        start = _last_cut(cuts, start, end - overlap) or _first_cut(cuts, end - overlap, end) or end
    return spans + [(start, n)]


def _last_cut(cuts: list[int], low: int, high: int) -> int | None:
    """The largest cut in (low, high], or None."""
    i = bisect.bisect_right(cuts, high) - 1
    return cuts[i] if i >= 0 and cuts[i] > low else None


def _first_cut(cuts: list[int], low: int, high: int) -> int | None:
    """The smallest cut in (low, high), or None."""
    i = bisect.bisect_right(cuts, low)
    return cuts[i] if i < len(cuts) and cuts[i] < high else None
