"""Loading any sentence-transformers model: its own prompts and similarity reach evaluation, sharded checkpoints
load and are fingerprinted shard by shard, custom code needs model.trust_remote_code, model.kwargs are checked and
reach the model, and a Hub download skips what sentence-transformers never reads."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from configs.errors import UserError
from configs.schema import EvalDatasetConfig, ModelConfig
from conftest import INCIDENT_ROWS, tiny_config, write_config, write_csv
from core.model import load_model, model_fingerprint, resolve_model, weight_files, weights_hash
from core.model_checks import hub_ignore_patterns, loading_kwargs
from data.table import Table

QUERIES = [row[1] for row in INCIDENT_ROWS[:4]]
DOCS = [row[2] for row in INCIDENT_ROWS[:4]]


def model_copy(tiny_model_dir: Path, folder: Path, **settings) -> Path:
    """The tiny model with config_sentence_transformers.json edited (prompts, default_prompt_name, similarity)."""
    shutil.copytree(tiny_model_dir, folder)
    path = folder / "config_sentence_transformers.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))
    return folder


# ------------------------------------------------------------------------------ prompts and similarity
def test_the_models_own_prompts_and_dot_similarity_reach_evaluation(tiny_model_dir, tmp_path):
    from evaluate.measure import evaluate_model
    from evaluate.sets import EvalSet

    folder = model_copy(tiny_model_dir, tmp_path / "m", prompts={"query": "query: ", "document": "passage: "},
                        similarity_fn_name="dot")
    model, _ = load_model(ModelConfig(name=str(folder)))
    rows = Dataset.from_dict({"anchor": QUERIES, "positive": DOCS, "group": QUERIES})
    retrieval = EvalSet(EvalDatasetConfig(name="r", task="retrieval"), Table(rows=rows, kind="pairs", origin="mem"))
    _, info = evaluate_model(model, [retrieval], batch_size=8)
    assert info["similarity"] == "dot"
    assert info["prompts"]["query"]["prompt"] == "query: " and info["prompts"]["document"]["prompt"] == "passage: "
    vectors = info["embeddings"](QUERIES, "query")
    expected = model.encode(["query: " + q for q in QUERIES], convert_to_numpy=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # the prompt was prepended, vectors kept raw for dot
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_a_default_prompt_name_applies_to_symmetric_texts(tiny_model_dir, tmp_path):
    from core.prompts import resolve_prompts

    folder = model_copy(tiny_model_dir, tmp_path / "m", prompts={"query": "", "document": "", "sts": "sts: "},
                        default_prompt_name="sts", similarity_fn_name="euclidean")
    model, _ = load_model(ModelConfig(name=str(folder)))
    assert resolve_prompts(model, ["sentence1"])["sentence1"].text == "sts: "
    assert model.similarity_fn_name == "euclidean"


# ------------------------------------------------------------------------------ sharded weights
def sharded_copy(tiny_model_dir: Path, folder: Path) -> Path:
    from transformers import BertModel

    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    BertModel.from_pretrained(str(tiny_model_dir)).save_pretrained(str(folder), max_shard_size="30KB")
    return folder


def test_a_sharded_checkpoint_loads_and_every_shard_is_hashed_in_a_stable_order(tiny_model_dir, tmp_path):
    folder = sharded_copy(tiny_model_dir, tmp_path / "sharded")
    shards = weight_files(folder)
    assert len(shards) >= 3 and [s.name for s in shards] == sorted(s.name for s in shards)
    assert (folder / "model.safetensors.index.json").is_file() and not (folder / "model.safetensors").exists()
    model, resolved = load_model(ModelConfig(name=str(folder)))
    reference, _ = load_model(ModelConfig(name=str(tiny_model_dir)))
    np.testing.assert_allclose(model.encode(QUERIES), reference.encode(QUERIES), atol=1e-6)
    fingerprint, digest = resolved.fingerprint, resolved.weights_sha256
    last = shards[-1]
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(last))
    name = sorted(tensors)[0]
    save_file({**tensors, name: tensors[name] + 1}, str(last), metadata={"format": "pt"})
    assert weights_hash(folder) != digest and model_fingerprint(folder) != fingerprint  # the last shard counts too


# ------------------------------------------------------------------------------ custom code
CONFIGURATION = '''from transformers import BertConfig


class TinyConfig(BertConfig):
    model_type = "embtune-tiny"
'''
MODELING = '''from transformers import BertModel

from .configuration_tiny import TinyConfig


class TinyModel(BertModel):
    config_class = TinyConfig
    _supports_sdpa = False  # eager attention only: attn_implementation=sdpa does not fit it
    _supports_flex_attn = False
'''


@pytest.fixture(scope="module")
def custom_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model as a custom architecture: config.json's auto_map points at modeling code in the folder."""
    folder = tmp_path_factory.mktemp("custom") / "tiny-custom"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "configuration_tiny.py").write_text(CONFIGURATION)
    (folder / "modeling_tiny.py").write_text(MODELING)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="embtune-tiny", architectures=["TinyModel"],
                  auto_map={"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_custom_code_model_is_refused_without_trust_remote_code(custom_model_dir):
    with pytest.raises(UserError, match=r"runs its own Python code \(config.json auto_map AutoConfig -> "
                                        r"configuration_tiny.TinyConfig; .*set model.trust_remote_code=true"):
        load_model(ModelConfig(name=str(custom_model_dir)))


def test_a_custom_code_model_loads_with_the_flag_and_a_warning(custom_model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="core.model_checks"):
        model, _ = load_model(ModelConfig(name=str(custom_model_dir), trust_remote_code=True))
    assert type(model[0].model).__name__ == "TinyModel"
    assert "model.trust_remote_code=true: loading" in caplog.text and "modeling_tiny.TinyModel" in caplog.text


def test_a_model_kwarg_the_model_does_not_take_is_a_clear_error(custom_model_dir):
    config = ModelConfig(name=str(custom_model_dir), trust_remote_code=True, kwargs={"attn_implementation": "sdpa"})
    with pytest.raises(UserError, match=r"Could not load the model in .* with model.kwargs \{'attn_implementation': "
                                        r"'sdpa'\} \(the model does not take them as given.*does not support"):
        load_model(config)


def train_config(tmp_path: Path, model_dir: Path, **model) -> Path:
    pairs = write_csv(tmp_path / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, model_dir, {"train": source, "dev_fraction": 0}, {"name": "mnrl"})
    raw["model"].update(model)
    return write_config(tmp_path, raw)


@pytest.mark.parametrize("model,message", [
    ({}, "runs its own Python code"),
    ({"trust_remote_code": True, "kwargs": {"attn_implementaton": "eager"}}, "Did you mean 'attn_implementation'"),
], ids=["custom-code-without-flag", "kwargs-typo"])
def test_model_misfits_stop_training_before_anything_is_written(custom_model_dir, tmp_path, capsys, model, message):
    from configs.cli import run
    from train.__main__ import main

    assert run(lambda: main([str(train_config(tmp_path, custom_model_dir, **model))])) == 2
    assert message in capsys.readouterr().err
    run_dir = tmp_path / "run"
    assert not run_dir.exists() or not any(run_dir.iterdir())


def test_trust_remote_code_is_recorded_in_run_json_and_the_code_travels_with_final(custom_model_dir, tmp_path):
    from configs.cli import run
    from train.__main__ import main

    config = train_config(tmp_path, custom_model_dir, trust_remote_code=True)
    assert run(lambda: main([str(config)])) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["trust_remote_code"] is True
    assert (tmp_path / "run" / "final" / "modeling_tiny.py").is_file()
    assert record["parameters"]["trainable"] == record["parameters"]["total"] > 0


# ------------------------------------------------------------------------------ model.kwargs
@pytest.mark.parametrize("kwargs,message", [
    ({"torch_dtyp": "bfloat16"}, r"model.kwargs.torch_dtyp is not a known loading option. Did you mean 'torch_dtype'"),
    ({"dtype": "bf16"}, r"model.kwargs.dtype='bf16' is not one of auto, float32, bfloat16, float16. Did you mean "
                        r"'bfloat16'\?"),
    ({"dtype": "float32", "torch_dtype": "float32"}, r"model.kwargs sets dtype twice"),
])
def test_model_kwargs_are_checked_against_the_known_list(kwargs, message):
    with pytest.raises(UserError, match=message):
        loading_kwargs(ModelConfig(kwargs=kwargs))


def test_model_kwargs_reach_the_model(tiny_model_dir):
    model, _ = load_model(ModelConfig(name=str(tiny_model_dir), kwargs={"torch_dtype": "bfloat16",
                                                                        "attn_implementation": "eager"}))
    assert model[0].model.dtype == torch.bfloat16
    assert model[0].model.config._attn_implementation == "eager"


# ------------------------------------------------------------------------------ Hub downloads
# The files of sentence-transformers/all-MiniLM-L6-v2 at 1110a243 (its Hub listing).
MINILM_FILES = [
    ".gitattributes", "1_Pooling/config.json", "README.md", "config.json", "config_sentence_transformers.json",
    "data_config.json", "model.safetensors", "modules.json", "onnx/model.onnx", "onnx/model_O1.onnx",
    "onnx/model_qint8_avx512.onnx", "openvino/openvino_model.bin", "openvino/openvino_model.xml",
    "pytorch_model.bin", "rust_model.ot", "sentence_bert_config.json", "special_tokens_map.json",
    "tf_model.h5", "tokenizer.json", "tokenizer_config.json", "train_script.py", "vocab.txt",
]


def test_a_hub_download_skips_other_backends_and_duplicate_weights():
    from huggingface_hub.utils import filter_repo_objects  # what snapshot_download filters the file list with

    kept = list(filter_repo_objects(MINILM_FILES, ignore_patterns=hub_ignore_patterns(MINILM_FILES)))
    assert "model.safetensors" in kept and "1_Pooling/config.json" in kept and "vocab.txt" in kept
    assert "modules.json" in kept and "tokenizer.json" in kept and "sentence_bert_config.json" in kept
    skipped = set(MINILM_FILES) - set(kept)
    assert skipped == {"onnx/model.onnx", "onnx/model_O1.onnx", "onnx/model_qint8_avx512.onnx", "tf_model.h5",
                       "openvino/openvino_model.bin", "openvino/openvino_model.xml", "pytorch_model.bin",
                       "rust_model.ot"}


def test_a_bin_only_repository_keeps_its_weights_and_a_dense_layer_keeps_its_own():
    files = ["config.json", "pytorch_model.bin", "2_Dense/pytorch_model.bin", "modules.json"]
    assert list(hub_ignore_patterns_kept(files)) == files
    files = ["model.safetensors", "pytorch_model.bin", "2_Dense/pytorch_model.bin", "2_Dense/config.json"]
    assert list(hub_ignore_patterns_kept(files)) == ["model.safetensors", "2_Dense/pytorch_model.bin",
                                                     "2_Dense/config.json"]


def hub_ignore_patterns_kept(files: list[str]):
    from huggingface_hub.utils import filter_repo_objects

    return filter_repo_objects(files, ignore_patterns=hub_ignore_patterns(files))


def test_offline_the_hub_listing_is_skipped_and_the_static_patterns_still_apply(monkeypatch):
    from core.model_checks import repo_files

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert repo_files("sentence-transformers/all-MiniLM-L6-v2", None) is None
    assert "onnx/*" in hub_ignore_patterns(None) and not any("pytorch_model" in p for p in hub_ignore_patterns(None))


def test_resolve_hub_passes_the_patterns_to_snapshot_download(monkeypatch, tiny_model_dir):
    from core import model as model_module

    seen = {}

    def fake_snapshot(repo_id, revision=None, ignore_patterns=None):
        seen.update(repo_id=repo_id, ignore=ignore_patterns)
        return str(tiny_model_dir)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot)
    monkeypatch.setattr(model_module, "repo_files", lambda repo_id, revision: MINILM_FILES)
    resolved = resolve_model(ModelConfig(name="acme/tiny"))
    assert seen["repo_id"] == "acme/tiny" and "pytorch_model*.bin" in seen["ignore"] and "onnx/*" in seen["ignore"]
    assert resolved.fingerprint == model_fingerprint(tiny_model_dir)


# ------------------------------------------------------------------------------ one loader for every model
def _corrupt_copy(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    return folder


def test_the_miner_the_guide_and_the_export_load_through_the_checked_loader(tiny_model_dir, tmp_path):
    from configs.load import validate
    from core.export import build_onnx
    from data.negatives import load_miner
    from train.losses import frozen_guide

    broken = _corrupt_copy(tiny_model_dir, tmp_path / "broken")
    corrupt = rf"{broken / 'model.safetensors'}: the weights file is corrupt or truncated"
    data = {"train": {"path": "x.csv"}, "hard_negatives": {"model": str(broken)}}
    config = validate(tiny_config(tmp_path, tiny_model_dir, data, {"name": "gist", "guide": str(broken)}))
    with pytest.raises(UserError, match=corrupt):
        load_miner(config)
    base, _ = load_model(config.model)
    with pytest.raises(UserError, match=corrupt):
        frozen_guide(base, config.loss)
    with pytest.raises(UserError, match=corrupt):
        build_onnx(folder=broken, source=None, target=tmp_path / "model.onnx")


def test_a_guide_that_runs_its_own_code_is_refused_naming_the_key(custom_model_dir, tiny_model_dir, tmp_path):
    from configs.schema import GISTLoss
    from train.losses import frozen_guide

    base, _ = load_model(ModelConfig(name=str(tiny_model_dir)))
    with pytest.raises(UserError, match=r"loss.guide: .* runs its own Python code .* only ever run for the base"):
        frozen_guide(base, GISTLoss(name="gist", guide=str(custom_model_dir)))


def test_a_weights_file_of_another_model_as_miner_is_refused(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    from core.model import load_model_folder

    folder = shutil.copytree(tiny_model_dir, tmp_path / "miner")
    save_file({"classifier.weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"holds 0 of the \d+ tensors .* would be randomly initialised"):
        load_model_folder(folder, "data.hard_negatives.model")


def test_a_reading_length_beyond_the_position_embeddings_is_a_clear_error(tiny_model_dir):
    # The tiny BERT has 128 positions: 129 used to load, then fail at the first long text with a tensor-size error.
    with pytest.raises(UserError, match=r"model.max_seq_length 129 is longer than the model in .* can read: its "
                                        r"position embeddings take at most 128 tokens"):
        load_model(ModelConfig(name=str(tiny_model_dir), max_seq_length=129))
    model, _ = load_model(ModelConfig(name=str(tiny_model_dir), max_seq_length=128))
    assert model.max_seq_length == 128
    assert model.encode([" ".join(DOCS * 20)]).shape[0] == 1


def test_a_models_own_reading_length_beyond_its_position_embeddings_is_a_clear_error(tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 300, "do_lower_case": False}))
    with pytest.raises(UserError, match=r"The model in .* is set to read 300 tokens \(its own max_seq_length\), "
                                        r"more than it can: its position embeddings take at most 128 tokens. Set "
                                        r"model.max_seq_length to 128 or less"):
        load_model(ModelConfig(name=str(folder)))
    assert load_model(ModelConfig(name=str(folder), max_seq_length=128))[0].max_seq_length == 128


def test_the_reading_limit_of_a_roberta_model_leaves_out_its_padding_offset_and_rotary_positions_have_none():
    from transformers import ModernBertConfig, ModernBertModel, RobertaConfig, RobertaModel

    from core.model_checks import position_limit

    class Module:
        auto_model = RobertaModel(RobertaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=16,
                                                max_position_embeddings=66, pad_token_id=1))

    class Rotary:
        auto_model = ModernBertModel(ModernBertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                      num_attention_heads=2, intermediate_size=16,
                                                      max_position_embeddings=64, pad_token_id=0))

    assert position_limit([Module()]) == 64  # positions start after the padding index, as in XLM-R and MPNet
    assert position_limit([Rotary()]) is None  # rotary: its config's 64 is no table, so nothing is refused
    assert position_limit([object()]) is None
