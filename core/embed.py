"""Encode each distinct (prompt, text) once per model; every evaluator then looks its texts up by role.

The same text with two prompts (a query and a document that read the same) is two encodings, so a vector is keyed by
(encode mode, prompt, text). Scores use the model's own similarity (``similarity_fn_name``): vectors of a cosine model
are L2-normalised so a dot product is the cosine; a dot-product model's vectors are kept as they are.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from configs.errors import UserError
from core.prompts import ROLE_METHODS, ROLE_MODES, Prompt, resolve_prompts

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (encode mode, prompt, text)
SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")
TextsByRole = Mapping[str, Iterable[str]]


class Embeddings:
    """One model's vectors of distinct keys, looked up by (text, role); scored with the model's similarity."""

    def __init__(self, keys: list[Key], vectors: np.ndarray, seconds: float, cached: bool = False,
                 prompts: dict[str, Prompt] | None = None, similarity: str = "cosine"):
        self.index = {key: i for i, key in enumerate(keys)}
        self.vectors = vectors  # (n_keys, dim); L2-normalised for a cosine model: a dot product is a cosine
        self.seconds = seconds  # encoding time (or loading time when cached)
        self.cached = cached
        self.prompts = prompts or {}  # role -> Prompt
        self.similarity = similarity
        self.fingerprint = ""  # core.identity.encoder_fingerprint of the encoder (set by core.embed_cache)

    def key(self, text: str, role: str) -> Key:
        prompt = self.prompts.get(role) or Prompt(ROLE_MODES[role], "", "none")
        return prompt.mode, prompt.text, text

    def __call__(self, texts: Iterable[str], role: str | Sequence[str]) -> np.ndarray:
        """(len(texts), dim) rows for ``texts`` in order, each encoded as ``role`` (one role, or one per text)."""
        texts = list(texts)
        roles = [role] * len(texts) if isinstance(role, str) else list(role)
        return self.vectors[[self.index[self.key(t, r)] for t, r in zip(texts, roles)]]

    def scores(self, q: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(n_q, n_d) similarity of every row of ``q`` with every row of ``d``."""
        if self.similarity in ("cosine", "dot"):
            return q @ d.T  # (n_q, n_d); cosine: both L2-normalised
        from sentence_transformers.util import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self.similarity)(torch.from_numpy(q), torch.from_numpy(d)).numpy()

    def pair_scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n,) similarity of row i of ``a`` with row i of ``b``."""
        if self.similarity in ("cosine", "dot"):
            return (a * b).sum(axis=1)
        from sentence_transformers.util import SimilarityFunction

        pairwise = SimilarityFunction.to_similarity_pairwise_fn(self.similarity)
        return pairwise(torch.from_numpy(a), torch.from_numpy(b)).numpy()

    def truncated(self, dim: int) -> Embeddings:
        """The first ``dim`` coordinates (Matryoshka), re-normalised for a cosine model."""
        out = Embeddings([], prepare(self.vectors[:, :dim], self.similarity), self.seconds, self.cached,
                         self.prompts, self.similarity)
        out.index, out.fingerprint = self.index, self.fingerprint
        return out


def model_similarity(model) -> str:
    """The model's ``similarity_fn_name`` (cosine when unset); an error for one this evaluation cannot score."""
    name = getattr(model, "similarity_fn_name", None) or "cosine"  # a str in sentence-transformers 6.2
    if name not in SIMILARITIES:
        raise UserError(f"the model's similarity_fn_name is '{name}'; evaluation scores {', '.join(SIMILARITIES)}.")
    return name


def prepare(vectors: np.ndarray, similarity: str) -> np.ndarray:
    """float32 vectors, L2-normalised when the similarity is cosine."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if similarity != "cosine":
        return vectors
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)  # (n, dim)


def by_role(texts: TextsByRole | Sequence[str]) -> dict[str, list[str]]:
    """Texts per role; a plain list of texts is the symmetric role 'text'."""
    if isinstance(texts, Mapping):
        return {role: list(items) for role, items in texts.items()}
    return {"text": list(texts)}


def unique_keys(texts: dict[str, list[str]], prompts: dict[str, Prompt]) -> list[Key]:
    """Distinct (mode, prompt, text) keys in first-seen order: what the model must encode."""
    keys = []
    for role, items in texts.items():
        prompt = prompts[role]
        keys += [(prompt.mode, prompt.text, t) for t in items]
    return list(dict.fromkeys(keys))


def encode_keys(model, keys: list[Key], batch_size: int, progress: bool) -> np.ndarray:
    """(n_keys, dim) raw vectors: one encode call per (mode, prompt), through encode_query / encode_document /
    encode as the library would, with the prompt passed explicitly (the model's preprocess prepends it)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (mode, prompt, _) in enumerate(keys):
        groups.setdefault((mode, prompt), []).append(i)
    vectors = np.zeros((len(keys), 0), dtype=np.float32)
    bar = progress and sys.stderr.isatty()  # a terminal gets the library's bar; a log file a line per chunk
    done, started = 0, time.perf_counter()
    for (mode, prompt), rows in groups.items():
        encode = getattr(model, ROLE_METHODS[mode], model.encode)
        step = len(rows) if bar or not progress else batch_size * 20
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            out = np.asarray(encode([keys[i][2] for i in chunk], prompt=prompt, batch_size=batch_size,
                                    show_progress_bar=bar, convert_to_numpy=True), dtype=np.float32)
            if vectors.shape[1] != out.shape[1]:
                vectors = np.zeros((len(keys), out.shape[1]), dtype=np.float32)
            vectors[chunk] = out
            done += len(chunk)
            if progress and not bar:
                log.info("encoded %d/%d texts (%.0f s)", done, len(keys), time.perf_counter() - started)
    return vectors


def resolve_precision(setting: str, model) -> str:
    """'auto' is bf16 only where the hardware computes bf16 natively (GPU with bf16, or a CPU with AVX512-BF16/AMX
    for oneDNN); elsewhere bf16 is emulated, slower, and buys nothing."""
    if setting != "auto":
        return setting
    device = getattr(model, "device", torch.device("cpu"))
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def precision_context(model, precision: str):
    """bf16 autocast on the model's device for 'bf16'; for 'fp32' autocast is switched off (also inside a trainer's
    own mixed-precision context), so an encode is in exactly the precision asked for."""
    device = getattr(model, "device", torch.device("cpu")).type
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")


def embed(model, texts: TextsByRole | Sequence[str], batch_size: int, progress: bool = False, precision: str = "fp32",
          prompts: dict[str, Prompt] | None = None) -> Embeddings:
    """Encode the distinct texts of every role with ``model`` (anything with a sentence-transformers ``encode``),
    under bf16 autocast when ``precision`` is 'bf16'; vectors come back as float32 either way.

    Args:
        texts: role -> texts (see core.prompts), or a plain list (role 'text').
        prompts: role -> Prompt; None: the model's own prompts (core.prompts.resolve_prompts).
    """
    texts = by_role(texts)
    prompts = prompts if prompts is not None else resolve_prompts(model, texts)
    similarity, keys = model_similarity(model), unique_keys(texts, prompts)
    start = time.perf_counter()
    vectors = embed_keys(model, keys, batch_size, precision, similarity, progress)
    return Embeddings(keys, vectors, time.perf_counter() - start, prompts=prompts, similarity=similarity)


def embed_keys(model, keys: list[Key], batch_size: int, precision: str, similarity: str,
               progress: bool = False) -> np.ndarray:
    """(n_keys, dim) float32 vectors of ``keys`` in ``precision``, prepared for ``similarity`` (``prepare``)."""
    with precision_context(model, precision):
        return prepare(encode_keys(model, keys, batch_size, progress), similarity)


def training_precision(setting: str) -> tuple[str, str]:
    """The precision training runs in, and why. 'auto' is bf16 mixed precision where the device computes bf16
    natively (a bf16 GPU, or a CPU with AVX512-BF16/AMX that oneDNN uses), fp16 with loss scaling on a GPU without
    bf16, and fp32 elsewhere: emulated bf16 is several times slower than fp32 on CPUs without it."""
    if setting != "auto":
        return setting, "set by train.precision"
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU computes bf16 natively"
        return "fp16", "auto: this GPU has no bf16, so fp16 with loss scaling"
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16", "auto: this CPU computes bf16 natively, AVX512-BF16/AMX"
    return "fp32", "auto: this CPU has no native bf16; emulated it is several times slower"

