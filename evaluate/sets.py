"""Which data each evaluation runs on: the configured datasets resolved once, for ``python -m train``'s pre-flight
check and for ``python -m evaluate`` alike, so both refuse the same configs with the same words."""

from __future__ import annotations

from dataclasses import dataclass

from configs.errors import UserError, did_you_mean
from configs.schema import EvalDatasetConfig, RunConfig
from data.prepare import Prepared, load_table
from data.table import Table
from evaluate.evaluators import DEFAULT_TASK, EVALUATORS, check_task


@dataclass
class EvalSet:
    config: EvalDatasetConfig
    table: Table


def wanted_datasets(config: RunConfig, prepared: Prepared) -> tuple[EvalDatasetConfig, ...]:
    """The configured datasets, or the test split with its kind's default task."""
    return config.evaluate.datasets or (
        EvalDatasetConfig(name="test", task=DEFAULT_TASK[prepared.test.kind], split="test"),
    )


def resolve_set(item: EvalDatasetConfig, prepared: Prepared) -> EvalSet:
    """One dataset's table (a prepared split, or its own source loaded now), checked against its task."""
    where = f"evaluate.datasets[{item.name}]"
    table = load_table(item.source, f"{where}.source") if item.source else getattr(prepared, item.split)
    if table is None:
        raise UserError(f"{where}: the run has no {item.split} split.")
    check_task(item.task, table, what=None if item.source else f"the {item.split} split", where=f"{where}: ")
    return EvalSet(item, table)


def resolve_sets(config: RunConfig, prepared: Prepared) -> list[EvalSet]:
    """Every evaluation set, each checked against its task, and ``evaluate.primary`` checked against them: the one
    resolution both ``python -m train`` (before any training) and ``python -m evaluate`` use."""
    sets = [resolve_set(item, prepared) for item in wanted_datasets(config, prepared)]
    check_primary(config, [(s.config.name, s.config.task) for s in sets])
    return sets


def check_primary(config: RunConfig, named_tasks: list[tuple[str, str]]) -> None:
    options = [f"{name}/{m}" for name, task in named_tasks for m in EVALUATORS[task].metrics]
    if config.evaluate.primary and config.evaluate.primary not in options:  # fail before minutes of encoding
        raise UserError(f"evaluate.primary '{config.evaluate.primary}' names no evaluated metric."
                        f"{did_you_mean(config.evaluate.primary, options)}")


def run_options(item: EvalDatasetConfig, seed: int) -> dict[str, object]:
    """Every option a task may declare (see ``evaluate.tasks.spec.OPTIONS``), for one dataset of the evaluation."""
    return {"full_corpus": True, "ignore_identical_ids": item.ignore_identical_ids, "seed": seed}


# Names python -m train imports today (one call of resolve_sets is enough there).
