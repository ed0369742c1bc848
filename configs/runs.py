"""The run folder: resolved config, versions, fingerprints, and atomic writes so nothing is ever half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from configs.errors import UserError
from configs.load import RESOLVED_NAME, dump_config, load_config
from configs.schema import RunConfig

log = logging.getLogger(__name__)

LIBRARIES = ("sentence-transformers", "transformers", "torch", "datasets", "accelerate", "scikit-learn", "pydantic")


def is_main_process() -> bool:
    """Rank 0 (or a single process): only it writes files, under torchrun or accelerate alike."""
    return int(os.environ.get("RANK", "0")) == 0


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)  # reading the umask means setting it; put it back at once
    return umask


def normal_permissions(folder: Path) -> None:
    """Give a folder built under ``mkdtemp`` (0700) and files written by ``mkstemp`` (0600) or by libraries the modes
    a new folder and file get under the user's umask, so a teammate or a serving container can read them."""
    umask = current_umask()
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary name beside ``path``, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide the file from teammates
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target``, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        normal_permissions(tmp)
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
    """Write ``config.resolved.yaml`` (headed by its config hash) and ``versions.json`` (main process only)."""
    run_dir = Path(config.run_dir)
    if is_main_process():
        if _finished_hash(run_dir) not in (None, config_hash(config)):  # `python -m data` with other settings
            move_aside_finished(run_dir)
        header = f"# config_hash: {config_hash(config)}\n"
        atomic_write_text(run_dir / RESOLVED_NAME, header + dump_config(config))
        atomic_write_json(run_dir / "versions.json", library_versions())
    return run_dir


# ------------------------------------------------------------------------------------------------ run identity
# Keys that cannot change what training produces: where the run lives, how often it logs or saves, how it is
# evaluated and published. A resume may change them; everything else must match the interrupted run.
NOT_TRAINING = ("run_dir", "evaluate", "push", "train.logging_steps", "train.dataloader_workers", "train.resume",
                "train.save_steps", "train.save_total_limit", "train.report_to", "train.tracking_uri")


def training_settings(config: RunConfig) -> dict[str, object]:
    """The settings that differ from their defaults, as flat ``dotted.key -> value``, without ``NOT_TRAINING`` keys.

    Defaults are left out so that a key a later embtune adds (with a default that keeps today's behaviour) does not
    change the identity of runs trained before it existed."""
    flat: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix.rstrip(".")] = node

    walk(config.model_dump(mode="json", exclude_defaults=True), "")
    return {k: v for k, v in flat.items() if not any(k == n or k.startswith(n + ".") for n in NOT_TRAINING)}


def config_hash(config: RunConfig) -> str:
    """The one identity of a run's training settings (shared by config.resolved.yaml, data/, checkpoints, run.json)."""
    return hashlib.sha256(json.dumps(training_settings(config), sort_keys=True).encode()).hexdigest()[:16]


def changed_settings(old: RunConfig, new: RunConfig) -> list[str]:
    """``key: old -> new`` for every training setting that differs."""
    before, after = training_settings(old), training_settings(new)
    keys = sorted(set(before) | set(after))
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


# ------------------------------------------------------------------------------------------------ the run lock
LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/.lock`` (pid + host) while training. A live holder refuses us; a dead one's lock is taken over.

    Only the main process locks: under torchrun every rank runs this code against the same folder."""
    if not is_main_process():
        yield
        return
    lock = run_dir / LOCK_NAME
    _take_lock(lock)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()


def _take_lock(lock: Path) -> None:
    lock.parent.mkdir(parents=True, exist_ok=True)
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%F %T")})
    # Written in full under a temporary name, then linked into place: link() fails if the lock exists, and a reader
    # never sees a lock without its pid (which it would take for a dead process's).
    fd, tmp = tempfile.mkstemp(prefix=".lock.", dir=lock.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(mine)
    try:
        for _ in range(2):
            try:
                os.link(tmp, lock)
                return
            except FileExistsError:
                holder = _read_lock(lock)
                if holder and _alive(holder):
                    raise UserError(
                        f"{lock.parent} is in use: process {holder['pid']} on {holder['host']} has been training "
                        f"there since {holder.get('since', '?')}. Wait for it, stop it, or choose another run_dir=..."
                    ) from None
                log.warning("taking over the lock of a process that is gone (%s)", holder or "unreadable lock")
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
        raise UserError(f"Could not lock {lock.parent}: another process keeps taking {lock}. Try again.")
    finally:
        os.unlink(tmp)


def _read_lock(lock: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        holder = json.loads(lock.read_text())
        if isinstance(holder, dict) and "pid" in holder:
            return holder
    return None


def _alive(holder: dict) -> bool:
    """Another host's process cannot be checked from here, so it counts as alive (the message names the host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# ------------------------------------------------------------------------------------------ a consistent folder
# What a finished run consists of. run.json goes first when moving aside: without it nothing counts as finished.
FINISHED_PARTS = ("run.json", "final", "eval", "checkpoints", "data", RESOLVED_NAME, "versions.json")


def clean_orphans(run_dir: Path) -> None:
    """Remove temporary folders and files a crash left behind (``.final.*``, ``.data.*``, ``.run.json.*`` ...)."""
    if not run_dir.is_dir():
        return
    for item in run_dir.iterdir():
        if item.name.startswith(".") and item.name not in (LOCK_NAME,) and item.name.count(".") >= 2:
            log.warning("removing %s, left behind by an interrupted run", item)
            shutil.rmtree(item) if item.is_dir() else item.unlink()


def _finished_hash(run_dir: Path) -> str | None:
    """The config hash of the finished run in ``run_dir`` ('' if unreadable), or None when there is none."""
    info = run_dir / "run.json"
    if not info.is_file():
        return None
    with contextlib.suppress(ValueError, OSError):
        return json.loads(info.read_text()).get("config_hash") or ""
    return ""


def move_aside_finished(run_dir: Path) -> Path | None:
    """Move a finished run's parts (or a final/ whose run.json a crash never wrote) into ``run_dir/previous/RUN_ID``,
    so a new run never mixes with them."""
    info = run_dir / "run.json"
    if not info.is_file() and not (run_dir / "final").exists():
        return None
    old_id = "unfinished"
    with contextlib.suppress(ValueError, OSError):
        old_id = json.loads(info.read_text()).get("run_id") or "unknown"
    target = run_dir / "previous" / f"{old_id}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True)
    for name in FINISHED_PARTS:
        if (run_dir / name).exists():
            (run_dir / name).rename(target / name)
    log.warning("%s held a finished run (%s): moved it to %s; delete that folder if you do not need it",
                run_dir, old_id, target)
    return target


def check_writable(run_dir: Path) -> None:
    """A read-only or impossible run_dir fails before any work, not after hours of training."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run_dir, prefix=".probe.", delete=True)
        probe.close()
    except OSError as err:
        raise UserError(f"run_dir {run_dir} cannot be written ({err.strerror}). Choose a writable folder with "
                        "run_dir=PATH.") from None


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
