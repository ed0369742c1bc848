"""The words both reports print, written once: verdicts, p-values at the resampling floor, what a set is, leakage
always stated, rank moves, the training plan, reference rows; and the pictures chosen from what the details hold."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from datasets import Dataset

from conftest import REPO
from data.table import Table
from evaluate.report import wording
from evaluate.report.charts import map_view, pair_charts
from evaluate.report.html import html_report
from evaluate.report.run_summary import final_text, plan_text
from evaluate.report.set_summary import about_lines, about_sets, pairs_about, retrieval_about
from evaluate.report.svg import CATEGORY_COLOURS, GREY, MODEL_COLOURS, NEUTRAL, RELEVANCE_COLOURS
from evaluate.report.writers import report_markdown


def entry(baseline: float, tuned: float, low: float, high: float, p: float | None, significant: bool, **extra) -> dict:
    return {"baseline": baseline, "tuned": tuned, "delta": tuned - baseline, "ci_low": low, "ci_high": high,
            "p_value": p, "significant": significant, "n_units": 300, **extra}


def report_of(primary: dict, leakage: dict | None = None, **dataset) -> dict:
    info = {"task": "retrieval", "rows": 160, "source": "/home/someone/project/runs/quickstart/data/test.jsonl",
            "fingerprint": "ab" * 32, "main_metric": "ndcg@10", "metrics": {"ndcg@10": primary}, **dataset}
    return {"run_dir": "/home/someone/project/runs/quickstart", "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "model_revision": "1110a24", "tuned_model": "/home/someone/project/runs/quickstart/final",
            "primary": {"dataset": "incidents", "metric": "ndcg@10", **primary, "improved": primary["delta"] > 0},
            "datasets": {"incidents": info}, "leakage": leakage or {},
            "encoding": {"baseline": {"seconds": 1.0, "texts": 320, "cached": False}}}


def test_p_at_the_resampling_floor_prints_as_a_bound_with_the_resample_count():
    assert wording.p_text(1 / 10001, 10000) == "< 0.0001"
    assert wording.p_text(1 / 1401, 1400) == "< 0.0008"  # rounded up: the bound never understates p
    assert wording.p_text(0.0123, 10000) == "0.012" and wording.p_text(0.0123) == "0.012"
    assert wording.p_text(None) == "—" and wording.p_text(1 / 10001) == "0.0001"  # no count recorded: no claim
    assert wording.p_clause({"p_value": 1 / 10001, "n_resamples": 10000}) == "p < 0.0001 (10,000 resamples)"
    assert wording.p_clause({"p_value": 0.03, "n_resamples": 10000}) == "p = 0.03"
    # inside a parenthesis (the verdict's, a comparison's): no second parenthesis, and always the real count
    assert wording.p_words({"p_value": 1 / 10001, "n_resamples": 10000}) == "p < 0.0001 from 10,000 resamples"
    assert wording.p_words({"p_value": 0.03, "n_resamples": 1000}) == "p = 0.03 from 1,000 resamples"
    assert wording.p_words({"p_value": 0.03}) == "p = 0.03"  # no count recorded: none claimed


def test_both_reports_give_the_same_verdict_words():
    floor = entry(0.6457, 0.6904, 0.027, 0.0625, 1 / 10001, True, n_resamples=10000)
    report = report_of(floor)
    sentence = ("on incidents ndcg@10: 0.6457 → 0.6904 (Δ +0.0447, 95% CI [+0.0270, +0.0625], p < 0.0001 "
                "from 10,000 resamples), a significant difference.")
    assert f"**The tuned model is better than the baseline** {sentence}" in report_markdown(report)
    page = html_report(report, {})
    assert '<div class="verdict better"><p><b>The tuned model is better than the baseline</b> ' in page
    assert sentence.replace("<", "&lt;") in page


@pytest.mark.parametrize(("values", "kind", "words"), [
    (entry(0.5, 0.48, -0.03, -0.01, 0.002, True), "worse", "The tuned model is WORSE than the baseline"),
    (entry(0.5, 0.51, -0.01, 0.03, 0.3, False), "same", "the 95% interval includes 0."),
    (entry(0.5, 0.52, 0.005, 0.03, 0.08, False), "same", "p >= 0.05 although the 95% interval excludes 0."),
    ({**entry(0.5, 0.52, 0.0, 0.0, None, False), "undefined": "baseline: not finite"}, "undefined", "No verdict"),
])
def test_verdict_kinds_say_why(values, kind, words):
    said = wording.verdict({"dataset": "d", "metric": "m", **values, "improved": values["delta"] > 0})
    assert said.kind == kind and words in f"{said.headline} {said.detail}"


def test_published_reports_name_models_and_runs_without_paths():
    report = report_of(entry(0.5, 0.6, 0.05, 0.15, 0.001, True))
    md, page = report_markdown(report), html_report(report, {})
    assert "/home/someone" not in md and "/home/someone" not in page
    assert md.startswith("# Evaluation of quickstart\n") and "Tuned: quickstart/final." in md
    assert "<h1>embtune evaluation: quickstart</h1>" in page and "<code>quickstart/final</code>" in page
    assert "<code>quickstart/data/test.jsonl</code>" in page
    assert wording.model_name("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert wording.model_name("/models/my-minilm") == "my-minilm"
    assert wording.run_name("runs/quickstart") == "quickstart"


def test_leakage_is_stated_for_every_set_clean_or_not():
    leakage = {"leaky": {"shared": 3, "of": 80, "examples": ["x"]}}
    said = wording.leakage_statements(leakage, ["sts", "leaky", "unchecked"], {"sts": 320, "leaky": 80})
    assert said == [(False, "No leakage", f"none of the 320 texts compared of sts ({wording.COMPARED}) appears "
                                          "in the training split."),
                    (True, "LEAKAGE", "leaky shares 3 of the 80 texts compared with the training split, so its "
                                      "scores overstate the gain; e.g. 'x'."),
                    (False, "No leakage", "no text of unchecked appears in the training split.")]
    report = {**report_of(entry(0.5, 0.6, 0.05, 0.15, 0.001, True)), "leakage_checked": {"incidents": 160}}
    md = report_markdown(report)
    clean = "No leakage: none of the 160 texts compared of incidents (its queries or sentences; documents may be shared"
    assert clean in md and md.index("No leakage") < md.index("| dataset |")
    assert clean in html_report(report, {})


def test_leakage_says_how_texts_were_compared_and_that_groups_are_disjoint():
    comparison = {"incidents": {"description": "Normalised texts (case and spacing) were compared.",
                                "group_column": "topic", "shared_groups": 0, "test_groups": 16}}
    [(leak, _, text)] = wording.leakage_statements({"incidents": {"shared": 0, "of": 160}}, ["incidents"],
                                                   comparison=comparison)
    assert not leak and text.endswith("Normalised texts (case and spacing) were compared. The split is grouped by "
                                      "topic: the 16 held-out topic groups never occur in training.")
    assert wording.comparison_note("exact text after NFKC", "any") == "Texts were compared as exact text after NFKC."
    found = {"count": 2, "threshold": 0.8, "examples": [["a b", "a c", 0.9]]}
    [clean, (leak, label, text)] = wording.leakage_statements({"s": {"shared": 0, "of": 160, "near_duplicates": found}},
                                                              ["s"])
    assert leak and label == "NEAR-DUPLICATES" and text.startswith("2 of the 160 texts compared of s share at least")
    none = {"shared": 0, "of": 160, "near_duplicates": {"count": 0, "threshold": 0.8, "examples": []}}
    assert wording.leakage_statements({"s": none}, ["s"])[0][2].endswith("(no near-duplicate).")
    assert wording.comparison_note(None, "any") == ""


def test_a_set_says_what_it_is_and_flags_recall_at_half_the_corpus():
    qrels = {f"q{i}": {f"d{i}": 1, **({f"d{i + 1}": 2} if i < 40 else {})} for i in range(160)}
    about = retrieval_about({q: q for q in qrels}, {f"d{i}": "" for i in range(161)}, qrels)
    assert about_lines(about, str, "retrieval") == ["160 queries search a corpus of 161 documents; 1 to 2 (mean 1.2) "
                                                    "relevant documents per query, judged at grades 1, 2."]
    report = report_of(entry(0.5, 0.6, 0.05, 0.15, 0.001, True), about=about)
    report["datasets"]["incidents"]["metrics"]["recall@100"] = entry(0.97, 0.99, 0.0, 0.04, 0.2, False)
    md, page = report_markdown(report), html_report(report, {})
    flag = ("recall@100 is uninformative here: k = 100 is at least half of the 161-document corpus, so almost any "
            "ranking finds the relevant documents.")
    assert flag in md and flag in page and "| incidents | retrieval | recall@100 † |" in md
    assert '<tr class="uninformative">' in page and '<td class="metric">recall@100 †</td>' in page
    counted = {**about, "unscorable_queries": 7}
    assert about_lines(counted, str, "retrieval")[-1] == (
        "7 of the 160 queries cannot score above 0 for any model: none of their relevant documents is in the corpus "
        "searched. They count as 0 in every metric for both models.")
    report["datasets"]["incidents"]["about"] = counted
    assert "7 of the 160 queries cannot score above 0" in html_report(report, {})
    assert "7 of the 160 queries cannot score above 0" in report_markdown(report)
    assert wording.uninformative("recall@10", 161) is None and wording.uninformative("ndcg@10", 12) is None


def table(**columns) -> Table:
    kind = "scored" if "score" in columns else "pairs"
    return Table(rows=Dataset.from_dict(columns), kind=kind, origin="test.csv")


def test_sets_built_from_the_same_texts_say_so():
    jargon, plain = [f"p1 outage {i}" for i in range(4)], [f"the shop is down {i}" for i in range(4)]
    retrieval = table(anchor=jargon, positive=plain)
    sts = table(sentence1=jargon * 2, sentence2=plain + plain[::-1], score=[1.0] * 4 + [0.0, 0.4, 0.4, 0.0])
    results = {"retrieval": SimpleNamespace(retrieval=({j: j for j in jargon}, {p: p for p in plain},
                                                       {j: {p: 1} for j, p in zip(jargon, plain)})),
               "sts": SimpleNamespace(retrieval=(), gold=sts.rows["score"])}
    about = about_sets({"retrieval": retrieval, "sts": sts}, results, {"retrieval": "retrieval", "sts": "sts"})
    assert about["sts"] == {"pairs": 8, "texts": 8, "gold_range": [0.0, 1.0],
                            "gold_levels": {"0": 2, "0.4": 2, "1": 4},
                            "derived_from": {"set": "retrieval", "shared": 8, "of": 8}}
    assert about_lines(about["sts"], str, "sts") == [
        "8 pairs of 8 distinct texts; 3 gold levels: 0 (2 pairs), 0.4 (2 pairs), 1 (4 pairs).",
        "Not an independent set: all 8 of its texts are also texts of retrieval."]
    assert about["retrieval"]["corpus"] == 4 and about["retrieval"]["queries"] == 4
    assert "derived_from" not in about["retrieval"]  # the first set is the original; the later one is derived


def test_numbers_never_print_minus_zero():
    assert wording.num(-1e-17, "+.4f") == "+0.0000"  # float noise is 0
    assert wording.num(-0.00004, "+.4f") == "-0.00004"  # a real small negative keeps its sign, with its digits
    assert wording.num(0.00004, "+.4f") == "+0.00004" and wording.num(-0.0004, "+.4f") == "-0.0004"
    assert wording.num(None) == "—" and wording.num(0.12345) == "0.1235"
    assert wording.interval_text({"ci_low": -0.00004, "ci_high": 0.0274}) == "[-0.00004, +0.0274]"


def test_rank_moves_and_win_counts():
    moved = {"baseline": {"first_relevant_rank": 7, "top": []}, "tuned": {"first_relevant_rank": 2, "top": []}}
    assert wording.rank_move(moved) == "rank 7 → 2"
    top = [{"relevant": False}] * 5
    found = {"baseline": {"top": top}, "tuned": {"top": [{"relevant": True}, *top[:4]]}}
    assert wording.rank_move(found) == "rank > 5 → 1"  # from the top documents shown when no rank is recorded
    assert wording.win_counts([0.2, 0.0, -0.1, 0.3, 1e-15]) == {"won": 2, "tied": 2, "lost": 1}


RUN = {"train": {"rows": 740, "steps": 24, "epoch": 2.0}, "loss_history": [{"step": 10, "loss": 0.5}],
       "best_checkpoint": {"step": 16, "metric": "eval_dev_ndcg@10", "dev_score": 0.9335},
       "dev_history": [{"eval_dev_ndcg@10": 0.93, "eval_runtime": 2.0, "step": 8}]}


def test_training_plan_and_final_step_from_run_json():
    assert plan_text(RUN) == "Plan: 740 training rows, 24 steps, 2 epochs."
    planned = {**RUN, "plan": {"batch_size": 64, "precision": "bf16", "epochs": 2}}
    assert plan_text(planned) == "Plan: 740 training rows, 24 steps, 2 epochs, batch 64, bf16 precision."
    assert final_text(RUN) == "final/ is the checkpoint of step 16, the best dev_ndcg@10 (0.9335) on the dev split."
    assert final_text({"train": {"steps": 24}}) == "final/ is the model after the last step (24)."
    md = report_markdown(report_of(entry(0.5, 0.6, 0.05, 0.15, 0.001, True)), RUN)
    assert "## Training\n\nPlan: 740 training rows, 24 steps, 2 epochs. final/ is the checkpoint of step 16" in md


def test_reference_rows_are_compared_in_words():
    rows = {"bm25": {"metrics": {"ndcg@10": 0.62}, "description": "BM25 (bm25s)",
                     "vs": {"against": "tuned", "ndcg@10": entry(0.69, 0.62, -0.1, -0.04, 0.0004, True)}},
            "hybrid": {"metrics": {"ndcg@10": 0.71},
                       "vs": {"against": "tuned", "ndcg@10": entry(0.69, 0.71, -0.01, 0.05, 0.2, False)}}}
    report = report_of(entry(0.6457, 0.6904, 0.027, 0.0625, 0.001, True), reference=rows)
    ranking = "On ndcg@10 hybrid scores highest (0.7100), then tuned (0.6904), baseline (0.6457), bm25 (0.6200)."
    bm25 = ("bm25 vs tuned on ndcg@10: Δ -0.0700 (95% CI [-0.1000, -0.0400], p = 0.0004): tuned is significantly "
            "better.")
    hybrid = "hybrid vs tuned on ndcg@10: Δ +0.0200 (95% CI [-0.0100, +0.0500], p = 0.2): no significant difference."
    md, page = report_markdown(report), html_report(report, {})
    for sentence in (ranking, bm25, hybrid):
        assert sentence in md and sentence in page
    # the row's name in its cell, its description under the table (a long one wrapped a phone's cell to many lines)
    assert '<tr class="reference"><td>bm25</td><td class="num">0.6200</td>' in page and "bm25: BM25 (bm25s)." in page


def test_pictures_follow_what_the_details_hold():
    pairs = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "gold": g, "baseline": 0.5, "tuned": 0.1 + g / 2}
             for i, g in enumerate([0.0, 0.4, 1.0] * 4)]
    heading, panels, caption = pair_charts({"pairs": pairs})
    assert heading == "Similarity per gold level" and len(panels) == 1 and panels[0].count("h0") == 24  # a dot each
    assert "<title>" not in panels[0] and caption.startswith("12 pairs, each a faint dot")
    binary = [{**p, "gold": float(p["gold"] == 1.0)} for p in pairs]
    assert pair_charts({"pairs": binary})[0] == "Similarity of similar and dissimilar pairs"
    continuous = [{**p, "gold": i / 11} for i, p in enumerate(pairs)]
    assert pair_charts({"pairs": continuous})[0] == "Gold score vs predicted similarity"
    assert pair_charts({"map": {}}) is None


def test_the_map_draws_each_text_once_and_colours_only_labels_of_texts():
    texts = ["one", "two", "one", "three", "two"]
    points = [[float(i), float(i)] for i in range(5)]
    by_pair = map_view({"baseline": points, "tuned": points, "texts": texts, "method": "PCA",
                        "labels": ["similar", "similar", "dissimilar", "similar", "dissimilar"]})
    assert by_pair["points"] == 3 and not by_pair["coloured"] and by_pair["legend"] == []
    assert all(panel.count("<circle") == 3 and NEUTRAL in panel for panel in by_pair["panels"])
    assert "fitted on each model's embeddings separately" in by_pair["caption"]  # an older map: said, not hidden
    by_topic = map_view({"baseline": points, "tuned": points, "texts": texts, "method": "PCA", "projection": "one",
                         "labels": ["dns", "disk", "dns", "disk", "disk"]})
    assert by_topic["coloured"] and "Projection: one." in by_topic["caption"]
    assert [(name, colour) for name, colour, _ in by_topic["legend"]] == [("disk", CATEGORY_COLOURS[0]),
                                                                         ("dns", CATEGORY_COLOURS[1])]
    # each category has its own shape too: disk a circle, dns a square, in the panels and in the legend keys
    assert all(panel.count("<circle") == 2 and panel.count("<path") == 1 for panel in by_topic["panels"])
    assert "<circle" in by_topic["legend"][0][2] and "<path" in by_topic["legend"][1][2]


def test_each_colour_means_one_thing():
    roles = [*MODEL_COLOURS.values(), *RELEVANCE_COLOURS.values(), *CATEGORY_COLOURS, NEUTRAL, GREY]
    assert len({c.lower() for c in roles}) == len(roles)


def test_the_template_ships_with_the_checkout(tmp_path):
    # The project is not installed: the template must be found next to the module from any working directory.
    code = ("from evaluate.report.html import html_report; import sys; "
            "sys.stdout.write(html_report({'run_dir': 'r', 'base_model': 'b', 'tuned_model': 't', 'datasets': {}, "
            "'primary': {'dataset': 'd', 'metric': 'm', 'baseline': 0.1, 'tuned': 0.2, 'delta': 0.1, "
            "'improved': True}}, {})[:15])")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "<!DOCTYPE html>", out.stderr[-2000:]


def test_pairs_about_gives_a_range_when_gold_has_many_values():
    about = pairs_about(["a"] * 20, [f"b{i}" for i in range(20)], [i / 19 for i in range(20)])
    assert "gold_levels" not in about
    assert about_lines(about, str, "sts") == ["20 pairs of 21 distinct texts; gold scores from 0 to 1."]


def test_a_keyword_row_that_beats_the_tuned_model_is_said_next_to_the_verdict():
    bm25 = {"metrics": {"ndcg@10": 0.74}, "description": "BM25 keyword search",
            "vs": {"against": "tuned", "ndcg@10": entry(0.69, 0.74, 0.02, 0.08, 0.001, True, n_resamples=10000)}}
    report = report_of(entry(0.6457, 0.6904, 0.027, 0.0625, 0.001, True), reference={"bm25": bm25})
    said = ("But bm25 (BM25 keyword search) is significantly better than the tuned model on incidents ndcg@10: "
            "0.7400 against 0.6904 (Δ +0.0500, 95% CI [+0.0200, +0.0800], p = 0.001 from 10,000 resamples).")
    md, page = report_markdown(report), html_report(report, {})
    assert f"**{said}**" in md and md.index(said) < md.index("| dataset |")
    assert f'<p class="caveat"><b>{said}</b></p>' in page
    losing = {**bm25, "vs": {"against": "tuned", "ndcg@10": entry(0.69, 0.62, -0.1, -0.04, 0.001, True)}}
    quiet = report_of(entry(0.6457, 0.6904, 0.027, 0.0625, 0.001, True), reference={"bm25": losing})
    assert "But bm25" not in report_markdown(quiet) and 'class="caveat"' not in html_report(quiet, {})


def test_the_report_says_when_embeddings_were_computed_in_bf16():
    report = report_of(entry(0.5, 0.6, 0.05, 0.15, 0.001, True))
    report["encoding"] = {m: {"seconds": 1.0, "texts": 320, "cached": False, "precision": "bf16"}
                          for m in ("baseline", "tuned")}
    said = "Embeddings were computed in reduced precision (baseline bf16, tuned bf16), not fp32"
    assert said in html_report(report, {}) and said in report_markdown(report)
    report["encoding"]["tuned"]["precision"] = report["encoding"]["baseline"]["precision"] = "fp32"
    assert "Embeddings were computed in fp32." in html_report(report, {})
