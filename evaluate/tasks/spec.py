"""What every evaluation task is made of: ``TaskSpec`` (one object per task, end to end) and its ``TaskResult``.

A spec owns everything task-specific: the data kinds it reads, the texts it encodes (by role, see
``core.prompts``), its run, its statistical unit, its delta statistics, its details for the report and its
legend. Code elsewhere asks the spec (``evaluate.evaluators.EVALUATORS[task]``) and never branches on a task's name.

Options reach ``texts`` and ``run`` as keyword-only arguments the method declares (``full_corpus``,
``ignore_identical_ids``, ``seed``; see ``OPTIONS``). ``call_with_options`` passes exactly the declared ones, so an
option a spec needs but nobody supplies is an error, never a silent default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from core.embed import Embeddings
from data.table import Table
from evaluate.significance import DeltaStats
from evaluate.tasks.summaries import Meaning, rows_lines

Run = dict[str, dict[str, float]]  # query id -> {doc id: score}, the top documents of one ranking
OPTIONS = {
    "full_corpus": "retrieval: search a source's own corpus (BEIR) too, not only the documents in the rows",
    "ignore_identical_ids": "retrieval: drop a document whose id equals the query id",
    "seed": "seed of anything random in the run itself (cross-validation folds, k-means restarts)",
}


@dataclass
class TaskResult:
    """One model's result of one task on one table: the metrics plus what the paired statistics resample."""

    metrics: dict[str, float]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> value per query (retrieval)
    query_ids: list[str] = field(default_factory=list)
    cosines: np.ndarray | None = None  # (n_pairs,) predicted cosine per pair (sts, pair_classification)
    gold: np.ndarray | None = None  # (n_pairs,) gold score or label; (n_texts,) class id
    proba: np.ndarray | None = None  # (n_texts, n_classes) cross-validated class probabilities (classification)
    predicted: np.ndarray | None = None  # (n_texts,) predicted class (classification) or cluster id (clustering)
    run: Run = field(default_factory=dict)  # retrieval: query id -> top docs -> score
    retrieval: tuple = ()  # retrieval: (queries, corpus, qrels), for the report's per-query view
    # Reference rankings of the same queries by other systems (e.g. "bm25", "hybrid"): name -> Run. Scored with
    # ``evaluate.tasks.retrieval.result_from_run`` and paired per query against the tuned model's result.
    extra_runs: dict[str, Run] = field(default_factory=dict)


class TaskSpec:
    """One evaluation task end to end. A subclass sets the class attributes and overrides the methods it needs."""

    name: str  # the registry key and the schema's Task literal value
    kinds: tuple[str, ...]  # data kinds it can read, see data.sources.KINDS
    metrics: tuple[str, ...]
    main: str  # the metric that decides "better"
    unit: str  # the statistical unit in plural, for messages: "pairs", "queries with a relevant document"
    legend: str  # one sentence for the report: what the unit is and how the interval and p-value are computed
    # What each metric measures, for the report and the card: (metric regex with a group for k, display name, meaning);
    # see evaluate.tasks.summaries for the shared ones. A metric no pattern matches is simply not explained.
    metric_meanings: tuple[Meaning, ...] = ()
    # The task type the Hub's model-index shows, as sentence-transformers' own cards name it (its evaluator's
    # description, e.g. InformationRetrievalEvaluator -> "information-retrieval"); empty: the task's name.
    hub_task_type: str = ""
    # What a reader should look for in the report's 2-D map of this task's texts (coloured by ``map_inputs``' labels).
    map_look_for: str = ("Look for texts with the same marker sitting closer together, and the groups further apart, "
                         "in the tuned panel than in the baseline's.")

    def texts(self, table: Table) -> dict[str, list[str]]:
        """role -> every text the run looks up in that role."""
        raise NotImplementedError

    def run(self, table: Table, emb: Embeddings) -> TaskResult:
        """The metrics of one model from its embeddings (keyword-only options as declared)."""
        raise NotImplementedError

    def count_units(self, table: Table) -> int:
        """How many statistical units the table gives (at least 2 are needed)."""
        return len(table.rows)

    def check_gold(self, table: Table) -> None:
        """Refuse a table whose gold makes every metric undefined (a UserError saying how to fix it)."""

    def delta(self, metric: str, base: TaskResult, tuned: TaskResult, *, seed: int) -> DeltaStats:
        """tuned - baseline of ``metric`` with its paired interval and p-value over this task's units."""
        raise NotImplementedError

    def details(self, table: Table, base: TaskResult, tuned: TaskResult, embeddings: tuple[Embeddings, Embeddings],
                *, seed: int) -> dict:
        """What the HTML report draws for this task besides the 2-D map (JSON-ready; keys of details.json)."""
        return {}

    def map_inputs(self, table: Table, base: TaskResult) -> tuple[list[str], list[str], list[str]]:
        """(texts, colour label, role) of the points of the report's 2-D map."""
        raise NotImplementedError

    # What the set is, for the top of its report section (report.json's ``datasets[name]["about"]``).
    def about(self, table: Table, result: TaskResult) -> dict:
        """JSON-ready facts about the set from the table and one model's result (the counts do not depend on the
        model); by default its row count. See evaluate.tasks.summaries for the shared builders."""
        return {"rows": len(table.rows)}

    def about_lines(self, about: Mapping, quote: Callable[[object], str] = str) -> list[str]:
        """Sentences saying what the set is, from the facts ``about`` built (``quote`` escapes user strings)."""
        return rows_lines(about, quote)

    def prepare(self, table: Table, model, settings) -> tuple[Table, dict]:
        """The table as this task evaluates it with ``model``'s tokenizer and the run's ``EvaluateConfig``, and a
        note for the report (e.g. how many documents were chunked); unchanged and no note by default."""
        return table, {}

    # Reference rows beside the tuned model (keyword search, hybrids, rerankers), for tasks where they mean
    # something. ``dev`` is this task's result of the tuned model on the dev split, when ``uses_dev`` asks for it.
    uses_dev: bool = False

    def references(self, tuned: TaskResult, *, settings, ignore_identical_ids: bool, dev: TaskResult | None,
                   seed: int) -> dict[str, dict]:
        """row name -> its report.json entry (``evaluate.retrieval.reference_rows.ReferenceRow.as_report``); none by
        default.
        ``settings``: the run's ``EvaluateConfig``."""
        return {}


def declared_options(method: Callable) -> tuple[str, ...]:
    """The keyword-only parameters of ``method``: the options it declares."""
    params = inspect.signature(method).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def call_with_options(method: Callable, *args, options: Mapping[str, object]):
    """``method(*args, **declared options)``; an option it declares that ``options`` lacks is an error."""
    wanted = declared_options(method)
    missing = [name for name in wanted if name not in options]
    if missing:
        raise TypeError(f"{method.__qualname__} declares the options {missing}, which this evaluation does not "
                        f"supply (it supplies {sorted(options)}); add them where the options are built.")
    return method(*args, **{name: options[name] for name in wanted})
