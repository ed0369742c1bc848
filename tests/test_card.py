"""The published model card: the library's card (metadata, statistics, logs, citations) with our held-out evaluation
as its model-index, no training text unless push.card_examples=true, a usage snippet that names the real repo or
folder with the model's prompts, and every user string escaped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from configs.cli import run
from configs.load import validate
from conftest import INCIDENT_ROWS, tiny_config, write_config, write_csv
from train.push.card import metadata, model_card
from train.push.card_facts import license_and_language
from train.push.card_usage import usage_lines
from train.push.library_card import library_body, library_metadata, read_card, with_dev_scores

PLANTED = "the quartz heron sings at dawn over harbour seven"  # in every training text, nowhere else


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory, tiny_model_dir) -> Path:
    """data → train → evaluate on incident pairs whose every plain text carries ``PLANTED``; the report is edited to a
    significant gain so the gate lets it through (the gate has its own tests)."""
    from data.__main__ import main as data_main
    from evaluate.__main__ import main as evaluate_main
    from train.__main__ import main as train_main

    root = tmp_path_factory.mktemp("card_run")
    rows = [(topic, jargon, f"{plain}, {PLANTED}") for topic, jargon, plain in INCIDENT_ROWS]
    source = {"path": str(write_csv(root / "pairs.csv", ["topic", "jargon", "plain"], rows)),
              "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(root, tiny_model_dir, {"train": source, "test_fraction": 0.34}, {"name": "mnrl"})
    config = str(write_config(root, raw))
    for main in (data_main, train_main, evaluate_main):
        assert run(lambda main=main: main([config])) == 0
    path = root / "run" / "eval" / "report.json"
    report = json.loads(path.read_text())
    report["primary"].update(delta=0.2, ci_low=0.1, ci_high=0.3, p_value=0.001, significant=True, improved=True)
    path.write_text(json.dumps(report))
    return root / "run"


def publish(run_dir: Path, target: Path, *overrides: str) -> str:
    from train.push.publish import main as push_main

    assert run(lambda: push_main([str(run_dir), f"push.local_dir={target}", *overrides])) == 0
    return (target / "README.md").read_text(encoding="utf-8")


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


# ------------------------------------------------------------------------------------------- on a real tiny run
def test_the_model_index_holds_the_tuned_values_of_report_json(planted_run, tmp_path):
    card = publish(planted_run, tmp_path / "pub", "push.license=mit", "push.language=[en,de]")
    meta = front_matter(card)  # yaml.safe_load of the header, as the Hub reads it
    assert meta["license"] == "mit" and meta["language"] == ["en", "de"]
    report = json.loads((planted_run / "eval" / "report.json").read_text())
    [index] = meta["model-index"]
    assert index["name"] == "pub"
    got = {(r["dataset"]["name"], m["type"]): m["value"] for r in index["results"] for m in r["metrics"]}
    want = {(name, metric): v["tuned"] for name, info in report["datasets"].items()
            for metric, v in info["metrics"].items() if v["tuned"] is not None}
    assert got == want and len(got) == 6  # retrieval: ndcg@10, mrr@10, map@100, recall@1/10/100
    # sentence-transformers' own cards name InformationRetrievalEvaluator's task 'information-retrieval'
    assert {r["task"]["type"] for r in index["results"]} == {"information-retrieval"}
    # The library's metadata survives: its tags, pipeline and library; ours are added, the loss named once.
    assert {"sentence-transformers", "generated_from_trainer", "embtune"} <= set(meta["tags"])
    assert [t for t in meta["tags"] if t.startswith("loss:")] == ["loss:MultipleNegativesRankingLoss"]
    assert meta["library_name"] == "sentence-transformers" and meta["pipeline_tag"] == "sentence-similarity"
    assert "base_model" not in meta  # the base is a local folder, not a Hub id the Hub would accept


def test_training_text_is_published_only_with_card_examples(planted_run, tmp_path):
    card = publish(planted_run, tmp_path / "private")
    assert PLANTED not in card
    assert not [p.name for p in (tmp_path / "private").iterdir() if p.is_file() and PLANTED.encode() in p.read_bytes()]
    # The library's sections are kept: statistics, hyperparameters, logs, citations.
    for heading in ("## Training Details", "### Training Hyperparameters", "### Training Logs", "## Citation",
                    "#### MultipleNegativesRankingLoss"):
        assert heading in card, heading
    assert "* Samples:" not in card and "<!--" not in card
    shown = publish(planted_run, tmp_path / "public", "push.card_examples=true")
    assert PLANTED in shown and "* Samples:" in shown


def test_a_card_that_still_holds_training_text_is_refused(planted_run, tmp_path, capsys):
    run_dir = Path(shutil.copytree(planted_run, tmp_path / "run"))
    text = json.loads((run_dir / "data" / "train.jsonl").read_text().splitlines()[1])["positive"]
    with open(run_dir / "final" / "README.md", "a", encoding="utf-8") as card:  # a section we do not know
        card.write(f"\n## Examples\n\n- {text}\n")
    from train.push.publish import main as push_main

    assert run(lambda: push_main([str(run_dir), f"push.local_dir={tmp_path / 'pub'}"])) == 2
    err = capsys.readouterr().err
    assert f"The published README.md would show a training text verbatim ({run_dir / 'data' / 'train.jsonl'} line 2) " \
           "although push.card_examples=false." in err
    assert not (tmp_path / "pub").exists()


def snippet(card: str) -> str:
    """The Python code block of the card's Usage section."""
    usage = card.split("## Usage", 1)[1]
    return usage.split("```python\n", 1)[1].split("```", 1)[0]


def run_snippet(code: str, cwd: Path) -> subprocess.CompletedProcess:
    cwd.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_usage_snippet_runs_from_another_folder(planted_run, tmp_path):
    card = publish(planted_run, tmp_path / "my-model")
    code = snippet(card)
    assert f"model = SentenceTransformer({str((tmp_path / 'my-model').resolve())!r})" in code
    assert "sentence_transformers_model_id" not in card and "PATH_OR_REPO_ID" not in card and "quickstart" not in code
    assert PLANTED not in code  # no evaluation text without push.card_examples: the generic pair
    result = run_snippet(code, tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.fullmatch(r"tensor\(\[\[[-\d.]+, [-\d.]+\]\]\)\n", result.stdout), result.stdout  # 1 query x 2 docs


def test_with_card_examples_the_snippet_scores_a_held_out_pair(planted_run, tmp_path):
    code = snippet(publish(planted_run, tmp_path / "shown", "push.card_examples=true"))
    first = json.loads((planted_run / "data" / "test.jsonl").read_text().splitlines()[0])
    assert repr(first["anchor"]) in code and repr(first["positive"]) in code
    train = (planted_run / "data" / "train.jsonl").read_text()
    assert first["anchor"] not in train  # a held-out text, never a training one
    result = run_snippet(code, tmp_path / "elsewhere")
    assert result.returncode == 0 and result.stdout.startswith("tensor([["), result.stderr[-3000:]


def test_the_card_says_what_the_model_is_and_what_to_know(planted_run, tmp_path):
    card = publish(planted_run, tmp_path / "pub")
    body = card.split("---\n", 2)[2]
    report = json.loads((planted_run / "eval" / "report.json").read_text())
    first = body.split("\n\n")[1]
    assert first.startswith("This is a sentence-transformers embedding model fine-tuned from ")
    held_out = report["primary"]["dataset"]
    base, tuned = (f"{report['primary'][m]:.4f}" for m in ("baseline", "tuned"))
    assert f"(query, relevant text) pairs with embtune (mnrl loss). On the held-out set {held_out}, ndcg@10 " \
           f"goes from {base} (base model) to {tuned} (Δ +0.2000, 95% CI [+0.1000, +0.3000], p = 0.001" in first
    assert first.endswith("): a significant gain.")
    assert "This is a sentence-transformers model trained" not in card
    limits = card.split("## Evaluation and limitations\n\n", 1)[1].split("\n## ", 1)[0]
    assert limits.startswith("- Held out by topic: the ")  # grouped split: whole topics held out
    assert "queries search a corpus of" in limits and "No leakage: none of the" in limits
    assert "Embeddings were computed in fp32." in limits
    # nothing addressed to the tool's user, no legend of a task not evaluated, hyperparameters listed once
    assert "evaluate.datasets" not in card and "python -m" not in card.split("## Provenance")[0]
    assert "clustering:" not in card and "- Hyperparameters:" not in card and "### Training Hyperparameters" in card


def test_the_license_and_languages_come_from_the_base_models_card(tmp_path, tiny_model_dir):
    base = Path(shutil.copytree(tiny_model_dir, tmp_path / "base"))
    (base / "README.md").write_text("---\nlicense: bsd-3-clause\nlanguage: de\n---\n# base\n")
    raw = tiny_config(tmp_path, base, {"train": {"path": "x.csv"}}, {"name": "mnrl"})
    assert license_and_language(validate(raw), {}) == {"license": "bsd-3-clause", "language": ["de"]}
    raw["push"] = {"license": "mit"}
    assert license_and_language(validate(raw), {}) == {"license": "mit", "language": ["de"]}
    (base / "README.md").unlink()
    assert license_and_language(validate(raw), {}) == {"license": "mit"}


def test_the_training_logs_show_the_dev_scores_of_run_json():
    body = ("### Training Logs\n| Epoch | Step | Training Loss | Validation Loss |\n|:---:|:---:|:---:|:---:|\n"
            "| 1.0 | 14 | - | - |\n| 2.0 | 28 | 0.9 | - |\n| **3.0** | **42** | **-** | **-** |\n\n### Framework")
    run = {"dev_history": [{"eval_dev_ndcg@10": 0.6975, "eval_runtime": 1.0, "epoch": 1.0, "step": 14},
                           {"eval_dev_ndcg@10": 0.7322, "epoch": 3.0, "step": 42}]}
    assert with_dev_scores(body, run) == (
        "### Training Logs\n| Epoch | Step | Training Loss | dev ndcg@10 |\n|:---:|:---:|:---:|:---:|\n"
        "| 1.0 | 14 | - | 0.6975 |\n| 2.0 | 28 | 0.9 | - |\n| **3.0** | **42** | **-** | **0.7322** |\n\n### Framework")
    assert with_dev_scores(body, {}) == body


# ------------------------------------------------------------------------------------------- units
def report_with_prompts(tuned: dict) -> dict:
    return {"prompts": {"tuned": tuned}}


def test_the_snippet_passes_a_trained_prompt_and_relies_on_the_models_own():
    report = report_with_prompts({
        "query": {"prompt": "query: ", "source": "train.prompts.anchor", "encode": "encode_query"},
        "document": {"prompt": "passage: ", "source": "model prompts['document']", "encode": "encode_document"}})
    lines = usage_lines("acme/tiny", report)
    assert "model = SentenceTransformer('acme/tiny')" in lines
    assert "query_embeddings = model.encode_query(queries, prompt='query: ')  # the prompt it was trained with" \
           in lines
    assert "document_embeddings = model.encode_document(documents)  # adds the model's own prompt 'passage: '" \
           in lines
    assert "print(model.similarity(query_embeddings, document_embeddings))" in lines
    assert not [line for line in lines if "model.encode(" in line]


def test_a_snippet_string_cannot_break_out_of_its_code_block():
    report = report_with_prompts({"sentence1": {"prompt": "```\n<b>x</b>", "source": "train.prompts.sentence1",
                                                "encode": "encode"}})
    code = "\n".join(usage_lines("acme/`evil`", report)[3:-1])  # between the fences
    assert "`" not in code and "\n<b>" not in code
    assert "model.encode(sentences, prompt='\\x60\\x60\\x60\\n<b>x</b>')" in code


LIBRARY_CARD = """---
tags:
- sentence-transformers
- dataset_size:6
widget:
- source_sentence: a training query
  sentences:
  - a training document
model-index:
- name: dev
  results: []
metrics:
- cosine_accuracy@1
language:
- en
---

# SentenceTransformer

This is a model. It maps inputs to a 32-dimensional dense vector space.

## Model Details
<!-- - **Base model:** [Unknown](https://huggingface.co/unknown) -->
- **Output Dimensionality:** 32 dimensions

## Usage
model = SentenceTransformer("sentence_transformers_model_id")
sentences = ['a training query']

## Evaluation
| dev metric | 0.5 |
<!--
## Bias, Risks and Limitations
-->

## Training Details
* Size: 6 training samples
* Samples:
  | anchor | positive |
  | <code>a training query</code> | <code>a training document</code> |
* Loss: MNRL

### Training Hyperparameters
- `prompts`: {'anchor': '<img src=x onerror=alert(1)>'}

### Training Logs
| Step | Training Loss |
"""


def test_the_library_card_loses_its_training_text_dev_numbers_and_placeholders(tmp_path):
    (tmp_path / "README.md").write_text(LIBRARY_CARD)
    meta, body = read_card(tmp_path)
    assert library_metadata(meta, examples=False) == {"tags": ["sentence-transformers", "dataset_size:6"],
                                                      "language": ["en"]}
    assert "widget" in library_metadata(meta, examples=True)
    assert library_body(body, examples=False) == (
        "## Model Details\n- **Output Dimensionality:** 32 dimensions\n\n## Training Details\n"
        "* Size: 6 training samples\n* Loss: MNRL\n\n### Training Hyperparameters\n"
        "- `prompts`: {'anchor': '&lt;img src=x onerror=alert(1)&gt;'}\n\n### Training Logs\n| Step | Training Loss |")
    assert "<code>a training query</code>" in library_body(body, examples=True)


def test_base_model_metadata_only_for_a_hub_id(tmp_path, tiny_model_dir):
    config = validate(tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"}))
    hub_run = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "model_revision": "1110a24"}
    assert metadata(config, hub_run, None, {}, "x")["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "base_model" not in metadata(config, {"base_model": "/models/mine", "model_revision": None}, None, {}, "x")


def test_findings_and_forgetting_lines_show_user_text_as_text(tmp_path, tiny_model_dir):
    evil = "<img src=x onerror=alert(1)>"
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"})
    raw["evaluate"]["datasets"] = [{"name": "t", "task": "retrieval"},
                                   {"name": evil, "task": "sts", "source": {"path": f"{evil}.csv"}}]
    config = validate(raw)
    values = {"baseline": 0.8, "tuned": 0.7, "delta": -0.1, "ci_low": -0.15, "ci_high": -0.05, "p_value": 0.001,
              "significant": True}
    report = {"primary": {"dataset": "t", "metric": "ndcg@10", **values, "delta": 0.0, "significant": False,
                          "improved": False},
              "datasets": {"t": {"task": "retrieval", "main_metric": "ndcg@10", "metrics": {"ndcg@10": values}},
                           evil: {"task": "sts", "main_metric": "spearman_cosine", "source": f"{evil}.csv",
                                  "metrics": {"spearman_cosine": values}}},
              "leakage": {"t": {"shared": 0, "of": 9, "examples": []},
                          evil: {"shared": 2, "of": 5, "examples": ["<script>training text</script>"]}}}
    run_info = {"base_model": "b", "model_revision": None, "weights_sha256": "a" * 64, "data_sha256": {},
                "versions": {}, "train": {"rows": 3}}
    card = model_card(config, run_info, report, findings=[f"the forgetting set {evil} lost significantly"])
    body = card.split("---\n", 2)[2]
    assert body.startswith("\n> **Warning: this model did not beat its base model.**")
    assert "<img" not in body and "<script>" not in card and "training text" not in card
    assert "&lt;img src=x onerror=alert(1)&gt; (&lt;img src=x onerror=alert(1)&gt;.csv) spearman\\_cosine: " \
           "0.8000 → 0.7000, delta -0.1000, 95% CI [-0.1500, -0.0500], p=0.001: **lost significantly**" in body
    assert "shares 2 of the 5 texts compared with the training split, so its scores overstate the gain." in body
    assert "- No leakage: none of the 9 texts compared of t (its queries or sentences;" in body


def test_a_keyword_search_that_beats_the_model_is_in_the_cards_first_lines(tmp_path, tiny_model_dir):
    config = validate(tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"}))
    values = {"baseline": 0.5, "tuned": 0.6, "delta": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.001,
              "significant": True, "n_resamples": 10000}
    bm25 = {"description": "BM25", "metrics": {"ndcg@10": 0.7},
            "vs": {"against": "tuned", "ndcg@10": {**values, "delta": 0.1, "ci_low": 0.04, "ci_high": 0.16}}}
    report = {"primary": {"dataset": "t", "metric": "ndcg@10", **values, "improved": True},
              "datasets": {"t": {"task": "retrieval", "main_metric": "ndcg@10", "metrics": {"ndcg@10": values},
                                 "reference": {"bm25": bm25}}}, "leakage": {}}
    run_info = {"base_model": "b", "model_revision": None, "weights_sha256": "a" * 64, "data_sha256": {},
                "versions": {}, "train": {"rows": 3}}
    first = model_card(config, run_info, report).split("---\n", 2)[2].split("\n\n")[1]
    assert first.startswith("This is a sentence-transformers embedding model fine-tuned from b on 3 training rows")
    assert first.endswith("**But bm25 (BM25) is significantly better than the tuned model on t ndcg@10: 0.7000 "
                          "against 0.6000 (Δ +0.1000, 95% CI [+0.0400, +0.1600], p = 0.001 from 10,000 resamples).**")
