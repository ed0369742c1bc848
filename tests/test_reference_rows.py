"""Reference rows beside the tuned model (evaluate/retrieval/reference_rows.py): BM25, hybrids, rerankers, paired
statistics."""

from __future__ import annotations

import numpy as np
import pytest
from test_rerank import save_tiny_cross_encoder

from configs.schema import KeywordConfig, RerankConfig
from conftest import INCIDENT_ROWS
from core.keyword import Bm25
from evaluate.retrieval.fusion import choose_weight, convex, rrf
from evaluate.retrieval.keyword import bm25_run, pad_unranked
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
STEMMED = Bm25("english")  # evaluate.keyword's default


def bm25(data: RetrievalSet, k: int = 100) -> dict[str, dict[str, float]]:
    return bm25_run(data.queries, data.corpus, k=k, bm25=STEMMED)


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
    matched = bm25(TEST)
    assert keyword_rows["bm25"].run == pad_unranked(matched, TEST.corpus, 100)[0]
    assert keyword_rows["hybrid_rrf"].run == rrf([fake_dense_run(TEST), matched])  # fusion reads matches only
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


def test_bm25_row_ranks_unmatched_documents_after_the_matches_and_records_its_settings(keyword_rows):
    row, matched = keyword_rows["bm25"], bm25(TEST)
    for q_id, docs in row.run.items():
        assert len(docs) == len(TEST.corpus)  # every document ranked, as the dense model ranks every document
        assert list(docs)[:len(matched[q_id])] == list(matched[q_id])  # matches first, in BM25's order
        assert all(score == 0.0 for doc, score in docs.items() if doc not in matched[q_id])
    unmatched_queries = sum(len(docs) < len(TEST.corpus) for docs in matched.values())
    assert row.details["unranked"]["queries"] == unmatched_queries > 0
    assert row.details["unranked"]["without_any_match"] == sum(not docs for docs in matched.values())
    assert {k: row.details[k] for k in ("stemmer", "stopwords", "k1", "b", "method")} == {
        "stemmer": "english", "stopwords": "en", "k1": 1.5, "b": 0.75, "method": "lucene"}
    recall = row.metrics["recall@100"]
    assert recall == 1.0 > mean_of(matched, TEST, "recall@100")  # 9 documents: all ranked, every one found


def test_pad_unranked_fills_in_trec_eval_tie_order_whatever_the_input_order():
    padded, touched = pad_unranked({"q": {"b": 2.0}, "r": {"a": 1.0, "b": 0.5, "c": 0.2}}, ["c", "a", "d", "b"], 3)
    assert padded == {"q": {"b": 2.0, "d": 0.0, "c": 0.0}, "r": {"a": 1.0, "b": 0.5, "c": 0.2}} and touched == 1
    assert list(padded["q"]) == ["b", "d", "c"]


def test_the_stemmer_setting_reaches_bm25():
    stemmed = reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)))["bm25"]
    plain = reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)),
                           keyword=KeywordConfig(stemmer="none"))["bm25"]
    assert stemmed.details["stemmer"] == "english" and plain.details["stemmer"] == "none"
    assert "Snowball English stemmer" in stemmed.description and "no stemming" in plain.description
    assert plain.run == pad_unranked(bm25_run(TEST.queries, TEST.corpus), TEST.corpus, 100)[0]


def test_convex_without_dev_says_its_weight_is_fixed(keyword_rows):
    row = keyword_rows["hybrid_convex"]
    assert (row.details["weight"], row.details["weight_from"]) == (0.5, "fallback")
    assert "fixed at 0.5: no dev retrieval split to choose it on" in row.description
    assert row.run == convex(fake_dense_run(TEST), bm25(TEST), 0.5)


def test_convex_weight_is_chosen_on_dev():
    dev_run = fake_dense_run(DEV)
    rows = reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), dev=DEV, dev_tuned_run=dev_run)
    expected = choose_weight(dev_run, bm25(DEV), DEV.qrels)
    assert 0 < expected < 1  # an end of the grid would fold the row (next test)
    row = rows["hybrid_convex"]
    assert (row.details["weight"], row.details["weight_from"]) == (expected, "dev")
    assert f"chosen on the dev split ({len(DEV.queries)} queries) by nDCG@10" in row.description


@pytest.mark.parametrize(("weight", "same"), [(1.0, "tuned"), (0.0, "bm25")])
def test_a_dev_weight_at_an_end_of_the_grid_folds_the_hybrid_into_the_row_it_equals(monkeypatch, weight, same):
    from evaluate.retrieval import fusion

    monkeypatch.setattr(fusion, "choose_weight", lambda *args, **kwargs: weight)  # what dev would choose
    rows = reference_rows(TEST, tuned_result(TEST, fake_dense_run(TEST)), dev=DEV, dev_tuned_run=fake_dense_run(DEV))
    saved = rows["hybrid_convex"].as_report()
    assert saved["folded_into"] == same and saved["details"]["weight"] == weight
    assert saved["description"] == f"hybrid_convex chose weight {weight:.1f} on dev: identical to {same}"
    assert "metrics" not in saved and "vs" not in saved  # no separate row competes
    fused = convex(fake_dense_run(TEST), bm25(TEST), weight)  # what the row would have ranked
    matched = bm25(TEST)
    kept = fake_dense_run(TEST) if same == "tuned" else matched  # weight 0: BM25's matches, then score-0 documents
    # the same order, but for the last kept document: min-max maps it to 0, where the other run's documents sit too
    assert all(list(fused[q])[:max(0, len(kept[q]) - 1)] == list(kept[q])[:-1] for q in TEST.queries)


def test_truncated_rows_pair_the_first_tokens_run_against_the_chunked_one():
    from evaluate.retrieval.reference_rows import Truncated

    chunked, whole = fake_dense_run(TEST), {q: dict(reversed(list(d.items()))) for q, d in fake_dense_run(TEST).items()}
    base = tuned_result(TEST, whole)
    rows = reference_rows(TEST, tuned_result(TEST, chunked), keyword=False,
                          truncated=Truncated(whole, base, chunked))
    assert list(rows) == ["truncated", "baseline_truncated"]
    assert rows["truncated"].comparison.against == "tuned" and rows["baseline_truncated"].comparison.against == \
        "baseline"
    assert rows["truncated"].metrics["ndcg@10"] == pytest.approx(mean_of(whole, TEST))
    assert rows["baseline_truncated"].comparison.stats["ndcg@10"].delta == pytest.approx(
        mean_of(chunked, TEST) - mean_of(whole, TEST))


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
