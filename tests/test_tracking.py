"""Trackers while training (train.report_to): the tiny model trains with TensorBoard and MLflow, and both hold the
loss and dev metrics that run.json records, read back with the trackers' own readers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from configs.errors import UserError
from configs.load import validate
from configs.schema import TrainConfig
from conftest import INCIDENT_ROWS, REPO, tiny_config, write_config, write_csv
from train.tracking import (
    TRACKERS,
    mlflow_uri,
    tracking_arguments,
    tracking_environment,
    tracking_variables,
)

FAKE_TOKEN = "hf_embtuneTrackingTestTokenNeverLogged"


def _config(tmp_path: Path, model_dir: Path, **train):
    pairs = write_csv(tmp_path / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": 0.34},
                      {"name": "mnrl"})
    raw["train"].update(max_steps=3, eval_steps=1, **train)
    return raw


def test_the_trackers_are_the_schemas_names():
    names = get_args(get_args(TrainConfig.model_fields["report_to"].annotation)[0])
    assert set(TRACKERS) == set(names)


def test_no_tracker_reports_to_none_and_sets_nothing(tmp_path, tiny_model_dir):
    config = validate(_config(tmp_path, tiny_model_dir))
    assert tracking_arguments(config, tmp_path / "run") == {"report_to": "none", "run_name": "run"}
    assert tracking_variables(config, tmp_path / "run") == {}


def test_arguments_and_environment_point_into_the_run_folder(tmp_path, tiny_model_dir):
    config = validate(_config(tmp_path, tiny_model_dir, report_to=["tensorboard", "mlflow"]))
    run_dir = tmp_path / "run"
    assert tracking_arguments(config, run_dir, "r123") == {"report_to": ["tensorboard", "mlflow"], "run_name": "r123"}
    variables = tracking_variables(config, run_dir, "r123")
    assert variables["TENSORBOARD_LOGGING_DIR"] == str(run_dir.resolve() / "tensorboard" / "r123")
    assert variables["MLFLOW_TRACKING_URI"] == f"sqlite:///{run_dir.resolve()}/mlflow.db"
    assert variables["MLFLOW_EXPERIMENT_NAME"] == "embtune"
    assert json.loads(variables["MLFLOW_TAGS"])["embtune.run_id"] == "r123"
    given = validate(_config(tmp_path, tiny_model_dir, report_to=["mlflow"], tracking_uri="http://mlflow:5000"))
    assert mlflow_uri(given, run_dir) == "http://mlflow:5000"


def test_the_environment_is_restored_after_training(tmp_path, tiny_model_dir, monkeypatch):
    config = validate(_config(tmp_path, tiny_model_dir, report_to=["tensorboard", "mlflow"]))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///somewhere/else")
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    with tracking_environment(config, tmp_path / "run") as variables:
        assert os.environ["MLFLOW_TRACKING_URI"] == variables["MLFLOW_TRACKING_URI"] != "file:///somewhere/else"
        assert os.environ["TENSORBOARD_LOGGING_DIR"].endswith("tensorboard")
    assert os.environ["MLFLOW_TRACKING_URI"] == "file:///somewhere/else"
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ


@pytest.mark.parametrize("name", ["trackio", "wandb"])
def test_a_tracker_that_is_not_installed_names_its_package(tmp_path, tiny_model_dir, name):
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed here")
    config = validate(_config(tmp_path, tiny_model_dir, report_to=["tensorboard", name]))
    with pytest.raises(UserError, match=rf"train.report_to names {name}, but the {name} package is not installed. "
                                        rf"Install it with 'pip install {name}'"):
        tracking_arguments(config, tmp_path / "run")


def test_python_m_train_stops_before_training_when_a_tracker_is_missing(tmp_path, tiny_model_dir, monkeypatch,
                                                                        capsys):
    """The check runs when the trainer's arguments are built, before the first step: nothing reaches final/."""
    from configs.cli import run
    from train.__main__ import main as train_main

    monkeypatch.setattr("train.tracking.installed", lambda module: module != "mlflow")
    path = write_config(tmp_path, _config(tmp_path, tiny_model_dir, report_to=["mlflow"]))
    assert run(lambda: train_main([str(path)])) == 2
    assert "the mlflow package is not installed" in capsys.readouterr().err
    assert not (tmp_path / "run" / "final").exists()


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny_model_dir) -> tuple[Path, dict]:
    """``python -m data`` + ``python -m train`` on the tiny model with report_to [tensorboard, mlflow], a dev
    evaluation every step and a Hub token in the environment; returns (run_dir, run.json)."""

    tmp_path = tmp_path_factory.mktemp("tracked")
    raw = _config(tmp_path, tiny_model_dir, report_to=["tensorboard", "mlflow"])
    path = str(write_config(tmp_path, raw))
    # Separate processes, as a user runs them: MLflow keeps a process-wide tracking URI and experiment that other
    # tests (the registry) set, and python -m train must not depend on them.
    env = {**os.environ, "HF_TOKEN": FAKE_TOKEN, "PYTHONPATH": str(REPO)}
    for stage in ("data", "train"):
        done = subprocess.run([sys.executable, "-m", stage, path], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    return run_dir, json.loads((run_dir / "run.json").read_text())


def _dev_metric(record: dict) -> str:
    names = [k for k in record["dev_history"][0] if k.startswith("eval_dev_") and k.endswith("ndcg@10")]
    assert names, record["dev_history"][0]
    return names[0]


def test_tensorboard_and_mlflow_hold_the_loss_and_dev_metrics(tracked_run):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, record = tracked_run
    losses = {e["step"]: e["loss"] for e in record["loss_history"]}
    metric = _dev_metric(record)
    dev = {e["step"]: e[metric] for e in record["dev_history"]}
    assert sorted(losses) == [1, 2, 3] and sorted(dev) == [0, 1, 2, 3]  # dev step 0: the base model's score
    # TensorBoard: its own reader on the event file in RUN_DIR/tensorboard (checkpoints/ is gone after training).
    events = EventAccumulator(str(run_dir / "tensorboard" / record["run_id"])).Reload()
    tb_loss = {e.step: e.value for e in events.Scalars("train/loss")}
    tb_dev = {e.step: e.value for e in events.Scalars(metric.replace("eval_", "eval/", 1))}
    assert tb_loss == pytest.approx(losses, rel=1e-6) and tb_dev == pytest.approx(dev, rel=1e-6)
    # MLflow: the SQLite store in the run folder, one run in the 'embtune' experiment.
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir.resolve()}/mlflow.db")
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("embtune").experiment_id])
    history = {m.step: m.value for m in client.get_metric_history(mlflow_run.info.run_id, "loss")}
    mlflow_metric = metric.replace("@", "_")  # MLflow's callback replaces characters metric names may not hold
    mlflow_dev = {m.step: m.value for m in client.get_metric_history(mlflow_run.info.run_id, mlflow_metric)}
    assert history == pytest.approx(losses) and mlflow_dev == pytest.approx(dev)
    assert mlflow_run.data.tags["embtune.run_dir"] == str(run_dir.resolve())
    assert float(mlflow_run.data.params["learning_rate"]) == pytest.approx(1e-3)


def test_no_hub_token_reaches_a_tracker(tracked_run):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, record = tracked_run
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir.resolve()}/mlflow.db")
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("embtune").experiment_id])
    assert mlflow_run.data.params["hub_token"] == "<HUB_TOKEN>"  # transformers masks every *_token field
    logged = json.dumps([mlflow_run.data.params, mlflow_run.data.tags])
    events = EventAccumulator(str(run_dir / "tensorboard" / record["run_id"]), size_guidance={"tensors": 0}).Reload()
    texts = [t.tensor_proto.string_val[0].decode() for tag in events.Tags()["tensors"] for t in events.Tensors(tag)]
    assert any('"learning_rate": 0.001' in text for text in texts)  # the arguments were logged as text
    assert FAKE_TOKEN not in logged and not any(FAKE_TOKEN in text for text in texts)
