"""evaluate.retrieval.metrics equals pytrec_eval (trec_eval) to 1e-6: random, crafted and real (SciFact) runs.

pytrec_eval's ``recip_rank`` has no cut-off, so ``mrr@k`` is compared with ``recip_rank`` on the run cut to its top k
in trec_eval's order (score desc, doc id desc), the truncate-then-evaluate way MTEB-style code gets MRR@k. (MTEB's own
``mrr`` gives the same value in Python, except that it cuts score ties in the run dict's order, not by doc id.)
"""

from __future__ import annotations

import csv
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluate.retrieval.metrics import evaluate_run, rank_documents, run_from_scores

pytrec_eval = pytest.importorskip("pytrec_eval", reason="the reference implementation: pip install pytrec_eval-terrier")

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
K = (1, 10, 100)
TREC_NAMES = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall"}


def _trec_compare(a: tuple[str, float], b: tuple[str, float]) -> int:
    """trec_eval's comp_sim_docno on (doc id, score), transcribed: sim descending, then strcmp(docno2, docno1)."""
    if a[1] != b[1]:
        return -1 if a[1] > b[1] else 1
    left, right = b[0].encode(), a[0].encode()
    return (left > right) - (left < right)


def truncate(run: dict, k: int) -> dict:
    """Each query's top k in trec_eval's order, written independently of the module under test."""
    key = functools.cmp_to_key(_trec_compare)
    return {q: dict(sorted(docs.items(), key=key)[:k]) for q, docs in run.items()}


def reference(run: dict, qrels: dict, k_values=K, relevance_level: int = 1) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query values under our metric names (for K: ndcg_cut.1,10,100, map_cut..., recall...)."""
    cutoffs = ",".join(map(str, k_values))
    measures = {f"{trec}.{cutoffs}" for trec in TREC_NAMES.values()}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=relevance_level).evaluate(run)
    out = {q: {f"{m}@{k}": v[f"{TREC_NAMES[m]}_{k}"] for m in TREC_NAMES for k in k_values} for q, v in full.items()}
    for k in k_values:
        cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=relevance_level)
        for q, v in cut.evaluate(truncate(run, k)).items():
            out[q][f"mrr@{k}"] = v["recip_rank"]
    return out


def assert_matches(ours: dict, expected: dict[str, dict[str, float]]) -> None:
    assert set(ours["per_query"]) == set(expected)
    for q, values in expected.items():
        assert ours["per_query"][q] == pytest.approx(values, abs=1e-6), q
    means = {name: float(np.mean([v[name] for v in expected.values()])) for name in ours["mean"]}
    assert ours["mean"] == pytest.approx(means, abs=1e-6)


def random_case(seed: int, decimals: int | None) -> tuple[dict, dict]:
    """50 queries x 300 docs, graded qrels (0, 1, 2) on 15 docs each; rounding the scores makes ties."""
    rng = np.random.default_rng(seed)
    scores = rng.random((50, 300))
    scores = scores.round(decimals) if decimals is not None else scores
    doc_ids = [f"d{j}" for j in range(300)]  # unpadded, so string order differs from number order
    run = {f"q{i}": {d: float(s) for d, s in zip(doc_ids, row)} for i, row in enumerate(scores)}
    qrels = {f"q{i}": {doc_ids[j]: int(rng.integers(0, 3)) for j in rng.choice(300, 15, replace=False)}
             for i in range(50)}
    return run, qrels


@pytest.mark.parametrize("decimals", [None, 2, 1], ids=["distinct", "some-ties", "many-ties"])
def test_random_graded_run_matches_pytrec_eval(decimals):
    run, qrels = random_case(seed=0, decimals=decimals)
    assert_matches(evaluate_run(run, qrels), reference(run, qrels))


def test_ties_are_broken_by_doc_id_descending():
    docs = ["a", "b", "c", "B", "a10", "a9", "é", "z"]
    assert rank_documents(dict.fromkeys(docs, 1.0)) == ["é", "z", "c", "b", "a9", "a10", "a", "B"]
    assert rank_documents({"e": 0.0, "z": -0.0, "y": 0.5}) == ["y", "z", "e"]  # -0.0 == 0.0 is a tie
    for relevant in docs:
        run, qrels = {"q": dict.fromkeys(docs, 1.0)}, {"q": {relevant: 1}}
        assert_matches(evaluate_run(run, qrels, k_values=(1, 3, 10)), reference(run, qrels, (1, 3, 10)))


def test_graded_levels_are_the_gain_and_shape_the_ideal_dcg():
    qrels = {"q": {"a": 1, "b": 2, "c": 0, "d": 3, "n": -1}}  # d is relevant but never retrieved
    run = {"q": {"n": 0.9, "a": 0.8, "b": 0.7, "c": 0.6, "x": 0.5}}
    ours = evaluate_run(run, qrels)
    assert_matches(ours, reference(run, qrels))
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)  # levels 3, 2, 1 in order; "n" (-1) and "c" (0) gain nothing
    assert ours["mean"]["ndcg@10"] == pytest.approx((1 / math.log2(3) + 2 / math.log2(4)) / ideal)
    binary = {"q": {d: min(level, 1) for d, level in qrels["q"].items()}}
    assert evaluate_run(run, binary)["mean"]["ndcg@10"] != pytest.approx(ours["mean"]["ndcg@10"])


def test_relevance_level_moves_map_recall_mrr_but_not_ndcg():
    run, qrels = random_case(seed=1, decimals=2)
    ours = evaluate_run(run, qrels, relevance_level=2)
    assert_matches(ours, reference(run, qrels, relevance_level=2))
    assert ours["mean"]["ndcg@10"] == evaluate_run(run, qrels)["mean"]["ndcg@10"]


def test_a_query_judged_only_zero_scores_zero_and_counts_in_the_mean():
    qrels = {"zero": {"a": 0, "b": 0}, "ok": {"a": 1}, "unjudged": {}}  # pytrec_eval drops a query without judgments
    run = {q: {"a": 1.0, "b": 0.5} for q in qrels}
    ours = evaluate_run(run, qrels)
    assert_matches(ours, reference(run, qrels))
    assert set(ours["per_query"]) == {"zero", "ok"} and set(ours["per_query"]["zero"].values()) == {0.0}
    assert ours["mean"]["ndcg@10"] == 0.5


def test_an_empty_result_list_scores_zero_and_a_missing_query_is_ignored_unless_asked():
    run, qrels = random_case(seed=2, decimals=2)
    run["q0"] = {}
    del run["q1"], run["q2"]
    assert_matches(evaluate_run(run, qrels), reference(run, qrels))  # q0 scores 0, q1 and q2 are not evaluated
    padded = {**run, "q1": {}, "q2": {}}  # pytrec_eval scores an empty result list 0
    assert_matches(evaluate_run(run, qrels, missing_queries="zero"), reference(padded, qrels))


def test_ignore_identical_ids_drops_the_query_itself_from_the_run():
    run, qrels = random_case(seed=3, decimals=2)
    for q in run:
        run[q][q] = 2.0  # each query retrieves itself first, as on ArguAna where queries are also corpus documents
    qrels["q5"]["q5"] = 1  # the qrels are left alone, so this relevant document can no longer be found
    popped = {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}
    ours = evaluate_run(run, qrels, ignore_identical_ids=True)
    assert_matches(ours, reference(popped, qrels))
    assert ours["mean"] != evaluate_run(run, qrels)["mean"]


def test_run_from_scores_keeps_the_top_k_trec_eval_would_rank_first():
    doc_ids = ["d1", "d2", "d10", "d3", "d20"]
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1], [0, 0, 0, 0, 0]], dtype=np.float32)
    run = run_from_scores(["q1", "q2"], doc_ids, scores, k=3)
    assert list(run["q1"]) == ["d2", "d3", "d10"] and list(run["q2"]) == ["d3", "d20", "d2"]
    assert all(isinstance(s, float) for docs in run.values() for s in docs.values())
    assert run_from_scores(["q"], doc_ids, scores[:1], k=50)["q"] == pytest.approx(
        dict(zip(doc_ids, scores[0].tolist())))


def test_run_from_scores_cut_at_k_gives_the_full_matrix_metrics_up_to_k():
    full, qrels = random_case(seed=4, decimals=1)
    q_ids, doc_ids = list(full), list(full["q0"])
    scores = np.array([[full[q][d] for d in doc_ids] for q in q_ids])  # (50, 300)
    cut = run_from_scores(q_ids, doc_ids, scores, k=10)
    assert evaluate_run(cut, qrels, k_values=(1, 5, 10)) == evaluate_run(full, qrels, k_values=(1, 5, 10))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, k_values=(0,)), "k_values must be positive ints"),
    (lambda: evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, missing_queries="drop"), "missing_queries must be"),
    (lambda: evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, relevance_level=0), "relevance_level must be"),
    (lambda: evaluate_run({"1": {"a": 1.0}}, {1: {"a": 1}}), "no query id is in both"),
    (lambda: evaluate_run({"q": {"a": math.nan}}, {"q": {"a": 1}}), r"run\['q'\]\['a'\] is NaN"),
    (lambda: run_from_scores(["q"], ["a", "b"], np.zeros((1, 3)), k=1), r"expected \(n_queries, n_docs\) = \(1, 2\)"),
    (lambda: run_from_scores(["q"], ["a", "a"], np.zeros((1, 2)), k=1), "doc_ids holds duplicate ids"),
    (lambda: run_from_scores(["q"], ["a", "b"], np.array([[0.0, np.nan]]), k=1), "scores holds NaN"),
    (lambda: run_from_scores(["q"], ["a", "b"], np.zeros((1, 2)), k=0), "k must be a positive int"),
])
def test_bad_input_is_refused_with_a_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def scifact_tfidf_run() -> tuple[dict, dict]:
    """A deterministic, model-free SciFact test run: TF-IDF cosine over title + text, top 100 per query."""
    if not (SCIFACT / "qrels" / "test.tsv").is_file():
        pytest.skip(f"SciFact is not at {SCIFACT} (the shared data folder must sit beside the repository)")
    from sklearn.feature_extraction.text import TfidfVectorizer

    with (SCIFACT / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    qrels: dict[str, dict[str, int]] = {}
    for row in rows:
        qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    corpus = _read_jsonl(SCIFACT / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in _read_jsonl(SCIFACT / "queries.jsonl") if q["_id"] in qrels}
    vectorizer = TfidfVectorizer().fit([d["title"] + " " + d["text"] for d in corpus])
    docs = vectorizer.transform([d["title"] + " " + d["text"] for d in corpus])  # rows L2-normalised
    scores = (vectorizer.transform(list(queries.values())) @ docs.T).toarray()  # (300, 5183), cosine
    return run_from_scores(list(queries), [d["_id"] for d in corpus], scores, k=100), qrels


def test_scifact_tfidf_run_matches_pytrec_eval(scifact_tfidf_run):
    run, qrels = scifact_tfidf_run
    assert len(run) == len(qrels) == 300 and all(len(docs) == 100 for docs in run.values())
    ours = evaluate_run(run, qrels)
    assert_matches(ours, reference(run, qrels))
    assert ours["mean"]["ndcg@10"] > 0.3  # a sane lexical baseline: ids and qrels line up
    # With 100 documents per query, pytrec_eval's uncut recip_rank is mrr@100.
    measures = {"ndcg_cut.1,10,100", "map_cut.1,10,100", "recall.1,10,100", "recip_rank"}
    for q, values in pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run).items():
        assert ours["per_query"][q]["mrr@100"] == pytest.approx(values["recip_rank"], abs=1e-6)
