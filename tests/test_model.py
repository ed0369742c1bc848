"""Model resolution: the bundled model is verified, Hub ids fail clearly offline, folders load as they are."""

from __future__ import annotations

import pytest

from configs.errors import UserError
from configs.schema import ModelConfig
from train import model as model_module
from train.model import BUNDLED, resolve_model


def test_bundled_model_resolves_and_matches_the_known_weights():
    resolved = resolve_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    assert resolved.weights_sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert resolved.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolved.revision == "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
    assert (resolved.path / "model.safetensors").is_file()


def test_bundled_model_with_wrong_hash_is_refused(monkeypatch):
    spec = BUNDLED["all-MiniLM-L6-v2"]
    monkeypatch.setitem(BUNDLED, "all-MiniLM-L6-v2", type(spec)(spec.package, spec.hub_id, spec.revision, "0" * 64,
                                                                        spec.fingerprint))
    with pytest.raises(UserError, match="has sha256 53aa5117.*expected 0000.*reinstall"):
        resolve_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))


def test_unknown_bundled_name_suggests_the_known_one():
    with pytest.raises(UserError, match="Did you mean 'all-MiniLM-L6-v2'"):
        resolve_model(ModelConfig(name="bundled:all-MiniLM-L6"))


def test_hub_model_without_network_says_how_to_use_a_local_or_bundled_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"from the Hugging Face Hub.*bundled:all-MiniLM-L6-v2.*local"):
        resolve_model(ModelConfig(name="someone/not-cached-model", revision="main"))


def test_local_folder_is_hashed(tiny_model_dir):
    resolved = resolve_model(ModelConfig(name=str(tiny_model_dir)))
    assert resolved.path == tiny_model_dir
    assert len(resolved.weights_sha256) == 64


def test_a_path_that_is_neither_folder_nor_hub_id_is_an_error(tmp_path):
    with pytest.raises(UserError, match="neither a model folder nor a Hub id"):
        resolve_model(ModelConfig(name=str(tmp_path / "missing" / "model")))


def test_weights_hash_is_cached_per_process(tiny_model_dir):
    model_module.weights_hash.cache_clear()
    resolve_model(ModelConfig(name=str(tiny_model_dir)))
    resolve_model(ModelConfig(name=str(tiny_model_dir)))
    assert model_module.weights_hash.cache_info().hits >= 1
