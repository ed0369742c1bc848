"""``push.mlflow``: log a published folder in an MLflow tracking server and register it as a new model version.

The run holds the settings that made the model (params), the baseline / tuned / delta / CI numbers of report.json
(metrics), the report and the card (artifacts), and the model: the published folder itself behind a small pyfunc
(``train/push/mlflow_model.py``), registered as a new version of ``push.mlflow.registered_model_name``. With no
``tracking_uri`` everything goes to a SQLite file in the project folder (``./mlflow.db``, artifacts beside it in
``./mlartifacts``): no server to start. Browse it with ``mlflow ui --backend-store-uri sqlite:///mlflow.db``.

Nothing read from the environment is logged (the Hub token in particular); the version is registered last, so a
failure leaves a FAILED run and no new version.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from configs.errors import UserError
from configs.runs import training_settings
from configs.schema import RunConfig
from train.tracking import environment

MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
REPORT_FIELDS = ("baseline", "tuned", "delta", "ci_low", "ci_high", "p_value")
REQUIREMENTS = ("sentence-transformers", "transformers", "torch", "mlflow")


def tracking_uri(config: RunConfig) -> str:
    """``push.mlflow.tracking_uri``, or the SQLite file ``mlflow.db`` in the project (current) folder."""
    return config.push.mlflow.tracking_uri or f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"


def shown_uri(uri: str) -> str:
    """The URI without a password (``https://user:secret@host`` -> ``https://user:***@host``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


@contextlib.contextmanager
def _fail_fast() -> Iterator[None]:
    """MLflow retries an unreachable server for minutes by default; a pre-flight check should answer in seconds."""
    with environment({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}):
        yield


def check_mlflow(config: RunConfig) -> None:
    """Fail before anything is published when mlflow is missing or the tracking server / registry cannot be used."""
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise UserError("push.mlflow needs the package 'mlflow': pip install 'embtune[tracking]'.") from None
    uri = tracking_uri(config)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).parent.is_dir():
        raise UserError(f"push.mlflow.tracking_uri {uri}: the folder of the SQLite file does not exist. Create it, "
                        "or leave tracking_uri empty for ./mlflow.db.")
    try:
        with _fail_fast():
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except Exception as err:  # noqa: BLE001 - connection, auth and store errors all mean: cannot publish there
        raise UserError(f"MLflow at {shown_uri(uri)} is unreachable or has no model registry ({type(err).__name__}: "
                        f"{str(err)[:200]}); nothing was published. Start the server, fix push.mlflow.tracking_uri, "
                        "or leave it empty for a SQLite file in the project folder.") from None


def metric_name(*parts: str) -> str:
    """An MLflow-safe metric name: characters other than letters, digits, _ - . / and space become '_'."""
    return re.sub(r"[^\w\-./ ]", "_", "/".join(parts))


def report_metrics(report: dict | None) -> dict[str, float]:
    """``dataset/metric/field`` for every dataset and metric of report.json, and ``primary/field``."""
    if not report:
        return {}
    metrics = {}
    for dataset, info in report.get("datasets", {}).items():
        for metric, entry in info.get("metrics", {}).items():
            metrics.update({metric_name(dataset, metric, f): entry[f] for f in REPORT_FIELDS
                            if entry.get(f) is not None})
    primary = report.get("primary") or {}
    metrics.update({metric_name("primary", f): primary[f] for f in REPORT_FIELDS if primary.get(f) is not None})
    return {k: float(v) for k, v in metrics.items()}


def run_params(config: RunConfig, report: dict | None) -> dict[str, str]:
    """The settings that made the model (non-default, as in config_hash) and what it was measured against."""
    params = {metric_name(k): str(v)[:6000] for k, v in training_settings(config).items()}
    for key in ("base_model", "model_revision", "base_fingerprint", "tuned_fingerprint", "run_id"):
        if report and report.get(key):
            params[key] = str(report[key])
    if report and report.get("merge"):  # push.merge_ratio: the interpolation that was published
        params.update({f"merge_{key}": str(value) for key, value in report["merge"].items()})
    return params


def requirements() -> list[str]:
    """Pinned to what made and checked the model (torch without its local build tag, e.g. +cpu)."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in REQUIREMENTS]


def experiment_id(name: str, uri: str) -> str:
    """The experiment's id, created when missing; a local SQLite store keeps artifacts beside its file."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """Point mlflow's fluent API at ``uri`` for a block, then back (a process may also track training elsewhere)."""
    import mlflow

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def _log_model(folder: Path, registered_model_name: str) -> str:
    """Log ``folder`` as the run's pyfunc model and register it; returns the new version."""
    import mlflow
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    signature = ModelSignature(inputs=Schema([ColSpec("string")]),
                               outputs=Schema([TensorSpec(np.dtype("float32"), (-1, -1))]))  # (texts, dim)
    with warnings.catch_warnings():
        # mlflow's advice to add type hints and an input example: the signature is given, and an example would
        # load and run the model once more just to log it
        warnings.filterwarnings("ignore", message=".*(type hints|input example).*")
        info = mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE), artifacts={"model": str(folder)},
                                       signature=signature, pip_requirements=requirements(),
                                       registered_model_name=registered_model_name)
    return str(info.registered_model_version)


def register(config: RunConfig, folder: Path, report: dict | None) -> str:
    """Log the published ``folder`` (model, card README.md, eval_report.html) with the report's numbers, and
    register it as a new version of ``push.mlflow.registered_model_name``. Returns the version number."""
    import mlflow

    settings, uri = config.push.mlflow, tracking_uri(config)
    tags = {"embtune.run_id": (report or {}).get("run_id", ""), "embtune.evaluated": str(report is not None)}
    with _tracking(uri), mlflow.start_run(experiment_id=experiment_id(settings.experiment, uri),
                                          run_name=folder.name, tags=tags):
        mlflow.log_params(run_params(config, report))
        mlflow.log_metrics(report_metrics(report))
        for name in ("README.md", "eval_report.html"):
            if (folder / name).is_file():
                mlflow.log_artifact(str(folder / name))
        return _log_model(folder, settings.registered_model_name)
