"""What the four entry points share: ``CONFIG key=value ...`` parsing, generated ``--help``, friendly errors."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from configs.errors import UserError
from configs.load import load_config
from configs.schema import LOSS_CLASSES, RunConfig


def field_rows(model: type[BaseModel] = RunConfig, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, default, description) for every leaf field, walking nested sections."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "loss":
            for loss_name, cls in LOSS_CLASSES.items():
                yield from field_rows(cls, f"loss[{loss_name}].")
            continue
        annotation = field.annotation
        nested = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested and key not in ("evaluate.datasets",):
            yield from field_rows(nested[0], key + ".")
            continue
        default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
        yield key, default, field.description or ""


def help_text() -> str:
    lines = ["config keys (override any with key=value):"]
    for key, default, desc in field_rows():
        lines.append(f"  {key:<28} {desc}" + (f" [default: {default}]" if default else ""))
    return "\n".join(lines)


def markdown_table() -> str:
    rows = ["| key | default | what it does |", "|---|---|---|"]
    for key, default, desc in field_rows():
        rows.append(f"| `{key}` | `{default}` | {desc} |" if default else f"| `{key}` | | {desc} |")
    return "\n".join(rows)


def parse(argv: list[str] | None, prog: str, description: str, extra: Callable[[Any], None] | None = None):
    """Parse ``CONFIG [key=value ...] [--debug]``; returns (argparse namespace, RunConfig).

    Also records, for ``run``'s messages, the command as typed and the run folder it names."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="A YAML from configs/ (or, for evaluate and push, a run folder).")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2 loss.name=cosent")
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an unexpected error "
                        f"(or set {DEBUG_VARIABLE}=1).")
    if extra is not None:
        extra(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_intermixed_args(argv)
    CONTEXT.update(command=f"{prog} {shlex.join(argv)}".strip(), debug=args.debug)
    config = load_config(args.config, args.overrides)
    CONTEXT["run_dir"] = args.config if Path(args.config).is_dir() else config.run_dir  # a run folder is where it is
    return args, config


def quiet_bars_in_logs() -> None:
    """In a log file (stderr is not a terminal) a progress bar is kilobytes of carriage returns: switch every tqdm
    bar off (TQDM_DISABLE is read by tqdm itself); the trainer then prints a line every logging_steps instead."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm reads it when imported: for processes we start
        import datasets
        import huggingface_hub.utils
        import transformers

        datasets.disable_progress_bars()  # these were imported already: switch their bars off directly
        huggingface_hub.utils.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


DEBUG_VARIABLE = "EMBTUNE_DEBUG"
# What the entry point being run said about itself (set by ``parse``): the command and the run folder, for messages.
CONTEXT: dict[str, Any] = {}


PACKAGES = ("configs", "core", "data", "evaluate", "train")  # the pipeline's folders (tests/test_layout.py LAYERS)


def run(main: Callable[[], int]) -> int:
    """Run an entry point. A user's mistake prints one clear message and exits 2; Ctrl-C exits 130; a failure of the
    machine (disk full, permissions, a read-only disk, too many open files), an undecodable file or any unexpected
    error prints one line naming the path and what to do, and exits 1. The traceback is shown only with ``--debug``
    or ``EMBTUNE_DEBUG=1``."""
    quiet_bars_in_logs()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for ours in PACKAGES:  # our progress lines; libraries speak only to warn
        logging.getLogger(ours).setLevel(logging.INFO)
    CONTEXT.clear()
    try:
        return main()
    except UserError as err:
        _say(f"error: {err}")
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while training, or Ctrl-C in any other stage: no traceback
        _say("interrupted: nothing was finished; the newest complete checkpoint (if any) is kept")
        return 130
    except Exception as err:  # the last line of defence: the machine or a bug, never a bare traceback
        _say(f"error: {failure_message(err)}")
        return 1


def _say(message: str) -> None:
    """The one line a user reads; the traceback of the exception being handled only when debugging was asked for."""
    if CONTEXT.get("debug") or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        traceback.print_exc()
    print(message, file=sys.stderr)


def failure_message(err: BaseException) -> str:
    """What went wrong, on which path, and what to do: for an OSError by its errno, an undecodable file, or a bug."""
    run_dir = CONTEXT.get("run_dir")
    where = getattr(err, "filename", None) or run_dir or "the current folder"
    again = f"run the same command again: {CONTEXT['command']}" if CONTEXT.get("command") else "run the command again"
    if isinstance(err, UnicodeDecodeError):
        return (f"a file could not be read as {err.encoding}: byte 0x{err.object[err.start]:02x} at offset "
                f"{err.start} (run folder: {run_dir or '?'}). Save the file as UTF-8, or set the source's encoding "
                f"(e.g. data.train.encoding=latin-1). {_debug_hint()}")
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device (or disk quota exceeded) while writing {where}. Free space there "
                f"(df -h {Path(str(where)).parent}), then {again}. {_kept(run_dir)}")
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM):
        return (f"permission denied: {where}. Give yourself access to it (ls -ld {where}) or choose another "
                f"folder with run_dir=PATH, then {again}.")
    if isinstance(err, OSError) and err.errno == errno.EROFS:
        return f"{where} is on a read-only file system. Choose a writable folder with run_dir=PATH, then {again}."
    if isinstance(err, OSError) and err.errno in (errno.EMFILE, errno.ENFILE):
        return (f"too many open files (while opening {where}). Raise the limit (ulimit -n 4096) or lower "
                f"train.dataloader_workers, then {again}. {_kept(run_dir)}")
    if isinstance(err, OSError):
        code = errno.errorcode.get(err.errno or 0, "no errno")
        return (f"{err.strerror or err} ({code}) on {where}. Fix the cause (the disk, the network share, the "
                f"path), then {again}. {_kept(run_dir)} {_debug_hint()}")
    return (f"unexpected {type(err).__name__}: {str(err)[:300]} (run folder: {run_dir or '?'}). This is a bug in "
            f"embtune or a library it uses: {_debug_hint()} and report it with that output.")


def _kept(run_dir: str | None) -> str:
    """What a rerun finds: training resumes from the newest complete checkpoint; where an earlier finished run went
    (``configs.runs.move_aside_finished`` moves it to ``RUN_DIR/previous/RUN_ID-TIME`` when a new run starts)."""
    if not run_dir:
        return "Training resumes from its newest complete checkpoint when rerun."
    folder = Path(run_dir)
    said = f"Training resumes from the newest complete checkpoint in {folder / 'checkpoints'}."
    previous = []
    with contextlib.suppress(OSError):  # the disk that just failed may fail this look too
        previous = sorted((folder / "previous").iterdir(), key=lambda p: p.stat().st_mtime)
    if previous:
        said += f" The previous finished run (its model in final/) is in {previous[-1]}."
    elif (folder / "run.json").is_file():
        said += f" The finished run in {folder} (run.json, final/) was not touched."
    return said


def _debug_hint() -> str:
    return f"Rerun with --debug (or {DEBUG_VARIABLE}=1) to see the traceback"
