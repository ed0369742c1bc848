"""The one identity of what an encoder computes: ``encoder_fingerprint``.

``core.model.model_fingerprint`` identifies a model *folder* (every weight file, module and tokenizer config). What
the evaluation encodes also depends on how the loaded model is set up and called: its ``max_seq_length`` (a config
override), pooling and normalisation, its similarity, the prompts each role gets, the precision, the backend and
the dtype its weights were loaded in. The
report records this fingerprint; the embedding store (``core.embed_cache``) keys on it computed without prompts, since
each stored key carries its own prompt; run.json keeps the folder's (``final_fingerprint``).
"""

from __future__ import annotations

import hashlib
import json

from core.embed import model_similarity
from core.prompts import Prompt

BACKEND = "torch"  # evaluate.backend: what runs the model (torch, or an ONNX / OpenVINO export)


def _modules(model) -> list:
    """Every (sub)module of a sentence-transformers model; nothing for a plain encoder object."""
    return list(model.modules()) if callable(getattr(model, "modules", None)) else []


def pooling_settings(model) -> list[dict]:
    """The pooling modules' configs (mode, include_prompt, ...), in model order."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    return [module.get_config_dict() for module in _modules(model) if isinstance(module, Pooling)]


def encoder_settings(model, prompts: dict[str, Prompt], precision: str, backend: str = BACKEND) -> dict:
    """What, besides the folder's files, decides the vectors: JSON-ready, recorded in the report."""
    from sentence_transformers.base.modules import Normalize

    return {"max_seq_length": getattr(model, "max_seq_length", None), "pooling": pooling_settings(model),
            "normalize": any(isinstance(m, Normalize) for m in _modules(model)),
            "similarity": model_similarity(model),
            "prompts": {role: [p.mode, p.text] for role, p in sorted(prompts.items())},
            "precision": precision, "backend": backend, **_weights_dtype(model)}


def _weights_dtype(model) -> dict:
    """The dtype the weights were loaded in (``model.kwargs`` torch_dtype), when it is not float32: bf16 weights
    encode differently from fp32 ones under the same ``precision``. Left out for float32 (and for exports, which
    run their own file), so the fingerprints of fp32 models stay what they were."""
    dtype = str(getattr(model, "dtype", None) or "").removeprefix("torch.")
    return {"weights_dtype": dtype} if dtype not in ("", "float32") else {}


def encoder_fingerprint(folder_fingerprint: str, model, prompts: dict[str, Prompt], precision: str,
                        backend: str = BACKEND) -> str:
    """sha256 of the folder fingerprint and ``encoder_settings``: changing any of them is another encoder.

    Args:
        folder_fingerprint: ``core.model.model_fingerprint`` of the folder the model was loaded from.
        model: the loaded model (its max_seq_length, pooling, Normalize module and similarity are read).
        prompts: role -> Prompt, as resolved for this evaluation (``core.prompts.resolve_prompts``).
        precision: 'fp32' or 'bf16' (resolved, never 'auto').
        backend: what runs the model: 'torch', 'onnx' or 'openvino'.
    """
    settings = encoder_settings(model, prompts, precision, backend)
    payload = json.dumps({"folder": folder_fingerprint, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
