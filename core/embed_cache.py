"""Embeddings cached on disk, one vector per (encode mode, prompt, text) key, per encoder.

Every stage that encodes with a model it has not changed reads and fills the same store: mining encodes the
corpus with the base model, and the evaluation's baseline then finds those vectors; a document that fits in one
window is the same key chunked or not; evaluating a second fine-tune against the same baseline encodes only the
tuned model. Only the texts not in the store are encoded.

Layout: ``CACHE_DIR/{encoder fingerprint}/{chunk}.npy`` (float32 vectors, as ``core.embed.prepare`` left them) with
``{chunk}.keys.npy`` beside it (one 16-byte sha256 prefix per key, in the same row order), written last: a chunk
without its keys file is incomplete and never read. The encoder fingerprint is ``core.identity.encoder_fingerprint``
without prompts (folder files, max_seq_length, pooling, normalisation, similarity, precision, backend, weights
dtype): each key carries its own prompt, so another prompt is another key and never reads a stale vector.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.embed import Embeddings, Key, TextsByRole, by_role, embed_keys, model_similarity, unique_keys
from core.identity import BACKEND, encoder_fingerprint
from core.prompts import Prompt, resolve_prompts

log = logging.getLogger(__name__)
DIGEST = 16  # bytes of sha256 per key: 2^-128 collision odds


def _key_bytes(key: Key) -> bytes:
    mode, prompt, text = key
    return f"{mode}\0{prompt}\0{text}".encode()


def keys_hash(keys: list[Key]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(_key_bytes(key) + b"\0\0")
    return digest.hexdigest()


def key_digest(key: Key) -> bytes:
    return hashlib.sha256(_key_bytes(key)).digest()[:DIGEST]


def cache_root(root: Path | str) -> Path:
    """``root`` as a folder: ``~`` expanded, and a path under ``~/.cache/`` moved to ``$XDG_CACHE_HOME`` when that is
    set (the convention pip and huggingface_hub follow; the test suite points it at a temporary folder)."""
    text, home_cache = str(root), "~/.cache/"
    if text.startswith(home_cache) and os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / text.removeprefix(home_cache)
    return Path(text).expanduser()


class VectorStore:
    """One encoder's vectors in ``root/{fingerprint[:32]}``, looked up per key."""

    def __init__(self, root: Path | str, fingerprint: str):
        self.folder = cache_root(root) / fingerprint[:32]

    def _index(self) -> dict[bytes, tuple[Path, int]]:
        index: dict[bytes, tuple[Path, int]] = {}
        for keys_file in sorted(self.folder.glob("*.keys.npy")):
            try:
                digests = np.load(keys_file)
            except (OSError, ValueError):  # unreadable: as if absent (it is encoded again)
                continue
            vectors = keys_file.with_name(keys_file.name.removesuffix(".keys.npy") + ".npy")
            for row, digest in enumerate(digests):
                index.setdefault(digest.tobytes(), (vectors, row))
        return index

    def lookup(self, keys: list[Key]) -> tuple[np.ndarray | None, list[int]]:
        """(rows for ``keys`` with the stored ones filled, or None when none is stored; positions still missing)."""
        if not self.folder.is_dir():
            return None, list(range(len(keys)))
        index = self._index()
        wanted: dict[Path, list[tuple[int, int]]] = {}
        missing = []
        for i, key in enumerate(keys):
            hit = index.get(key_digest(key))
            if hit is None:
                missing.append(i)
            else:
                wanted.setdefault(hit[0], []).append((i, hit[1]))
        out = None
        for path, pairs in wanted.items():
            try:
                stored = np.load(path, mmap_mode="r")
                rows = np.asarray(stored[[row for _, row in pairs]], dtype=np.float32)
            except (OSError, ValueError, IndexError):  # a damaged chunk: its keys are encoded again
                missing += [i for i, _ in pairs]
                continue
            if out is None:
                out = np.zeros((len(keys), rows.shape[1]), dtype=np.float32)
            out[[i for i, _ in pairs]] = rows
        return out, sorted(missing)

    def save(self, keys: list[Key], vectors: np.ndarray) -> None:
        """Add ``keys``' vectors as one chunk: vectors first, then the keys file that makes the chunk visible."""
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = keys_hash(keys)[:32]
        _atomic_save(self.folder / f"{name}.npy", np.asarray(vectors, dtype=np.float32))
        digests = np.frombuffer(b"".join(key_digest(k) for k in keys), dtype=np.uint8).reshape(len(keys), DIGEST)
        _atomic_save(self.folder / f"{name}.keys.npy", digests)


def store_for(cache_dir: Path | str | None, folder_fingerprint: str, model, precision: str,
              backend: str = BACKEND) -> VectorStore | None:
    """The store of this encoder, or None (no cache_dir, or no folder fingerprint: no safe key)."""
    if cache_dir is None or not folder_fingerprint:
        return None
    return VectorStore(cache_dir, encoder_fingerprint(folder_fingerprint, model, {}, precision, backend))


def cached_embed(model, texts: TextsByRole | Sequence[str], batch_size: int, folder_fingerprint: str,
                 cache_dir: Path | str | None, precision: str = "fp32", prompts: dict[str, Prompt] | None = None,
                 backend: str = BACKEND) -> Embeddings:
    """``core.embed.embed`` through the store: only the keys not stored are encoded (and then stored). The
    result's ``fingerprint`` is the encoder fingerprint with these prompts (empty without ``folder_fingerprint``,
    and then nothing is cached); ``cached`` is True when every key was stored.

    Args:
        folder_fingerprint: ``core.model.model_fingerprint`` of the folder ``model`` was loaded from.
        cache_dir: the cache folder; None disables the cache.
    """
    texts = by_role(texts)
    prompts = prompts if prompts is not None else resolve_prompts(model, texts)
    similarity, keys = model_similarity(model), unique_keys(texts, prompts)
    store = store_for(cache_dir, folder_fingerprint, model, precision, backend)
    start = time.perf_counter()
    vectors, missing = store.lookup(keys) if store else (None, list(range(len(keys))))
    if missing:
        if store and len(missing) < len(keys):
            log.info("embedding cache: %d of %d texts stored, encoding %d", len(keys) - len(missing), len(keys),
                     len(missing))
        fresh = embed_keys(model, [keys[i] for i in missing], batch_size, precision, similarity, progress=True)
        if store:
            store.save([keys[i] for i in missing], fresh)
        if vectors is None:
            vectors = np.zeros((len(keys), fresh.shape[1]), dtype=np.float32)
        vectors[missing] = fresh
    if vectors is None:  # no key at all: nothing to encode or store
        vectors = np.zeros((0, 0), dtype=np.float32)
    result = Embeddings(keys, vectors, time.perf_counter() - start, cached=not missing, prompts=prompts,
                        similarity=similarity)
    result.fingerprint = encoder_fingerprint(folder_fingerprint, model, prompts, precision, backend) \
        if folder_fingerprint else ""
    return result


class StoredEncoder:
    """``model`` as a library function that encodes with it sees it (sentence-transformers' miner): its
    ``encode_query`` / ``encode_document`` read and fill the store, everything else is the model's own. Calls the
    store cannot key (an explicit prompt or prompt name, a multi-process pool, tensors asked for) go to the model.

    ``encoder``: what encodes instead of ``model`` (its ONNX / OpenVINO export, ``backend`` 'onnx' | 'openvino');
    the model still answers everything else (device, similarity, model card). ``train_prompts``: train.prompts, so
    queries and documents get the prompts evaluation gives them (``core.prompts.resolve_prompts``); empty: the
    model's own."""

    def __init__(self, model, folder_fingerprint: str, cache_dir: Path | str | None, precision: str,
                 encoder=None, backend: str = BACKEND, train_prompts: dict[str, str] | None = None):
        self._model, self._encoder = model, model if encoder is None else encoder
        self._store_args = (folder_fingerprint, cache_dir, precision)
        self._backend, self._train_prompts = backend, dict(train_prompts or {})

    def __getattr__(self, name):
        if name == "_model":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)

    def encode_query(self, sentences, **kwargs):
        return self._encode(sentences, "query", kwargs)

    def encode_document(self, sentences, **kwargs):
        return self._encode(sentences, "document", kwargs)

    def _encode(self, sentences, role: str, kwargs: dict):
        direct = kwargs.get("prompt") or kwargs.get("prompt_name") or kwargs.get("pool") is not None \
            or not kwargs.get("convert_to_numpy", True) or kwargs.get("convert_to_tensor")
        if direct:
            return getattr(self._model, f"encode_{role}")(sentences, **kwargs)
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        prompts = resolve_prompts(self._encoder, [role], self._train_prompts)
        emb = cached_embed(self._encoder, {role: texts}, kwargs.get("batch_size", 32), *self._store_args,
                           prompts=prompts, backend=self._backend)
        vectors = emb(texts, role)
        if kwargs.get("normalize_embeddings"):
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors[0] if isinstance(sentences, str) else vectors


def _atomic_save(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)  # atomic: a concurrent or interrupted run never reads half a file
