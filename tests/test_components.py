"""The README's component tables (data kinds with their losses and evaluators; evaluation tasks) are generated from
the registries by ``python -m train.docs``, and the README holds exactly what it prints: registering a loss or an
evaluator is what changes them."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from data.table import KINDS
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS
from evaluate.tasks.spec import TaskSpec
from train.docs import BLOCKS, KIND_NOTES, kinds_table, main, tasks_table
from train.losses import LOSSES


def readme_block(text: str, name: str) -> str | None:
    """The text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (stripped), or None without the markers."""
    match = re.search(rf"<!-- {re.escape(name)}:start -->\n(.*?)\n?<!-- {re.escape(name)}:end -->", text, re.S)
    return match.group(1).strip() if match else None


def row(table: str, first_cell: str) -> str:
    """The one line of a Markdown table whose first cell is ``first_cell``."""
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {first_cell} |")]
    return line


class ToyTask(TaskSpec):
    """A registry entry only: the tables read nothing but its class attributes."""

    name, kinds, metrics, main = "toy_task", ("tuples", "classes"), ("hits", "toy_score"), "toy_score"
    unit, legend = "texts", "toy task: units are texts; p from a paired sign-flip test."
    metric_meanings = ((r"hits()", "hits", "texts whose nearest neighbour shares their label"),)


# -------------------------------------------------------------------------------------------------- the README
@pytest.mark.parametrize("name", list(BLOCKS))
def test_readme_block_is_generated_from_the_registries(name):
    block = readme_block((REPO / "README.md").read_text(encoding="utf-8"), name)
    assert block is not None, (f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block; paste the "
                               f"output of `python -m train.docs {name}` between those markers")
    assert block == BLOCKS[name]().strip(), (f"README.md's {name} is out of date: regenerate it with "
                                             f"`python -m train.docs {name}` and paste it between the {name} markers")


def test_a_missing_or_edited_block_is_told_apart_from_a_current_one():
    current = kinds_table()
    assert readme_block(f"intro\n<!-- kinds-table:start -->\n{current}\n<!-- kinds-table:end -->\n", "kinds-table") \
        == current
    edited = current.replace("`cosent`, ", "")
    assert readme_block(f"<!-- kinds-table:start -->\n{edited}\n<!-- kinds-table:end -->", "kinds-table") != current
    assert readme_block(current, "kinds-table") is None


# ------------------------------------------------------------------------------------------------ the kinds table
def test_every_kind_has_a_row_with_its_columns_losses_and_evaluators():
    table = kinds_table()
    for kind, columns in KINDS.items():
        line = row(table, kind)
        assert f"`{', '.join(columns)}`" in line
        assert all(f"`{loss}`" in line for loss, spec in LOSSES.items() if kind in spec.kinds)
        assert all(f"`{task}`" in line for task, spec in EVALUATORS.items() if kind in spec.kinds)
    assert row(table, "tuples").endswith("| — (training only) |")  # no evaluator reads mined tuples


def test_notes_are_only_for_kinds_that_exist():
    assert set(KIND_NOTES) <= set(KINDS)


def test_a_kind_default_evaluator_comes_first_and_is_marked(monkeypatch):
    assert "| `pair_classification` (*default*), `sts`, `retrieval` |" in row(kinds_table(), "labeled")
    monkeypatch.setitem(DEFAULT_TASK, "labeled", "sts")
    assert "| `sts` (*default*), `retrieval`, `pair_classification` |" in row(kinds_table(), "labeled")


def test_a_registered_loss_appears_under_the_kinds_it_reads(monkeypatch):
    monkeypatch.setitem(LOSSES, "toy_loss", LOSSES["batch_all_triplet"])  # reads (text, label)
    assert "| `batch_all_triplet`, `toy_loss` |" in row(kinds_table(), "classes")
    assert "toy_loss" not in row(kinds_table(), "pairs")


# ------------------------------------------------------------------------------------------------ the tasks table
def test_every_evaluator_has_a_row_with_its_kinds_main_metric_and_legend():
    table = tasks_table()
    for task, spec in EVALUATORS.items():
        line = row(table, f"`{task}`")
        assert f"| {', '.join(spec.kinds)} |" in line and f"**{spec.main}**" in line and spec.legend in line


def test_a_registered_evaluator_appears_in_both_tables(monkeypatch):
    monkeypatch.setitem(EVALUATORS, "toy_task", ToyTask())  # the one registry line; no other module edited
    assert row(tasks_table(), "`toy_task`") == (
        "| `toy_task` | tuples, classes | hits, **toy_score** | hits: texts whose nearest neighbour shares their "
        "label. | toy task: units are texts; p from a paired sign-flip test. |")
    assert row(kinds_table(), "tuples").endswith("| `toy_task` |")  # no longer training only
    assert row(kinds_table(), "classes").endswith("`clustering`, `toy_task` |")


def test_a_pipe_in_a_legend_does_not_break_the_table(monkeypatch):
    monkeypatch.setattr(ToyTask, "legend", "toy task: a | b.")
    monkeypatch.setitem(EVALUATORS, "toy_task", ToyTask())
    assert row(tasks_table(), "`toy_task`").endswith("| toy task: a \\| b. |")


# ------------------------------------------------------------------------------------------------ the command
def test_the_command_prints_the_block_it_is_asked_for(capsys):
    assert main(["tasks-table"]) == 0
    assert capsys.readouterr().out == tasks_table() + "\n"
    with pytest.raises(SystemExit):
        main(["no-such-table"])
