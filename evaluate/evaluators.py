"""The evaluator registry: name -> its ``TaskSpec`` (see ``evaluate.tasks.spec``), one module per task.

The same spec serves the dev evaluator during training (``TaskEvaluator``, a sentence-transformers evaluator) and
the baseline-vs-tuned evaluation, so the number a user watches while training is computed the way the final report
computes it. Adding an evaluator: a module with its ``TaskSpec``, one line here, its name in ``configs.schema.Task``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from configs.errors import UserError
from configs.schema import EvaluateConfig
from core.embed import embed
from core.embed_cache import cached_embed
from core.prompts import resolve_prompts
from data.table import KINDS, Table
from evaluate.tasks.classification import CLASSIFICATION
from evaluate.tasks.clustering import CLUSTERING
from evaluate.tasks.pair_classification import PAIR_CLASSIFICATION
from evaluate.tasks.retrieval import RETRIEVAL
from evaluate.tasks.spec import TaskSpec, call_with_options
from evaluate.tasks.sts import STS

EVALUATORS: dict[str, TaskSpec] = {spec.name: spec for spec in (STS, RETRIEVAL, PAIR_CLASSIFICATION,
                                                                 CLASSIFICATION, CLUSTERING)}
DEFAULT_TASK = {"scored": "sts", "labeled": "pair_classification", "pairs": "retrieval", "triplets": "retrieval",
                "classes": "classification"}
SIGNIFICANCE = "Significant: the 95% interval excludes 0, which is the same as p < 0.05."


def check_task(task: str, table: Table, what: str | None = None, where: str = "") -> TaskSpec:
    """The task's spec, or an error when it cannot read the table or the table has too little to measure.

    Args:
        what: how the message names the table (default: its origin), e.g. 'the test split'.
        where: the config key the message starts with, e.g. 'evaluate.datasets[general]: '.
    """
    spec = EVALUATORS[task]
    if table.kind not in spec.kinds:
        fitting = ", ".join(t for t, s in EVALUATORS.items() if table.kind in s.kinds)
        raise UserError(f"{where}task '{task}' cannot read {what or table.origin} ({', '.join(KINDS[table.kind])}). "
                        f"Tasks that can: {fitting}.")
    units = spec.count_units(table)
    if units < 2:
        raise UserError(f"evaluator '{task}' on {table.origin}: {units} {spec.unit} to measure; at least 2 "
                        "are needed (a correlation, a ranking or an interval needs more than one).")
    spec.check_gold(table)
    return spec


def statistics_legend(tasks: Iterable[str]) -> str:
    """The report's legend for the evaluated ``tasks``: each task's own sentence, then the verdict rule."""
    return " ".join([EVALUATORS[task].legend for task in dict.fromkeys(tasks)] + [SIGNIFICANCE])


class TaskEvaluator(BaseEvaluator):
    """One task on one table as a sentence-transformers evaluator (for the trainer's dev evaluation)."""

    def __init__(self, task: str, table: Table, name: str, batch_size: int, full_corpus: bool = False,
                 prompts: dict[str, str] | None = None, seed: int = 0, settings: EvaluateConfig | None = None,
                 decide_on: Table | None = None, precision: str = "fp32", base_store: tuple | None = None):
        """``prompts``: ``train.prompts`` (column -> prompt), so dev scores use the prompts the final report uses;
        ``seed``: ``evaluate.seed`` (classification folds, k-means); ``settings``: the run's ``evaluate`` section,
        so the task prepares the table as the final evaluation does (retrieval: ``evaluate.chunking``, decided on
        ``decide_on``'s documents, default the table's own); None: the table as it is. ``precision``: what the
        final evaluation encodes with on this hardware (``core.embed.resolve_precision``), so dev scores match it.
        ``base_store``: (the base model's folder fingerprint, ``evaluate.cache_dir``): the evaluation at step 0, before
        any optimiser step (the base model's dev score), reads and fills the embedding store that mining filled and
        the final evaluation's baseline reads; later steps' weights are new and are encoded as they are."""
        super().__init__()
        self.spec, self.task, self.table, self.name = check_task(task, table), task, table, name
        self.batch_size, self.train_prompts, self.precision = batch_size, dict(prompts or {}), precision
        self.options = {"full_corpus": full_corpus, "ignore_identical_ids": False, "seed": seed}
        self.settings, self.decide_on, self.prepared = settings, decide_on, settings is None
        self.base_store = base_store
        self.primary_metric = self.spec.main

    def prepare(self, model) -> None:
        """Prepare the table once, with the first model evaluated (tokenizer and max_seq_length do not train)."""
        if not self.prepared:
            self.table, self.note = call_with_options(self.spec.prepare, self.table, model, self.settings,
                                                      options={"decide_on": self.decide_on})
            self.prepared = True

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        self.prepare(model)
        texts = call_with_options(self.spec.texts, self.table, options=self.options)
        prompts = resolve_prompts(model, texts, self.train_prompts)
        if self.base_store and steps == 0:  # the trainer's first evaluation: still the base model's weights
            embeddings = cached_embed(model, texts, self.batch_size, *self.base_store, self.precision, prompts)
        else:
            embeddings = embed(model, texts, self.batch_size, precision=self.precision, prompts=prompts)
        metrics = call_with_options(self.spec.run, self.table, embeddings, options=self.options).metrics
        return self.prefix_name_to_metrics(metrics, self.name)
