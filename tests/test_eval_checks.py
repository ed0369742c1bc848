"""Correctness checks of the evaluation: sets that measure nothing are refused, undefined numbers are null with a
reason (never NaN in report.json, never 'significant'), and user text is inert in every Markdown output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from datasets import Dataset

from configs.errors import UserError
from configs.schema import EvalDatasetConfig
from data.table import Table
from evaluate.evaluators import TaskEvaluator
from evaluate.measure import evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.report.markdown import markdown_table, md_escape
from evaluate.report.writers import finite_json, report_markdown, write_report
from evaluate.sets import EvalSet
from evaluate.significance import _p_value, delta_stats

HOSTILE = "<img src=x onerror=alert(1)> | **bold** [link](javascript:alert(2)) `code` <script>alert(3)</script>"


def scored(scores: list[float], name: str = "mem") -> Table:
    s1 = [f"disk {'mail ' * i}".strip() for i in range(len(scores))]
    return Table(rows=Dataset.from_dict({"sentence1": s1, "sentence2": ["disk"] * len(scores), "score": scores,
                                         "group": s1}), kind="scored", origin=name)


class Keywords:
    similarity_fn_name = "cosine"

    def encode(self, sentences, **kwargs):
        return np.array([[t.split().count(k) for k in ("disk", "mail")] + [0.01] for t in sentences], np.float32)


class Constant(Keywords):
    """Every text gets the same vector: every pair the same cosine, so a correlation is undefined."""

    def encode(self, sentences, **kwargs):
        return np.ones((len(list(sentences)), 3), dtype=np.float32)


def test_an_sts_set_whose_gold_scores_are_all_equal_is_refused_before_evaluation():
    with pytest.raises(UserError, match=r"evaluator 'sts' on gold.csv: every pair has the same score \(3.0\)"):
        TaskEvaluator("sts", scored([3.0] * 5, "gold.csv"), "x", 8)
    labeled = Table(rows=Dataset.from_dict({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 1],
                                            "group": ["a", "b"]}), kind="labeled", origin="pairs.csv")
    with pytest.raises(UserError, match=r"'pair_classification' on pairs.csv: every pair has the same label"):
        TaskEvaluator("pair_classification", labeled, "x", 8)


def undefined_report(tmp_path):
    sets = [EvalSet(EvalDatasetConfig(name="d", task="sts"), scored([1 - i / 10 for i in range(10)]))]
    baseline, _ = evaluate_model(Constant(), sets, 8)
    tuned, _ = evaluate_model(Keywords(), sets, 8)
    datasets = pair_up(sets, baseline, tuned, seed=0)

    class Cfg:
        class evaluate:
            primary = None

    report = {"run_dir": "r", "base_model": "b", "model_revision": "x", "tuned_model": "t", "datasets": datasets,
              "primary": primary(Cfg, datasets), "encoding": {"baseline": {"seconds": 1.0, "texts": 11,
                                                                           "cached": False}}}
    write_report(report, {}, tmp_path)
    return datasets, report


def test_an_undefined_metric_is_null_with_a_reason_and_never_significant(tmp_path):
    datasets, _ = undefined_report(tmp_path)
    spearman = datasets["d"]["metrics"]["spearman_cosine"]
    assert spearman["baseline"] is None and spearman["delta"] is None and spearman["tuned"] == pytest.approx(1.0)
    assert spearman["significant"] is False and spearman["p_value"] is None
    assert "baseline" in spearman["undefined"] and "same score" in spearman["undefined"]
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in report.json"))
    md = (tmp_path / "report.md").read_text()
    assert "**No verdict**" in md and "| d | sts | **spearman_cosine** | — | 1.0000 | — |" in md
    assert "Undefined (—): d spearman_cosine: baseline, delta" in md


def test_json_writer_turns_any_non_finite_number_into_null():
    assert finite_json({"a": math.nan, "b": [1.0, math.inf], "c": "NaN"}) == {"a": None, "b": [1.0, None], "c": "NaN"}


def test_an_undefined_delta_has_no_p_value_and_is_not_significant():
    assert math.isnan(_p_value(np.array([0.1, -0.2]), math.nan))  # was 1 / (1 + n): 'significant'
    assert delta_stats(math.nan, (math.nan, math.nan), 0.001, 10).significant is False
    assert delta_stats(0.5, (0.1, 0.9), 0.001, 10).significant is True


def rendered(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_md_escape_makes_html_and_markdown_inert():
    out = md_escape(HOSTILE + "\nsecond line")
    assert "<" not in out and "\n" not in out
    page = rendered(out)
    assert "<img" not in page and "<script" not in page and "<strong>" not in page and "<a " not in page
    assert "<code>" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_user_text_in_report_md_stays_text(tmp_path):
    values = {"baseline": 0.1, "tuned": 0.2, "delta": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.01,
              "significant": True, "n_units": 10}
    datasets = {HOSTILE: {"task": "sts", "main_metric": "spearman_cosine", "rows": 10, "source": HOSTILE,
                          "metrics": {"spearman_cosine": values}}}
    report = {"run_dir": HOSTILE, "base_model": HOSTILE, "model_revision": HOSTILE, "tuned_model": HOSTILE,
              "datasets": datasets, "run_id": HOSTILE,
              "primary": {"dataset": HOSTILE, "metric": "spearman_cosine", **values, "improved": True},
              "leakage": {HOSTILE: {"shared": 1, "of": 2, "examples": [HOSTILE]}},
              "prompts": {"baseline": {"query": {"prompt": HOSTILE, "source": "train.prompts.anchor",
                                                 "encode": "encode_query"}}},
              "encoding": {"baseline": {"seconds": 1.0, "texts": 2, "cached": False}}}
    md = report_markdown(report)
    assert "<img" not in md and "<script" not in md
    page = rendered(md)
    assert "<img" not in page and "<script" not in page and "<a " not in page
    from evaluate.report.html import html_report

    page = html_report(report, {})
    assert "<img" not in page and "<script>alert" not in page and "&lt;img src=x" in page
    table = markdown_table(datasets).splitlines()
    assert len({line.count(" | ") for line in table[2:]}) == 1 and table[2].count(" | ") == 8  # "|" splits no cell


def test_run_identity_comes_from_run_json(tmp_path):
    from evaluate.__main__ import run_identity

    assert run_identity(tmp_path) == {}
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r1", "config_hash": "h", "seed": 7}))
    assert run_identity(tmp_path) == {"run_id": "r1", "config_hash": "h"}
