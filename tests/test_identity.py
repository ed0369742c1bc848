"""One encoder fingerprint keys the embedding cache: changing any ingredient of what the model computes misses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.embed_cache import cached_embed, store_for
from core.identity import encoder_fingerprint
from core.prompts import resolve_prompts

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


def test_only_the_texts_not_stored_are_encoded(model, tmp_path, monkeypatch):
    import core.embed

    encoded = []
    real = core.embed.encode_keys
    monkeypatch.setattr(core.embed, "encode_keys", lambda m, keys, *a: encoded.append(len(keys)) or real(m, keys, *a))
    first = {"query": ["disk full"], "document": ["printer jam", "email backlog"]}
    cached_embed(model, first, 8, "a" * 64, tmp_path)
    more = {"query": ["disk full", "vpn down"], "document": ["email backlog", "printer jam", "dns error"]}
    both = cached_embed(model, more, 8, "a" * 64, tmp_path)
    assert encoded == [3, 2] and not both.cached  # the second call encoded only 'vpn down' and 'dns error'
    fresh = cached_embed(model, more, 8, "a" * 64, None)  # no cache: everything encoded in one call
    for role, texts in more.items():
        np.testing.assert_allclose(both(texts, role), fresh(texts, role), atol=1e-5)
    assert cached_embed(model, more, 8, "a" * 64, tmp_path).cached and encoded == [3, 2, 5]


def test_a_damaged_chunk_is_encoded_again(model, tmp_path):
    first = cached_embed(model, TEXTS, 8, "a" * 64, tmp_path)
    (vectors,) = [p for p in tmp_path.rglob("*.npy") if not p.name.endswith(".keys.npy")]
    vectors.write_bytes(b"not a numpy file")
    again = cached_embed(model, TEXTS, 8, "a" * 64, tmp_path)
    assert not again.cached
    np.testing.assert_allclose(again(TEXTS["query"], "query"), first(TEXTS["query"], "query"), atol=1e-6)


def test_mining_fills_the_store_the_baseline_reads(tmp_path, tiny_model_dir):
    """The base model's corpus vectors from mining are the evaluation baseline's: not encoded twice in one run."""
    from test_negatives import CORPUS, beir_folder, mining_config

    from configs.load import validate
    from core.embed import resolve_precision
    from core.model import model_fingerprint
    from data.checks import comparable
    from data.prepare import prepare

    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path))
    raw["evaluate"]["cache_dir"] = str(tmp_path / "cache")
    prepare(validate(raw))
    base = st_model(tiny_model_dir)
    keys = [("document", "", text) for text in dict.fromkeys(CORPUS.values())]
    store = store_for(tmp_path / "cache", model_fingerprint(tiny_model_dir), base, resolve_precision("auto", base))
    _, missing = store.lookup(keys)
    stored = {comparable(keys[i][2]) for i in range(len(keys)) if i not in missing}
    # every candidate text was encoded by the miner; the ones it did not encode are normalised duplicates it merged
    assert len(keys) - len(missing) >= 9 and all(comparable(keys[i][2]) in stored for i in missing)


def test_with_an_export_backend_mining_encodes_with_the_export_the_baseline_reads(tmp_path, tiny_model_dir):
    """evaluate.backend: onnx makes mining (and data.chunking's similarity choice) encode with the base model's ONNX
    export, into the store evaluation's ONNX baseline reads; the PyTorch model encodes nothing, and data/ records the
    backend so that a change of backend prepares again."""
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    from test_negatives import CORPUS, beir_folder, mining_config

    import core.embed
    from configs.load import validate
    from core.export import encoder_for
    from core.model import load_model
    from data.prepare import prepare
    from data.provenance import data_settings

    corpus = {**CORPUS, "d3": "the tray is empty again in room four and the printer paper jam is back"}
    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path, corpus=corpus))
    raw["evaluate"].update(cache_dir=str(tmp_path / "cache"), backend="onnx")
    raw["data"]["chunking"] = {"positive": "similarity", "max_tokens": 6, "overlap": 1}
    config = validate(raw)
    encoders = []
    real = core.embed.encode_keys
    core_encode = lambda m, keys, *a: encoders.append(type(m).__name__) or real(m, keys, *a)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core.embed, "encode_keys", core_encode)
        prepared = prepare(config)
    assert prepared.chunking["pairs_with_long_positive"] >= 1  # the similarity choice encoded windows too
    assert encoders and set(encoders) == {"ExportEncoder"}, encoders
    assert prepared.mining["backend"] == "onnx" and prepared.mining["precision"] == "fp32"
    assert data_settings(config)["evaluate.backend"] == "onnx"
    base, resolved = load_model(config.model)
    export, precision, backend = encoder_for(base, resolved.path, config.evaluate, Path(config.run_dir))
    assert (type(export).__name__, precision, backend) == ("ExportEncoder", "fp32", "onnx")
    keys = [("document", "", text) for text in dict.fromkeys(prepared.train.rows["positive"])]
    _, missing = store_for(tmp_path / "cache", resolved.fingerprint, export, precision, backend).lookup(keys)
    assert not missing  # every positive window the pairs train on was encoded by the export, into its store
    _, missing = store_for(tmp_path / "cache", resolved.fingerprint, base, "fp32").lookup(keys)
    assert len(missing) == len(keys)  # nothing under the PyTorch model's fingerprint


def test_a_miner_of_its_own_stays_in_pytorch_under_an_export_backend(tmp_path, tiny_model_dir):
    """hard_negatives.model: no other stage reads that model's vectors, so evaluate.backend does not export it."""
    import shutil

    from test_negatives import beir_folder, mining_config

    import core.embed
    from configs.load import validate
    from data.prepare import prepare
    from data.provenance import data_settings

    miner = shutil.copytree(tiny_model_dir, tmp_path / "miner")
    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path), model=str(miner))
    raw["evaluate"].update(cache_dir=str(tmp_path / "cache"), backend="onnx")
    config = validate(raw)
    encoders = []
    real = core.embed.encode_keys
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core.embed, "encode_keys", lambda m, keys, *a: encoders.append(type(m).__name__)
                      or real(m, keys, *a))
        prepared = prepare(config)
    assert encoders and set(encoders) == {"SentenceTransformer"}, encoders
    assert "backend" not in prepared.mining and "evaluate.backend" not in data_settings(config)
    assert not list(tmp_path.rglob("exports"))  # nothing was exported
    raw["data"]["chunking"] = {"positive": "similarity"}  # the window choice encodes with the base model's export
    assert data_settings(validate(raw))["evaluate.backend"] == "onnx"


def test_mining_gives_queries_and_documents_the_train_prompts_evaluation_gives_them(tmp_path, tiny_model_dir):
    """With train.prompts the base model mines with them, as evaluation encodes with them: the vectors mining stores
    are under the keys the baseline reads (before, mining used the model's own prompts, here none, and the baseline
    encoded the corpus again); data/ records the prompts, so changing them prepares it again."""
    from test_negatives import beir_folder, mining_config

    from configs.load import validate
    from core.embed import resolve_precision
    from core.model import model_fingerprint
    from data.prepare import prepare
    from data.provenance import data_settings

    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path))
    raw["evaluate"]["cache_dir"] = str(tmp_path / "cache")
    raw["train"]["prompts"] = {"anchor": "query: ", "positive": "passage: "}
    config = validate(raw)
    prepared = prepare(config)
    base = st_model(tiny_model_dir)
    store = store_for(tmp_path / "cache", model_fingerprint(tiny_model_dir), base, resolve_precision("auto", base))
    rows = prepared.train.rows
    for mode, prompt, texts in (("query", "query: ", rows["anchor"]), ("document", "passage: ", rows["positive"])):
        keys = [(mode, prompt, text) for text in dict.fromkeys(texts)]
        assert not store.lookup(keys)[1], mode  # every one stored with its prompt
        assert len(store.lookup([(mode, "", text) for _, _, text in keys])[1]) == len(keys)  # none without
    assert data_settings(config)["train.prompts"] == {"anchor": "query: ", "positive": "passage: "}


def st_model(folder):
    """The model in ``folder`` as the stages load it (CPU, local files only)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def test_no_texts_is_an_empty_result_with_or_without_a_store(model, tmp_path):
    for cache in (tmp_path, None):
        empty = cached_embed(model, {"query": [], "document": []}, 8, "a" * 64, cache)
        assert empty.vectors.shape[0] == 0 and empty([], "query").shape[0] == 0


def test_default_cache_follows_xdg_cache_home(tmp_path, monkeypatch):
    """evaluate.cache_dir's default (~/.cache/embtune/embeddings) goes under $XDG_CACHE_HOME when it is set; an
    explicit folder stays where it is named."""
    from configs.schema import EvaluateConfig
    from core.embed_cache import VectorStore, cache_root

    default = EvaluateConfig().cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert VectorStore(default, "f" * 64).folder == tmp_path / "xdg" / "embtune" / "embeddings" / ("f" * 32)
    assert cache_root(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root(default) == tmp_path / "home" / ".cache" / "embtune" / "embeddings"


def test_the_dev_score_at_step_0_uses_the_store_and_later_steps_encode(model, tmp_path, monkeypatch):
    """The trainer's first dev evaluation (step 0) is the base model's: it reads the vectors mining and the baseline
    stored, and fills what they lack; at later steps the weights have moved and every text is encoded."""
    from datasets import Dataset

    import core.embed
    from configs.schema import AdapterConfig, RunConfig
    from data.table import Table
    from evaluate.evaluators import TaskEvaluator
    from train.trainer import base_store

    encoded = []
    real = core.embed.encode_keys
    monkeypatch.setattr(core.embed, "encode_keys", lambda m, keys, *a: encoded.append(len(keys)) or real(m, keys, *a))
    dev = Table(rows=Dataset.from_dict({"anchor": ["disk full", "printer jam", "vpn down"],
                                        "positive": ["the disk is full", "paper jam in printer", "vpn lost"]}),
                kind="pairs", origin="dev.csv")
    evaluator = TaskEvaluator("retrieval", dev, "dev", 8, base_store=("a" * 64, str(tmp_path)))
    first = evaluator(model, steps=0)
    assert encoded == [6]
    assert evaluator(model, steps=0) == first and encoded == [6]  # all six texts read from the store
    evaluator(model, steps=4)
    assert encoded == [6, 6]  # trained weights: encoded, never read from the base model's store
    config = RunConfig.model_validate({"model": {"name": "x"}, "data": {"train": {"path": "t.csv"}},
                                       "loss": {"name": "mnrl"}, "evaluate": {"cache_dir": str(tmp_path)}})
    assert base_store(config, "f" * 64) == ("f" * 64, str(tmp_path)) and base_store(config, "") is None
    lora = config.model_copy(update={"model": config.model.model_copy(update={"adapter": AdapterConfig()})})
    assert base_store(lora, "f" * 64) is None
