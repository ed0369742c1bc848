"""evaluate.truncate_dims: every metric again at each size, baseline truncated the same way, and a size larger than
the model's refused before any encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import Dataset

from configs.cli import run
from configs.errors import UserError
from configs.schema import EvalDatasetConfig
from conftest import trained_incidents_run
from core.embed import Embeddings
from data.table import Table
from evaluate.measure import check_dims, evaluate_dims, evaluate_model
from evaluate.pairing import pair_up
from evaluate.sets import EvalSet


class Keywords:
    """One-hot keyword counts (plus a small constant): dimension i says whether keyword i is present."""

    similarity_fn_name = "cosine"
    keywords = ("disk", "mail", "vpn", "printer")

    def encode(self, sentences, **kwargs):
        rows = [[t.split().count(k) for k in self.keywords] + [0.01] for t in sentences]
        return np.array(rows, dtype=np.float32)


class Blind(Keywords):
    """Knows only 'disk', in its last coordinate: any truncation loses it."""

    def encode(self, sentences, **kwargs):
        return np.array([[0.01, 0.01, 0.01, 0.01, t.split().count("disk")] for t in sentences], dtype=np.float32)


def retrieval_set() -> EvalSet:
    anchors = [f"{k} {i}" for k in Keywords.keywords for i in range(5)]
    rows = Dataset.from_dict({"anchor": anchors, "positive": [f"{a.split()[0]} doc" for a in anchors],
                              "group": anchors})
    return EvalSet(EvalDatasetConfig(name="r", task="retrieval"), Table(rows=rows, kind="pairs", origin="mem"))


def test_truncation_keeps_the_first_coordinates_and_renormalises_for_cosine():
    emb = Embeddings([("text", "", "a")], np.array([[0.6, 0.0, 0.8]], dtype=np.float32), 0.0)
    np.testing.assert_allclose(emb.truncated(2)(["a"], "text"), [[1.0, 0.0]])
    dot = Embeddings([("text", "", "a")], np.array([[3.0, 4.0, 12.0]], dtype=np.float32), 0.0, similarity="dot")
    np.testing.assert_allclose(dot.truncated(2)(["a"], "text"), [[3.0, 4.0]])  # the model's own similarity: raw


def test_every_metric_is_reported_at_each_size_for_both_models():
    sets = [retrieval_set()]
    tuned, tuned_enc = evaluate_model(Keywords(), sets, 8)
    base, base_enc = evaluate_model(Blind(), sets, 8)
    tuned_dims = evaluate_dims(sets, tuned_enc["embeddings"], (4, 1))
    base_dims = evaluate_dims(sets, base_enc["embeddings"], (4, 1))
    assert tuned["r"].metrics["ndcg@10"] == pytest.approx(1.0)
    assert tuned_dims[4]["r"].metrics["ndcg@10"] == pytest.approx(1.0)  # the 4 keywords fit in 4 dimensions
    assert tuned_dims[1]["r"].metrics["recall@1"] <= 0.5  # "disk" alone cannot tell mail, vpn and printer apart
    # The baseline is truncated too: its only signal (the 5th coordinate) is gone at 4 dimensions.
    assert base["r"].metrics["recall@1"] > base_dims[4]["r"].metrics["recall@1"]
    rows = {dim: pair_up(sets, base_dims[dim], tuned_dims[dim]) for dim in (4, 1)}
    for dim, datasets in rows.items():
        for metric, v in datasets["r"]["metrics"].items():
            assert v["baseline"] == pytest.approx(base_dims[dim]["r"].metrics[metric])
            assert v["tuned"] == pytest.approx(tuned_dims[dim]["r"].metrics[metric])
            assert v["ci_low"] <= v["delta"] <= v["ci_high"] and v["p_value"] is not None


def test_a_size_beyond_the_models_dimension_is_refused(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    check_dims((32, 16), model)
    with pytest.raises(UserError, match=r"evaluate.truncate_dims: 64 .* 32-dimensional .* from 1 to 32"):
        check_dims((16, 64), model)
    with pytest.raises(UserError, match=r"truncate_dims: 0 "):
        check_dims((0,), model)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A trained run (data and train only) on the tiny model, with a general STS set to evaluate."""
    return trained_incidents_run(tmp_path_factory.mktemp("dims"), tiny_model_dir)


def test_too_large_a_size_fails_before_any_encoding(trained, monkeypatch, capsys):
    import evaluate.__main__ as entry

    def never(*args, **kwargs):
        raise AssertionError("encoded before checking truncate_dims")

    monkeypatch.setattr(entry, "evaluate_model", never)
    assert run(lambda: entry.main([str(trained), "evaluate.truncate_dims=[16, 64]"])) == 2
    assert "evaluate.truncate_dims: 64" in capsys.readouterr().err
    assert not (trained / "eval").exists()


def test_reports_carry_a_row_per_size_with_intervals(trained):
    from evaluate.__main__ import main as evaluate_main

    assert run(lambda: evaluate_main([str(trained), "evaluate.truncate_dims=[16, 8]"])) == 0
    report = json.loads((trained / "eval" / "report.json").read_text())
    assert report["embedding_dim"] == 32 and list(report["truncated"]) == ["16", "8"]
    for datasets in report["truncated"].values():
        assert list(datasets) == ["incidents", "general-sts"]
        for info in datasets.values():
            for v in info["metrics"].values():
                assert v["delta"] == pytest.approx(v["tuned"] - v["baseline"]) and "ci_low" in v and "p_value" in v
    assert report["truncated"]["8"]["incidents"]["metrics"] != report["datasets"]["incidents"]["metrics"]
    md = (trained / "eval" / "report.md").read_text()
    assert "| dim | dataset | task | metric |" in md
    assert "| 16 | incidents | retrieval | **ndcg@10** |" in md and "| 8 | general-sts | sts |" in md
    page = (trained / "eval" / "report.html").read_text()
    section = page[page.index('id="truncated"'):]  # the truncated table: one row block per size and dataset
    assert "every metric again at 16, 8 dimensions" in section and "<table" in section
    units = json.loads((trained / "eval" / "units.json").read_text())
    assert list(units["levels"]) == ["full", "16", "8"]
