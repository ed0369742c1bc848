"""evaluate.backend: the same evaluation run on an ONNX export of both models gives the PyTorch numbers."""

from __future__ import annotations

import json

import pytest

from conftest import trained_incidents_run

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    return trained_incidents_run(tmp_path_factory.mktemp("backend"), tiny_model_dir, cache_dir=None,
                                 keyword=False)


def evaluate(run_dir, *overrides) -> dict:
    from configs.cli import run
    from evaluate.__main__ import main

    assert run(lambda: main([str(run_dir), *overrides])) == 0
    return json.loads((run_dir / "eval" / "report.json").read_text())


def test_an_onnx_backend_evaluation_matches_pytorch_and_is_recorded_as_such(run_dir):
    torch_report = evaluate(run_dir, "evaluate.precision=fp32")
    onnx_report = evaluate(run_dir, "evaluate.backend=onnx")
    for name, info in torch_report["datasets"].items():
        for metric, values in info["metrics"].items():
            other = onnx_report["datasets"][name]["metrics"][metric]
            for side in ("baseline", "tuned"):
                assert other[side] == pytest.approx(values[side], abs=1e-3), (name, metric, side)
    assert {m["backend"] for m in onnx_report["encoder"].values()} == {"onnx"}
    assert {m["precision"] for m in onnx_report["encoder"].values()} == {"fp32"}
    assert onnx_report["encoder"]["tuned"]["fingerprint"] != torch_report["encoder"]["tuned"]["fingerprint"]
    assert (run_dir / "eval" / "exports").is_dir()  # exported once, reused by the next evaluation


# ---------------------------------------------------------------------------------------------- evaluate.backend: auto
def auto_settings(**kwargs):
    from configs.schema import EvaluateConfig

    return EvaluateConfig(backend="auto", **kwargs)


def test_auto_picks_the_openvino_export_on_a_cpu_without_native_bf16(tiny_model_dir, monkeypatch):
    pytest.importorskip("openvino")
    import core.embed
    from core.export import resolve_backend
    from core.model import load_model_folder

    model = load_model_folder(tiny_model_dir, "the model", device="cpu")
    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "fp32")  # as on an AVX2-only CPU
    backend, why = resolve_backend(model, tiny_model_dir, auto_settings())
    assert backend == "openvino" and why.startswith("auto:")
    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "bf16")  # AVX512-BF16 / AMX
    assert resolve_backend(model, tiny_model_dir, auto_settings())[0] == "torch"


def test_auto_keeps_pytorch_where_no_export_can_run(tiny_model_dir, tmp_path, monkeypatch):
    import shutil
    import types

    import core.embed
    import core.onnx_encoder
    from configs.errors import UserError
    from core.export import resolve_backend
    from core.model import load_model_folder

    model = load_model_folder(tiny_model_dir, "the model", device="cpu")
    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "fp32")
    on_gpu = types.SimpleNamespace(device=types.SimpleNamespace(type="cuda"))
    assert resolve_backend(on_gpu, tiny_model_dir, auto_settings()) == (
        "torch", "auto: the model runs on cuda, where PyTorch is the fast path")
    assert resolve_backend(model, None, auto_settings())[0] == "torch"  # a miner of its own
    # a pipeline the exporter does not handle (a Dense layer after pooling)
    odd = shutil.copytree(tiny_model_dir, tmp_path / "odd")
    modules = json.loads((odd / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (odd / "modules.json").write_text(json.dumps(modules))
    backend, why = resolve_backend(model, odd, auto_settings())
    assert backend == "torch" and "Transformer -> Pooling -> Dense" in why and "Set evaluate.backend" not in why

    def missing(package, what):
        raise UserError(f"{what} needs the package '{package}', which is not installed: pip install it.")

    monkeypatch.setattr(core.onnx_encoder, "require", missing)
    monkeypatch.setattr("core.export.require", missing)
    backend, why = resolve_backend(model, tiny_model_dir, auto_settings())
    assert backend == "torch" and "not installed" in why
    # an explicit backend is never second-guessed
    from configs.schema import EvaluateConfig

    assert resolve_backend(model, tiny_model_dir, EvaluateConfig(backend="onnx"))[0] == "onnx"


def test_auto_falls_back_to_pytorch_when_the_export_fails_but_an_explicit_backend_fails_loudly(
        tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    import core.embed
    import core.export
    from configs.errors import UserError
    from configs.schema import EvaluateConfig
    from core.model import load_model_folder

    model = load_model_folder(tiny_model_dir, "the model", device="cpu")
    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "fp32")

    def fails(*args, **kwargs):
        raise UserError("The ONNX exporter cannot export the model: TracerError: no. Set evaluate.backend: torch.")

    monkeypatch.setattr(core.export, "load_backend", fails)
    encoder, precision, backend = core.export.encoder_for(model, tiny_model_dir, auto_settings(), tmp_path)
    assert (encoder, precision, backend) == (model, "fp32", "torch")
    with pytest.raises(UserError, match="cannot export"):
        core.export.encoder_for(model, tiny_model_dir, EvaluateConfig(backend="openvino"), tmp_path)


def test_auto_evaluates_both_models_through_openvino_with_the_pytorch_numbers(tmp_path_factory, tiny_model_dir,
                                                                              monkeypatch):
    """evaluate.backend: auto on a CPU without native bf16: both models run as OpenVINO exports, the report says
    so, and the metrics are PyTorch's."""
    pytest.importorskip("openvino")
    import core.embed

    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "fp32")
    tmp = tmp_path_factory.mktemp("auto")
    run = trained_incidents_run(tmp, tiny_model_dir, cache_dir=str(tmp / "cache"), keyword=False, precision="fp32")
    torch_report = evaluate(run)
    auto_report = evaluate(run, "evaluate.backend=auto")
    assert {m["backend"] for m in auto_report["encoder"].values()} == {"openvino"}
    for name, info in torch_report["datasets"].items():
        for metric, values in info["metrics"].items():
            for side in ("baseline", "tuned"):
                assert auto_report["datasets"][name]["metrics"][metric][side] == pytest.approx(values[side], abs=1e-3)


def test_under_auto_mining_stores_the_vectors_the_baseline_then_reads(tmp_path, tiny_model_dir, monkeypatch):
    """Mining and evaluation resolve auto alike, so the base model's corpus vectors mining stored (through its
    OpenVINO export) are found under the encoder fingerprint evaluation looks up: nothing is encoded twice."""
    pytest.importorskip("openvino")
    from pathlib import Path

    from test_negatives import beir_folder, mining_config

    import core.embed
    from configs.load import validate
    from core.embed_cache import store_for
    from core.export import encoder_for
    from core.model import load_model
    from data.prepare import prepare

    monkeypatch.setattr(core.embed, "resolve_precision", lambda setting, model: "fp32")
    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path))
    raw["evaluate"].update(cache_dir=str(tmp_path / "cache"), backend="auto")
    config = validate(raw)
    prepared = prepare(config)
    assert prepared.mining["backend"] == "openvino"
    base, resolved = load_model(config.model)
    export, precision, backend = encoder_for(base, resolved.path, config.evaluate, Path(config.run_dir))
    assert (type(export).__name__, precision, backend) == ("ExportEncoder", "fp32", "openvino")
    keys = [("document", "", text) for text in dict.fromkeys(prepared.train.rows["positive"])]
    _, missing = store_for(tmp_path / "cache", resolved.fingerprint, export, precision, backend).lookup(keys)
    assert keys and not missing
