"""LoRA adapters: only the adapter trains, final/ is an adapter folder that loads onto the base, the merged folder
loads without peft, resume and best-checkpoint read adapter weights, and misfits fail before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from configs.cli import run
from configs.errors import UserError
from configs.load import validate
from configs.schema import AdapterConfig, ModelConfig
from conftest import INCIDENT_ROWS, tiny_config, write_config, write_csv
from core.adapters import add_lora, is_adapter_folder, name_adapter_base, parameter_counts
from core.model import load_model, model_fingerprint, weight_files
from data.prepare import prepare
from train.push.merged_adapter import merged_model_folder

TEXTS = ["disk full on server", "my mail is not arriving", "printer paper jam"]


def lora_raw(tmp_path: Path, model_dir: Path, adapter: dict | None = None, **train) -> dict:
    pairs = write_csv(tmp_path / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, model_dir, {"train": source, "dev_fraction": 0}, {"name": "mnrl"})
    raw["model"]["adapter"] = {"r": 4, "alpha": 8, "dropout": 0.0, **(adapter or {})}
    raw["train"].update(learning_rate=5e-2, **train)
    return raw


def train_run(tmp_path: Path, raw: dict) -> Path:
    from train.__main__ import main

    assert run(lambda: main([str(write_config(tmp_path, raw))])) == 0
    return tmp_path / "run"


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, tmp_path_factory):
    """A finished LoRA run on the tiny model, and the vectors its trained in-memory model gave."""
    tmp = tmp_path_factory.mktemp("lora")
    return train_run(tmp, lora_raw(tmp, tiny_model_dir))


def test_only_the_adapter_trains_and_the_base_stays_frozen(tiny_model_dir):
    model, _ = load_model(ModelConfig(name=str(tiny_model_dir)))
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    targets = add_lora(model, AdapterConfig(r=4), seed=0)
    assert targets == ["query", "value"]  # peft's default for BERT when target_modules is empty
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    counts = parameter_counts(model)
    assert counts["trainable"] == 2 * 2 * 4 * (32 + 32)  # 2 layers x (query, value) x r x (in + out)
    assert counts["total"] == sum(p.numel() for p in base.values()) + counts["trainable"]


def test_a_lora_run_writes_an_adapter_final_that_loads_onto_the_base(lora_run, tiny_model_dir):
    final = lora_run / "final"
    assert is_adapter_folder(final) and not (final / "model.safetensors").exists()
    assert [f.name for f in weight_files(final)] == ["adapter_model.safetensors"]
    record = json.loads((lora_run / "run.json").read_text())
    assert record["final_fingerprint"] == model_fingerprint(final)
    assert record["adapter"]["target_modules"] == ["query", "value"] and record["adapter"]["r"] == 4
    assert record["parameters"] == {"trainable": 1024, "total": record["parameters"]["total"]}
    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str(tiny_model_dir.resolve())
    config = validate(lora_raw(lora_run.parent, tiny_model_dir)).model
    tuned, _ = load_model(config, path=final)
    base, _ = load_model(config)
    assert not np.allclose(tuned.encode(TEXTS), base.encode(TEXTS), atol=1e-4), "the adapter changed nothing"


def test_the_tuned_model_equals_the_model_that_trained(tiny_model_dir, tmp_path):
    """What evaluation loads (base + adapter merged) encodes like the in-memory model at the end of training."""
    from train.trainer import build_trainer

    # fp32: under bf16 mixed precision (what train.precision auto picks on a CPU with AVX512-BF16 or AMX) the trainer
    # leaves the in-memory model's forward in bf16 autocast, which no fp32 folder matches to 1e-5 on any machine.
    config = validate(lora_raw(tmp_path, tiny_model_dir, max_steps=3, precision="fp32"))
    prepared = prepare(config)
    model, resolved = load_model(config.model)
    add_lora(model, config.model.adapter, seed=config.seed)
    trainer = build_trainer(config, model, prepared.train, None)
    trainer.train()
    model.eval()
    trained = model.encode(TEXTS)
    model.save_pretrained(str(tmp_path / "final"))
    loaded, _ = load_model(config.model, path=tmp_path / "final")
    np.testing.assert_allclose(loaded.encode(TEXTS), trained, atol=1e-5)


def test_the_merged_folder_loads_without_peft_and_encodes_like_the_adapter(lora_run, tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = merged_model_folder(lora_run / "final", tmp_path / "merged")  # base read from config.resolved.yaml
    assert not is_adapter_folder(out) and (out / "model.safetensors").is_file()
    plain = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    assert type(plain[0].model).__name__ == "BertModel"
    config = validate(lora_raw(lora_run.parent, tiny_model_dir)).model
    adapted, _ = load_model(config, path=lora_run / "final")
    np.testing.assert_allclose(plain.encode(TEXTS), adapted.encode(TEXTS), atol=1e-5)


def test_merging_a_full_model_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(UserError, match="holds no LoRA adapter"):
        merged_model_folder(tiny_model_dir, tmp_path / "out")


def test_a_published_adapter_as_model_name_loads_onto_the_base_it_names(lora_run, tiny_model_dir):
    config = validate(lora_raw(lora_run.parent, tiny_model_dir)).model
    via_run, _ = load_model(config, path=lora_run / "final")
    as_name, resolved = load_model(ModelConfig(name=str(lora_run / "final")))
    np.testing.assert_allclose(as_name.encode(TEXTS), via_run.encode(TEXTS), atol=1e-6)
    assert resolved.weights_sha256 and resolved.fingerprint == model_fingerprint(lora_run / "final")
    with pytest.raises(UserError, match="is a LoRA adapter; model.adapter would stack a second adapter"):
        load_model(ModelConfig(name=str(lora_run / "final"), adapter=AdapterConfig()))


def test_target_modules_that_match_nothing_fail_before_anything_is_written(tiny_model_dir, tmp_path, capsys):
    from train.__main__ import main

    raw = lora_raw(tmp_path, tiny_model_dir, {"target_modules": ["query", "q_proj"]})
    assert run(lambda: main([str(write_config(tmp_path, raw))])) == 2
    assert ("model.adapter.target_modules: 'q_proj' matches no layer LoRA can adapt in this bert model. Layers that "
            "fit: dense, key, query, value") in capsys.readouterr().err
    assert not (tmp_path / "run" / "data").exists() and not (tmp_path / "run" / "final").exists()


def test_a_layer_norm_target_is_not_a_layer_lora_adapts(tiny_model_dir):
    model, _ = load_model(ModelConfig(name=str(tiny_model_dir)))
    with pytest.raises(UserError, match="'LayerNorm' matches no layer LoRA can adapt"):
        add_lora(model, AdapterConfig(target_modules=("LayerNorm",)), seed=0)


def test_a_resumed_lora_run_ends_where_an_uninterrupted_one_ends(tiny_model_dir, tmp_path):
    """Four steps with a checkpoint at step 2; a run stopped there and resumed ends where the straight one ends."""
    from transformers import TrainerCallback

    from train.trainer import build_trainer

    class StopAfterTwo(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step == 2

    def trained(run_dir: str, resume: str | None = None, callbacks: tuple = ()):
        raw = lora_raw(tmp_path, tiny_model_dir, max_steps=4, save_steps=2)
        config = validate({**raw, "run_dir": str(tmp_path / run_dir)})
        model, resolved = load_model(config.model)
        add_lora(model, config.model.adapter, seed=config.seed)
        trainer = build_trainer(config, model, prepare(config).train, None, callbacks)
        trainer.train(resume_from_checkpoint=resume)
        return model.eval()

    straight = trained("a").encode(TEXTS)
    stopped = trained("b", callbacks=(StopAfterTwo(),)).encode(TEXTS)
    checkpoint = tmp_path / "b" / "checkpoints" / "checkpoint-2"
    assert is_adapter_folder(checkpoint) and not np.allclose(stopped, straight, atol=1e-4)
    resumed = trained("b", resume=str(checkpoint)).encode(TEXTS)
    np.testing.assert_allclose(resumed, straight, atol=1e-6)


def test_the_best_checkpoint_of_a_lora_run_is_loaded_as_adapter_weights(tiny_model_dir, tmp_path):
    """The library's _load_best_model logs and carries on when loading fails: the adapter weights must arrive."""
    from safetensors.torch import load_file

    from train.trainer import build_trainer

    config = validate(lora_raw(tmp_path, tiny_model_dir, max_steps=2, save_steps=1))
    model, resolved = load_model(config.model)
    add_lora(model, config.model.adapter, seed=config.seed)
    trainer = build_trainer(config, model, prepare(config).train, None)
    trainer.train()
    first = tmp_path / "run" / "checkpoints" / "checkpoint-1"
    saved = load_file(str(first / "adapter_model.safetensors"))
    now = {n: p for n, p in model[0].model.named_parameters() if "lora_B" in n}
    assert not all(torch.equal(now[n], saved[n.replace(".default", "")]) for n in now)
    trainer.state.best_model_checkpoint = str(first)
    trainer._load_best_model()
    assert all(torch.equal(now[n], saved[n.replace(".default", "")]) for n in now)


def test_gradient_checkpointing_trains_the_adapter(tiny_model_dir, tmp_path):
    from train.trainer import build_trainer

    config = validate(lora_raw(tmp_path, tiny_model_dir, max_steps=2, gradient_checkpointing=True))
    model, resolved = load_model(config.model)
    add_lora(model, config.model.adapter, seed=config.seed)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    build_trainer(config, model, prepare(config).train, None).train()
    assert model[0].model.base_model.model.is_activation_checkpointing
    assert any(not torch.equal(lora[n], p) for n, p in model.named_parameters() if n in lora)


def test_a_changed_base_makes_the_adapter_run_inconsistent(tiny_model_dir, tmp_path):
    import shutil

    from core.run_record import check_run_consistent

    base = shutil.copytree(tiny_model_dir, tmp_path / "base")
    run_dir = train_run(tmp_path, lora_raw(tmp_path, base, max_steps=1))
    check_run_consistent(run_dir)
    pooling = base / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode_mean_tokens": False,
                                   "pooling_mode_cls_token": True}))
    with pytest.raises(UserError, match=r"final/ is a LoRA adapter and its base .* changed since training"):
        check_run_consistent(run_dir)


def test_the_adapter_initialisation_follows_the_seed(tiny_model_dir):
    def lora_a(seed: int) -> list[torch.Tensor]:
        model, _ = load_model(ModelConfig(name=str(tiny_model_dir)))
        add_lora(model, AdapterConfig(r=4), seed=seed)
        return [p.detach() for n, p in model.named_parameters() if "lora_A" in n]

    assert all(torch.equal(a, b) for a, b in zip(lora_a(7), lora_a(7)))
    assert not all(torch.equal(a, b) for a, b in zip(lora_a(7), lora_a(8)))


def test_an_adapter_naming_the_bundled_models_hub_release_loads_offline_onto_the_bundled_copy(tmp_path):
    """A published quickstart adapter names sentence-transformers/all-MiniLM-L6-v2 at the pinned commit."""
    from core.model import BUNDLED, adapter_base_name, check_model_config

    spec = BUNDLED["all-MiniLM-L6-v2"]
    config = ModelConfig(name="bundled:all-MiniLM-L6-v2")
    model, resolved = load_model(config)
    assert adapter_base_name(resolved) == spec.hub_id and resolved.revision == spec.revision
    add_lora(model, AdapterConfig(r=2), seed=0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)
    model.save_pretrained(str(tmp_path / "adapter"))
    name_adapter_base(tmp_path / "adapter", adapter_base_name(resolved), resolved.revision)
    expected = model.eval().encode(TEXTS)
    assert check_model_config(ModelConfig(name=str(tmp_path / "adapter"))).base_model == spec.hub_id
    loaded, _ = load_model(ModelConfig(name=str(tmp_path / "adapter")))
    np.testing.assert_allclose(loaded.encode(TEXTS), expected, atol=1e-5)


def test_adapter_targets_are_checked_on_the_architecture_before_any_weight_is_loaded(tiny_model_dir, monkeypatch):
    from core import model as model_module
    from core.model import check_model_config

    monkeypatch.setattr(model_module, "_load_folder", lambda *a, **k: pytest.fail("weights were loaded"))
    config = ModelConfig(name=str(tiny_model_dir), adapter=AdapterConfig(target_modules=("qkv",)))
    with pytest.raises(UserError, match=r"'qkv' matches no layer LoRA can adapt in this bert model\. Layers that fit: "
                                        r"dense, key, query, value \(set model.adapter.target_modules to some"):
        check_model_config(config)
    check_model_config(config.model_copy(update={"adapter": AdapterConfig(target_modules=("key", "dense"))}))


def test_push_publishes_the_adapter_or_with_merge_adapter_the_merged_model(lora_run, tmp_path):
    from sentence_transformers import SentenceTransformer

    from configs.cli import run
    from train.push.publish import main as push_main

    for merge, folder in ((False, tmp_path / "adapter"), (True, tmp_path / "merged")):
        args = [str(lora_run), f"push.local_dir={folder}", "push.allow_regression=true", f"push.merge_adapter={merge}"]
        assert run(lambda args=args: push_main(args)) == 0
        assert is_adapter_folder(folder) is not merge
    plain = SentenceTransformer(str(tmp_path / "merged"), device="cpu", local_files_only=True)
    assert type(plain[0].model).__name__ == "BertModel"  # no peft wrapper: loads anywhere


def test_merge_adapter_on_a_full_model_is_refused(tmp_path, tiny_model_dir, capsys):
    from configs.cli import run
    from conftest import trained_incidents_run
    from train.push.publish import main as push_main

    run_dir = trained_incidents_run(tmp_path, tiny_model_dir, cache_dir=None)
    args = [str(run_dir), f"push.local_dir={tmp_path / 'pub'}", "push.allow_regression=true", "push.merge_adapter=true"]
    assert run(lambda: push_main(args)) == 2
    assert "holds a full model, not a LoRA adapter" in capsys.readouterr().err
    assert not (tmp_path / "pub").exists()
