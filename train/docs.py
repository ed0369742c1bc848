"""``python -m train.docs BLOCK``: the README's component tables, generated from the registries.

- ``kinds-table``: each data kind's columns (``data.table.KINDS``), the losses that read it (``train.losses.LOSSES``)
  and the evaluators that read it (``evaluate.evaluators.EVALUATORS``, the kind's default first);
- ``tasks-table``: each evaluator's kinds, metrics (the main one in bold), what they mean (the spec's
  ``metric_meanings``) and its legend (unit, interval and p).

So adding a loss or an evaluator changes the README by regenerating a block, never by editing prose;
``tests/test_components.py`` fails until the README's text between ``<!-- BLOCK:start -->`` and ``<!-- BLOCK:end -->``
equals this output (the config keys table is ``python -m configs --markdown``). The module sits in ``train``, the
lowest layer that may import all three registries (``configs`` may not import up the stack).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from configs.cli import run
from data.table import KINDS
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS
from evaluate.report.wording import metric_meanings
from train.losses import LOSSES

# What a kind's column names alone do not say (a label's values, where extra columns come from); only the README's
# table prints it, so it is written here, keyed by kind (tests/test_components.py checks every key is a kind).
KIND_NOTES = {
    "scored": "(0..1; `score_range: [0, 5]` rescales STSb-style scores)",
    "labeled": "(1 similar, 0 not)",
    "classes": "(label: a class name)",
    "tuples": "and `negative_2` … `negative_n` (what hard-negative mining writes; a file may have them too)",
}
KINDS_CAPTION = ("An evaluator marked *default* is the one `python -m evaluate` runs on the test split when "
                 "`evaluate.datasets` is empty, and the one the dev split is scored with while training.")
TASKS_CAPTION = ("Bold: the task's main metric, whose delta decides \"better\" unless `evaluate.primary` names "
                 "another. The meanings and the last column are what the report prints under its tables.")


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (a '|' would end the cell)."""
    return text.replace("|", "\\|")


def names(items: list[str]) -> str:
    """`a`, `b`, `c` (code-formatted, comma-separated)."""
    return ", ".join(f"`{item}`" for item in items)


def kind_evaluators(kind: str) -> str:
    """The evaluators that can read ``kind``, its default first and marked; '—' when none can."""
    default = DEFAULT_TASK.get(kind)
    others = [task for task, spec in EVALUATORS.items() if kind in spec.kinds and task != default]
    if default is None and not others:
        return "— (training only)"
    return ", ".join(([f"`{default}` (*default*)"] if default else []) + [f"`{task}`" for task in others])


def kinds_table() -> str:
    """The Markdown table of data kinds: columns (with their note), the losses and the evaluators that read each.

    Returns:
        A header, one row per kind of ``data.table.KINDS`` in its order, a blank line and the caption.
    """
    rows = ["| kind | canonical columns | losses | evaluators |", "|---|---|---|---|"]
    for kind, columns in KINDS.items():
        shown = " ".join([f"`{', '.join(columns)}`"] + ([KIND_NOTES[kind]] if kind in KIND_NOTES else []))
        losses = [name for name, spec in LOSSES.items() if kind in spec.kinds]
        rows.append(f"| {kind} | {cell(shown)} | {names(losses) or '—'} | {kind_evaluators(kind)} |")
    return "\n".join([*rows, "", KINDS_CAPTION])


def tasks_table() -> str:
    """The Markdown table of evaluation tasks: the kinds each reads, its metrics, what they mean, its statistics.

    Returns:
        A header, one row per ``EVALUATORS`` entry in its order, a blank line and the caption.
    """
    rows = ["| task | reads | metrics | what they measure | unit, interval and p |", "|---|---|---|---|---|"]
    for task, spec in EVALUATORS.items():
        metrics = ", ".join(f"**{m}**" if m == spec.main else m for m in spec.metrics)
        rows.append(f"| `{task}` | {', '.join(spec.kinds)} | {cell(metrics)} | "
                    f"{cell(metric_meanings(list(spec.metrics), spec.metric_meanings)) or '—'} | {cell(spec.legend)} |")
    return "\n".join([*rows, "", TASKS_CAPTION])


BLOCKS: dict[str, Callable[[], str]] = {"kinds-table": kinds_table, "tasks-table": tasks_table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.docs", description=__doc__.split("\n\n")[0],
                                     epilog="Paste the output between <!-- BLOCK:start --> and <!-- BLOCK:end --> "
                                     "in README.md.")
    parser.add_argument("block", choices=list(BLOCKS), help="Which README block to print.")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(BLOCKS[args.block]())
    return 0


if __name__ == "__main__":
    sys.exit(run(lambda: main()))
