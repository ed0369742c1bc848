"""Encode each distinct text once per model; every evaluator then looks its texts up."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np


class Embeddings:
    """Unit-length embeddings of distinct texts, for one model."""

    def __init__(self, texts: list[str], vectors: np.ndarray, seconds: float, cached: bool = False):
        self.index = {text: i for i, text in enumerate(texts)}
        self.vectors = vectors  # (n_texts, dim), L2-normalised: a dot product is a cosine
        self.seconds = seconds  # encoding time (or loading time when cached)
        self.cached = cached

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) rows for ``texts``, in order."""
        return self.vectors[[self.index[t] for t in texts]]


def embed(model, texts: Iterable[str], batch_size: int, progress: bool = False) -> Embeddings:
    """Encode the distinct ``texts`` with ``model`` (anything with a sentence-transformers ``encode``)."""
    unique = list(dict.fromkeys(texts))
    start = time.perf_counter()
    vectors = np.asarray(model.encode(unique, batch_size=batch_size, show_progress_bar=progress,
                                      convert_to_numpy=True), dtype=np.float32)
    vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)  # (n, dim)
    return Embeddings(unique, vectors, time.perf_counter() - start)
