"""Reference rows beside the tuned model (BM25, hybrids, rerankers), asked of each set's task spec.

A spec that ``uses_dev`` gets the tuned model's result on the dev split, scored as the dev evaluator scores it during
training (the dev split's own documents, chunked when the set it serves is: ``TaskSpec.prepare`` decides on that set's
documents), so anything tuned for the reference rows (the hybrid's weight) is chosen on dev, for the same system the
test set measures, and never on the test queries.
"""

from __future__ import annotations

import logging

from configs.schema import RunConfig
from core.embed import embed
from core.prompts import resolve_prompts
from data.prepare import Prepared
from data.table import Table
from evaluate.evaluators import EVALUATORS
from evaluate.sets import EvalSet
from evaluate.tasks.spec import TaskResult, TaskSpec, call_with_options

log = logging.getLogger(__name__)


def dev_result(spec: TaskSpec, prepared: Prepared, model, config: RunConfig, precision: str,
               like: Table | None = None) -> TaskResult | None:
    """The tuned model's result of ``spec`` on the dev split; None without a dev split the task can read.

    ``like``: the evaluated table the dev result serves; the dev split is prepared as it was (retrieval: chunked
    exactly when it is)."""
    dev = prepared.dev
    if dev is None or dev.kind not in spec.kinds or spec.count_units(dev) < 2:
        return None
    dev, _ = call_with_options(spec.prepare, dev, model, config.evaluate, options={"decide_on": like})
    texts = call_with_options(spec.texts, dev, options={"full_corpus": False})
    prompts = resolve_prompts(model, texts, config.train.prompts)
    emb = embed(model, texts, config.evaluate.batch_size, precision=precision, prompts=prompts)
    options = {"full_corpus": False, "ignore_identical_ids": False, "seed": config.evaluate.seed}
    return call_with_options(spec.run, dev, emb, options=options)


def reference_entries(sets: list[EvalSet], tuned: dict[str, TaskResult], config: RunConfig, prepared: Prepared,
                      model, precision: str, baseline: dict[str, TaskResult] | None = None) -> dict[str, dict]:
    """dataset name -> {row name: report entry}, for the sets whose task has reference rows.

    ``baseline``: the baseline's results, for rows paired against it (a chunked set's ``baseline_truncated``)."""
    out, dev_cache = {}, {}
    for item in sets:
        spec = EVALUATORS[item.config.task]
        key = (spec.name, getattr(item.table, "windows", None) is not None)  # a chunked set needs a chunked dev
        if spec.uses_dev and key not in dev_cache and (config.evaluate.keyword or config.evaluate.rerank):
            dev_cache[key] = dev_result(spec, prepared, model, config, precision, like=item.table)
        options = {"settings": config.evaluate, "dev": dev_cache.get(key), "seed": config.evaluate.seed,
                   "ignore_identical_ids": item.config.ignore_identical_ids,
                   "baseline": (baseline or {}).get(item.config.name)}
        rows = call_with_options(spec.references, tuned[item.config.name], options=options)
        if rows:
            out[item.config.name] = rows
            log.info("%s: reference rows %s", item.config.name, ", ".join(rows))
    return out
