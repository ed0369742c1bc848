"""push.mlflow: a published folder logged and registered in MLflow, loaded back with the same embeddings; an
unreachable server refused before anything is published; the Hub token never reaches MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from configs.errors import UserError
from configs.load import validate
from train.push.mlflow_registry import check_mlflow, metric_name, register, report_metrics, shown_uri, tracking_uri

PLANTED = "hf_plantedTokenThatMustNeverBeLogged0123"
TEXTS = ["disk full on server", "my mail is not arriving", "printer paper jam"]
REPORT = {
    "run_id": "20260101-abc", "base_model": "tiny-bert", "tuned_fingerprint": "f" * 64,
    "datasets": {"incidents": {"metrics": {"ndcg@10": {"baseline": 0.5, "tuned": 0.6, "delta": 0.1, "ci_low": 0.04,
                                                       "ci_high": 0.16, "p_value": 0.002},
                                           "map@100": {"baseline": 0.4, "tuned": None, "delta": None,
                                                       "ci_low": None, "ci_high": None, "p_value": None}}}},
    "primary": {"dataset": "incidents", "metric": "ndcg@10", "baseline": 0.5, "tuned": 0.6, "delta": 0.1,
                "ci_low": 0.04, "ci_high": 0.16, "p_value": 0.002},
}


def mlflow_config(uri: str | None, name: str = "incidents-minilm"):
    return validate({"data": {"train": {"path": "train.csv"}}, "loss": {"name": "mnrl"},
                     "train": {"learning_rate": 3e-5},
                     "push": {"local_dir": "published", "mlflow": {"tracking_uri": uri,
                                                                  "registered_model_name": name}}})


@pytest.fixture(scope="module")
def registered(tiny_model_dir, tmp_path_factory):
    """A published folder (the tiny model, a card and a report) registered twice in a fresh SQLite store, with the
    Hub token planted in the environment."""
    root = tmp_path_factory.mktemp("mlflow")
    folder = root / "published"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "README.md").write_text("# card\n", encoding="utf-8")
    (folder / "eval_report.html").write_text("<html>report</html>", encoding="utf-8")
    config = mlflow_config(f"sqlite:///{root / 'mlflow.db'}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", PLANTED)
        check_mlflow(config)
        versions = [register(config, folder, REPORT), register(config, folder, None)]
    return root, folder, config, versions


def test_each_push_registers_a_new_version(registered):
    import mlflow

    assert registered[3] == ["1", "2"]
    assert not mlflow.get_tracking_uri().startswith("sqlite:///" + str(registered[0]))  # the global is put back


def test_registered_version_loads_back_with_the_same_embeddings(registered):
    import mlflow
    from mlflow import MlflowClient
    from sentence_transformers import SentenceTransformer

    root, folder, config, _ = registered
    client = MlflowClient(tracking_uri(config), registry_uri=tracking_uri(config))
    uri = client.get_model_version_download_uri("incidents-minilm", "1")
    loaded = mlflow.pyfunc.load_model(uri)
    expected = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert np.abs(np.asarray(loaded.predict(TEXTS)) - expected).max() <= 1e-6


def test_run_holds_params_report_metrics_card_and_report(registered):
    from mlflow import MlflowClient

    root, folder, config, _ = registered
    client = MlflowClient(tracking_uri(config), registry_uri=tracking_uri(config))
    version = client.get_model_version("incidents-minilm", "1")
    run = client.get_run(version.run_id)
    assert run.data.metrics["incidents/ndcg_10/delta"] == pytest.approx(0.1)
    assert run.data.metrics["primary/ci_low"] == pytest.approx(0.04)
    assert "incidents/map_100/tuned" not in run.data.metrics  # an undefined number is left out, not logged as 0
    assert run.data.params["train.learning_rate"] == "3e-05"
    assert run.data.params["tuned_fingerprint"] == "f" * 64
    assert {a.path for a in client.list_artifacts(version.run_id)} >= {"README.md", "eval_report.html"}


def test_hub_token_reaches_no_mlflow_file(registered):
    root = registered[0]
    leaked = [p for p in root.rglob("*") if p.is_file() and PLANTED.encode() in p.read_bytes()]
    assert leaked == []
    assert any(root.glob("mlartifacts/*/artifacts/README.md"))  # the scan did see the artifact store
    assert any(root.glob("mlartifacts/models/*/artifacts/artifacts/published/model.safetensors"))


def test_unreachable_server_is_a_clear_error_before_publishing():
    config = mlflow_config("http://user:secret@127.0.0.1:9")
    with pytest.raises(UserError, match=r"MLflow at http://user:\*\*\*@127.0.0.1:9 is unreachable .*nothing was "
                                        r"published\. Start the server, fix push.mlflow.tracking_uri"):
        check_mlflow(config)


def test_missing_sqlite_folder_is_a_clear_error(tmp_path):
    config = mlflow_config(f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}")
    with pytest.raises(UserError, match="the folder of the SQLite file does not exist"):
        check_mlflow(config)


def test_default_store_is_a_sqlite_file_in_the_project_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(mlflow_config(None)) == f"sqlite:///{Path(tmp_path).as_posix()}/mlflow.db"


def test_metric_names_are_mlflow_safe_and_none_is_skipped():
    assert metric_name("my set (v2)", "ndcg@10", "delta") == "my set _v2_/ndcg_10/delta"
    assert report_metrics(None) == {}
    assert shown_uri("https://host:5000") == "https://host:5000"
