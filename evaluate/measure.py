"""One model on every evaluation set: encode each distinct (prompt, text) once, then run every set's task."""

from __future__ import annotations

import logging
from pathlib import Path

from configs.errors import UserError
from core.embed import Embeddings
from core.embed_cache import cached_embed
from core.identity import BACKEND, encoder_settings
from core.prompts import prompts_record, resolve_prompts
from evaluate.evaluators import EVALUATORS
from evaluate.sets import EvalSet, run_options
from evaluate.tasks.spec import TaskResult, call_with_options

log = logging.getLogger(__name__)


def check_dims(dims: tuple[int, ...], model) -> None:
    """Fail before any encoding when ``evaluate.truncate_dims`` asks for more coordinates than the model has."""
    size = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    for dim in dims:
        if dim < 1 or (size is not None and dim > size):
            raise UserError(f"evaluate.truncate_dims: {dim} is not a size the model's {size}-dimensional embeddings "
                            f"can be truncated to; use sizes from 1 to {size}, e.g. [{size // 2}, {size // 4}].")


def set_texts(sets: list[EvalSet], seed: int = 0) -> dict[str, list[str]]:
    """role -> every text the tasks of ``sets`` look up in that role (see core.prompts)."""
    texts: dict[str, list[str]] = {}
    for s in sets:
        found = call_with_options(EVALUATORS[s.config.task].texts, s.table, options=run_options(s.config, seed))
        for role, items in found.items():
            texts.setdefault(role, []).extend(items)
    return texts


def run_sets(sets: list[EvalSet], embeddings: Embeddings, seed: int = 0) -> dict[str, TaskResult]:
    """{dataset: TaskResult} of every set's task on one model's embeddings."""
    return {s.config.name: call_with_options(EVALUATORS[s.config.task].run, s.table, embeddings,
                                             options=run_options(s.config, seed))
            for s in sets}


def evaluate_model(model, sets: list[EvalSet], batch_size: int, fingerprint: str = "",
                   cache_dir: Path | None = None, precision: str = "fp32",
                   train_prompts: dict[str, str] | None = None, seed: int = 0,
                   backend: str = BACKEND) -> tuple[dict[str, TaskResult], dict]:
    """Every task's result for one model, encoding each distinct (prompt, text) once; and how the encoding went
    (prompts, similarity, encoder fingerprint and settings, and the embeddings themselves under "embeddings", for
    the report's pictures).

    Args:
        fingerprint: ``core.model.model_fingerprint`` of the model's folder ('' for an in-memory model: no cache).
        train_prompts: ``train.prompts``, the prompts the user trained with, which win over the model's own.
        seed: ``evaluate.seed``, for tasks whose run is random (classification folds, k-means).
    """
    texts = set_texts(sets, seed)
    prompts = resolve_prompts(model, texts, train_prompts)
    embeddings = cached_embed(model, texts, batch_size, fingerprint, cache_dir, precision, prompts, backend)
    log.info("%d distinct texts %s in %.1f s", len(embeddings.index),
             "loaded from the cache" if embeddings.cached else "encoded", embeddings.seconds)
    return run_sets(sets, embeddings, seed), {
        "seconds": embeddings.seconds, "texts": len(embeddings.index), "cached": embeddings.cached,
        "precision": precision, "similarity": embeddings.similarity, "dim": int(embeddings.vectors.shape[1]),
        "prompts": prompts_record(prompts), "fingerprint": embeddings.fingerprint,
        "settings": encoder_settings(model, prompts, precision, backend), "embeddings": embeddings}


def evaluate_dims(sets: list[EvalSet], embeddings: Embeddings, dims: tuple[int, ...],
                  seed: int = 0) -> dict[int, dict]:
    """Every task's result with the embeddings truncated to each of ``dims`` (re-normalised for cosine)."""
    return {dim: run_sets(sets, embeddings.truncated(dim), seed) for dim in dims}
