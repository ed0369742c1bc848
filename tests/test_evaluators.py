"""The evaluator registry: every task is one spec object, options reach it as declared keywords, and a new task
runs through the whole report data path (pair_up, details, units, compare) without editing any other module."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from datasets import Dataset

from configs.errors import UserError
from configs.schema import EvalDatasetConfig
from data.table import KINDS, Table
from evaluate.compare import head_to_head
from evaluate.details import build_details
from evaluate.evaluators import EVALUATORS, TaskEvaluator, check_task, statistics_legend
from evaluate.measure import evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.report.html import html_report
from evaluate.report.set_summary import about_sets
from evaluate.report.writers import report_markdown
from evaluate.sets import EvalSet
from evaluate.significance import compare_means
from evaluate.tasks.spec import OPTIONS, TaskResult, TaskSpec, call_with_options, declared_options
from evaluate.units import units_record
from train.push.card import model_index


class Keywords:
    """One-hot keyword counts (plus a tiny constant): texts of one keyword share a direction."""

    similarity_fn_name = "cosine"

    def encode(self, sentences, **kwargs):
        words = ("disk", "mail", "vpn")
        return np.array([[t.split().count(w) for w in words] + [0.01] for t in sentences], dtype=np.float32)

    encode_query = encode_document = encode


class Noise(Keywords):
    """A fixed random vector per text: nothing to learn, so folds and k-means restarts decide the outcome."""

    def encode(self, sentences, **kwargs):
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in sentences]
        return np.stack([np.random.default_rng(s).normal(size=8) for s in seeds]).astype(np.float32)


def classes_table(per_class: int = 8) -> Table:
    texts = [f"{w} {'x ' * i}".strip() for w in ("disk", "mail", "vpn") for i in range(per_class)]
    labels = [w for w in ("disk", "mail", "vpn") for _ in range(per_class)]
    return Table(rows=Dataset.from_dict({"text": texts, "label": labels, "group": texts}), kind="classes",
                 origin="mem")


# ------------------------------------------------------------------------------------------------- the registry
@pytest.mark.parametrize("name", list(EVALUATORS))
def test_every_spec_is_complete_and_declares_only_known_options(name):
    spec = EVALUATORS[name]
    assert spec.name == name and spec.main in spec.metrics and spec.unit and spec.legend.startswith(name.split("_")[0])
    assert set(spec.kinds) <= set(KINDS)
    for method in (spec.texts, spec.run):
        assert set(declared_options(method)) <= set(OPTIONS), f"{name}.{method.__name__} declares an unknown option"


def test_an_option_a_spec_declares_but_nobody_supplies_is_an_error():
    spec = EVALUATORS["retrieval"]
    with pytest.raises(TypeError, match=r"RetrievalTask.run declares the options \['ignore_identical_ids'\], which "
                                        r"this evaluation does not supply"):
        call_with_options(spec.run, None, None, options={"full_corpus": True, "seed": 0})


def test_the_legend_has_one_sentence_per_evaluated_task_and_the_verdict_rule():
    legend = statistics_legend(["retrieval", "sts", "retrieval"])
    assert legend.count("retrieval:") == 1 and "sts: units are pairs; paired bootstrap over pairs" in legend
    assert legend.endswith("Significant: the 95% interval excludes 0, which is the same as p < 0.05.")


# ------------------------------------------------------------------------------------------------- evaluate.seed
def test_the_seed_reaches_classification_folds_and_k_means():
    data = classes_table()
    sets = [EvalSet(EvalDatasetConfig(name="c", task="classification"), data),
            EvalSet(EvalDatasetConfig(name="k", task="clustering"), data)]
    first, again, other = (evaluate_model(Noise(), sets, 8, seed=seed)[0] for seed in (0, 0, 1))
    np.testing.assert_array_equal(first["c"].proba, again["c"].proba)  # the same seed: the same folds
    assert first["k"].metrics == again["k"].metrics
    assert not np.allclose(first["c"].proba, other["c"].proba)  # another seed: other folds, other probabilities
    assert first["k"].metrics["v_measure"] != other["k"].metrics["v_measure"]  # and another k-means partition


def test_the_dev_evaluator_passes_its_seed_too():
    data = classes_table()
    scores = [TaskEvaluator("clustering", data, "dev", 8, seed=seed)(Noise())["dev_v_measure"] for seed in (0, 1)]
    assert scores[0] != scores[1]


# ------------------------------------------------------------------------------- a new evaluator, tests only
class CentroidTask(TaskSpec):
    """A test-only evaluator: is each text nearer its own class centroid than any other? (unit: the text)."""

    name, kinds, metrics, main = "centroid", ("classes",), ("centroid_accuracy",), "centroid_accuracy"
    unit, legend = "texts", "centroid: units are texts; p from a paired sign-flip test."
    metric_meanings = ((r"centroid_accuracy()", "centroid accuracy", "share of texts nearest their own class's mean"),)
    hub_task_type = "centroid-classification"

    def about(self, table, result):
        return {"texts": len(table.rows), "centroids": len(set(table.rows["label"]))}

    def about_lines(self, about, quote=str):
        return [f"{about['texts']} texts around {about['centroids']} class centroids."]

    def texts(self, table):
        return {"text": list(table.rows["text"])}

    def run(self, table, emb):
        x, labels = emb(table.rows["text"], "text"), np.array(table.rows["label"])  # (n, dim), (n,)
        names = sorted(set(labels))
        centroids = np.stack([x[labels == n].mean(axis=0) for n in names])  # (n_classes, dim)
        correct = (np.array(names)[(x @ centroids.T).argmax(axis=1)] == labels).astype(float)  # (n,)
        return TaskResult({"centroid_accuracy": float(correct.mean())}, per_query={"centroid_accuracy": correct},
                          query_ids=[str(i) for i in range(len(correct))])

    def delta(self, metric, base, tuned, *, seed):
        return compare_means(base.per_query[metric], tuned.per_query[metric], seed=seed)

    def details(self, table, base, tuned, embeddings, *, seed):
        return {"wrong": [t for t, ok in zip(table.rows["text"], tuned.per_query["centroid_accuracy"]) if not ok]}

    def map_inputs(self, table, base):
        return list(table.rows["text"]), list(table.rows["label"]), ["text"] * len(table.rows)


def test_a_new_evaluator_runs_through_the_report_data_path_by_registering_it_alone(monkeypatch):
    monkeypatch.setitem(EVALUATORS, "centroid", CentroidTask())  # the one registry line; no other module edited
    data = classes_table()
    item = EvalSet(EvalDatasetConfig.model_construct(name="toy", task="centroid", split="test", source=None,
                                                     ignore_identical_ids=False), data)
    assert check_task("centroid", data).unit == "texts"
    tuned, tuned_enc = evaluate_model(Keywords(), [item], 8)
    base, base_enc = evaluate_model(Noise(), [item], 8)
    datasets = pair_up([item], base, tuned, seed=0)
    entry = datasets["toy"]["metrics"]["centroid_accuracy"]
    assert entry["tuned"] == 1.0 and entry["delta"] == entry["tuned"] - entry["baseline"] > 0
    assert entry["n_units"] == len(data.rows) and entry["p_value"] is not None
    assert primary(type("C", (), {"evaluate": type("E", (), {"primary": None})})(), datasets)["dataset"] == "toy"
    details = build_details([item], base, tuned, base_enc["embeddings"], tuned_enc["embeddings"])
    assert details["toy"]["task"] == "centroid" and details["toy"]["wrong"] == []
    assert len(details["toy"]["map"]["tuned"]) == len(data.rows)
    units = {run: units_record({"toy": "centroid"}, {"full": results}, seed=0)
             for run, results in (("A", base), ("B", tuned))}
    assert head_to_head(units)["full"]["toy"]["metrics"]["centroid_accuracy"]["delta"] == entry["delta"]
    assert statistics_legend(["centroid"]).startswith("centroid: units are texts")
    # The reports and the card speak of it in its own words: what its set is, what its metric means, its task type.
    datasets["toy"]["about"] = about_sets({"toy": data}, base, {"toy": "centroid"})["toy"]
    assert datasets["toy"]["about"] == {"texts": 24, "centroids": 3}
    report = {"run_dir": "runs/toy", "base_model": "b", "tuned_model": "runs/toy/final", "model_revision": None,
              "datasets": datasets, "primary": primary(type("C", (), {"evaluate": type("E", (), {"primary": None})})(),
                                                       datasets), "encoding": {}}
    page, md = html_report(report, details), report_markdown(report)
    for said in ("<p>24 texts around 3 class centroids.</p>",
                 "centroid accuracy: share of texts nearest their own class&#39;s mean.",
                 "centroid: units are texts; p from a paired sign-flip test."):
        assert said in page, said
    assert "24 texts around 3 class centroids. centroid accuracy: share of texts nearest their own class's mean." in md
    [index] = model_index(report, "toy-model")
    assert {r["task"]["type"] for r in index["results"]} == {"centroid-classification"}


def test_a_task_that_cannot_read_a_table_names_the_config_key_and_the_tasks_that_can():
    with pytest.raises(UserError, match=r"^evaluate.datasets\[x\]: task 'sts' cannot read the test split \(text, "
                                        r"label\)\. Tasks that can: classification, clustering\.$"):
        check_task("sts", classes_table(), what="the test split", where="evaluate.datasets[x]: ")
