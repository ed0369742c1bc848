"""python -m evaluate puts BM25 and hybrid rows beside the tuned model on every retrieval set, paired per query."""

from __future__ import annotations

import json

import pytest

from conftest import trained_incidents_run


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_model_dir):
    from configs.cli import run
    from evaluate.__main__ import main

    run_dir = trained_incidents_run(tmp_path_factory.mktemp("refs"), tiny_model_dir, cache_dir=None)
    assert run(lambda: main([str(run_dir)])) == 0
    return json.loads((run_dir / "eval" / "report.json").read_text()), run_dir


def test_retrieval_sets_get_bm25_and_hybrid_rows_and_other_tasks_none(report):
    report, _ = report
    rows = report["datasets"]["incidents"]["reference"]
    assert list(rows) == ["bm25", "hybrid_rrf", "hybrid_convex"]
    assert "reference" not in report["datasets"]["general-sts"]
    tuned = report["datasets"]["incidents"]["metrics"]["ndcg@10"]["tuned"]
    bm25 = rows["bm25"]
    assert bm25["vs"]["against"] == "tuned"
    assert bm25["vs"]["ndcg@10"]["delta"] == pytest.approx(bm25["metrics"]["ndcg@10"] - tuned)
    assert bm25["vs"]["ndcg@10"]["ci_low"] <= bm25["vs"]["ndcg@10"]["delta"] <= bm25["vs"]["ndcg@10"]["ci_high"]


def test_the_hybrid_weight_comes_from_dev_or_says_it_does_not(report):
    report, _ = report
    convex = report["datasets"]["incidents"]["reference"]["hybrid_convex"]
    assert "dev" in convex["description"]


def test_the_report_shows_the_rows(report):
    _, run_dir = report
    html = (run_dir / "eval" / "report.html").read_text()
    assert "BM25" in html and "hybrid" in html.lower()


def test_keyword_false_leaves_the_rows_out(tmp_path, tiny_model_dir):
    from configs.cli import run
    from evaluate.__main__ import main

    run_dir = trained_incidents_run(tmp_path, tiny_model_dir, cache_dir=None, keyword=False)
    assert run(lambda: main([str(run_dir)])) == 0
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert "reference" not in report["datasets"]["incidents"]


def test_chunking_scores_documents_by_their_best_window_and_the_report_says_how_many(tmp_path, tiny_model_dir):
    from configs.cli import run
    from evaluate.__main__ import main

    run_dir = trained_incidents_run(tmp_path, tiny_model_dir, cache_dir=None, keyword=False)
    assert run(lambda: main([str(run_dir)])) == 0
    whole = json.loads((run_dir / "eval" / "report.json").read_text())["datasets"]["incidents"]
    assert whole["about"]["long_documents"]["chunked"] is None  # auto: no document is longer than the model reads
    assert run(lambda: main([str(run_dir), "evaluate.chunking.mode=always", "evaluate.chunking.max_tokens=4",
                             "evaluate.chunking.overlap=1"])) == 0
    chunked = json.loads((run_dir / "eval" / "report.json").read_text())["datasets"]["incidents"]
    note = chunked["about"]["long_documents"]["chunked"]
    assert note["documents"] > 0 and note["windows"] > note["documents"] and note["max_tokens"] == 4
    assert chunked["metrics"]["ndcg@10"]["baseline"] != whole["metrics"]["ndcg@10"]["baseline"]
    assert "were chunked into" in (run_dir / "eval" / "report.md").read_text()
