"""The real bundled model on real data: our evaluation reproduces the published baseline, and fine-tuning helps."""

from __future__ import annotations

import json

import pytest

from configs.cli import run
from configs.schema import EvalDatasetConfig, ModelConfig, SourceConfig
from conftest import REPO, SHARED_DATA
from core.model import load_model
from data.prepare import load_table
from evaluate.measure import evaluate_model
from evaluate.sets import EvalSet


def test_stsb_test_baseline_reproduces_mteb():
    """MTEB publishes STSb test Spearman (cosine) 82.03 for all-MiniLM-L6-v2: a different number would mean our
    evaluation differs from the standard one."""
    source = SourceConfig(path=str(SHARED_DATA / "stsb" / "test.csv"), score_range=(0, 5))
    stsb = EvalSet(EvalDatasetConfig(name="stsb", task="sts"), load_table(source, "stsb"))
    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    results, _ = evaluate_model(model, [stsb], batch_size=64)
    assert results["stsb"].metrics["spearman_cosine"] == pytest.approx(0.8203, abs=0.001)


@pytest.mark.slow
def test_quickstart_tuned_model_beats_the_baseline_on_held_out_topics(tmp_path):
    from evaluate.__main__ import main as evaluate_main
    from train.__main__ import main as train_main

    overrides = [f"run_dir={tmp_path / 'run'}", "train.epochs=1"]
    config = str(REPO / "configs" / "quickstart.yaml")
    assert run(lambda: train_main([config, *overrides])) == 0
    assert run(lambda: evaluate_main([config, *overrides])) == 0
    report = json.loads((tmp_path / "run" / "eval" / "report.json").read_text())
    assert report["primary"]["metric"] == "ndcg@10"
    assert report["primary"]["delta"] > 0.03


@pytest.mark.slow
def test_scifact_test_baseline_reproduces_mteb(tmp_path):
    """MTEB publishes SciFact test nDCG@10 64.51 for all-MiniLM-L6-v2 (full corpus, title + text, trec_eval)."""
    source = SourceConfig(path=str(SHARED_DATA / "scifact"), format="beir", split="test")
    scifact = EvalSet(EvalDatasetConfig(name="scifact", task="retrieval"), load_table(source, "scifact"))
    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    results, _ = evaluate_model(model, [scifact], batch_size=64)
    assert results["scifact"].metrics["ndcg@10"] == pytest.approx(0.6451, abs=0.003)
