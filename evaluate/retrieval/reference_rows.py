"""Reference rows for a retrieval set: BM25, hybrids of BM25 with the tuned model, and cross-encoder rerankers.

The retrieval evaluator has scored the tuned model (its run and per-query metrics); this module answers the questions
a user asks next, as extra rows beside it, each with paired statistics on the same queries:

| row | what it is | compared against (delta = row - against) |
|---|---|---|
| ``bm25`` | keyword search (``evaluate.keyword``) | tuned: a negative delta means the tuned model beats BM25 |
| ``hybrid_rrf`` | reciprocal rank fusion of tuned and BM25 | tuned: does adding BM25 help? |
| ``hybrid_convex`` | convex mix of min-max scores, weight chosen on dev | tuned |
| ``truncated`` | the tuned model reading each document's first tokens only (a chunked set) | tuned (chunked MaxP) |
| ``baseline_truncated`` | the same for the baseline | baseline (chunked MaxP) |
| ``rerank_tuned`` | cross-encoder over the tuned model's top k | tuned: what the reranker adds |
| ``rerank_bm25`` | cross-encoder over BM25's top k | bm25 |

The BM25 and hybrid rows need ``evaluate.keyword``; the rerank rows need ``evaluate.rerank``. ``hybrid_convex``
takes its weight from the dev split (``choose_weight``); without a dev retrieval split it uses 0.5 and says so in its
description and ``details`` (the weight is never chosen on the test queries). A dev weight of 1 is the tuned model
again and 0 is BM25 again: the row is then folded into the one it equals (``folded_into``, no metrics of its own), so
no second copy of a system competes in the ranking.

The BM25 row is scored on its run padded with the documents it did not match (``keyword.pad_unranked``); fusion reads
the matching documents only. The row's ``details`` record the tokenizer and parameters and the padding.

Every row is evaluated exactly as the tuned run (same k values, ``missing_queries="zero"``, ``ignore_identical_ids``),
and its per-query arrays follow the tuned result's query ids, so rows line up query by query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from configs.schema import KeywordConfig, RerankConfig
from core.keyword import Bm25, available
from evaluate.retrieval import fusion
from evaluate.retrieval.keyword import UNRANKED, bm25_run, pad_unranked
from evaluate.retrieval.metrics import evaluate_run
from evaluate.retrieval.rerank import load_cross_encoder, rerank_run
from evaluate.significance import DeltaStats, compare_means

Run = dict[str, dict[str, float]]
TOP_K = 100
FALLBACK_WEIGHT = 0.5


@dataclass(frozen=True)
class RetrievalSet:
    """Queries, corpus and graded qrels of one split (``{id: text}``, ``{query_id: {doc_id: level}}``)."""

    queries: Mapping[str, str]
    corpus: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Comparison:
    """Paired statistics of ``row - against`` per metric, on the tuned result's queries."""

    against: str  # "tuned" or another row's name
    stats: dict[str, DeltaStats]  # metric -> delta (this row - against) with its interval and p-value


@dataclass(frozen=True)
class ReferenceRow:
    name: str
    description: str
    metrics: dict[str, float]  # metric -> mean over the tuned result's queries
    per_query: dict[str, np.ndarray]  # metric -> (n_queries,) in the tuned result's query order
    comparison: Comparison
    run: Run = field(repr=False)  # query id -> top documents -> score, for the report's per-query view
    details: dict[str, object] = field(default_factory=dict)

    folded_into: str | None = None  # the row this one equals (a degenerate hybrid weight); it then has no metrics

    def as_report(self) -> dict:
        """JSON-ready, as report.json keeps it under ``datasets[name]["reference"][row]``: description, metrics,
        ``vs`` = {"against": name, metric: {delta, ci_low, ci_high, p_value, significant, ...}} and details; a folded
        row only {description, folded_into, details}."""
        if self.folded_into:
            return {"description": self.description, "folded_into": self.folded_into, "details": self.details}
        vs: dict[str, object] = {"against": self.comparison.against}
        vs.update((metric, asdict(stats)) for metric, stats in self.comparison.stats.items())
        return {"description": self.description, "metrics": self.metrics, "vs": vs, "details": self.details}


@dataclass(frozen=True)
class Tuned:
    """What the retrieval evaluator already has for the tuned model on the test split."""

    run: Mapping[str, Mapping[str, float]]
    query_ids: Sequence[str]
    per_query: Mapping[str, np.ndarray]  # metric -> (n_queries,), task_retrieval.RETRIEVAL_METRICS


@dataclass(frozen=True)
class Truncated:
    """A chunked set's runs of the models reading only each document's first tokens (``TaskResult.extra_runs``)."""

    tuned: Run
    baseline: Tuned | None = None  # the baseline's chunked result, to pair its truncated run against
    baseline_run: Run | None = None


def reference_rows(test: RetrievalSet, tuned: Tuned, *, keyword: KeywordConfig | bool | None = True,
                   rerank: RerankConfig | None = None, dev: RetrievalSet | None = None,
                   dev_tuned_run: Run | None = None, truncated: Truncated | None = None,
                   ignore_identical_ids: bool = False, seed: int = 0) -> dict[str, ReferenceRow]:
    """The reference rows ``evaluate.keyword``, ``evaluate.rerank`` and chunking ask for, by name, in the table's order.

    Args:
        test: the retrieval set the tuned model was scored on.
        tuned: the tuned model's run and per-query metrics on it.
        keyword: ``configs.schema.KeywordConfig`` (True: its defaults): add ``bm25``, ``hybrid_rrf``,
            ``hybrid_convex`` (and ``rerank_bm25`` with ``rerank``).
        rerank: ``configs.schema.RerankConfig`` (model, top_k, batch_size) or None.
        dev: the dev retrieval set, for the convex weight; None when the data has no dev split.
        dev_tuned_run: the tuned model's run on ``dev`` (required with ``dev``).
        truncated: a chunked set's truncated runs: adds ``truncated`` (and ``baseline_truncated``).
        ignore_identical_ids: as the tuned run was evaluated.
        seed: seed of the paired statistics, ``compare_means`` (``evaluate.seed``).

    Returns:
        row name -> ``ReferenceRow``; empty when no option is on.
    """
    score = _Scorer(test.qrels, tuned, ignore_identical_ids, seed)
    depth = TOP_K + int(ignore_identical_ids)  # one spare for a dropped self-match, as the tuned search keeps
    rows: dict[str, ReferenceRow] = {}
    if truncated is not None:
        rows.update(_truncated_rows(score, truncated))
    bm25 = None
    if keyword:
        settings = available(keyword.stemmer if isinstance(keyword, KeywordConfig) else KeywordConfig().stemmer)
        bm25 = bm25_run(test.queries, test.corpus, k=depth, bm25=settings)
        rows["bm25"] = _bm25_row(score, settings, bm25, test, depth)
        rows["hybrid_rrf"] = score.row(
            "hybrid_rrf", f"Hybrid: reciprocal rank fusion (k = {fusion.RRF_K}) of the tuned model's and BM25's "
            f"top {TOP_K}", fusion.rrf([tuned.run, bm25], depth=depth), against="tuned",
            details={"k": fusion.RRF_K, "depth": TOP_K, "bm25": settings.record()})
        rows["hybrid_convex"] = _convex_row(score, tuned.run, bm25, dev, dev_tuned_run, depth, settings)
    if rerank is not None:
        rows.update(_rerank_rows(score, rerank, test, tuned.run, bm25))
    return rows


def _bm25_row(score: _Scorer, settings: Bm25, bm25: Run, test: RetrievalSet, depth: int) -> ReferenceRow:
    """BM25 scored on its run padded with the documents it did not match (see ``keyword.pad_unranked``)."""
    padded, touched = pad_unranked(bm25, test.corpus, depth)
    unranked = {"queries": touched, "order": UNRANKED,
                "without_any_match": sum(1 for docs in bm25.values() if not docs)}
    return score.row("bm25", settings.description(), padded, against="tuned",
                     details={**settings.record(), "unranked": unranked})


def _truncated_rows(score: _Scorer, truncated: Truncated) -> dict[str, ReferenceRow]:
    """The tuned model (and the baseline) reading only each document's first tokens, paired against chunked MaxP."""
    what = "reading only the first tokens the model takes of each document (no chunking), against chunked MaxP"
    rows = {"truncated": score.row("truncated", f"The tuned model {what}", truncated.tuned, against="tuned",
                                   details={"model": "tuned", "chunked": False})}
    if truncated.baseline is not None and truncated.baseline_run is not None:
        score.per_query["baseline"] = dict(truncated.baseline.per_query)
        rows["baseline_truncated"] = score.row(
            "baseline_truncated", f"The baseline {what}", truncated.baseline_run, against="baseline",
            details={"model": "baseline", "chunked": False})
    return rows


class _Scorer:
    """Evaluates a run like the tuned one and compares it on the tuned result's queries."""

    def __init__(self, qrels, tuned: Tuned, ignore_identical_ids: bool, seed: int):
        self.qrels, self.tuned, self.ignore, self.seed = qrels, tuned, ignore_identical_ids, seed
        self.metrics = list(tuned.per_query)
        self.k_values = tuple(sorted({int(m.split("@")[1]) for m in self.metrics}))
        self.per_query: dict[str, dict[str, np.ndarray]] = {"tuned": dict(tuned.per_query)}

    def row(self, name: str, description: str, run: Run, *, against: str,
            details: dict | None = None) -> ReferenceRow:
        scores = evaluate_run(run, self.qrels, k_values=self.k_values, missing_queries="zero",
                              ignore_identical_ids=self.ignore)["per_query"]
        self.per_query[name] = {m: np.array([scores[q][m] for q in self.tuned.query_ids]) for m in self.metrics}
        stats = {m: compare_means(self.per_query[against][m], self.per_query[name][m], seed=self.seed)
                 for m in self.metrics}  # delta = this row - against, paired per query
        metrics = {m: float(values.mean()) for m, values in self.per_query[name].items()}
        return ReferenceRow(name, description, metrics, self.per_query[name], Comparison(against, stats), run,
                            details or {})


def _convex_row(score: _Scorer, tuned_run, bm25: Run, dev: RetrievalSet | None, dev_tuned_run: Run | None,
                depth: int, settings: Bm25) -> ReferenceRow:
    """The convex hybrid with its weight chosen on dev, or 0.5 (said so) without a dev split; folded into ``tuned``
    (weight 1) or ``bm25`` (weight 0) when dev chose an end of the grid."""
    if dev is not None:
        if dev_tuned_run is None:
            raise ValueError("dev is given without dev_tuned_run: the convex weight needs the tuned model's dev run")
        weight = fusion.choose_weight(dev_tuned_run, bm25_run(dev.queries, dev.corpus, k=TOP_K, bm25=settings),
                                      dev.qrels)
        source = f"chosen on the dev split ({len(dev.qrels)} queries) by nDCG@10"
    else:
        weight, source = FALLBACK_WEIGHT, "fixed at 0.5: no dev retrieval split to choose it on (never chosen on test)"
    details = {"weight": weight, "weight_from": "dev" if dev else "fallback", "normalisation": "min-max per query",
               "depth": TOP_K, "bm25": settings.record()}
    same = {1.0: "tuned", 0.0: "bm25"}.get(weight) if dev is not None else None
    if same:
        return ReferenceRow("hybrid_convex", f"hybrid_convex chose weight {weight:.1f} on dev: identical to {same}",
                            {}, {}, Comparison(same, {}), {}, details, folded_into=same)
    description = (f"Hybrid: {weight:g} x tuned + {1 - weight:g} x BM25 (min-max normalised scores); "
                   f"weight {source}")
    return score.row("hybrid_convex", description, fusion.convex(tuned_run, bm25, weight, depth=depth),
                     against="tuned", details=details)


def _rerank_rows(score: _Scorer, rerank: RerankConfig, test: RetrievalSet, tuned_run,
                 bm25: Run | None) -> dict[str, ReferenceRow]:
    """rerank_tuned (and rerank_bm25 when BM25 ran), with one cross-encoder load."""
    model, name = load_cross_encoder(rerank.model), model_label(rerank.model)
    inputs = {"tuned": ("the tuned model", tuned_run)}
    if bm25 is not None:
        inputs["bm25"] = ("BM25", bm25)
    rows = {}
    for source, (label, run) in inputs.items():
        reranked = rerank_run(model, test.queries, test.corpus, run, rerank.top_k, rerank.batch_size)
        description = f"Cross-encoder {name} re-scoring {label}'s top {rerank.top_k}"
        rows[f"rerank_{source}"] = score.row(f"rerank_{source}", description, reranked, against=source,
                                             details={"model": name, "top_k": rerank.top_k})
    return rows


def model_label(name: str) -> str:
    """A Hub id as it is; a local folder by its name only (published reports carry no local paths)."""
    path = Path(name).expanduser()
    return path.resolve().name if path.exists() else name
