"""Trackers while training (``train.report_to``): where transformers' own callbacks send the loss and dev metrics.

We add no callback of our own: ``report_to`` names the library's integrations (TensorBoard, MLflow, trackio,
Weights & Biases) and this module only points them into the run folder. Two of them read their destination from the
environment when the trainer is built and when training starts, not from ``TrainingArguments``:

- TensorBoard reads ``TENSORBOARD_LOGGING_DIR`` when the trainer is built: we set ``RUN_DIR/tensorboard/RUN_ID``
  (its default lies under ``checkpoints/``, which is deleted once final/ is written);
- MLflow reads ``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME`` and ``MLFLOW_TAGS`` when training starts: we set
  ``train.tracking_uri`` or ``sqlite:///RUN_DIR/mlflow.db``, the experiment ``embtune``, and the run's id, folder
  and config hash as tags.

``tracking_environment`` sets them for the lifetime of the trainer and restores the previous values afterwards.
MLflow logs every ``TrainingArguments`` field as a parameter; ``TrainingArguments.to_dict`` masks every ``*_token``
field and we never set one, so no Hub token reaches a tracker.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError
from configs.runs import config_hash
from configs.schema import RunConfig

EXPERIMENT = "embtune"  # the MLflow experiment of every training run (push.mlflow.experiment defaults to it too)
TENSORBOARD_DIR = "tensorboard"


def tensorboard_environment(config: RunConfig, run_dir: Path, run_id: str | None) -> dict[str, str]:
    """One subfolder per run id, so ``tensorboard --logdir RUN_DIR/tensorboard`` shows a run trained again in the
    same folder as its own line, and a resumed run continues its own."""
    folder = run_dir.resolve() / TENSORBOARD_DIR
    return {"TENSORBOARD_LOGGING_DIR": str(folder / run_id if run_id else folder)}


def mlflow_uri(config: RunConfig, run_dir: Path) -> str:
    """``train.tracking_uri``, else a SQLite store in the run folder (no server needed)."""
    return config.train.tracking_uri or f"sqlite:///{(run_dir.resolve() / 'mlflow.db').as_posix()}"


def mlflow_environment(config: RunConfig, run_dir: Path, run_id: str | None) -> dict[str, str]:
    tags = {"embtune.run_dir": str(run_dir.resolve()), "embtune.config_hash": config_hash(config),
            **({"embtune.run_id": run_id} if run_id else {})}
    return {"MLFLOW_TRACKING_URI": mlflow_uri(config, run_dir), "MLFLOW_EXPERIMENT_NAME": EXPERIMENT,
            "MLFLOW_TAGS": json.dumps(tags)}


def no_environment(config: RunConfig, run_dir: Path, run_id: str | None) -> dict[str, str]:
    return {}  # trackio and wandb take their project and run name from the arguments and their own login


@dataclass(frozen=True)
class Tracker:
    module: str  # what must import for transformers' callback to work
    pip: str  # the package a user installs for it
    environment: Callable[[RunConfig, Path, str | None], dict[str, str]]  # what the callback reads from os.environ


TRACKERS: dict[str, Tracker] = {
    "tensorboard": Tracker("tensorboard", "tensorboard", tensorboard_environment),
    "mlflow": Tracker("mlflow", "mlflow", mlflow_environment),
    "trackio": Tracker("trackio", "trackio", no_environment),
    "wandb": Tracker("wandb", "wandb", no_environment),
}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_trackers(config: RunConfig) -> None:
    """Every tracker in ``train.report_to`` must be installed: say which package, before any training."""
    for name in config.train.report_to:
        tracker = TRACKERS[name]
        if not installed(tracker.module):
            raise UserError(f"train.report_to names {name}, but the {tracker.pip} package is not installed. Install "
                            f"it with 'pip install {tracker.pip}' (or 'pip install embtune[tracking]' for TensorBoard "
                            f"and MLflow), or remove {name} from train.report_to.")


def tracking_arguments(config: RunConfig, run_dir: Path, run_id: str | None = None) -> dict:
    """``TrainingArguments`` keywords for ``train.report_to``: the trackers (or "none") and the run's name there
    (the run id when known, else the run folder's name). Missing tracker packages are a UserError."""
    check_trackers(config)
    return {"report_to": list(config.train.report_to) or "none", "run_name": run_id or Path(run_dir).name}


def tracking_variables(config: RunConfig, run_dir: Path, run_id: str | None = None) -> dict[str, str]:
    """The environment the configured trackers' callbacks read (see the module's table)."""
    variables: dict[str, str] = {}
    for name in config.train.report_to:
        variables.update(TRACKERS[name].environment(config, Path(run_dir), run_id))
    return variables


@contextlib.contextmanager
def tracking_environment(config: RunConfig, run_dir: Path, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """Set ``tracking_variables`` while the trainer is built and trains; restore the previous environment after.
    Yields the variables set."""
    variables = tracking_variables(config, run_dir, run_id)
    with environment(variables):
        yield variables


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ`` for the block; restore each one (or its absence) after."""
    before = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
