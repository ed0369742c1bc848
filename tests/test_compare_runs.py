"""``python -m evaluate compare RUN_A RUN_B``: the paired difference B - A from each run's per-unit scores.

Known answer: run B is run A with its tuned model replaced by the untuned base model, so B - A must be exactly the
negative of A's own tuned - baseline delta, with the mirrored interval and the same p-value.
"""

from __future__ import annotations

import json
import shutil

import pytest

from configs.cli import run
from conftest import trained_incidents_run
from core.model import model_fingerprint


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """Run A (trained, with run_id/config_hash in run.json) and run B (A's folder holding the base model)."""
    from evaluate.__main__ import main as evaluate_main

    tmp = tmp_path_factory.mktemp("compare")
    trained_incidents_run(tmp, tiny_model_dir, truncate_dims=[16])
    run_a, run_b = tmp / "run", tmp / "run-b"
    info = json.loads((run_a / "run.json").read_text())
    (run_a / "run.json").write_text(json.dumps({**info, "run_id": "run-a-1"}))
    shutil.copytree(run_a, run_b)
    shutil.rmtree(run_b / "final")
    shutil.copytree(tiny_model_dir, run_b / "final")
    # B's record says its model is the untuned one, as a run that trained nothing would (evaluate checks it).
    (run_b / "run.json").write_text(json.dumps({**info, "run_id": "run-b-1",
                                                "final_fingerprint": model_fingerprint(run_b / "final")}))
    for folder in (run_a, run_b):
        assert run(lambda folder=folder: evaluate_main([str(folder)])) == 0
    return run_a, run_b


def compare(capsys, *args: str) -> tuple[int, str, str]:
    from evaluate.__main__ import main as evaluate_main

    capsys.readouterr()
    code = run(lambda: evaluate_main(["compare", *args]))
    out, err = capsys.readouterr()
    return code, out, err


def test_b_minus_a_is_the_paired_difference_with_the_baseline_statistics(runs):
    from evaluate.compare import head_to_head
    from evaluate.units import load_units

    run_a, run_b = runs
    report_a = json.loads((run_a / "eval" / "report.json").read_text())
    levels = head_to_head({str(run_a): load_units(str(run_a)), str(run_b): load_units(str(run_b))})
    assert list(levels) == ["full", "16"]
    for level, own in (("full", report_a["datasets"]), ("16", report_a["truncated"]["16"])):
        for name, info in own.items():
            for metric, v in info["metrics"].items():
                h = levels[level][name]["metrics"][metric]
                assert h["baseline"] == pytest.approx(v["tuned"]) and h["tuned"] == pytest.approx(v["baseline"])
                assert h["delta"] == pytest.approx(-v["delta"], abs=1e-12)
                assert (h["ci_low"], h["ci_high"]) == pytest.approx((-v["ci_high"], -v["ci_low"]), abs=1e-12)
                assert h["p_value"] == pytest.approx(v["p_value"]) and h["significant"] == v["significant"]


def test_compare_a_b_prints_the_difference_then_the_leaderboard(runs, capsys, tmp_path):
    run_a, run_b = runs
    code, out, _ = compare(capsys, str(run_a), str(run_b))
    assert code == 0
    assert out.index("B - A: B = ") < out.index("| run | incidents ndcg@10 |")
    assert "| dim | dataset | task | metric | A | B | delta | 95% CI | p | significant |" in out
    assert "| full | incidents | retrieval | **ndcg@10** |" in out and "| 16 | general-sts | sts |" in out
    code, out, _ = compare(capsys, str(run_a), str(run_b), "--leaderboard")
    assert code == 0 and "B - A" not in out and "| baseline (" in out
    run_c = tmp_path / "run-c"
    shutil.copytree(run_a, run_c)
    code, out, _ = compare(capsys, str(run_a), str(run_b), str(run_c))
    assert code == 0 and "B - A" not in out and out.count("\n| /") == 3  # three runs ranked, no head-to-head


def test_compare_refuses_other_data_and_runs_without_units(runs, tmp_path, capsys):
    run_a, run_b = runs
    other = tmp_path / "other"
    shutil.copytree(run_b, other)
    report = json.loads((other / "eval" / "report.json").read_text())
    report["datasets"]["general-sts"]["fingerprint"] = "0" * 64
    (other / "eval" / "report.json").write_text(json.dumps(report))
    code, _, err = compare(capsys, str(run_a), str(other))
    assert code == 2 and "evaluated on different data" in err and "general-sts" in err
    shutil.copy(run_a / "eval" / "report.json", other / "eval" / "report.json")
    (other / "eval" / "units.json").unlink()
    code, _, err = compare(capsys, str(run_a), str(other))
    assert code == 2 and "units.json does not exist" in err and "--leaderboard" in err


def test_compare_help_says_what_two_and_more_runs_print(capsys):
    from evaluate.__main__ import main as evaluate_main

    with pytest.raises(SystemExit) as stop:
        evaluate_main(["compare", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Two runs: the paired difference B - A" in text and "three and more runs: the leaderboard" in text


def test_report_records_the_runs_identity_prompts_and_similarity(runs):
    run_a, _ = runs
    report = json.loads((run_a / "eval" / "report.json").read_text(), parse_constant=pytest.fail)
    assert report["run_id"] == "run-a-1" and report["config_hash"] == json.loads(
        (run_a / "run.json").read_text())["config_hash"]
    assert report["tuned_fingerprint"] == model_fingerprint(run_a / "final")  # the folder's, as push checks
    tuned, base = report["encoder"]["tuned"], report["encoder"]["baseline"]  # what the cache keyed on
    assert len(tuned["fingerprint"]) == 64 and tuned["fingerprint"] != base["fingerprint"]
    assert tuned["max_seq_length"] == 64 and tuned["pooling"][0]["pooling_mode"] == "mean"
    assert (tuned["normalize"], tuned["similarity"], tuned["backend"]) == (False, "cosine", "torch")
    assert report["similarity"] == {"baseline": "cosine", "tuned": "cosine"}
    assert report["prompts"]["tuned"]["query"] == {"prompt": "", "source": "model prompts['query']",
                                                   "encode": "encode_query"}
    md = (run_a / "eval" / "report.md").read_text()
    assert "run\\_id run-a-1" in md and "| query | encode\\_query | '' | '' | model prompts\\['query'\\] |" in md
    page = (run_a / "eval" / "report.html").read_text()
    assert "run_id <code>run-a-1</code>" in page and "Prompts and similarity" in page
