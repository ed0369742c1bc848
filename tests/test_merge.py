"""Merging against forgetting: the interpolation's mechanics on the tiny model, and ``python -m evaluate merge`` end
to end on a tiny trained run (its frontier table, JSON and SVG, and a published ratio's folder)."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from configs.errors import UserError
from configs.load import validate
from conftest import tiny_config, trained_incidents_run
from evaluate.interpolate import (
    MERGE_RECORD,
    check_general_sets,
    check_ratios,
    evaluated_ratio,
    interpolated_state,
    merged_fingerprint,
    merged_folder,
    merged_model,
)
from evaluate.report.frontier import frontier_svg, merge_markdown, standalone_svg

RATIOS = [0, 0.5, 1]


@pytest.fixture(scope="module")
def base_and_tuned(tiny_model_dir):
    """The tiny model and a copy whose every floating-point weight moved (a stand-in for a fine-tune)."""
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(tiny_model_dir), device="cpu")
    tuned = copy.deepcopy(base)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return base, tuned


def test_ratio_0_is_the_base_1_the_tuned_model_and_0_5_halfway(base_and_tuned):
    base, tuned = base_and_tuned
    b, t = base.state_dict(), tuned.state_dict()
    kept = {k: v.clone() for k, v in b.items()}
    at = {r: merged_model(base, tuned, r).state_dict() for r in RATIOS}
    floats = [k for k in b if b[k].is_floating_point()]
    assert floats and all(torch.equal(at[0][k], b[k]) and torch.equal(at[1][k], t[k]) for k in b)
    assert all(torch.allclose(at[0.5][k], (b[k] + t[k]) / 2, atol=1e-7) for k in floats)
    moved = [k for k in floats if not torch.equal(b[k], t[k])]
    assert moved and all(not torch.equal(at[0.5][k], b[k]) and not torch.equal(at[0.5][k], t[k]) for k in moved)
    assert all(torch.equal(b[k], kept[k]) for k in b)  # the inputs are left as they were


def test_integer_tensors_are_the_bases(base_and_tuned):
    base, tuned = base_and_tuned
    b = {**base.state_dict(), "ids": torch.arange(4)}  # an integer buffer such as position_ids in older BERTs
    merged = interpolated_state(b, {**tuned.state_dict(), "ids": torch.arange(4) + 7}, 0.5)
    assert torch.equal(merged["ids"], torch.arange(4)) and merged["ids"].dtype == torch.int64


def test_weights_of_another_shape_cannot_be_interpolated(base_and_tuned):
    base, _ = base_and_tuned
    b = base.state_dict()
    name = next(k for k in b if b[k].is_floating_point() and b[k].dim() == 2)
    other = {**b, name: torch.zeros(3, 3)}
    with pytest.raises(UserError, match=r"The tuned model's weights do not match its base's \(.*\), so they cannot "
                                        r"be interpolated"):
        interpolated_state(b, other, 0.5)


@pytest.mark.parametrize("ratios", [(), (0.0, 1.5), (-0.25,)])
def test_ratios_outside_0_to_1_are_refused(ratios):
    with pytest.raises(UserError, match=r"evaluate.merge_ratios must be tuned-model weights from 0 \(the base\) to 1"):
        check_ratios(ratios)


def test_ratios_are_sorted_once_each():
    assert check_ratios((1.0, 0.25, 0.0, 0.25)) == [0.0, 0.25, 1.0]


def test_a_merge_without_a_general_set_is_refused(tmp_path, tiny_model_dir):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"})
    raw["evaluate"]["datasets"] = [{"name": "test", "task": "retrieval"}]
    with pytest.raises(UserError, match="no general set is configured: add one with its own source under "
                                        "evaluate.datasets"):
        check_general_sets(validate(raw))
    raw["evaluate"]["datasets"] = [{"name": "test", "task": "retrieval"},
                                   {"name": "mine", "task": "sts", "source": {"path": "x.csv"}, "general": False}]
    with pytest.raises(UserError, match="no general set is configured"):
        check_general_sets(validate(raw))
    raw["evaluate"]["datasets"][0]["general"] = True
    check_general_sets(validate(raw))


def test_merged_fingerprints_differ_by_ratio_and_models():
    prints = {merged_fingerprint("a", "b", r) for r in (0.25, 0.5)} | {merged_fingerprint("a", "c", 0.5)}
    assert len(prints) == 3 and merged_fingerprint("a", "b", 0.5) == merged_fingerprint("a", "b", 0.5)


# ------------------------------------------------------------------------------------------ end to end, tiny run
@pytest.fixture(scope="module")
def merged_run(tmp_path_factory, tiny_model_dir) -> tuple[Path, dict]:
    """A tiny trained run, evaluated (``python -m evaluate``) and merged (``python -m evaluate merge``) at 0, .5, 1."""
    from configs.cli import run
    from evaluate.__main__ import main as evaluate_main
    from evaluate.interpolate import main as merge_main

    tmp = tmp_path_factory.mktemp("merge")
    run_dir = trained_incidents_run(tmp, tiny_model_dir, cache_dir=str(tmp / "cache"))
    assert run(lambda: evaluate_main([str(run_dir)])) == 0
    assert run(lambda: merge_main([str(run_dir), "evaluate.merge_ratios=[1, 0.5, 0]"])) == 0
    return run_dir, json.loads((run_dir / "eval" / "merge.json").read_text())


def test_the_frontier_has_one_row_per_ratio(merged_run):
    run_dir, record = merged_run
    assert [row["ratio"] for row in record["ratios"]] == RATIOS
    assert record["primary"] == {"dataset": "incidents", "metric": "ndcg@10"}
    assert record["domain"] == ["incidents"] and record["general"] == ["general-sts"]
    table = [line for line in (run_dir / "eval" / "merge.md").read_text().splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[:4]] == ["| r", "| 0", "| 0.5", "| 1"]


def test_ratio_0_is_the_base_and_ratio_1_is_what_evaluate_reported(merged_run):
    run_dir, record = merged_run
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    at = {row["ratio"]: row["datasets"] for row in record["ratios"]}
    for name, info in report["datasets"].items():
        for metric, entry in info["metrics"].items():
            assert at[0][name]["metrics"][metric]["delta"] == 0
            assert at[1][name]["metrics"][metric]["tuned"] == pytest.approx(entry["tuned"], abs=1e-9)
            assert at[1][name]["metrics"][metric]["baseline"] == pytest.approx(entry["baseline"], abs=1e-9)
    assert record["tuned_fingerprint"] == report["tuned_fingerprint"]


def test_the_picture_is_valid_svg_with_escaped_names(merged_run):
    run_dir, record = merged_run
    root = ET.fromstring((run_dir / "eval" / "merge.svg").read_text(encoding="utf-8").split("\n", 1)[1])
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == len(RATIOS)  # one point per ratio (one general set)
    # A dataset name with markup is text in the SVG and in the Markdown, never an element.
    nasty = '<b onclick="x">sts</b> & co'
    renamed = copy.deepcopy(record)
    renamed["general"] = [nasty]
    for row in renamed["ratios"]:
        row["datasets"][nasty] = row["datasets"].pop("general-sts")
    svg_text = standalone_svg(frontier_svg(renamed))
    tree = ET.fromstring(svg_text.split("\n", 1)[1])
    assert not tree.findall(".//{http://www.w3.org/2000/svg}b") and "&lt;b onclick" in svg_text
    assert any(nasty in (el.text or "") for el in tree.iter())
    assert "<b " not in merge_markdown(renamed)


def test_a_chosen_ratio_is_written_as_a_model_folder(merged_run, tmp_path):
    from sentence_transformers import SentenceTransformer

    from configs.runs import load_run
    from core.model import model_fingerprint

    run_dir, record = merged_run
    config = load_run(str(run_dir))
    out = merged_folder(config, 0.5, tmp_path / "merged")
    saved = json.loads((out / MERGE_RECORD).read_text())
    assert saved["ratio"] == 0.5 and saved["tuned_fingerprint"] == record["tuned_fingerprint"]
    base = SentenceTransformer(str(Path(config.model.name)), device="cpu")
    tuned = SentenceTransformer(str(run_dir / "final"), device="cpu")
    expected = interpolated_state(base.state_dict(), tuned.state_dict(), 0.5)
    loaded = SentenceTransformer(str(out), device="cpu").state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    before = model_fingerprint(out)
    (out / MERGE_RECORD).write_text("{}")
    assert model_fingerprint(out) == before  # the record is not part of the model's identity
    assert evaluated_ratio(run_dir, 0.5)["ratio"] == 0.5
    with pytest.raises(UserError, match=r"merge ratio 0.3 was never evaluated .* Run 'python -m evaluate merge "):
        evaluated_ratio(run_dir, 0.3)


def _entry(delta: float, significant: bool) -> dict:
    return {"baseline": 0.5, "tuned": 0.5 + delta, "delta": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
            "p_value": 0.01 if significant else 0.5, "significant": significant, "n_units": 100}


def _record(points: list[tuple[float, float, float, bool]]) -> dict:
    """A merge record: (ratio, domain delta, general delta, general loss significant) per row."""
    rows = [{"ratio": r, "fingerprint": str(r), "datasets": {
        "domain": {"task": "retrieval", "main_metric": "ndcg@10", "metrics": {"ndcg@10": _entry(d, d > 0.02)}},
        "general": {"task": "sts", "main_metric": "spearman_cosine",
                    "metrics": {"spearman_cosine": _entry(g, sig)}}}} for r, d, g, sig in points]
    return {"run_dir": "/runs/x", "primary": {"dataset": "domain", "metric": "ndcg@10"}, "domain": ["domain"],
            "general": ["general"], "ratios": rows}


@pytest.mark.parametrize(("points", "said"), [
    ([(0, 0, 0, False), (0.5, 0.03, -0.01, False), (1, 0.05, -0.04, True)],
     "r = 0.5 (domain ndcg@10 0.5300 (+0.0300 [+0.0200, +0.0400]) *). Publish that interpolation with "
     "python -m train.push /runs/x push.merge_ratio=0.5 push.local_dir=FOLDER (the gate and the card then use the "
     "merged model's numbers)."),
    ([(0, 0, 0, False), (0.5, 0.03, -0.01, False), (1, 0.05, -0.01, False)],
     "The tuned model itself (r = 1) gains most without a significant loss on any general set"),
    ([(0, 0, 0, False), (0.5, -0.01, -0.03, True), (1, 0.05, -0.04, True)],
     "No merged model gains on domain without a significant loss on a general set (best: r = 0,"),
])
def test_the_suggested_ratio_gains_most_without_forgetting(points, said):
    text = merge_markdown(_record(points))
    assert said in text
    assert text.count("\n| 0 |") == 1 and text.count("\n| 0.5 |") == 1 and text.count("\n| 1 |") == 1
