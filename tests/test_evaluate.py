"""Evaluator maths on known answers (a keyword one-hot encoder), and the baseline-vs-tuned bookkeeping."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from scipy.stats import pearsonr, spearmanr

from configs.schema import EvalDatasetConfig
from data.table import Table
from evaluate.evaluators import TaskEvaluator
from evaluate.measure import evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.report.writers import report_markdown
from evaluate.retrieval.qrels import retrieval_sets
from evaluate.sets import EvalSet
from evaluate.tasks.pair_classification import best_threshold_accuracy, best_threshold_f1


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


class RandomEncoder(KeywordEncoder):
    """A fixed random vector per text: an encoder that knows nothing."""

    def __init__(self):
        super().__init__([])

    def encode(self, sentences, **kwargs):
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in sentences]
        return np.stack([np.random.default_rng(seed).normal(size=8) for seed in seeds]).astype(np.float32)


def table(kind: str, **columns) -> Table:
    first = columns.get("anchor") or columns.get("sentence1")
    return Table(rows=Dataset.from_dict({**columns, "group": list(first)}), kind=kind, origin="mem")


ENCODER = KeywordEncoder(["disk", "mail", "vpn", "printer"])


def metrics_of(task: str, data: Table, encoder=ENCODER) -> dict[str, float]:
    results, _ = evaluate_model(encoder, [EvalSet(EvalDatasetConfig(name="t", task=task), data)], batch_size=8)
    return results["t"].metrics


def test_retrieval_known_answer_relevant_document_at_rank_two():
    # query "disk": the document "disk" (cos 1.0, not relevant to it) outranks "disk mail" (cos 0.71, relevant).
    pairs = table("pairs", anchor=["disk", "mail"], positive=["disk mail", "disk"])
    metrics = metrics_of("retrieval", pairs)
    # query "mail" finds "disk mail" (cos 0.71) before "disk" (cos ~0): its positive "disk" is at rank 2 as well.
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert metrics["recall@1"] == pytest.approx(0.0)
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert metrics["map@100"] == pytest.approx(0.5)


def test_retrieval_perfect_ranking_scores_one():
    pairs = table("pairs", anchor=["disk", "mail", "vpn"], positive=["disk full", "mail down", "vpn lost"])
    metrics = metrics_of("retrieval", pairs)
    assert all(value == pytest.approx(1.0) for value in metrics.values())


def test_retrieval_sets_from_labeled_pairs_keep_only_label_one_as_relevant():
    labeled = table("labeled", sentence1=["disk", "disk", "mail"], sentence2=["disk full", "printer", "mail"],
                    label=[1, 0, 0])
    queries, corpus, relevant = retrieval_sets(labeled, full_corpus=True)
    assert list(queries.values()) == ["disk"]  # "mail" has nothing relevant: it is not a query
    assert set(corpus.values()) == {"disk full", "printer", "mail"}
    assert [corpus[d] for d in next(iter(relevant.values()))] == ["disk full"]
    assert list(next(iter(relevant.values())).values()) == [1]


def test_retrieval_sets_use_source_ids_and_the_full_corpus_only_when_asked():
    pairs = Table(rows=Dataset.from_dict({"anchor": ["q"], "positive": ["d1 text"], "anchor_id": ["7"],
                                          "positive_id": ["d1"], "group": ["7"]}),
                  kind="pairs", origin="mem", corpus={"d1": "d1 text", "d2": "other"})
    queries, corpus, relevant = retrieval_sets(pairs, full_corpus=True)
    assert queries == {"7": "q"} and relevant == {"7": {"d1": 1}} and set(corpus) == {"d1", "d2"}
    assert set(retrieval_sets(pairs, full_corpus=False)[1]) == {"d1"}


def test_sts_matches_scipy_on_known_vectors():
    s1 = ["disk", "disk mail", "vpn", "printer mail", "mail"]
    s2 = ["disk", "disk", "mail", "printer", "vpn mail"]
    gold = [1.0, 0.8, 0.0, 0.6, 0.3]
    metrics = metrics_of("sts", table("scored", sentence1=s1, sentence2=s2, score=gold))
    a, b = ENCODER.encode(s1), ENCODER.encode(s2)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert metrics["spearman_cosine"] == pytest.approx(spearmanr(gold, cosine).statistic, abs=1e-6)
    assert metrics["pearson_cosine"] == pytest.approx(pearsonr(gold, cosine).statistic, abs=1e-6)


def test_pair_classification_separable_pairs_score_perfectly():
    labeled = table("labeled", sentence1=["disk", "mail", "vpn", "printer"],
                    sentence2=["disk", "vpn", "vpn", "disk"], label=[1, 0, 1, 0])
    metrics = metrics_of("pair_classification", labeled)
    assert metrics == {"accuracy": pytest.approx(1.0), "f1": pytest.approx(1.0), "ap": pytest.approx(1.0)}


def test_an_evaluator_that_cannot_read_the_data_says_which_can():
    from configs.errors import UserError

    with pytest.raises(UserError, match=r"task 'sts' cannot read mem \(anchor, positive\)\. Tasks that can: "
                                        r"retrieval\."):
        TaskEvaluator("sts", table("pairs", anchor=["a"], positive=["b"]), "x", 8)


def test_best_threshold_metrics_match_brute_force():
    rng = np.random.default_rng(3)
    cosines, labels = rng.random(40).round(1), (rng.random(40) < 0.4).astype(float)  # rounding makes ties
    thresholds = np.concatenate([[np.inf], np.unique(cosines), [-np.inf]])
    acc = max(((cosines >= t) == labels).mean() for t in thresholds)
    f1 = max(2 * ((cosines >= t) & (labels == 1)).sum() / ((cosines >= t).sum() + labels.sum()) for t in thresholds)
    assert best_threshold_accuracy(cosines, labels) == pytest.approx(acc)
    assert best_threshold_f1(cosines, labels) == pytest.approx(f1)


def test_dev_evaluator_reports_the_same_numbers_as_the_final_evaluation():
    pairs = table("pairs", anchor=["disk", "mail"], positive=["disk mail", "disk"])
    dev = TaskEvaluator("retrieval", pairs, "dev", 8, full_corpus=True)(ENCODER)
    assert dev == {f"dev_{k}": v for k, v in metrics_of("retrieval", pairs).items()}


def test_report_carries_delta_ci_and_p_value_and_a_plain_verdict():
    s1 = [f"disk {'mail ' * i}".strip() for i in range(30)]
    s2 = ["disk"] * 30
    gold = [1 - i / 30 for i in range(30)]
    scored = table("scored", sentence1=s1, sentence2=s2, score=gold)
    sets = [EvalSet(EvalDatasetConfig(name="d", task="sts"), scored)]
    tuned, _ = evaluate_model(ENCODER, sets, 8)  # cosine falls as "mail" repeats: perfect ranking
    baseline, _ = evaluate_model(RandomEncoder(), sets, 8)  # unrelated to the gold scores
    datasets = pair_up(sets, baseline, tuned, seed=0)
    for values in datasets["d"]["metrics"].values():
        assert values["delta"] == values["tuned"] - values["baseline"]
        assert values["ci_low"] <= values["delta"] <= values["ci_high"]
    spearman = datasets["d"]["metrics"]["spearman_cosine"]
    assert spearman["tuned"] == pytest.approx(1.0) and spearman["significant"] is True

    class Cfg:
        class evaluate:
            primary = None

    best = primary(Cfg, datasets)
    report = {"run_dir": "r", "base_model": "b", "model_revision": "x", "tuned_model": "t", "datasets": datasets,
              "primary": best, "encoding": {"baseline": {"seconds": 1.0, "texts": 31, "cached": False},
                                            "tuned": {"seconds": 1.0, "texts": 31, "cached": True}}}
    text = report_markdown(report)
    assert "**The tuned model is better than the baseline** on d spearman" in text  # the metric may be escaped
    assert "| d | sts | **spearman_cosine** |" in text and "(cached)" in text


def test_chunked_search_keeps_the_same_top_k_as_scoring_the_whole_corpus_at_once():
    from evaluate.retrieval.metrics import run_from_scores
    from evaluate.tasks.retrieval import search_vectors

    rng = np.random.default_rng(5)
    q = rng.normal(size=(7, 4)).round(1)  # rounding makes ties, which must break the same way in chunks
    d = rng.normal(size=(53, 4)).round(1)
    q_ids, d_ids = [f"q{i}" for i in range(7)], [f"d{i}" for i in range(53)]
    whole = run_from_scores(q_ids, d_ids, q @ d.T, 10)
    chunks = [(d_ids[s:s + 8], d[s:s + 8]) for s in range(0, 53, 8)]
    chunked = search_vectors(q_ids, q, iter(chunks), k=10)
    assert {k: list(v) for k, v in chunked.items()} == {k: list(v) for k, v in whole.items()}


def test_bf16_encoding_stays_close_to_fp32_and_auto_follows_the_hardware(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    from core.embed import embed, resolve_precision

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    texts = ["disk full on server", "my mail is not arriving", "printer paper jam"]
    fp32, bf16 = embed(model, texts, 8, precision="fp32"), embed(model, texts, 8, precision="bf16")
    assert not np.array_equal(fp32.vectors, bf16.vectors)  # autocast really ran in bf16
    assert (fp32.vectors * bf16.vectors).sum(axis=1).min() > 0.99
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision("auto", model) == ("bf16" if native else "fp32")
    assert resolve_precision("bf16", model) == "bf16"


def test_linear_probe_and_clustering_score_separable_classes_perfectly():
    texts = [f"{word} {'x ' * i}".strip() for word in ("disk", "mail", "vpn") for i in range(6)]
    labels = [word for word in ("disk", "mail", "vpn") for _ in range(6)]
    classes = Table(rows=Dataset.from_dict({"text": texts, "label": labels, "group": texts}), kind="classes",
                    origin="mem")
    probe = metrics_of("classification", classes)
    assert probe == {"accuracy": pytest.approx(1.0), "f1_macro": pytest.approx(1.0), "roc_auc": pytest.approx(1.0)}
    assert metrics_of("clustering", classes) == {"v_measure": pytest.approx(1.0)}


def test_classification_and_clustering_deltas_carry_intervals(tiny_model_dir):
    texts = [f"{word} {'x ' * i}".strip() for word in ("disk", "mail", "vpn") for i in range(6)]
    labels = [word for word in ("disk", "mail", "vpn") for _ in range(6)]
    classes = Table(rows=Dataset.from_dict({"text": texts, "label": labels, "group": texts}), kind="classes",
                    origin="mem")
    sets = [EvalSet(EvalDatasetConfig(name="c", task="classification"), classes),
            EvalSet(EvalDatasetConfig(name="k", task="clustering"), classes)]
    tuned, _ = evaluate_model(ENCODER, sets, 8)
    baseline, _ = evaluate_model(RandomEncoder(), sets, 8)
    datasets = pair_up(sets, baseline, tuned, seed=0)
    for name in ("c", "k"):
        for values in datasets[name]["metrics"].values():
            assert values["delta"] == values["tuned"] - values["baseline"]
            assert values["ci_low"] <= values["ci_high"]
    assert datasets["k"]["metrics"]["v_measure"]["p_value"] is None  # no swap test for cluster ids
    assert datasets["c"]["metrics"]["accuracy"]["p_value"] is not None


def test_ignore_identical_ids_drops_the_query_itself_from_its_ranking():
    # ArguAna-like: the query "disk" is also document "q1" in the corpus, and it outranks the relevant "disk mail".
    rows = {"anchor": ["disk"], "positive": ["disk mail"], "anchor_id": ["q1"], "positive_id": ["d1"], "group": ["q1"]}
    pairs = Table(rows=Dataset.from_dict(rows), kind="pairs", origin="mem", corpus={"q1": "disk", "d1": "disk mail"})
    plain = EvalSet(EvalDatasetConfig(name="t", task="retrieval"), pairs)
    skipping = EvalSet(EvalDatasetConfig(name="t", task="retrieval", ignore_identical_ids=True), pairs)
    assert evaluate_model(ENCODER, [plain], 8)[0]["t"].metrics["mrr@10"] == pytest.approx(0.5)
    assert evaluate_model(ENCODER, [skipping], 8)[0]["t"].metrics["mrr@10"] == pytest.approx(1.0)


def test_an_evaluation_set_with_a_single_unit_is_refused_before_any_encoding():
    from configs.errors import UserError

    with pytest.raises(UserError, match=r"evaluator 'sts' on mem: 1 pairs to measure; at least 2"):
        TaskEvaluator("sts", table("scored", sentence1=["a"], sentence2=["b"], score=[1.0]), "x", 8)
    no_positive = table("labeled", sentence1=["a", "b"], sentence2=["c", "d"], label=[0, 0])
    with pytest.raises(UserError, match=r"0 judged queries"):
        TaskEvaluator("retrieval", no_positive, "x", 8)
