"""The run folder: resolved config, versions, fingerprints, and atomic writes so nothing is ever half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide the file from teammates
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:  # a full disk or Ctrl-C: no half-written temporary file stays behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_dir(target: Path, carry: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` at once, on error it is removed.

    Args:
        target: the folder to replace (or create).
        carry: which entries of the old ``target`` the new one keeps (copied in before the yield, hard links for
            files where the disk allows, so large files cost no space); None keeps nothing.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if carry is not None and target.is_dir():
            for item in sorted(target.iterdir()):
                if carry(item):
                    _copy(item, tmp / item.name)
        yield tmp
        normal_permissions(tmp)
        with sigint_deferred():  # between the two renames there is no target: Ctrl-C waits for the second
            old = target.with_name(f".{target.name}.old")
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
            tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy(source: Path, dest: Path) -> None:
    """Copy a file or folder, hard-linking files where possible (an ONNX export need not be written twice)."""
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, dest, copy_function=link_or_copy)
    else:
        link_or_copy(str(source), str(dest))


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block and raise it after: for steps that must not be cut in half.
    Only the main thread can set signal handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda *frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


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
        check_not_nested(run_dir)
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
    flat = _flat(config.model_dump(mode="json", exclude_defaults=True))
    return {k: v for k, v in flat.items() if not any(k == n or k.startswith(n + ".") for n in NOT_TRAINING)}


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    """A nested dump as ``dotted.key -> value`` (an empty section stays a value: ``{}``)."""
    if not (isinstance(node, dict) and node):
        return {prefix.rstrip("."): node}
    flat: dict[str, object] = {}
    for key, value in node.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat


def config_hash(config: RunConfig) -> str:
    """The one identity of a run's training settings (shared by config.resolved.yaml, data/, checkpoints, run.json)."""
    return hashlib.sha256(json.dumps(training_settings(config), sort_keys=True).encode()).hexdigest()[:16]


def changed_settings(old: RunConfig, new: RunConfig) -> list[str]:
    """``key: old -> new`` for every training setting that differs, with the values each run really used (a
    default shows as its value: ``seed: 42 -> 7``, never ``None -> 7``; a key only one run's loss has: 'not set')."""
    keys = sorted(set(training_settings(old)) | set(training_settings(new)))
    before, after = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    unset = "(not set)"
    return [f"{k}: {_shown(before, k, unset)} -> {_shown(after, k, unset)}" for k in keys
            if before.get(k, unset) != after.get(k, unset)]


def _shown(flat: dict[str, object], key: str, unset: str) -> str:
    return repr(flat[key]) if key in flat else unset


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


# What marks a folder as a run folder (or a checkpoint of one), and the parts of a run that are replaced or moved
# wholesale: a run folder inside one of them would be deleted with it, and one around them would mix two runs.
RUN_MARKERS = ("run.json", RESOLVED_NAME, LOCK_NAME, "embtune_checkpoint.json")
REPLACED_PARTS = ("final", "checkpoints", "data", "eval")


def is_run_folder(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in RUN_MARKERS)


def check_not_nested(run_dir: Path) -> None:
    """UserError when ``run_dir`` lies inside another run's final/, checkpoints/, data/ or eval/, or when its own
    such parts hold another run (the next atomic write of the part would delete that run)."""
    here = Path(run_dir).expanduser().resolve()
    for outer in here.parents:
        part = here.relative_to(outer).parts[0]
        if part in REPLACED_PARTS and is_run_folder(outer):
            raise UserError(f"run_dir {run_dir} is inside {outer / part}, a part of the run in {outer} that is "
                            "replaced as a whole (the next write there would delete this run). Choose a folder "
                            f"outside {outer}, e.g. run_dir={outer.parent / (outer.name + '-' + here.name)}.")
    for part in REPLACED_PARTS:
        found = _inner_run(here / part, own_checkpoints=part == "checkpoints")
        if found is not None:
            raise UserError(f"{here / part} holds another run's folder ({found}); training in {run_dir} replaces "
                            f"{part}/ as a whole and would delete it. Move {found} out of {here}, or choose another "
                            "run_dir=...")


def _inner_run(folder: Path, own_checkpoints: bool) -> Path | None:
    """The first run folder below ``folder`` (checkpoints/checkpoint-N of our own run are not another run)."""
    if not folder.is_dir():
        return None
    for marker in RUN_MARKERS:
        for path in folder.rglob(marker):
            inner = path.parent
            if own_checkpoints and marker == "embtune_checkpoint.json" and inner.parent == folder:
                continue
            return inner
    return None


def check_writable(run_dir: Path) -> None:
    """A run_dir nested in another run, read-only or impossible fails before any work, not after hours of training."""
    check_not_nested(run_dir)
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
