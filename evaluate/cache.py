"""Embeddings cached on disk, keyed by a model fingerprint and a hash of the texts.

Evaluating a new fine-tune against the same baseline on the same data then encodes only the tuned model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from evaluate.embed import Embeddings, embed


def texts_hash(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def cached_embed(model, texts: list[str], batch_size: int, fingerprint: str, cache_dir: Path | None,
                 precision: str = "fp32") -> Embeddings:
    """``embed`` through a cache file ``{fingerprint}-{texts hash}.npy`` (no cache when ``cache_dir`` is None).
    The fingerprint must name everything that changes the vectors: weights, max_seq_length, precision."""
    unique = list(dict.fromkeys(texts))
    if cache_dir is None:
        return embed(model, unique, batch_size, progress=True, precision=precision)
    # Hash the whole fingerprint: weights hash, max_seq_length and precision must all change the key.
    model_key = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    path = Path(cache_dir).expanduser() / f"{model_key}-{texts_hash(unique)[:32]}.npy"
    if path.is_file():
        start = time.perf_counter()
        vectors = np.load(path)
        if vectors.shape[0] == len(unique):
            return Embeddings(unique, vectors, time.perf_counter() - start, cached=True)
    result = embed(model, unique, batch_size, progress=True, precision=precision)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, result.vectors)
    os.replace(tmp, path)  # atomic: a concurrent or interrupted run never reads half a file
    return result
