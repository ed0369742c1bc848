"""The merge frontier in report.html: shown (picture, one row per ratio, the suggested push command) only beside the
report of the tuned model it interpolated, with hostile dataset names escaped once; written by ``python -m evaluate``
when eval/merge.json exists and re-rendered by ``python -m evaluate merge``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from test_html_report import ALLOWED_TAGS, Elements, chromium, on_a_phone, run_record, synthetic
from test_merge import merged_run

from evaluate.report.frontier import merge_markdown
from evaluate.report.html import html_report
from evaluate.report.writers import refresh_html, write_report

__all__ = ["chromium", "merged_run"]  # fixtures reused from their own test files

NASTY = "<img src=x onerror=alert(1)>"
PRIMARY = "med_notes *bold* & <i>co</i>"  # Markdown and HTML syntax: must reach the page as text, escaped once
TUNED, BASE = "t" * 64, "b" * 64


def entry(delta: float, significant: bool) -> dict:
    return {"baseline": 0.5, "tuned": 0.5 + delta, "delta": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
            "p_value": 0.01 if significant else 0.5, "significant": significant, "n_units": 100}


def merge_record(ratios: tuple[float, ...] = (0, 0.25, 0.5, 1), run_dir: str = "runs/medical") -> dict:
    """merge.json as ``python -m evaluate merge`` writes it: the primary set gains with r, a second domain set moves
    little, the general set (named ``NASTY``) loses significantly only at r = 1, so r = 0.5 is the suggestion."""
    def row(r: float) -> dict:
        return {"ratio": r, "fingerprint": f"merged-{r}", "datasets": {
            PRIMARY: {"task": "retrieval", "main_metric": "ndcg@10",
                      "metrics": {"ndcg@10": entry(0.06 * r, r >= 0.5), "mrr@10": entry(0.05 * r, False)}},
            "triage": {"task": "sts", "main_metric": "spearman", "metrics": {"spearman": entry(0.01 * r, False)}},
            NASTY: {"task": "sts", "main_metric": "spearman", "metrics": {"spearman": entry(-0.04 * r, r == 1)}}}}
    return {"run_dir": run_dir, "base_model": "bundled:all-MiniLM-L6-v2", "base_fingerprint": BASE,
            "tuned_fingerprint": TUNED, "method": "linear", "primary": {"dataset": PRIMARY, "metric": "ndcg@10"},
            "domain": [PRIMARY, "triage"], "general": [NASTY], "ratios": [row(r) for r in ratios],
            "suggested_ratio": 0.5}


def evaluated() -> tuple[dict, dict]:
    """The HTML report tests' synthetic report (hostile strings everywhere), as the evaluation of ``TUNED``."""
    report, details = synthetic()
    return {**report, "base_fingerprint": BASE, "tuned_fingerprint": TUNED}, details


def section(page: str) -> str:
    """The page from the frontier's heading to the next section's."""
    start = page.index("<h2>Merge frontier</h2>")
    return page[start:page.index("<h2>", start + 1)]


def table_rows(part: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(row class, [(cell class, cell text)]) of the frontier table's body."""
    body = re.search(r'<table id="merge">.*?<tbody>(.*?)</tbody>', part, re.DOTALL).group(1)
    rows = re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', body, re.DOTALL)
    return [(cls, re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>', cells)) for cls, cells in rows]


@pytest.fixture(scope="module")
def page() -> str:
    return html_report(*evaluated(), run=run_record(), merge=merge_record())


def test_the_section_shows_the_picture_and_one_row_per_ratio(page: str) -> None:
    assert page.index("<h2>Training</h2>") < page.index("<h2>Merge frontier</h2>") < page.index("<h2>Prompts")
    part = section(page)
    assert part.count("<svg") == part.count("</svg>") == 1 and 'aria-label="Merge frontier: base ↔ tuned"' in part
    assert part.count("<circle") == 4  # one point per ratio on the one general set
    heads = re.findall(r"<th>(.*?)</th>", part)
    assert heads == ["r", f"{escape(PRIMARY)} ndcg@10 (domain, primary)", "triage spearman (domain)",
                     f"{escape(NASTY)} spearman (general)"]
    rows = table_rows(part)
    assert [cells[0] for _, cells in rows] == [("num", "0"), ("num", "0.25"), ("num", "0.5"), ("num", "1")]
    assert [cls for cls, _ in rows] == ["", "", "main", ""]  # the suggested ratio in bold
    assert rows[2][1][1] == ("num gain", "0.5300 (+0.0300 [+0.0200, +0.0400]) *")
    assert rows[3][1][3] == ("num loss", "0.4600 (-0.0400 [-0.0500, -0.0300]) *")
    assert rows[1][1][2] == ("num", "0.5025 (+0.0025 [-0.0075, +0.0125])")
    assert 'class="scroll"><table id="merge">' in part  # scrolls inside its wrapper on a narrow screen
    assert "Bold: the suggested ratio; green / red: a significant gain / loss." in part


def test_the_suggestion_names_the_push_command_with_the_run_and_ratio(page: str) -> None:
    said = html.unescape(re.search(r"<h2>Merge frontier</h2>\s*<p>(.*?)</p>", page, re.DOTALL).group(1))
    assert said == (f"Largest domain gain without a significant loss on any general set: r = 0.5 ({PRIMARY} ndcg@10 "
                    "0.5300 (+0.0300 [+0.0200, +0.0400]) *). Publish that interpolation with python -m train.push "
                    "runs/medical push.merge_ratio=0.5 push.local_dir=FOLDER (the gate and the card then use the "
                    "merged model's numbers).")
    assert "python -m train.push runs/medical push.merge_ratio=0.5 push.local_dir=FOLDER" in merge_markdown(
        merge_record())


def test_the_command_carries_the_ratio_exactly_and_a_quoted_run_dir() -> None:
    record = merge_record(ratios=(0, 1 / 3, 1), run_dir="runs/my run")
    said = html.unescape(section(html_report(*evaluated(), merge=record)))
    # push finds the evaluated row by its value: '0.333333' would not be it
    assert "python -m train.push 'runs/my run' push.merge_ratio=0.3333333333333333 push.local_dir=FOLDER" in said


def test_dataset_names_are_escaped_once_never_raw(page: str) -> None:
    part = section(page)
    assert NASTY not in page and "<i>co</i>" not in page
    assert part.count(str(escape(NASTY))) >= 3  # table heading, chart legend and tooltips
    assert f"({escape(PRIMARY)} ndcg@10 0.5300" in part  # the suggestion: HTML-escaped, no Markdown backslashes
    assert "\\*" not in part and "\\_" not in part and "&amp;lt;" not in part and "&amp;amp;" not in part
    parser = Elements()
    parser.feed(page)
    assert {tag for tag, _ in parser.tags} <= ALLOWED_TAGS and all(tag != "img" for tag, _ in parser.tags)
    assert not [(tag, name) for tag, attrs in parser.tags for name, _ in attrs if name.startswith("on")]


@pytest.mark.parametrize("change", [
    {"tuned_fingerprint": "x" * 64},  # merged from an earlier final/
    {"base_fingerprint": "x" * 64},  # the same final/ weighed against another base
])
def test_a_frontier_of_other_models_is_left_out(change: dict) -> None:
    report, details = evaluated()
    without = html_report(report, details)
    page = html_report(report, details, merge={**merge_record(), **change})
    assert "Merge frontier" not in page and page == without


def test_a_report_or_record_without_fingerprints_shows_no_frontier() -> None:
    report, details = evaluated()
    record = {k: v for k, v in merge_record().items() if k not in ("tuned_fingerprint", "base_fingerprint")}
    del report["tuned_fingerprint"]
    assert "Merge frontier" not in html_report(report, details, merge=record)
    report["tuned_fingerprint"] = TUNED
    assert "Merge frontier" not in html_report(report, details, merge=record)
    record["tuned_fingerprint"] = TUNED  # no base recorded on one side: the tuned model decides
    assert "<h2>Merge frontier</h2>" in html_report(report, details, merge=record)


# --------------------------------------------------------------------------- writing: evaluate, then merge, in files
def evaluated_run(tmp_path: Path) -> Path:
    """A run folder whose eval/ holds report.json, details.json and report.html, and whose run.json has curves."""
    run_dir = tmp_path / "run"
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(run_record()), encoding="utf-8")
    write_report(*evaluated(), run_dir / "eval", run=run_record())
    return run_dir


def test_evaluate_shows_an_earlier_merge_of_the_same_model_and_drops_a_stale_one(tmp_path: Path) -> None:
    run_dir = evaluated_run(tmp_path)
    (run_dir / "eval" / "merge.json").write_text(json.dumps(merge_record()), encoding="utf-8")
    write_report(*evaluated(), run_dir / "eval", run=run_record())
    assert "<h2>Merge frontier</h2>" in (run_dir / "eval" / "report.html").read_text(encoding="utf-8")
    stale = {**merge_record(), "tuned_fingerprint": "x" * 64}
    (run_dir / "eval" / "merge.json").write_text(json.dumps(stale), encoding="utf-8")
    write_report(*evaluated(), run_dir / "eval", run=run_record())
    assert "Merge frontier" not in (run_dir / "eval" / "report.html").read_text(encoding="utf-8")


def test_merge_rerenders_the_report_with_its_training_curves(tmp_path: Path) -> None:
    run_dir = evaluated_run(tmp_path)
    before = (run_dir / "eval" / "report.html").read_text(encoding="utf-8")
    assert refresh_html(run_dir, merge_record()) is None
    after = (run_dir / "eval" / "report.html").read_text(encoding="utf-8")
    assert "Merge frontier" not in before and "<h2>Merge frontier</h2>" in after
    assert after == html_report(*evaluated(), run=run_record(), merge=merge_record())  # same page, plus the frontier


def test_merge_leaves_report_html_alone_without_a_report_of_its_model(tmp_path: Path) -> None:
    run_dir = evaluated_run(tmp_path)
    page = run_dir / "eval" / "report.html"
    before = page.read_text(encoding="utf-8")
    why = refresh_html(run_dir, {**merge_record(), "tuned_fingerprint": "x" * 64})
    assert why == (f"{run_dir / 'eval' / 'report.json'} evaluated other models than the merge interpolated (tuned "
                   f"fingerprint tttttttttttt, the merge's xxxxxxxxxxxx); 'python -m evaluate {run_dir}' writes it "
                   "with the frontier")
    assert page.read_text(encoding="utf-8") == before
    (run_dir / "eval" / "report.json").unlink()
    assert refresh_html(run_dir, merge_record()) == (
        f"{run_dir / 'eval' / 'report.json'} does not exist yet; 'python -m evaluate {run_dir}' writes it with the "
        "frontier")
    assert page.read_text(encoding="utf-8") == before


def test_evaluate_merge_adds_the_frontier_to_report_html(merged_run) -> None:
    run_dir, record = merged_run
    page = (run_dir / "eval" / "report.html").read_text(encoding="utf-8")
    part = section(page)
    assert part.count("<svg") == 1 and part.count("<circle") == 3  # ratios 0, 0.5, 1 on one general set
    assert [cells[0][1] for _, cells in table_rows(part)] == ["0", "0.5", "1"]
    assert re.findall(r"<th>(.*?)</th>", part) == ["r", "incidents ndcg@10 (domain, primary)",
                                                   "general-sts spearman_cosine (general)"]
    assert page.index("<h2>Training</h2>") < page.index("<h2>Merge frontier</h2>")


def test_a_phone_scrolls_the_frontier_table_inside_its_wrapper(chromium: Path, page: str, tmp_path: Path) -> None:
    measure, _ = on_a_phone(chromium, page, tmp_path)
    assert measure["window"] == 390 and measure["tables"] == 5  # the report's four and the frontier
    assert measure["wide"] == [] and measure["page"] <= measure["window"], measure
