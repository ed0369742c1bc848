"""The run folder: resolved config, versions, fingerprints, and atomic writes so nothing is ever half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from configs.errors import UserError
from configs.load import RESOLVED_NAME, dump_config, load_config
from configs.schema import RunConfig

LIBRARIES = ("sentence-transformers", "transformers", "torch", "datasets", "accelerate", "scikit-learn", "pydantic")


def is_main_process() -> bool:
    """Rank 0 (or a single process): only it writes files, under torchrun or accelerate alike."""
    return int(os.environ.get("RANK", "0")) == 0


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary name beside ``path``, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target``, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def write_resolved(config: RunConfig) -> Path:
    """Write ``config.resolved.yaml`` and ``versions.json`` into the run folder (main process only)."""
    run_dir = Path(config.run_dir)
    if is_main_process():
        atomic_write_text(run_dir / RESOLVED_NAME, dump_config(config))
        atomic_write_json(run_dir / "versions.json", library_versions())
    return run_dir


def load_run(config_or_run: str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The resolved config of a trained run: from a run folder, or from the run_dir a YAML names."""
    if Path(config_or_run).is_dir():  # a run folder is where it is now, wherever it was trained
        overrides = [f"run_dir={config_or_run}", *overrides]
    given = load_config(config_or_run, overrides)
    resolved = Path(given.run_dir) / RESOLVED_NAME
    if not resolved.is_file():
        raise UserError(
            f"No trained run at {given.run_dir} ({resolved} is missing). Run 'python -m train {config_or_run}' first."
        )
    return load_config(resolved, overrides)
