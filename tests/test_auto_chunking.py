"""Honest long-document evaluation (evaluate.chunking.mode auto|always|never) through python -m evaluate on the tiny
model (it reads 62 tokens of a document): a set with long documents is evaluated chunked (MaxP) and the report keeps
the truncated run beside it; a set of short documents is not chunked; the dev split follows the same decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import INCIDENT_ROWS, tiny_config, write_config, write_csv


def long_rows() -> list[tuple]:
    """INCIDENT_ROWS with every other plain text repeated nine times (about 70 tokens: longer than 62), over twelve
    topics so the split has a dev part."""
    rows = []
    for n, (topic, jargon, plain) in enumerate(INCIDENT_ROWS * 2):
        text = " ".join([plain] * 9) if n % 2 else plain
        rows.append((f"{topic}{n // len(INCIDENT_ROWS)}", jargon, text))
    return rows


def trained_run(root: Path, model_dir: Path, rows: list[tuple], **evaluate) -> Path:
    from configs.cli import run
    from data.__main__ import main as data_main
    from train.__main__ import main as train_main

    pairs = write_csv(root / "pairs.csv", ["topic", "jargon", "plain"], rows)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(root, model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": 0.2},
                      {"name": "mnrl"})
    raw["evaluate"].update(evaluate, cache_dir=None, precision="fp32")
    raw["evaluate"]["datasets"] = [{"name": "incidents", "task": "retrieval", "split": "test"}]
    config = str(write_config(root, raw))
    for main in (data_main, train_main):
        assert run(lambda main=main: main([config])) == 0
    return root / "run"


def evaluated(run_dir: Path, *overrides: str) -> dict:
    from configs.cli import run
    from evaluate.__main__ import main

    assert run(lambda: main([str(run_dir), *overrides])) == 0
    return json.loads((run_dir / "eval" / "report.json").read_text())["datasets"]["incidents"]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory, tiny_model_dir) -> Path:
    return trained_run(tmp_path_factory.mktemp("long"), tiny_model_dir, long_rows())


def test_auto_chunks_a_set_of_long_documents_and_keeps_the_truncated_rows_beside_it(long_run):
    info = evaluated(long_run)
    note = info["about"]["long_documents"]
    assert note["longer_than_limit"] > 0
    assert note["share"] == pytest.approx(note["longer_than_limit"] / note["documents"])
    chunked = note["chunked"]
    assert chunked["mode"] == "auto" and chunked["auto_share"] == 0.05 and chunked["documents"] > 0
    assert chunked["reason"].startswith("auto: ") and "threshold evaluate.chunking.auto_share 5%" in chunked["reason"]
    rows = info["reference"]
    assert list(rows)[:2] == ["truncated", "baseline_truncated"]
    assert rows["truncated"]["vs"]["against"] == "tuned" and rows["baseline_truncated"]["vs"]["against"] == "baseline"
    delta = rows["truncated"]["vs"]["ndcg@10"]["delta"]
    assert delta == pytest.approx(rows["truncated"]["metrics"]["ndcg@10"] - info["metrics"]["ndcg@10"]["tuned"])
    never = evaluated(long_run, "evaluate.chunking.mode=never")  # the truncated run is what 'never' measures
    assert rows["truncated"]["metrics"] == pytest.approx({m: v["tuned"] for m, v in never["metrics"].items()})
    assert rows["baseline_truncated"]["metrics"]["ndcg@10"] == pytest.approx(never["metrics"]["ndcg@10"]["baseline"])
    assert never["about"]["long_documents"]["chunked"] is None
    assert "mode 'never'" in never["about"]["long_documents"]["not_chunked_because"]
    assert "truncated" not in never["reference"]


def test_the_hybrid_weight_is_chosen_on_a_dev_split_chunked_like_the_test_set(long_run, monkeypatch):
    from evaluate import dev_runs

    seen = []
    real = dev_runs.dev_result

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(result)
        return result

    monkeypatch.setattr(dev_runs, "dev_result", spy)
    info = evaluated(long_run)
    assert seen and seen[0] is not None and "truncated" in seen[0].extra_runs  # the dev run was chunked (MaxP)
    assert info["reference"]["hybrid_convex"]["details"]["weight_from"] == "dev"
    seen.clear()
    evaluated(long_run, "evaluate.chunking.mode=never")
    assert "truncated" not in seen[0].extra_runs


def test_short_documents_are_not_chunked_under_auto_but_are_under_always(tmp_path, tiny_model_dir):
    run_dir = trained_run(tmp_path, tiny_model_dir, INCIDENT_ROWS)
    info = evaluated(run_dir)
    note = info["about"]["long_documents"]
    assert note["longer_than_limit"] == 0 and note["chunked"] is None
    assert note["not_chunked_because"].startswith("auto: 0.0% of the documents are longer than the 62 tokens")
    assert "truncated" not in info["reference"]
    always = evaluated(run_dir, "evaluate.chunking.mode=always", "evaluate.chunking.max_tokens=4",
                       "evaluate.chunking.overlap=1")
    assert always["about"]["long_documents"]["chunked"]["reason"] == "evaluate.chunking.mode is 'always'"
    assert "truncated" in always["reference"]


def test_queries_that_cannot_score_are_counted_in_about(tmp_path, tiny_model_dir):
    from evaluate.tasks.retrieval import unscorable

    queries = {"q1": "disk full", "q2": "mail down", "q3": "printer jam", "q4": "vpn lost"}
    corpus = {"d1": "the disk is full", "d2": "mail is down"}
    qrels = {"q1": {"d1": 1, "d2": 0}, "q2": {"d2": 2}, "q3": {"d9": 1}, "q4": {"d1": 0}}  # d9 is not in the corpus
    assert unscorable(queries, corpus, qrels) == {"unscorable_queries": 2, "unscorable_query_examples": ["q3", "q4"]}
    run_dir = trained_run(tmp_path, tiny_model_dir, INCIDENT_ROWS)
    about = evaluated(run_dir)["about"]
    assert about["unscorable_queries"] == 0 and about["unscorable_query_examples"] == []


def test_the_dev_evaluator_during_training_chunks_as_the_evaluation_would(tiny_model_dir):
    from sentence_transformers import SentenceTransformer
    from test_system import incident_table

    from configs.schema import EvaluateConfig
    from evaluate.evaluators import TaskEvaluator

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    long, short = incident_table(True), incident_table(False)
    chunked = TaskEvaluator("retrieval", long, "dev", 8, settings=EvaluateConfig())
    assert chunked(model)["dev_ndcg@10"] >= 0 and chunked.table.windows is not None
    assert chunked.note["chunked"]["mode"] == "auto"
    assert TaskEvaluator("retrieval", long, "dev", 8).table.windows is None  # no settings: the table as it is
    follows = TaskEvaluator("retrieval", short, "dev", 8, settings=EvaluateConfig(), decide_on=long)
    follows(model)
    assert follows.table.windows is not None  # short dev documents, chunked because the set they serve is
