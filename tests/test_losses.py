"""What the loss specs add to the library losses: Matryoshka wrapping and its checks, GIST's frozen guide, and
cached losses that really embed in mini-batches. Mechanics on the tiny model (hidden size 32)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

from configs.cli import run
from configs.errors import UserError
from configs.load import validate
from conftest import tiny_config, write_config
from core.model import load_model
from data.prepare import prepare
from train.losses import LOSSES, check_loss_fits_model
from train.trainer import build_trainer


def _pairs_config(tmp_path, tiny_model_dir, pairs_csv, loss: dict):
    data = {"train": {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"},
                      "group_column": "topic"}}
    return validate(tiny_config(tmp_path, tiny_model_dir, data, loss))


def _trainer(config):
    model, _ = load_model(config.model)
    prepared = prepare(config)
    return model, build_trainer(config, model, prepared.train, prepared.dev)


def _snapshot(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module) -> bool:
    return any(not torch.equal(b, a.detach()) for b, a in zip(before, module.parameters()))


# ------------------------------------------------------------------------------------------------------- Matryoshka
@pytest.mark.parametrize("loss_name", ["mnrl", "cached_mnrl"])
def test_matryoshka_dims_wrap_the_loss_and_a_step_runs(loss_name, tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": loss_name, "matryoshka_dims": [32, 16, 8]})
    model, trainer = _trainer(config)
    assert isinstance(trainer.loss, MatryoshkaLoss)
    assert trainer.loss.matryoshka_dims == (32, 16, 8)
    before = _snapshot(model)
    trainer.train()
    assert _changed(before, model)


def test_without_matryoshka_dims_the_loss_is_not_wrapped(tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "mnrl"})
    assert not isinstance(_trainer(config)[1].loss, MatryoshkaLoss)


def test_a_matryoshka_dim_above_the_model_size_is_a_clear_error(tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "mnrl", "matryoshka_dims": [64, 16]})
    model, _ = load_model(config.model)
    message = r"loss.matryoshka_dims: \[64\] exceed the model's embedding size 32\. Use sizes up to 32"
    with pytest.raises(UserError, match=message):
        check_loss_fits_model(config.loss, model)
    with pytest.raises(UserError, match=message):  # the build path checks too, before a trainer exists
        build_trainer(config, model, prepare(config).train, None)


def test_a_matryoshka_dim_above_the_model_size_stops_the_run_before_training(tmp_path, tiny_model_dir, pairs_csv,
                                                                             capsys):
    from train.__main__ import main

    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "mnrl", "matryoshka_dims": [64]})
    path = write_config(tmp_path, config.model_dump(mode="json"))
    assert run(lambda: main([str(path)])) == 2
    assert "exceed the model's embedding size 32" in capsys.readouterr().err
    assert not (tmp_path / "run" / "final").exists()


def test_a_loss_that_cannot_be_wrapped_is_refused(tmp_path, tiny_model_dir, pairs_csv, monkeypatch):
    monkeypatch.setitem(LOSSES, "mnrl", dataclasses.replace(LOSSES["mnrl"], matryoshka=False))
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "mnrl", "matryoshka_dims": [16]})
    with pytest.raises(UserError, match="loss 'mnrl' cannot be wrapped in MatryoshkaLoss"):
        check_loss_fits_model(config.loss, load_model(config.model)[0])


# ------------------------------------------------------------------------------------------------------------- GIST
@pytest.mark.parametrize("loss_name", ["gist", "cached_gist"])
def test_the_default_guide_is_a_frozen_copy_that_does_not_train(loss_name, tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": loss_name})
    model, trainer = _trainer(config)
    guide = trainer.loss.guide
    assert guide is not model and not guide.training
    assert not any(p.requires_grad for p in guide.parameters())
    assert all(torch.equal(g, m) for g, m in zip(guide.parameters(), model.parameters())), "guide = base weights"
    guide_before, model_before = _snapshot(guide), _snapshot(model)
    trainer.train()
    assert _changed(model_before, model)
    assert not _changed(guide_before, guide), "the guide's weights moved during training"


def test_a_guide_folder_is_loaded_frozen(tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "gist", "guide": str(tiny_model_dir)})
    guide = _trainer(config)[1].loss.guide
    assert not guide.training and not any(p.requires_grad for p in guide.parameters())


def test_a_missing_guide_folder_is_a_clear_error(tmp_path, tiny_model_dir, pairs_csv, capsys):
    from train.__main__ import main

    missing = tmp_path / "no-such-guide"
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "gist", "guide": str(missing)})
    with pytest.raises(UserError, match=f"loss.guide: folder {missing} does not exist"):
        check_loss_fits_model(config.loss, load_model(config.model)[0])
    assert run(lambda: main([str(write_config(tmp_path, config.model_dump(mode="json")))])) == 2
    assert "loss.guide: folder" in capsys.readouterr().err


def test_a_guide_folder_that_is_not_a_model_is_a_clear_error(tmp_path, tiny_model_dir, pairs_csv):
    (tmp_path / "empty").mkdir()
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "gist", "guide": str(tmp_path / "empty")})
    with pytest.raises(UserError, match=r"loss.guide: .*empty is not a model folder \(it has neither modules.json"):
        _trainer(config)


# ----------------------------------------------------------------------------------------------------------- cached
def test_cached_mnrl_embeds_a_batch_larger_than_its_mini_batch_in_pieces(tmp_path, tiny_model_dir, pairs_csv):
    config = _pairs_config(tmp_path, tiny_model_dir, pairs_csv, {"name": "cached_mnrl", "mini_batch_size": 2})
    model, trainer = _trainer(config)
    assert config.train.batch_size == 4 > trainer.loss.mini_batch_size == 2
    sizes = []  # rows per training forward pass (encode() for the dev evaluator runs in eval mode)
    model[0].register_forward_hook(
        lambda module, args, out: sizes.append(len(args[0]["input_ids"])) if module.training else None)
    before = _snapshot(model)
    trainer.train()
    assert _changed(before, model)
    assert sizes and max(sizes) == 2, f"forward passes of {sorted(set(sizes))} rows, expected mini-batches of 2"
