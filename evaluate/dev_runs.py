"""Reference rows beside the tuned model (BM25, hybrids, rerankers), asked of each set's task spec.

A spec that ``uses_dev`` gets the tuned model's result on the dev split, scored as the dev evaluator scores it during
training (the dev split's own documents), so anything tuned for the reference rows (the hybrid's weight) is chosen on
dev and never on the test queries.
"""

from __future__ import annotations

import logging

from configs.schema import RunConfig
from core.embed import embed
from core.prompts import resolve_prompts
from data.prepare import Prepared
from evaluate.evaluators import EVALUATORS
from evaluate.sets import EvalSet
from evaluate.tasks.spec import TaskResult, TaskSpec, call_with_options

log = logging.getLogger(__name__)


def dev_result(spec: TaskSpec, prepared: Prepared, model, config: RunConfig, precision: str) -> TaskResult | None:
    """The tuned model's result of ``spec`` on the dev split; None without a dev split the task can read."""
    if prepared.dev is None or prepared.dev.kind not in spec.kinds or spec.count_units(prepared.dev) < 2:
        return None
    texts = call_with_options(spec.texts, prepared.dev, options={"full_corpus": False})
    prompts = resolve_prompts(model, texts, config.train.prompts)
    emb = embed(model, texts, config.evaluate.batch_size, precision=precision, prompts=prompts)
    options = {"full_corpus": False, "ignore_identical_ids": False, "seed": config.evaluate.seed}
    return call_with_options(spec.run, prepared.dev, emb, options=options)


def reference_entries(sets: list[EvalSet], tuned: dict[str, TaskResult], config: RunConfig, prepared: Prepared,
                      model, precision: str) -> dict[str, dict]:
    """dataset name -> {row name: report entry}, for the sets whose task has reference rows."""
    out, dev_cache = {}, {}
    for item in sets:
        spec = EVALUATORS[item.config.task]
        if spec.uses_dev and spec.name not in dev_cache and (config.evaluate.keyword or config.evaluate.rerank):
            dev_cache[spec.name] = dev_result(spec, prepared, model, config, precision)
        rows = spec.references(tuned[item.config.name], settings=config.evaluate, dev=dev_cache.get(spec.name),
                               ignore_identical_ids=item.config.ignore_identical_ids, seed=config.evaluate.seed)
        if rows:
            out[item.config.name] = rows
            log.info("%s: reference rows %s", item.config.name, ", ".join(rows))
    return out
