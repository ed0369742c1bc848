"""Per-unit scores of a run's tuned model, ``eval/units.json``: what ``python -m evaluate compare A B`` pairs up.

For every evaluated dataset, at full size and at each ``evaluate.truncate_dims`` size, it keeps what the paired
statistics resample: per-query metrics (retrieval), per-pair similarities and gold (sts, pair_classification),
cross-validated probabilities and predictions (classification) or cluster ids (clustering).

```
{"format": 1, "seed": 0, "tasks": {dataset: task},
 "levels": {"full": {dataset: {"metrics": {...}, "query_ids": [...], "per_query": {...}, "cosines": [...], ...}},
            "128": {...}}}
```
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from configs.errors import UserError
from evaluate.tasks.spec import TaskResult

FORMAT = 1
ARRAYS = ("cosines", "gold", "proba", "predicted")  # TaskResult fields kept when present
FULL = "full"


def result_units(result: TaskResult) -> dict:
    """The JSON-ready per-unit content of one task result."""
    out: dict = {"metrics": dict(result.metrics)}
    if result.per_query:
        out["query_ids"] = list(result.query_ids)
        out["per_query"] = {m: np.asarray(v).tolist() for m, v in result.per_query.items()}
    for name in ARRAYS:
        value = getattr(result, name)
        if value is not None:
            out[name] = np.asarray(value).tolist()
    return out


def result_from_units(units: dict) -> TaskResult:
    """A TaskResult holding what the paired statistics need (null metrics come back as NaN)."""
    metrics = {m: float("nan") if v is None else float(v) for m, v in units["metrics"].items()}
    arrays = {name: np.asarray(units[name]) for name in ARRAYS if name in units}
    per_query = {m: np.asarray(v, dtype=np.float64) for m, v in units.get("per_query", {}).items()}
    return TaskResult(metrics, per_query=per_query, query_ids=list(units.get("query_ids", [])), **arrays)


def units_record(tasks: dict[str, str], levels: dict[str, dict[str, TaskResult]], seed: int) -> dict:
    """units.json content: ``levels`` is {"full" or str(dim): {dataset: the tuned model's TaskResult}}."""
    return {"format": FORMAT, "seed": seed, "tasks": tasks,
            "levels": {level: {name: result_units(r) for name, r in results.items()}
                       for level, results in levels.items()}}


def load_units(run_dir: str) -> dict:
    path = Path(run_dir) / "eval" / "units.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist: {run_dir} was evaluated before per-unit scores were recorded. "
                        f"Re-run 'python -m evaluate {run_dir}', or pass --leaderboard for the leaderboard alone.")
    units = json.loads(path.read_text(encoding="utf-8"))
    if units.get("format") != FORMAT:
        raise UserError(f"{path} has format {units.get('format')!r}, this embtune reads {FORMAT}: "
                        f"re-run 'python -m evaluate {run_dir}'.")
    return units
