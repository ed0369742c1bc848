"""Precision that fits the hardware: train.precision=auto picks bf16 on a bf16 GPU, fp16 on a GPU without bf16, bf16
on a CPU only where bf16 is native, else fp32; evaluate.precision=auto is bf16 only where native; mining and the dev
evaluation encode in the precision the final evaluation uses. The hardware is simulated with monkeypatch."""

from __future__ import annotations

import pytest
import torch

from configs.load import validate
from conftest import tiny_config
from core.embed import resolve_precision, training_precision


def hardware(monkeypatch, cuda: bool = False, gpu_bf16: bool = False, cpu_bf16: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: gpu_bf16)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: cpu_bf16)


@pytest.mark.parametrize(("machine", "expected", "why"), [
    ({"cuda": True, "gpu_bf16": True}, "bf16", "GPU computes bf16 natively"),
    ({"cuda": True, "gpu_bf16": False, "cpu_bf16": True}, "fp16", "no bf16, so fp16 with loss scaling"),
    ({"cpu_bf16": True}, "bf16", "CPU computes bf16 natively"),
    ({"cpu_bf16": False}, "fp32", "CPU has no native bf16"),
])
def test_auto_training_precision_fits_the_hardware(monkeypatch, machine, expected, why):
    hardware(monkeypatch, **machine)
    precision, reason = training_precision("auto")
    assert precision == expected and why in reason and reason.startswith("auto: ")


def test_an_explicit_training_precision_is_kept(monkeypatch):
    hardware(monkeypatch, cuda=True, gpu_bf16=True)
    assert training_precision("fp32") == ("fp32", "set by train.precision")


class OnDevice:
    def __init__(self, kind: str):
        self.device = torch.device(kind)


@pytest.mark.parametrize(("device", "machine", "expected"), [
    ("cuda", {"gpu_bf16": True}, "bf16"),
    ("cuda", {"gpu_bf16": False}, "fp32"),  # encoding has no fp16 path: fp32 where bf16 is not native
    ("cpu", {"cpu_bf16": True}, "bf16"),
    ("cpu", {"cpu_bf16": False}, "fp32"),
])
def test_auto_encoding_precision_fits_the_device(monkeypatch, device, machine, expected):
    hardware(monkeypatch, cuda=device == "cuda", **machine)
    assert resolve_precision("auto", OnDevice(device)) == expected
    assert resolve_precision("fp32", OnDevice(device)) == "fp32"


def test_mining_encodes_in_the_evaluation_precision(tmp_path, tiny_model_dir, pairs_csv, monkeypatch):
    import sentence_transformers.util

    from data.prepare import prepare

    seen = []
    original = sentence_transformers.util.mine_hard_negatives

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return original(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers.util, "mine_hard_negatives", spy)
    train = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    mining = {"num_negatives": 1, "range_min": 0, "range_max": 5, "relative_margin": None}
    for setting, bf16 in (("bf16", True), ("fp32", False)):
        raw = tiny_config(tmp_path, tiny_model_dir, {"train": train, "hard_negatives": mining}, {"name": "mnrl"},
                          evaluate={"precision": setting})
        prepared = prepare(validate(raw))
        assert seen[-1] is bf16
        assert prepared.mining["precision"] == setting


def test_the_dev_evaluation_encodes_in_the_evaluation_precision(tmp_path, tiny_model_dir, pairs_csv, monkeypatch):
    import evaluate.evaluators
    import train.trainer
    from core.model import load_model
    from data.prepare import prepare

    calls = []
    original = evaluate.evaluators.embed
    monkeypatch.setattr(evaluate.evaluators, "embed",
                        lambda *a, **k: calls.append(k["precision"]) or original(*a, **k))
    source = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    config = validate(tiny_config(tmp_path, tiny_model_dir, {"train": source, "dev_fraction": 0.3}, {"name": "mnrl"},
                                  evaluate={"precision": "bf16"}))
    model, _ = load_model(config.model)
    prepared = prepare(config)
    trainer = train.trainer.build_trainer(config, model, prepared.train, prepared.dev)
    metrics = trainer.evaluator(model)
    assert calls == ["bf16"] and metrics  # the evaluator encoded once, under bf16 autocast

