"""BM25 (core/keyword.py) and its reference run (evaluate/retrieval/keyword.py): known answers on a corpus written
for these tests, and SciFact."""

from __future__ import annotations

import math

import bm25s
import pytest

from conftest import SHARED_DATA
from core.keyword import BM25_OPTIONS, Bm25, available, build_index, tokenize
from evaluate.retrieval.keyword import bm25_run
from evaluate.retrieval.metrics import evaluate_run

CORPUS = {
    "d1": "The database server is down and the disk is full.",
    "d2": "Printer paper jam in the office.",
    "d3": "Backup restore failed: disk quota exceeded on the backup server.",
    "d4": "Password reset for a locked email account.",
    "d5": "Password reset for a locked email account.",  # same text as d4: a tie, broken by doc id
}


def lucene_bm25(term_freq: int, doc_len: int, avg_len: float, df: int, n_docs: int) -> float:
    """One term's Lucene BM25 score (Kamphuis et al. 2020: no (k1 + 1) factor, as in Lucene 8), k1 1.5, b 0.75."""
    k1, b = BM25_OPTIONS["k1"], BM25_OPTIONS["b"]
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * term_freq / (term_freq + k1 * (1 - b + b * doc_len / avg_len))


def test_tokenize_lowercases_drops_stopwords_and_single_characters():
    assert tokenize(["The Disk is FULL, a b cd"]) == [["disk", "full", "cd"]]


def test_scores_equal_the_lucene_formula():
    run = bm25_run({"q": "printer"}, CORPUS)
    lengths = [len(tokens) for tokens in tokenize(CORPUS.values())]
    expected = lucene_bm25(1, lengths[1], sum(lengths) / len(lengths), df=1, n_docs=len(CORPUS))
    assert run == {"q": {"d2": pytest.approx(expected, rel=1e-6)}}


def test_only_matching_documents_in_rank_order():
    run = bm25_run({"q1": "disk full on the server", "q2": "printer"}, CORPUS)
    assert list(run["q1"]) == ["d1", "d3"]  # d1 matches disk, full and server; d3 disk and server (twice)
    assert set(run["q2"]) == {"d2"}  # documents without a query term are left out, not ranked at 0
    assert run["q1"]["d1"] > run["q1"]["d3"] > 0


def test_ties_are_broken_by_doc_id_descending_as_trec_eval():
    run = bm25_run({"q": "password reset"}, CORPUS)
    assert list(run["q"]) == ["d5", "d4"] and run["q"]["d5"] == run["q"]["d4"]


def test_query_without_known_terms_has_an_empty_entry_and_k_cuts():
    run = bm25_run({"stop": "the and of", "unknown": "zebra", "many": "disk server password"}, CORPUS, k=2)
    assert run["stop"] == {} and run["unknown"] == {}
    assert len(run["many"]) == 2


def test_scores_agree_with_bm25s_own_retrieve():
    retriever = build_index(CORPUS)
    docs, scores = retriever.retrieve(tokenize(["backup disk server"]), k=3, show_progress=False)
    ours = bm25_run({"q": "backup disk server"}, CORPUS, k=3)["q"]
    theirs = {list(CORPUS)[i]: float(s) for i, s in zip(docs[0], scores[0]) if s > 0}
    assert ours == pytest.approx(theirs)
    assert isinstance(retriever, bm25s.BM25)


def test_empty_corpus_is_an_error():
    with pytest.raises(ValueError, match="the corpus is empty"):
        bm25_run({"q": "disk"}, {})


def test_the_english_stemmer_joins_inflections_and_none_keeps_them():
    assert tokenize(["Printers are printing"], Bm25("english")) == [["printer", "print"]]
    assert tokenize(["Printers are printing"], Bm25("none")) == [["printers", "printing"]]
    run = bm25_run({"q": "restoring backups"}, CORPUS, bm25=Bm25("english"))
    assert list(run["q"]) == ["d3"] and bm25_run({"q": "restoring backups"}, CORPUS) == {"q": {}}


def test_without_pystemmer_bm25_falls_back_to_no_stemming_and_says_so(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_stemmer(name, *args, **kwargs):
        if name == "Stemmer":
            raise ImportError("No module named 'Stemmer'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_stemmer)
    with caplog.at_level("WARNING", logger="core.keyword"):
        settings = available("english")
    assert settings == Bm25("none") and settings.record()["stemmer"] == "none"
    assert ("evaluate.keyword.stemmer: the 'english' stemmer needs PyStemmer, which is not installed: BM25 runs "
            "without stemming") in caplog.text
    assert available("none") == Bm25("none")


def test_building_an_index_says_so_once_in_our_words(caplog):
    with caplog.at_level("DEBUG"):  # bm25s sets its own logger to DEBUG: its "Building index" line reached consoles
        build_index(CORPUS)
    lines = [(r.name, r.getMessage()) for r in caplog.records if "index" in r.getMessage().lower()]
    assert len(lines) == 1 and lines[0][0] == "core.keyword"
    assert lines[0][1].startswith("BM25 index of 5 documents (stemmer: none) in ")


def scifact_bm25(split: str, bm25: Bm25) -> float:
    from data.beir import doc_text, read_jsonl_by_id, read_qrels

    folder = SHARED_DATA / "scifact"
    corpus = {d: doc_text(doc) for d, doc in read_jsonl_by_id(folder / "corpus.jsonl").items()}
    texts = read_jsonl_by_id(folder / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    for _, q, d, level in read_qrels(folder / "qrels" / f"{split}.tsv"):
        qrels.setdefault(q, {})[d] = level
    run = bm25_run({q: texts[q]["text"] for q in qrels}, corpus, bm25=bm25)
    return evaluate_run(run, qrels, k_values=(10,), missing_queries="zero")["mean"]["ndcg@10"]


@pytest.mark.skipif(not (SHARED_DATA / "scifact").is_dir(), reason="needs ../shared/data/scifact")
def test_scifact_ndcg_is_near_the_published_bm25_and_stemming_lifts_it():
    """BEIR's Elasticsearch BM25 (which stems) scores 0.665; bm25s measured 0.6617 unstemmed and 0.6863 with the
    Snowball English stemmer (bm25s 0.3.16, PyStemmer 3.1)."""
    assert scifact_bm25("test", Bm25("none")) == pytest.approx(0.6617, abs=0.002)
    assert scifact_bm25("test", Bm25("english")) == pytest.approx(0.6863, abs=0.002)


def test_scoring_in_blocks_gives_every_query_its_own_row(monkeypatch):
    import numpy as np

    import core.keyword
    from core.keyword import score_blocks, score_rows

    retriever, queries = build_index(CORPUS), ["sqlite database", "kernel", "the of and", "database kernel"]
    monkeypatch.setattr(core.keyword, "SCORE_BLOCK", 2 * len(CORPUS))  # two queries per block
    blocks = list(score_blocks(retriever, queries))
    assert [start for start, _ in blocks] == [0, 2]
    assert np.array_equal(np.vstack([scores for _, scores in blocks]), score_rows(retriever, queries))
