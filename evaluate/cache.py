"""Embeddings cached on disk, keyed by the encoder's fingerprint and a hash of the (encode mode, prompt, text) keys.

Evaluating a new fine-tune against the same baseline on the same data then encodes only the tuned model. The key is
``evaluate.identity.encoder_fingerprint`` (folder files, max_seq_length, pooling, normalisation, similarity,
prompts, precision, backend), so any of them changing misses the cache; the same texts under other prompts are other
keys too, so another prompt never reads a stale vector.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.embed import Embeddings, Key, TextsByRole, by_role, embed, model_similarity, unique_keys
from core.prompts import Prompt, resolve_prompts
from evaluate.identity import BACKEND, encoder_fingerprint


def keys_hash(keys: list[Key]) -> str:
    digest = hashlib.sha256()
    for mode, prompt, text in keys:
        digest.update(f"{mode}\0{prompt}\0{text}".encode() + b"\0\0")
    return digest.hexdigest()


def cached_embed(model, texts: TextsByRole | Sequence[str], batch_size: int, folder_fingerprint: str,
                 cache_dir: Path | None, precision: str = "fp32", prompts: dict[str, Prompt] | None = None,
                 backend: str = BACKEND) -> Embeddings:
    """``embed`` through a cache file ``{encoder fingerprint}-{keys hash}.npy``; the result's ``fingerprint`` is the
    encoder fingerprint (empty without ``folder_fingerprint``, and then nothing is cached: no safe key).

    Args:
        folder_fingerprint: ``core.model.model_fingerprint`` of the folder ``model`` was loaded from.
        cache_dir: the cache folder; None disables the cache.
    """
    texts = by_role(texts)
    prompts = prompts if prompts is not None else resolve_prompts(model, texts)
    fingerprint = encoder_fingerprint(folder_fingerprint, model, prompts, precision, backend) \
        if folder_fingerprint else ""
    keys = unique_keys(texts, prompts)
    path = Path(cache_dir).expanduser() / f"{fingerprint[:32]}-{keys_hash(keys)[:32]}.npy" \
        if cache_dir is not None and fingerprint else None
    result = _load(path, keys, prompts, model_similarity(model)) if path else None
    if result is None:
        result = embed(model, texts, batch_size, progress=True, precision=precision, prompts=prompts)
        if path:
            _save(path, result.vectors)
    result.fingerprint = fingerprint
    return result


def _load(path: Path, keys: list[Key], prompts: dict[str, Prompt], similarity: str) -> Embeddings | None:
    """The cached vectors of ``keys``, or None when the file is missing or holds another number of rows."""
    if not path.is_file():
        return None
    start = time.perf_counter()
    vectors = np.load(path)
    if vectors.shape[0] != len(keys):
        return None
    return Embeddings(keys, vectors, time.perf_counter() - start, cached=True, prompts=prompts,
                      similarity=similarity)


def _save(path: Path, vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, vectors)
    os.replace(tmp, path)  # atomic: a concurrent or interrupted run never reads half a file
