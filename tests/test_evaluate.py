"""Evaluator maths on known answers (a keyword one-hot encoder), and the baseline-vs-tuned bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from scipy.stats import pearsonr, spearmanr

from data.sources import Table
from evaluate.compare import EvalSet, pair_up, primary
from evaluate.evaluators import build_evaluator, pick_metrics, retrieval_sets
from evaluate.report import report_markdown


class _Card:
    @staticmethod
    def set_evaluation_metrics(*args, **kwargs) -> None:
        """The evaluators record metrics on the model card; the mock has none to keep."""


class KeywordEncoder:
    """Embeds a text as the one-hot counts of known keywords (plus a tiny constant so no vector is zero)."""

    similarity_fn_name = "cosine"
    model_card_data = _Card()

    def __init__(self, keywords: list[str]):
        self.keywords = keywords

    def encode(self, sentences, convert_to_tensor=False, **kwargs):
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        vectors = np.array([[t.split().count(k) for k in self.keywords] + [0.01] for t in texts], dtype=np.float32)
        out = torch.from_numpy(vectors) if convert_to_tensor else vectors
        return out[0] if single else out

    encode_query = encode_document = encode


def table(kind: str, **columns) -> Table:
    first = columns.get("anchor") or columns.get("sentence1")
    return Table(rows=Dataset.from_dict({**columns, "group": list(first)}), kind=kind, origin="mem")


ENCODER = KeywordEncoder(["disk", "mail", "vpn", "printer"])


def test_retrieval_known_answer_relevant_document_at_rank_two():
    # query "disk": the document "disk" (cos 1.0, not relevant to it) outranks "disk mail" (cos 0.71, relevant).
    pairs = table("pairs", anchor=["disk", "mail"], positive=["disk mail", "disk"])
    metrics = pick_metrics("retrieval", "t", build_evaluator("retrieval", pairs, "t", 8)(ENCODER))
    # query "mail" finds "disk mail" (cos 0.71) before "disk" (cos ~0): its positive "disk" is at rank 2 as well.
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert metrics["recall@1"] == pytest.approx(0.0)
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert metrics["map@100"] == pytest.approx(0.5)


def test_retrieval_perfect_ranking_scores_one():
    pairs = table("pairs", anchor=["disk", "mail", "vpn"], positive=["disk full", "mail down", "vpn lost"])
    metrics = pick_metrics("retrieval", "t", build_evaluator("retrieval", pairs, "t", 8)(ENCODER))
    assert all(value == pytest.approx(1.0) for value in metrics.values())


def test_retrieval_sets_from_labeled_pairs_keep_only_label_one_as_relevant():
    labeled = table("labeled", sentence1=["disk", "disk", "mail"], sentence2=["disk full", "printer", "mail"],
                    label=[1, 0, 0])
    queries, corpus, relevant = retrieval_sets(labeled, full_corpus=True)
    assert list(queries.values()) == ["disk"]  # "mail" has nothing relevant: it is not a query
    assert set(corpus.values()) == {"disk full", "printer", "mail"}
    assert [corpus[d] for d in next(iter(relevant.values()))] == ["disk full"]


def test_retrieval_sets_use_source_ids_and_the_full_corpus_only_when_asked():
    pairs = Table(rows=Dataset.from_dict({"anchor": ["q"], "positive": ["d1 text"], "anchor_id": ["7"],
                                          "positive_id": ["d1"], "group": ["7"]}),
                  kind="pairs", origin="mem", corpus={"d1": "d1 text", "d2": "other"})
    queries, corpus, relevant = retrieval_sets(pairs, full_corpus=True)
    assert queries == {"7": "q"} and relevant == {"7": {"d1"}} and set(corpus) == {"d1", "d2"}
    assert set(retrieval_sets(pairs, full_corpus=False)[1]) == {"d1"}


def test_sts_matches_scipy_on_known_vectors():
    s1 = ["disk", "disk mail", "vpn", "printer mail", "mail"]
    s2 = ["disk", "disk", "mail", "printer", "vpn mail"]
    gold = [1.0, 0.8, 0.0, 0.6, 0.3]
    metrics = pick_metrics("sts", "s", build_evaluator("sts", table("scored", sentence1=s1, sentence2=s2, score=gold),
                                                       "s", 8)(ENCODER))
    a, b = ENCODER.encode(s1), ENCODER.encode(s2)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert metrics["spearman_cosine"] == pytest.approx(spearmanr(gold, cosine).statistic, abs=1e-6)
    assert metrics["pearson_cosine"] == pytest.approx(pearsonr(gold, cosine).statistic, abs=1e-6)


def test_pair_classification_separable_pairs_score_perfectly():
    labeled = table("labeled", sentence1=["disk", "mail", "vpn", "printer"],
                    sentence2=["disk", "vpn", "vpn", "disk"], label=[1, 0, 1, 0])
    metrics = pick_metrics("pair_classification", "p",
                           build_evaluator("pair_classification", labeled, "p", 8)(ENCODER))
    assert metrics == {"accuracy": pytest.approx(1.0), "f1": pytest.approx(1.0), "ap": pytest.approx(1.0)}


def test_an_evaluator_that_cannot_read_the_data_says_which_can():
    from configs.errors import UserError

    with pytest.raises(UserError, match="evaluator 'sts' cannot read mem .*Evaluators that can: retrieval"):
        build_evaluator("sts", table("pairs", anchor=["a"], positive=["b"]), "x", 8)


def test_delta_is_tuned_minus_baseline_and_primary_follows_the_config():
    from configs.schema import EvalDatasetConfig

    sets = [EvalSet(EvalDatasetConfig(name="d", task="sts"), table("scored", sentence1=["a"], sentence2=["b"],
                                                                       score=[1.0]))]
    baseline = {"d": {"spearman_cosine": 0.5, "pearson_cosine": 0.6}}
    tuned = {"d": {"spearman_cosine": 0.7, "pearson_cosine": 0.55}}
    datasets = pair_up(sets, baseline, tuned)
    for metric, values in datasets["d"]["metrics"].items():
        assert values["delta"] == values["tuned"] - values["baseline"]

    class Cfg:
        class evaluate:
            primary = "d/pearson_cosine"

    assert primary(Cfg, datasets)["improved"] is False
    Cfg.evaluate.primary = None
    best = primary(Cfg, datasets)
    assert best["metric"] == "spearman_cosine" and best["improved"] is True
    report = {"run_dir": "r", "base_model": "b", "model_revision": "x", "tuned_model": "t", "datasets": datasets,
              "primary": best, "seconds": {"baseline": 1.0, "tuned": 1.0}}
    text = report_markdown(report)
    assert "| d | sts | **spearman_cosine** | 0.5000 | 0.7000 | +0.2000 |" in text
    assert "better than the baseline" in text
