"""Reference rows beside the tuned model (evaluate/retrieval/reference_rows.py): BM25, hybrids, rerankers, paired
statistics."""

from __future__ import annotations

import numpy as np
import pytest
from test_rerank import save_tiny_cross_encoder

from configs.schema import RerankConfig
from conftest import INCIDENT_ROWS
from evaluate.retrieval.fusion import choose_weight, convex, rrf
from evaluate.retrieval.keyword import bm25_run
from evaluate.retrieval.metrics import evaluate_run
from evaluate.retrieval.reference_rows import RetrievalSet, Tuned, reference_rows
from evaluate.retrieval.rerank import load_cross_encoder, rerank_run

METRICS = ("ndcg@10", "mrr@10", "map@100", "recall@1", "recall@10", "recall@100")  # as evaluate/tasks.py reports


def incident_set(rows) -> RetrievalSet:
    """Each jargon line a query whose own plain line is relevant (ids q<i>, d<i>)."""
    queries = {f"q{i}": jargon for i, (_, jargon, _) in rows}
    corpus = {f"d{i}": plain for i, (_, _, plain) in rows}
    return RetrievalSet(queries, corpus, {f"q{i}": {f"d{i}": 1} for i, _ in rows})


TEST = incident_set(list(enumerate(INCIDENT_ROWS))[::2])
DEV = incident_set(list(enumerate(INCIDENT_ROWS))[1::2])


def fake_dense_run(data: RetrievalSet) -> dict[str, dict[str, float]]:
    """A stand-in for the tuned model: the relevant document second for even queries, first for the others."""
    run = {}
    for n, q in enumerate(data.queries):
        relevant = next(iter(data.qrels[q]))
        others = [d for d in data.corpus if d != relevant][:5]
        order = [others[0], relevant, *others[1:]] if n % 2 == 0 else [relevant, *others]
        run[q] = {d: 1.0 - 0.1 * rank for rank, d in enumerate(order)}
    return run


def tuned_result(data: RetrievalSet, run) -> Tuned:
    per_query = evaluate_run(run, data.qrels, k_values=(1, 10, 100), missing_queries="zero")["per_query"]
    q_ids = sorted(per_query)
    return Tuned(run, q_ids, {m: np.array([per_query[q][m] for q in q_ids]) for m in METRICS})


def mean_of(run, data: RetrievalSet, metric: str = "ndcg@10") -> float:
    return evaluate_run(run, data.qrels, k_values=(1, 10, 100), missing_queries="zero")["mean"][metric]


@pytest.fixture(scope="module")
def keyword_rows():
    return reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), seed=3)


def test_keyword_rows_in_order_with_metrics_of_their_runs(keyword_rows):
    assert list(keyword_rows) == ["bm25", "hybrid_rrf", "hybrid_convex"]
    bm25 = bm25_run(TEST.queries, TEST.corpus)
    assert keyword_rows["bm25"].run == bm25
    assert keyword_rows["hybrid_rrf"].run == rrf([fake_dense_run(TEST), bm25])
    for row in keyword_rows.values():
        assert set(row.metrics) == set(METRICS) and row.description
        assert row.metrics["ndcg@10"] == pytest.approx(mean_of(row.run, TEST))
        assert all(len(values) == len(TEST.queries) for values in row.per_query.values())


def test_per_query_values_follow_the_tuned_query_order(keyword_rows):
    tuned = tuned_result(TEST, fake_dense_run(TEST))
    per_query = evaluate_run(keyword_rows["bm25"].run, TEST.qrels, k_values=(10,))["per_query"]
    assert keyword_rows["bm25"].per_query["ndcg@10"].tolist() == [per_query[q]["ndcg@10"] for q in tuned.query_ids]


def test_comparisons_are_row_minus_what_it_is_compared_against(keyword_rows):
    tuned = tuned_result(TEST, fake_dense_run(TEST)).per_query["ndcg@10"].mean()
    bm25, rrf_row = keyword_rows["bm25"], keyword_rows["hybrid_rrf"]
    assert bm25.comparison.against == "tuned" and rrf_row.comparison.against == "tuned"
    assert bm25.comparison.stats["ndcg@10"].delta == pytest.approx(bm25.metrics["ndcg@10"] - tuned)
    assert rrf_row.comparison.stats["ndcg@10"].delta == pytest.approx(rrf_row.metrics["ndcg@10"] - tuned)
    assert bm25.comparison.stats["ndcg@10"].n_units == len(TEST.queries)


def test_as_report_is_the_shape_the_report_reads(keyword_rows):
    from evaluate.report import wording

    saved = keyword_rows["bm25"].as_report()
    assert saved["description"].startswith("BM25 (bm25s") and saved["metrics"] == keyword_rows["bm25"].metrics
    against, stats = wording.reference_stats(saved, "ndcg@10")
    assert against == "tuned" and stats["delta"] == keyword_rows["bm25"].comparison.stats["ndcg@10"].delta
    assert {"ci_low", "ci_high", "p_value", "significant", "n_resamples"} <= set(stats)


def test_convex_without_dev_says_its_weight_is_fixed(keyword_rows):
    row = keyword_rows["hybrid_convex"]
    assert row.details == {"weight": 0.5, "weight_from": "fallback"}
    assert "fixed at 0.5: no dev retrieval split to choose it on" in row.description
    assert row.run == convex(fake_dense_run(TEST), bm25_run(TEST.queries, TEST.corpus), 0.5)


def test_convex_weight_is_chosen_on_dev():
    dev_run = fake_dense_run(DEV)
    rows = reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), dev=DEV, dev_tuned_run=dev_run)
    expected = choose_weight(dev_run, bm25_run(DEV.queries, DEV.corpus), DEV.qrels)
    row = rows["hybrid_convex"]
    assert row.details == {"weight": expected, "weight_from": "dev"}
    assert f"chosen on the dev split ({len(DEV.queries)} queries) by nDCG@10" in row.description


def test_dev_without_its_tuned_run_is_an_error():
    with pytest.raises(ValueError, match="dev is given without dev_tuned_run"):
        reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), dev=DEV)


def test_nothing_asked_nothing_returned():
    assert reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), keyword=False) == {}


def test_identical_ids_are_ignored_as_in_the_tuned_evaluation():
    data = RetrievalSet({"q1": "printer paper jam", "q2": "disk full"},
                        {"q1": "printer paper jam", "d1": "printer jam", "d2": "disk full"},
                        {"q1": {"d1": 1}, "q2": {"d2": 1}})
    tuned = tuned_result(data, {"q1": {"d1": 1.0}, "q2": {"d2": 1.0}})
    assert reference_rows(data, tuned)["bm25"].metrics["ndcg@10"] < 1.0  # the query's own text ranks first
    assert reference_rows(data, tuned, ignore_identical_ids=True)["bm25"].metrics["ndcg@10"] == 1.0


def test_rerank_rows_rescore_tuned_and_bm25(tmp_path):
    folder = save_tiny_cross_encoder(tmp_path)
    config = RerankConfig(model=str(folder), top_k=3, batch_size=8)
    dense = fake_dense_run(TEST)
    rows = reference_rows(TEST, tuned_result(TEST, dense), rerank=config)
    assert list(rows) == ["bm25", "hybrid_rrf", "hybrid_convex", "rerank_tuned", "rerank_bm25"]
    model = load_cross_encoder(str(folder))
    assert list(rows["rerank_tuned"].run["q0"]) == list(rerank_run(model, TEST.queries, TEST.corpus, dense, 3)["q0"])
    assert (rows["rerank_tuned"].comparison.against, rows["rerank_bm25"].comparison.against) == ("tuned", "bm25")
    assert rows["rerank_bm25"].comparison.stats["ndcg@10"].delta == pytest.approx(
        rows["rerank_bm25"].metrics["ndcg@10"] - rows["bm25"].metrics["ndcg@10"])
    assert rows["rerank_tuned"].description == "Cross-encoder ce re-scoring the tuned model's top 3"  # no local path
    assert rows["rerank_bm25"].details == {"model": "ce", "top_k": 3}
    only_rerank = reference_rows(TEST, tuned_result(TEST, dense), keyword=False, rerank=config)
    assert list(only_rerank) == ["rerank_tuned"]
