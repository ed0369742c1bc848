"""One encoder fingerprint keys the embedding cache: changing any ingredient of what the model computes misses it."""

from __future__ import annotations

import pytest
import torch

from core.prompts import resolve_prompts
from evaluate.cache import cached_embed
from evaluate.identity import encoder_fingerprint

TEXTS = {"query": ["disk full on server"], "document": ["the shop website cannot open any page"]}


@pytest.fixture
def model(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)


def _pooling(model):
    from sentence_transformers.sentence_transformer.modules import Pooling

    return next(m for m in model.modules() if isinstance(m, Pooling))


def _normalised(model, settings):
    from sentence_transformers.base.modules import Normalize

    model.append(Normalize())


CHANGES = {  # ingredient -> how to change it (on the model, or in the settings of the lookup)
    "weights and configs (folder fingerprint)": lambda model, s: s.update(folder="b" * 64),
    "max_seq_length": lambda model, s: setattr(model, "max_seq_length", 16),
    "pooling mode": lambda model, s: setattr(_pooling(model), "pooling_mode", "cls"),
    "normalisation": _normalised,
    "similarity": lambda model, s: setattr(model, "similarity_fn_name", "dot"),
    "prompts": lambda model, s: s.update(prompts=resolve_prompts(model, TEXTS, {"anchor": "query: "})),
    "precision": lambda model, s: s.update(precision="bf16"),
    "backend": lambda model, s: s.update(backend="onnx"),
    "weights dtype": lambda model, s: model.to(torch.bfloat16),  # model.kwargs {torch_dtype: bfloat16}
}


def lookup(model, settings: dict, cache):
    prompts = settings.get("prompts") or resolve_prompts(model, TEXTS)
    return cached_embed(model, TEXTS, 8, settings["folder"], cache, settings["precision"], prompts,
                        backend=settings["backend"])


@pytest.mark.parametrize("ingredient", list(CHANGES))
def test_changing_any_ingredient_misses_the_cache(model, tmp_path, ingredient):
    settings = {"folder": "a" * 64, "precision": "fp32", "backend": "torch"}
    first = lookup(model, settings, tmp_path)
    assert not first.cached and lookup(model, settings, tmp_path).cached  # the same encoder: a hit
    CHANGES[ingredient](model, settings)
    changed = lookup(model, settings, tmp_path)
    assert not changed.cached, f"changing the {ingredient} read vectors cached for the old encoder"
    assert changed.fingerprint != first.fingerprint and len(changed.fingerprint) == 64


def test_the_same_folder_loaded_twice_is_the_same_encoder(tiny_model_dir, model):
    from sentence_transformers import SentenceTransformer

    again = SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)
    prompts = resolve_prompts(model, TEXTS)
    assert encoder_fingerprint("a" * 64, model, prompts, "fp32") == \
        encoder_fingerprint("a" * 64, again, resolve_prompts(again, TEXTS), "fp32", "torch")


def test_without_a_folder_fingerprint_nothing_is_cached(model, tmp_path):
    result = cached_embed(model, TEXTS, 8, "", tmp_path)
    assert result.fingerprint == "" and not list(tmp_path.iterdir())
