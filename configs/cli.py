"""What the four entry points share: ``CONFIG key=value ...`` parsing, generated ``--help``, friendly errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, get_args

from pydantic import BaseModel

from configs.errors import UserError
from configs.load import load_config
from configs.schema import LossConfig, RunConfig


def field_rows(model: type[BaseModel] = RunConfig, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, default, description) for every leaf field, walking nested sections."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "loss":
            for cls in get_args(get_args(LossConfig)[0]):
                loss_name = get_args(cls.model_fields["name"].annotation)[0]
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
    """Parse ``CONFIG [key=value ...]``; returns (argparse namespace, RunConfig)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="A YAML from configs/ (or, for evaluate and push, a run folder).")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2 loss.name=cosent")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    return args, load_config(args.config, args.overrides)


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


def run(main: Callable[[], int]) -> int:
    """Run an entry point: a user's mistake prints one clear message and exits 2, never a traceback."""
    quiet_bars_in_logs()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for ours in ("configs", "data", "train", "evaluate"):  # our progress lines; libraries speak only to warn
        logging.getLogger(ours).setLevel(logging.INFO)
    try:
        return main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while training, or Ctrl-C in any other stage: no traceback
        print("interrupted: nothing was finished; the newest complete checkpoint (if any) is kept", file=sys.stderr)
        return 130
