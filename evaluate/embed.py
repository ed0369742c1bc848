"""Encode each distinct text once per model; every evaluator then looks its texts up."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import torch


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


def resolve_precision(setting: str, model) -> str:
    """'auto' is bf16 only where the hardware computes bf16 natively (GPU with bf16, or a CPU with AVX512-BF16/AMX
    for oneDNN); elsewhere bf16 is emulated, slower, and buys nothing."""
    if setting != "auto":
        return setting
    device = getattr(model, "device", torch.device("cpu"))
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def embed(model, texts: Iterable[str], batch_size: int, progress: bool = False, precision: str = "fp32") -> Embeddings:
    """Encode the distinct ``texts`` with ``model`` (anything with a sentence-transformers ``encode``), under bf16
    autocast when ``precision`` is 'bf16'; the vectors come back as float32 either way."""
    unique = list(dict.fromkeys(texts))
    start = time.perf_counter()
    device = getattr(model, "device", torch.device("cpu")).type
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16"):
        encoded = model.encode(unique, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    vectors = np.asarray(encoded, dtype=np.float32)
    vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)  # (n, dim)
    return Embeddings(unique, vectors, time.perf_counter() - start)
