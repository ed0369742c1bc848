"""Run an exported model with ONNX Runtime or OpenVINO (not PyTorch) behind the interface evaluation uses.

An export holds the transformer only (``last_hidden_state``), in the layout ``SentenceTransformer(path,
backend="onnx" | "openvino")`` reads; everything after it comes from the model folder, as the library does it:
tokenizer (``max_seq_length`` from ``sentence_bert_config.json``) -> session -> the pooling of ``1_Pooling/config.json``
-> ``Normalize`` when ``modules.json`` lists it. ``ExportEncoder`` offers what ``core.embed.embed`` and
``core.prompts`` read from a SentenceTransformer: ``encode`` / ``encode_query`` / ``encode_document`` with
``prompt=``, ``prompts``, ``default_prompt_name``, ``similarity_fn_name``, ``max_seq_length`` and
``get_embedding_dimension()``. Models with other modules (Dense, Router, ...) are refused: their export would need
modules this encoder cannot run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partialmethod
from pathlib import Path

import numpy as np

from configs.errors import UserError
from core.prompts import model_prompt

log = logging.getLogger(__name__)

SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")
# package -> how to install it; named in the error when a runtime is missing
PACKAGES = {"onnxruntime": "pip install 'onnxruntime>=1.18'", "openvino": "pip install 'openvino>=2025.0'",
            "onnx": "pip install 'onnx>=1.16'", "nncf": "pip install 'nncf>=2.14'"}


def require(package: str, what: str):
    """Import ``package`` or say which package ``what`` needs and how to install it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise UserError(f"{what} needs the package '{package}', which is not installed: {PACKAGES[package]}.") from None


# ------------------------------------------------------------------------------------------------------ pooling
# (tokens (b, t, d) float32, mask (b, t) float32 with 1 on pooled tokens) -> (b, d); as the library's Pooling module
def _mean(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (tokens * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)


def _mean_sqrt_len(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (tokens * mask[..., None]).sum(1) / np.sqrt(np.clip(mask.sum(1, keepdims=True), 1e-9, None))


def _weighted_mean(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask * np.arange(1, mask.shape[1] + 1, dtype=np.float32)  # (b, t): later tokens weigh more
    return (tokens * weights[..., None]).sum(1) / np.clip(weights.sum(1, keepdims=True), 1e-9, None)


def _max(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None] > 0, tokens, -np.inf).max(1)


def _cls(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return tokens[np.arange(len(tokens)), mask.argmax(1)]  # first pooled token (skips left padding)


def _last_token(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return tokens[np.arange(len(tokens)), mask.shape[1] - 1 - mask[:, ::-1].argmax(1)]


POOLING: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": _mean, "mean_sqrt_len_tokens": _mean_sqrt_len, "weightedmean": _weighted_mean, "max": _max,
    "cls": _cls, "lasttoken": _last_token,
}
LEGACY_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                       "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                       "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


@dataclass(frozen=True)
class Pipeline:
    """What runs after the transformer, read from the model folder."""

    transformer_dir: str  # where the tokenizer and sentence_bert_config.json are ('' : the folder itself)
    pooling: tuple[str, ...]  # modes, concatenated in this order
    include_prompt: bool  # False: prompt tokens are left out of the pooling
    normalize: bool
    max_seq_length: int | None
    do_lower_case: bool
    settings: dict  # config_sentence_transformers.json: prompts, default_prompt_name, similarity_fn_name


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def pooling_modes(config: dict) -> tuple[str, ...]:
    """Pooling modes from a Pooling config: ``pooling_mode`` (str or list), or the legacy ``pooling_mode_*`` flags."""
    modes = config.get("pooling_mode") or [mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key)]
    return (modes,) if isinstance(modes, str) else tuple(modes) or ("mean",)


def read_pipeline(folder: Path, instead: str = "Publish it without push.export (PyTorch only).") -> Pipeline:
    """The modules of ``folder`` as this encoder runs them; a UserError for a model it cannot run, ending with
    ``instead`` (what to do: the setting that asked for the export, ``core.export.without``)."""
    modules = _read_json(folder / "modules.json") if (folder / "modules.json").is_file() else None
    if not modules:
        raise UserError(f"{folder} has no modules.json: not a sentence-transformers model folder, so the export "
                        "cannot know its pooling. Export a folder written by 'python -m train'.")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    unsupported = [k for k in kinds if k not in SUPPORTED_MODULES]
    if unsupported or kinds[:2] != ["Transformer", "Pooling"]:
        raise UserError(f"{folder}: the exporter handles models made of Transformer -> Pooling (-> Normalize); this "
                        f"one is {' -> '.join(kinds)}. {instead}")
    pooling = _read_json(folder / modules[1]["path"] / "config.json")
    modes = pooling_modes(pooling)
    if any(mode not in POOLING for mode in modes):
        raise UserError(f"{folder}: pooling mode {modes} is not one the exporter knows ({', '.join(POOLING)}).")
    transformer_dir = modules[0].get("path", "")
    bert = _read_json(folder / transformer_dir / "sentence_bert_config.json")
    return Pipeline(transformer_dir, modes, bool(pooling.get("include_prompt", True)), "Normalize" in kinds,
                    bert.get("max_seq_length"), bool(bert.get("do_lower_case", False)),
                    _read_json(folder / "config_sentence_transformers.json"))


# ------------------------------------------------------------------------------------------------------ runtimes
@dataclass(frozen=True)
class Session:
    """A loaded export: the inputs it takes and ``run(feed) -> (b, t, d)`` token embeddings."""

    inputs: tuple[str, ...]
    run: Callable[[dict[str, np.ndarray]], np.ndarray]


def onnxruntime_session(path: Path, threads: int) -> Session:
    ort = require("onnxruntime", "Running an ONNX export")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1  # as many as PyTorch uses
    options.log_severity_level = 3  # the CPU provider's warnings about unused initializers are not the user's
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Session(tuple(i.name for i in session.get_inputs()), lambda feed: session.run(None, feed)[0])


def openvino_session(path: Path, threads: int) -> Session:
    ov = require("openvino", "Running an OpenVINO export")
    # f32: a CPU with bf16 would otherwise compute in bf16 by default, and fp32 parity would no longer hold
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                          "INFERENCE_PRECISION_HINT": "f32"})
    output = compiled.output(0)
    return Session(tuple(i.get_any_name() for i in compiled.inputs), lambda feed: compiled(feed)[output])


RUNTIMES: dict[str, Callable[[Path, int], Session]] = {"onnx": onnxruntime_session, "openvino": openvino_session}


# ------------------------------------------------------------------------------------------------------ encoder
def exclude_prompt(mask: np.ndarray, prompt_length: int) -> np.ndarray:
    """A copy of ``mask`` (b, t) without the first ``prompt_length`` real tokens of each row (after any left pad)."""
    first = mask.argmax(1)  # (b,) index of the first real token
    return np.where(np.arange(mask.shape[1])[None, :] < (first + prompt_length)[:, None], 0.0, mask)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


class ExportEncoder:
    """An export run by ONNX Runtime or OpenVINO with the parts of the SentenceTransformer interface that
    evaluation uses (see the module docstring).

    Args:
        folder: The sentence-transformers model folder the export was made from (tokenizer, pooling, prompts).
        export_file: The exported transformer, e.g. ``folder/onnx/model.onnx``.
        backend: 'onnx' (ONNX Runtime) or 'openvino'.
        max_seq_length: Overrides the folder's (as ``model.max_seq_length`` does for PyTorch).
        threads: CPU threads; default: as many as PyTorch uses, so speed comparisons are fair.
    """

    def __init__(self, folder: Path, export_file: Path, backend: str, max_seq_length: int | None = None,
                 threads: int | None = None):
        import torch
        from transformers import AutoTokenizer

        self.folder, self.backend, self.export_file = Path(folder), backend, Path(export_file)
        self.pipeline = read_pipeline(self.folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder / self.pipeline.transformer_dir))
        self.session = RUNTIMES[backend](self.export_file, threads or torch.get_num_threads())
        self.max_seq_length = max_seq_length or self.pipeline.max_seq_length or self.tokenizer.model_max_length
        self.prompts = dict(self.pipeline.settings.get("prompts") or {})
        self.default_prompt_name = self.pipeline.settings.get("default_prompt_name")
        self.similarity_fn_name = self.pipeline.settings.get("similarity_fn_name") or "cosine"
        self._dim: int | None = None

    def get_embedding_dimension(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    def modules(self) -> list:
        """The library's Pooling (and Normalize) modules this encoder computes, so that what records a model's
        settings (``core.identity``) reads the same pooling as for the PyTorch model."""
        from sentence_transformers.base.modules import Normalize
        from sentence_transformers.sentence_transformer.modules import Pooling

        pooling = Pooling(self.get_embedding_dimension() // len(self.pipeline.pooling),
                          pooling_mode=self.pipeline.pooling, include_prompt=self.pipeline.include_prompt)
        return [pooling, Normalize()] if self.pipeline.normalize else [pooling]

    def _encode_as(self, mode: str, sentences: str | Sequence[str], prompt: str | None = None,
                   prompt_name: str | None = None, batch_size: int = 32, show_progress_bar: bool = False,
                   convert_to_numpy: bool = True, normalize_embeddings: bool = False) -> np.ndarray:
        """(n, dim) float32 embeddings (a (dim,) vector for one string), as SentenceTransformer.encode returns them
        with convert_to_numpy=True (the only output this encoder makes)."""
        if not convert_to_numpy:
            raise ValueError("ExportEncoder returns numpy arrays only: pass convert_to_numpy=True.")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        vectors = self._encode_texts(texts, self._prompt(mode, prompt, prompt_name), batch_size, show_progress_bar)
        vectors = l2_normalise(vectors) if normalize_embeddings else vectors
        return vectors[0] if single else vectors

    encode = partialmethod(_encode_as, "text")
    encode_query = partialmethod(_encode_as, "query")
    encode_document = partialmethod(_encode_as, "document")

    def _prompt(self, mode: str, prompt: str | None, prompt_name: str | None) -> str:
        """An explicit prompt, else the named one, else the one the library would pick for ``mode``."""
        if prompt is not None:
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ValueError(f"prompt_name '{prompt_name}' is not one of the model's prompts "
                                 f"({', '.join(self.prompts) or 'none'}).")
            return self.prompts[prompt_name]
        return model_prompt(self, mode)[0]

    def _encode_texts(self, texts: list[str], prompt: str, batch_size: int, progress: bool) -> np.ndarray:
        from tqdm.auto import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first, as the library: less padding
        parts = {}
        for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not progress):
            rows = order[start:start + batch_size]
            parts.update(zip(rows.tolist(), self._encode_batch([prompt + texts[i] for i in rows], prompt)))
        if not parts:
            return np.zeros((0, self.get_embedding_dimension()), dtype=np.float32)
        return np.stack([parts[i] for i in range(len(texts))])  # (n, dim) in the caller's order

    def _encode_batch(self, texts: list[str], prompt: str) -> np.ndarray:
        if self.pipeline.do_lower_case:
            texts = [t.lower() for t in texts]
        batch = self.tokenizer(texts, padding=True, truncation="longest_first", max_length=self.max_seq_length,
                               return_tensors="np")
        feed = {name: batch.get(name, np.zeros_like(batch["input_ids"])).astype(np.int64)
                for name in self.session.inputs}
        tokens = np.asarray(self.session.run(feed), dtype=np.float32)  # (b, t, hidden)
        mask = batch["attention_mask"].astype(np.float32)  # (b, t)
        if prompt and not self.pipeline.include_prompt:
            mask = exclude_prompt(mask, self._prompt_length(prompt))
        vectors = np.concatenate([POOLING[mode](tokens, mask) for mode in self.pipeline.pooling], axis=1)
        return l2_normalise(vectors) if self.pipeline.normalize else vectors  # (b, dim)

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt without a trailing special token, as the library counts them."""
        ids = self.tokenizer(prompt.lower() if self.pipeline.do_lower_case else prompt)["input_ids"]
        return len(ids) - (1 if ids and ids[-1] in self.tokenizer.all_special_ids else 0)
