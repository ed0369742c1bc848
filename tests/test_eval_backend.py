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
