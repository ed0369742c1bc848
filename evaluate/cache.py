"""Embeddings cached on disk, keyed by a model fingerprint and a hash of the (encode mode, prompt, text) keys.

Evaluating a new fine-tune against the same baseline on the same data then encodes only the tuned model. The same
texts under other prompts are other keys, so another prompt never reads a stale vector.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluate.embed import Embeddings, Key, TextsByRole, by_role, embed, model_similarity, unique_keys
from evaluate.prompts import Prompt, resolve_prompts


def keys_hash(keys: list[Key]) -> str:
    digest = hashlib.sha256()
    for mode, prompt, text in keys:
        digest.update(f"{mode}\0{prompt}\0{text}".encode() + b"\0\0")
    return digest.hexdigest()


def cached_embed(model, texts: TextsByRole | Sequence[str], batch_size: int, fingerprint: str, cache_dir: Path | None,
                 precision: str = "fp32", prompts: dict[str, Prompt] | None = None) -> Embeddings:
    """``embed`` through a cache file ``{fingerprint}-{keys hash}.npy`` (no cache when ``cache_dir`` is None).
    The fingerprint must name everything that changes the vectors: weights, max_seq_length, precision; the
    similarity (normalised or raw vectors) and the prompts are added here."""
    texts = by_role(texts)
    prompts = prompts if prompts is not None else resolve_prompts(model, texts)
    if cache_dir is None:
        return embed(model, texts, batch_size, progress=True, precision=precision, prompts=prompts)
    similarity, keys = model_similarity(model), unique_keys(texts, prompts)
    # Hash the whole fingerprint: weights hash, max_seq_length, precision and similarity must all change the key.
    model_key = hashlib.sha256(f"{fingerprint}-{similarity}".encode()).hexdigest()[:32]
    path = Path(cache_dir).expanduser() / f"{model_key}-{keys_hash(keys)[:32]}.npy"
    if path.is_file():
        start = time.perf_counter()
        vectors = np.load(path)
        if vectors.shape[0] == len(keys):
            return Embeddings(keys, vectors, time.perf_counter() - start, cached=True, prompts=prompts,
                              similarity=similarity)
    result = embed(model, texts, batch_size, progress=True, precision=precision, prompts=prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, result.vectors)
    os.replace(tmp, path)  # atomic: a concurrent or interrupted run never reads half a file
    return result
