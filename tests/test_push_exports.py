"""``python -m train.push`` with push.export and push.mlflow: the exports land in the published folder (and on the Hub)
with their parity table in the card and eval_exports.json, the published folder is registered in MLflow and loads
back with the same embeddings, and a refused export or an unreachable MLflow server publishes nothing."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants

from configs.cli import run
from configs.runs import load_run
from conftest import trained_incidents_run
from fake_hub import FakeHub
from train.push.publish import hub_retry_command

TEXTS = ["disk full on server", "my mail is not arriving", "printer paper jam"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir) -> Path:
    """A trained tiny run, not evaluated (so every push here says push.allow_regression=true)."""
    return trained_incidents_run(tmp_path_factory.mktemp("push_exports_run"), tiny_model_dir)


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


def push(run_dir: Path, *overrides: str) -> int:
    from train.push.publish import main as push_main

    return run(lambda: push_main([str(run_dir), "push.allow_regression=true", *overrides]))


def encode(folder: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_numpy=True)


def loaded_version(uri: str, name: str, version: str):
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    return mlflow.pyfunc.load_model(client.get_model_version_download_uri(name, version))


def test_push_with_an_export_publishes_it_with_its_parity_table(run_dir, tmp_path):
    target = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={target}", "push.export=[onnx]") == 0
    assert (target / "onnx" / "model.onnx").is_file()
    rows = json.loads((target / "eval_exports.json").read_text())["exports"]
    assert [(r["export"], r["precision"], r["within_target"]) for r in rows] == [("onnx", "fp32", True)]
    assert abs(rows[0]["delta"]) <= 1e-3 and rows[0]["min_cosine"] >= 0.9999
    card = (target / "README.md").read_text()
    assert "## Exports (ONNX / OpenVINO)" in card
    assert "| onnx (fp32) | `onnx/model.onnx` | incidents/ndcg@10:" in card
    where = str(target.resolve())  # the card loads the published folder by its real path, from anywhere
    assert f"model = SentenceTransformer({where!r}, backend='onnx'" in card and f"folder = {where!r}" in card
    manifest = json.loads((target / "embtune_manifest.json").read_text())["files"]
    assert {"onnx/model.onnx", "eval_exports.json"} <= set(manifest)


def test_push_without_export_has_no_exports_section(run_dir, tmp_path):
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}") == 0
    assert "## Exports" not in (tmp_path / "pub" / "README.md").read_text()
    assert not (tmp_path / "pub" / "onnx").exists() and not (tmp_path / "pub" / "eval_exports.json").exists()


def test_push_registers_the_published_folder_in_mlflow(run_dir, tmp_path, caplog):
    target, uri = tmp_path / "pub", f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = (f"push.local_dir={target}", "push.mlflow.registered_model_name=incidents",
                 f"push.mlflow.tracking_uri={uri}")
    assert push(run_dir, *overrides) == 0
    assert "registered incidents version 1 in MLflow at sqlite:///" in caplog.text
    vectors = np.asarray(loaded_version(uri, "incidents", "1").predict(TEXTS))
    assert np.abs(vectors - encode(target)).max() <= 1e-6


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9", "nosuchscheme://host/path"], ids=["unreachable", "unknown"])
def test_unusable_mlflow_publishes_nothing(run_dir, tmp_path, capsys, uri):
    target = tmp_path / "pub"
    code = push(run_dir, f"push.local_dir={target}", "push.mlflow.registered_model_name=incidents",
                f"push.mlflow.tracking_uri={uri}")
    assert code == 2
    assert "is unreachable or has no model registry" in capsys.readouterr().err
    assert not target.exists() and not list(tmp_path.glob(".pub*"))


def test_export_that_cannot_run_publishes_nothing(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}", "push.export=[openvino]") == 2
    assert "push.export openvino needs the package 'openvino'" in capsys.readouterr().err
    assert not (tmp_path / "pub").exists()


def test_hub_only_push_sends_the_exports_and_registers_the_staged_folder(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_exportsTestToken0123456789")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with FakeHub(lfs_suffixes=(".safetensors", ".onnx")) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        assert push(run_dir, "push.repo_id=acme/tiny", "push.export=[onnx]",
                    "push.mlflow.registered_model_name=incidents", f"push.mlflow.tracking_uri={uri}") == 0
        remote = hub.files[("acme/tiny", "main")]
    assert {"onnx/model.onnx", "eval_exports.json"} <= set(remote)
    assert "snapshot_download('acme/tiny')" in remote["README.md"].decode()
    loaded = loaded_version(uri, "incidents", "1")  # the staging folder is gone; MLflow kept its own copy
    assert np.abs(np.asarray(loaded.predict(TEXTS)) - encode(run_dir / "final")).max() <= 1e-6


def test_hub_retry_command_keeps_exports_and_mlflow(trained):
    config = load_run(str(trained), ["push.repo_id=acme/tiny", "push.export=[onnx,openvino_int8]",
                                     "push.mlflow.registered_model_name=incidents"])
    args = shlex.split(hub_retry_command(config))
    assert args[-3:] == ["push.export=[onnx,openvino_int8]", "push.mlflow.experiment=embtune",
                         "push.mlflow.registered_model_name=incidents"]
    assert load_run(args[3], args[4:]).push.export == ("onnx", "openvino_int8")  # the command parses back
