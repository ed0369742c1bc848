"""Graded relevance from a BEIR folder to the metrics, and qrels naming documents missing from the corpus: the
evaluation must equal pytrec_eval (trec_eval) run on the raw files, while training reads only judgements > 0."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from datasets import Dataset

from configs.cli import run
from configs.errors import UserError
from configs.load import validate
from configs.schema import SourceConfig
from conftest import tiny_config, write_config
from core.embed import embed
from data.__main__ import main as data_main
from data.prepare import load_prepared, load_table, prepare
from data.table import Table
from evaluate.retrieval.metrics import rank_documents
from evaluate.retrieval.qrels import retrieval_sets, text_id
from evaluate.tasks.retrieval import RETRIEVAL, RETRIEVAL_METRICS
from evaluate.tasks.spec import TaskResult

KEYWORDS = ["disk", "mail", "vpn", "printer", "cpu", "login"]
CORPUS = {"d1": ("Disk", "disk disk mail"), "d2": ("", "disk full"), "d3": ("", "disk mail mail"),
          "d4": ("Mail", "mail queue"), "d5": ("", "mail mail mail vpn"), "d6": ("", "printer jam"),
          "d7": ("", "cpu login cpu"), "d8": ("", "login failed"), "d9": ("", "vpn printer cpu"),
          "d10": ("", "nothing here")}
QUERIES = {"q1": "disk", "q2": "mail", "q3": "vpn", "q4": "printer", "q5": "cpu login", "q6": "login",
           "q7": "disk mail"}
TEST_QRELS = [  # grades 1 and 2; q1 and q3 name missing documents (q3 has no other), q4 judges only grade 0
    ("q1", "d1", 2), ("q1", "d2", 1), ("q1", "d3", 0), ("q1", "d404", 2),
    ("q2", "d4", 1), ("q2", "d5", 2),
    ("q3", "d405", 1),
    ("q4", "d6", 0),
    ("q5", "d7", 1), ("q5", "d8", 2),
]
TRAIN_QRELS = [("q6", "d8", 1), ("q7", "d3", 1), ("q7", "d1", 2)]


def write_qrels(path: Path, qrels: list[tuple[str, str, int]]) -> None:
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{grade}" for q, d, grade in qrels]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def graded_beir(tmp_path) -> Path:
    folder = tmp_path / "graded"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": d, "title": title, "text": text} for d, (title, text) in CORPUS.items()]
    queries = [{"_id": q, "text": text} for q, text in QUERIES.items()]
    for name, items in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    write_qrels(folder / "qrels" / "test.tsv", TEST_QRELS)
    write_qrels(folder / "qrels" / "train.tsv", TRAIN_QRELS)
    return folder


class KeywordEncoder:
    """Embeds a text as its counts of KEYWORDS (plus a tiny constant so no vector is zero)."""

    similarity_fn_name = "cosine"

    def encode(self, sentences, **kwargs):
        return keyword_vectors(list(sentences)).astype(np.float32)

    encode_query = encode_document = encode


def keyword_vectors(texts: list[str]) -> np.ndarray:
    return np.array([[t.split().count(k) for k in KEYWORDS] + [0.01] for t in texts], dtype=np.float64)


# --------------------------------------------------------------------------------------- reading graded qrels
def test_beir_rows_carry_their_grade_and_the_other_judgements_sit_beside_them(graded_beir):
    table = load_table(SourceConfig(path=str(graded_beir), split="test"), "data.test")
    assert table.rows["anchor_id"] == ["q1", "q1", "q2", "q2", "q5", "q5"]
    assert table.rows["positive_id"] == ["d1", "d2", "d4", "d5", "d7", "d8"]
    assert table.rows["relevance"] == [2, 1, 1, 2, 1, 2]
    assert table.extra_qrels == {"q1": {"d3": 0, "d404": 2}, "q3": {"d405": 1}, "q4": {"d6": 0}}
    assert table.extra_queries == {"q3": "vpn", "q4": "printer"}  # queries without a row still count


def test_missing_documents_are_a_warning_naming_them_and_the_queries_they_touch(graded_beir, caplog):
    with caplog.at_level(logging.WARNING, logger="data.beir"):
        load_table(SourceConfig(path=str(graded_beir), split="test"), "data.test")
    qrels = graded_beir / "qrels" / "test.tsv"
    assert [r.getMessage() for r in caplog.records] == [
        f"{qrels}: 2 document id(s) are not in corpus.jsonl: d404, d405. Their 2 judgement(s) are kept, as trec_eval "
        "and MTEB keep them: relevant but never retrieved, so they stay in nDCG's ideal ranking and in recall's and "
        "MAP's denominators. They touch 2 queries (q1, q3); 1 of them (q3) has no relevant document left to find "
        "and scores 0. If the documents exist, add them to corpus.jsonl."]


def test_qrels_naming_no_document_of_the_corpus_stop_with_the_list(graded_beir):
    qrels = graded_beir / "qrels" / "test.tsv"
    write_qrels(qrels, [("q1", "x1", 1), ("q2", "x2", 2)])
    with pytest.raises(UserError) as info:
        load_table(SourceConfig(path=str(graded_beir), split="test"), "data.test")
    assert str(info.value) == (
        f"{qrels} names ids the folder cannot resolve. Fix the qrels or the files:\n"
        "  document ids, none of them in corpus.jsonl (is it the right corpus?) (2): x1, x2")


def test_limit_keeps_the_other_judgements_of_the_kept_queries_only(graded_beir):
    table = load_table(SourceConfig(path=str(graded_beir), split="test", limit=3), "data.test")
    assert table.rows["anchor_id"] == ["q1", "q1", "q2"]
    assert table.extra_qrels == {"q1": {"d3": 0, "d404": 2}} and table.extra_queries == {}


def test_max_per_anchor_keeps_the_highest_graded_and_the_rest_stay_judgements(graded_beir):
    table = load_table(SourceConfig(path=str(graded_beir), split="test", max_per_anchor=1), "data.test")
    assert table.rows["anchor_id"] == ["q1", "q2", "q5"]
    assert table.rows["positive_id"] == ["d1", "d5", "d8"]  # each query's grade-2 document
    assert table.extra_qrels == {"q1": {"d3": 0, "d404": 2, "d2": 1}, "q2": {"d4": 1}, "q3": {"d405": 1},
                                 "q4": {"d6": 0}, "q5": {"d7": 1}}  # evaluation still counts d2, d4, d7 relevant
    again = load_table(SourceConfig(path=str(graded_beir), split="test", max_per_anchor=1), "data.test")
    assert again.rows["positive_id"] == table.rows["positive_id"]


def test_max_per_anchor_of_a_pairs_file_keeps_rows_by_anchor_text(tmp_path):
    path = tmp_path / "pairs.csv"
    rows = [("a", f"positive {i}") for i in range(5)] + [("b", "only one")]
    path.write_text("anchor,positive\n" + "".join(f"{a},{p}\n" for a, p in rows), encoding="utf-8")
    table = load_table(SourceConfig(path=str(path), max_per_anchor=2), "data.train")
    assert sorted(table.rows["anchor"]) == ["a", "a", "b"] and len(table.locations) == 3
    assert set(table.rows["positive"]) < {p for _, p in rows}
    with pytest.raises(UserError, match=r"data.train.max_per_anchor keeps rows per anchor.*kind 'scored'"):
        scored = tmp_path / "scored.csv"
        scored.write_text("sentence1,sentence2,score\nx,y,0.5\n", encoding="utf-8")
        load_table(SourceConfig(path=str(scored), max_per_anchor=2), "data.train")


def test_training_reads_only_the_canonical_columns_of_graded_rows(graded_beir):
    from train.trainer import trainer_dataset

    table = load_table(SourceConfig(path=str(graded_beir), split="train"), "data.train")
    assert "relevance" in table.rows.column_names
    assert trainer_dataset(table).column_names == ["anchor", "positive"]  # every judgement > 0 is a positive


# ------------------------------------------------------------------------------------------------ the qrels
def test_retrieval_sets_give_every_judgement_its_grade_and_every_judged_query(graded_beir):
    table = load_table(SourceConfig(path=str(graded_beir), split="test"), "data.test")
    queries, corpus, qrels = retrieval_sets(table, full_corpus=True)
    assert qrels == {q: {d: grade for q2, d, grade in TEST_QRELS if q2 == q} for q in ("q1", "q2", "q3", "q4", "q5")}
    assert queries == {q: QUERIES[q] for q in qrels}
    assert set(corpus) == set(CORPUS)  # the missing documents are judged, never retrievable
    assert set(retrieval_sets(table, full_corpus=False)[1]) == {"d1", "d2", "d4", "d5", "d7", "d8"}


def test_retrieval_sets_of_labeled_pairs_judge_label_one_with_grade_one():
    rows = Dataset.from_dict({"sentence1": ["disk", "disk", "mail"], "sentence2": ["disk full", "mail", "vpn"],
                              "label": [1, 0, 0], "group": ["disk", "disk", "mail"]})
    queries, corpus, qrels = retrieval_sets(Table(rows=rows, kind="labeled", origin="mem"), full_corpus=True)
    assert list(queries.values()) == ["disk"] and len(corpus) == 3  # "mail" has nothing relevant: no query
    assert list(qrels.values()) == [{text_id("disk full"): 1}]


# -------------------------------------------------------------------------- end to end against pytrec_eval
def raw_files(folder: Path) -> tuple[dict, dict, dict]:
    """(queries, corpus, qrels) read straight from the files, as BEIR's loader reads them."""
    queries = {item["_id"]: item["text"] for item in map(json.loads, (folder / "queries.jsonl").open())}
    corpus = {item["_id"]: f"{item['title']} {item['text']}".strip()
              for item in map(json.loads, (folder / "corpus.jsonl").open())}
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", newline="") as handle:
        for q, d, grade in list(csv.reader(handle, delimiter="\t"))[1:]:
            qrels.setdefault(q, {})[d] = int(grade)
    return queries, corpus, qrels


def pytrec_eval_scores(folder: Path) -> dict[str, dict[str, float]]:
    """Our metric names per query, from pytrec_eval on the raw files and a cosine run over the whole corpus."""
    queries, corpus, qrels = raw_files(folder)
    doc_ids = list(corpus)
    d = keyword_vectors([corpus[i] for i in doc_ids])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    runs = {}
    for q in qrels:
        v = keyword_vectors([queries[q]])[0]
        runs[q] = {doc: float(s) for doc, s in zip(doc_ids, d @ (v / np.linalg.norm(v)))}
    top10 = {q: {doc: docs[doc] for doc in rank_documents(docs)[:10]} for q, docs in runs.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map_cut.100", "recall.1,10,100"}).evaluate(runs)
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)  # our mrr@10: the run cut at 10
    names = {"ndcg@10": "ndcg_cut_10", "map@100": "map_cut_100", "recall@1": "recall_1", "recall@10": "recall_10",
             "recall@100": "recall_100"}
    return {q: {**{ours: full[q][theirs] for ours, theirs in names.items()}, "mrr@10": cut[q]["recip_rank"]}
            for q in full}


def evaluated_test_split(tmp_path: Path, model_dir: Path, folder: Path) -> Table:
    """``python -m data`` on the folder (train and test qrels), then the test split as a run folder holds it."""
    data = {"train": {"path": str(folder), "split": "train"}, "test": {"path": str(folder), "split": "test"},
            "dev_fraction": 0}
    config = write_config(tmp_path, tiny_config(tmp_path, model_dir, data, {"name": "mnrl"}))
    assert run(lambda: data_main([str(config)])) == 0
    return load_prepared(tmp_path / "run").test


def run_retrieval(table: Table) -> tuple[TaskResult, object]:
    """The retrieval evaluator's own run on the table, with keyword embeddings: (result, embeddings)."""
    emb = embed(KeywordEncoder(), RETRIEVAL.texts(table, full_corpus=True), 8)
    return RETRIEVAL.run(table, emb, full_corpus=True, ignore_identical_ids=False), emb


def test_graded_evaluation_with_missing_documents_equals_pytrec_eval_on_the_raw_files(
        tmp_path, tiny_model_dir, graded_beir):
    table = evaluated_test_split(tmp_path, tiny_model_dir, graded_beir)
    assert json.loads((tmp_path / "run" / "data" / "qrels_extra.json").read_text())["test"]["queries"] == {
        "q3": "vpn", "q4": "printer"}
    result, _ = run_retrieval(table)
    expected = pytrec_eval_scores(graded_beir)
    assert result.query_ids == sorted(expected)  # the query with only missing documents and the grade-0 one count
    for metric in RETRIEVAL_METRICS:
        assert result.per_query[metric].tolist() == pytest.approx([expected[q][metric] for q in result.query_ids],
                                                                  abs=1e-12), metric
        assert result.metrics[metric] == pytest.approx(np.mean([s[metric] for s in expected.values()]), abs=1e-12)
    assert result.per_query["ndcg@10"][result.query_ids.index("q3")] == 0.0
    assert 0 < result.metrics["recall@10"] < 1  # d404 and d405 are never found


def test_grades_change_ndcg_where_binary_judgements_would_not(tmp_path, tiny_model_dir, graded_beir):
    """The known answer behind the parity test: q5 ranks d7 (grade 1) above d8 (grade 2)."""
    table = evaluated_test_split(tmp_path, tiny_model_dir, graded_beir)
    graded, _ = run_retrieval(table)
    ndcg = graded.per_query["ndcg@10"][graded.query_ids.index("q5")]
    assert ndcg == pytest.approx((1 + 2 / np.log2(3)) / (2 + 1 / np.log2(3)))  # binary judgements: 1.0
    q1 = graded.per_query["ndcg@10"][graded.query_ids.index("q1")]  # d2 (1), d1 (2); ideal 2, 2, 1 (d404 missing)
    assert q1 == pytest.approx((1 + 2 / np.log2(3)) / (2 + 2 / np.log2(3) + 1 / np.log2(4)))


# ------------------------------------------------------------------------------------------------ made splits
def test_a_made_split_keeps_each_querys_judgements_with_it(tmp_path, tiny_model_dir, graded_beir):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": str(graded_beir), "split": "test"},
                                                 "test_fraction": 0.5, "dev_fraction": 0}, {"name": "mnrl"})
    prepared = prepare(validate(raw))
    again = prepare(validate(raw))
    splits = (prepared.train, prepared.test)
    for table in splits:
        with_rows = set(table.rows["anchor_id"])
        assert set(table.extra_qrels) <= with_rows | set(table.extra_queries)
        assert not with_rows & set(table.extra_queries)
    everything = {q: docs for table in splits for q, docs in table.extra_qrels.items()}
    assert everything == {"q1": {"d3": 0, "d404": 2}, "q3": {"d405": 1}, "q4": {"d6": 0}}
    assert [t.extra_queries for t in splits] == [again.train.extra_queries, again.test.extra_queries]  # seeded


def test_the_report_details_of_a_set_with_missing_documents_show_only_documents_that_exist(graded_beir):
    table = load_table(SourceConfig(path=str(graded_beir), split="test"), "data.test")
    result, emb = run_retrieval(table)
    shown = RETRIEVAL.details(table, result, result, (emb, emb), seed=0)
    assert len(shown["positive_scores"]["baseline"]) == 6  # the six relevant documents the corpus has
    texts, _, _ = RETRIEVAL.map_inputs(table, result)
    assert len(texts) == 5 + 6


def test_queries_that_cannot_score_above_0_are_counted_in_about(tmp_path, tiny_model_dir, graded_beir):
    """q3 judges only a document missing from the corpus, q4 only a grade-0 one: no ranking can score them."""
    table = evaluated_test_split(tmp_path, tiny_model_dir, graded_beir)
    result, _ = run_retrieval(table)
    about = RETRIEVAL.about(table, result)
    assert about["unscorable_queries"] == 2 and about["unscorable_query_examples"] == ["q3", "q4"]
    assert about["queries"] == len(result.query_ids)
    assert all(result.per_query["ndcg@10"][result.query_ids.index(q)] == 0 for q in ("q3", "q4"))
