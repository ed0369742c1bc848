"""Near-duplicates between an evaluation set and the training texts: texts that are not the same text after
``data.checks.comparable`` but share at least ``THRESHOLD`` of their character 5-grams (Jaccard similarity), such as
'the vpn drops every hour' and 'the vpn drops every hour!'.

Candidates come from prefix filtering (Chaudhuri et al. 2006; Bayardo et al. 2007, "All-Pairs"): with the 5-grams of
every text in one global order, rarest first, two sets with Jaccard >= t share a 5-gram among the first
``n - ceil(t * n) + 1`` of each. Only those prefixes are indexed and looked up, so a common 5-gram (' the ') never
makes a long candidate list, and every candidate is then verified exactly: no pair at or above the threshold is
missed, none below it is reported. On this project's 2-core machine 100,000 training texts against 10,000
evaluation texts take about a minute in pure Python (see the README's leakage section).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import chain

SHINGLE = 5  # characters: short enough for one-word edits to leave most 5-grams, long enough to be specific
THRESHOLD = 0.8


def shingles(text: str) -> frozenset[str]:
    """The character 5-grams of an already ``comparable`` text (a text shorter than 5 characters is its own)."""
    if len(text) <= SHINGLE:
        return frozenset({text})
    return frozenset({text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)})


def _prefix(ranks: list[int], threshold: float) -> list[int]:
    """The first ``n - ceil(t * n) + 1`` of a text's 5-gram ranks (sorted, rarest first): two sets with
    Jaccard >= t share one of their prefixes."""
    return ranks[:len(ranks) - math.ceil(threshold * len(ranks)) + 1]


def near_duplicates(evaluated: Iterable[str], training: Iterable[str],
                    threshold: float = THRESHOLD) -> dict[str, tuple[str, float]]:
    """For each evaluated text with a near-duplicate among the training texts: (the most similar training text,
    its Jaccard similarity). Texts are compared as given (pass them through ``comparable`` first); an exact
    match is leakage, not a near-duplicate, and is skipped.

    Args:
        evaluated: the evaluation set's texts (query side).
        training: every text of the training split.
        threshold: the smallest Jaccard similarity of the 5-gram sets that counts (0 < threshold <= 1).
    Returns:
        {evaluated text: (training text, similarity)}, only for the texts that have one.
    """
    train = {text: shingles(text) for text in set(training)}
    queries = {text: shingles(text) for text in set(evaluated)}
    rarity = Counter(chain.from_iterable(train.values()))
    order = sorted(set(rarity).union(*queries.values()), key=lambda g: (rarity[g], g))
    rank = {gram: i for i, gram in enumerate(order)}.__getitem__  # one global order, rarest first
    index: dict[int, list[str]] = defaultdict(list)
    for text, grams in train.items():
        for r in _prefix(sorted(map(rank, grams)), threshold):
            index[r].append(text)
    found: dict[str, tuple[str, float]] = {}
    for text, grams in queries.items():
        low, high = threshold * len(grams), len(grams) / threshold  # Jaccard <= min / max of the two sizes
        candidates = {c for r in _prefix(sorted(map(rank, grams)), threshold) for c in index.get(r, ())
                      if low <= len(train[c]) <= high and c != text}
        best = max(((_jaccard(grams, train[c]), c) for c in candidates), default=(0.0, ""))
        if best[0] >= threshold:
            found[text] = (best[1], round(best[0], 3))
    return found


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
