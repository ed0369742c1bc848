"""The push gate: no publish without a significant gain on the primary metric, with a significant loss on a general
(forgetting) set, or without an evaluation, unless push.allow_regression=true (then the card says so first)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from configs.cli import run
from configs.errors import UserError
from configs.load import validate
from conftest import INCIDENT_ROWS, neighbour_pairs, tiny_config, write_config, write_csv
from evaluate.forgetting import forgetting_sets
from train.push.gate import check_gate, gate_findings


@pytest.fixture(scope="module")
def negligible_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A real tiny run: one step at learning rate 1e-12, then the baseline-vs-tuned evaluation (incident retrieval
    as the primary set, a general STS set as the forgetting set)."""
    from data.__main__ import main as data_main
    from evaluate.__main__ import main as evaluate_main
    from train.__main__ import main as train_main

    root = tmp_path_factory.mktemp("gate_run")
    pairs = write_csv(root / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    scored = write_csv(root / "scored.csv", ["sentence1", "sentence2", "score", "topic"], neighbour_pairs(5.0, 2.0))
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(root, tiny_model_dir, {"train": source, "test_fraction": 0.34}, {"name": "mnrl"})
    raw["train"].update(max_steps=1, learning_rate=1e-12)
    raw["evaluate"]["datasets"] = [
        {"name": "incidents", "task": "retrieval", "split": "test"},
        {"name": "general-sts", "task": "sts", "source": {"path": str(scored), "score_range": [0, 5]}}]
    config = str(write_config(root, raw))
    for main in (data_main, train_main, evaluate_main):
        assert run(lambda main=main: main([config])) == 0
    return root / "run"


@pytest.fixture
def run_dir(negligible_run, tmp_path) -> Path:
    return Path(shutil.copytree(negligible_run, tmp_path / "run"))


def push(run_dir: Path, target: Path, *overrides: str) -> int:
    from train.push.publish import main as push_main

    return run(lambda: push_main([str(run_dir), f"push.local_dir={target}", *overrides]))


def edit_report(run_dir: Path, dataset: str, **values) -> dict:
    """Set numbers of ``dataset``'s main metric (and of the primary entry when it is the primary set)."""
    path = run_dir / "eval" / "report.json"
    report = json.loads(path.read_text())
    info = report["datasets"][dataset]
    info["metrics"][info["main_metric"]].update(values)
    if report["primary"]["dataset"] == dataset:
        report["primary"].update(values, improved=values.get("delta", 0) > 0)
    path.write_text(json.dumps(report))
    return report


GAIN = {"baseline": 0.5, "tuned": 0.7, "delta": 0.2, "ci_low": 0.1, "ci_high": 0.3, "p_value": 0.0002,
        "significant": True}
LOSS = {"baseline": 0.8, "tuned": 0.6, "delta": -0.2, "ci_low": -0.3, "ci_high": -0.1, "p_value": 0.0004,
        "significant": True}


# ------------------------------------------------------------------------------------------- real tiny runs
def test_a_run_without_a_significant_gain_is_refused_with_its_numbers(run_dir, tmp_path, capsys):
    primary = json.loads((run_dir / "eval" / "report.json").read_text())["primary"]
    assert not primary["significant"]  # one step at 1e-12 changes nothing measurable
    assert push(run_dir, tmp_path / "pub") == 2
    err = capsys.readouterr().err
    ci = f"95% CI [{primary['ci_low']:+.4f}, {primary['ci_high']:+.4f}]"
    assert "Not publishing: the tuned model did not beat its base.\n  - the primary metric incidents ndcg@10 did " \
           f"not improve significantly: {primary['baseline']:.4f} → {primary['tuned']:.4f}, delta " \
           f"{primary['delta']:+.4f}, {ci}, p={primary['p_value']:.2g}\n" in err
    assert "publish anyway with push.allow_regression=true" in err
    assert not (tmp_path / "pub").exists()


def test_allow_regression_publishes_and_the_card_says_so_in_its_first_lines(run_dir, tmp_path):
    assert push(run_dir, tmp_path / "pub", "push.allow_regression=true") == 0
    body = (tmp_path / "pub" / "README.md").read_text().split("---\n", 2)[2].lstrip("\n").splitlines()
    assert body[0] == "> **Warning: this model did not beat its base model.** It was published with " \
                      "`push.allow_regression=true`:"
    assert body[1].startswith("> - the primary metric incidents ndcg@10 did not improve significantly: ")


def test_a_run_never_evaluated_is_refused_unless_allowed(run_dir, tmp_path, capsys):
    shutil.rmtree(run_dir / "eval")
    assert push(run_dir, tmp_path / "pub") == 2
    err = capsys.readouterr().err
    assert f"  - the run was never evaluated (no {run_dir / 'eval' / 'report.json'})\nEvaluate it with " \
           f"'python -m evaluate {run_dir}', or publish anyway with push.allow_regression=true" in err
    assert push(run_dir, tmp_path / "pub", "push.allow_regression=true") == 0
    card = (tmp_path / "pub" / "README.md").read_text()
    assert "> **Warning: this model was never evaluated against its base model.**" in card
    assert "model-index" not in card


def test_a_significant_gain_is_published_without_a_warning(run_dir, tmp_path):
    edit_report(run_dir, "incidents", **GAIN)
    assert push(run_dir, tmp_path / "pub") == 0
    card = (tmp_path / "pub" / "README.md").read_text()
    assert "Warning" not in card and "general-sts" in card.split("### Forgetting check", 1)[1].split("###")[0]


def test_a_significant_loss_on_a_forgetting_set_is_refused(run_dir, tmp_path, capsys):
    edit_report(run_dir, "incidents", **GAIN)
    edit_report(run_dir, "general-sts", **LOSS)
    assert push(run_dir, tmp_path / "pub") == 2
    assert "  - the forgetting set general-sts lost significantly on spearman_cosine: 0.8000 → 0.6000, delta " \
           "-0.2000, 95% CI [-0.3000, -0.1000], p=0.0004\n" in capsys.readouterr().err


def test_a_significantly_worse_primary_metric_is_refused(run_dir, tmp_path, capsys):
    edit_report(run_dir, "incidents", **LOSS)
    assert push(run_dir, tmp_path / "pub") == 2
    assert "the primary metric incidents ndcg@10 got significantly worse: 0.8000 → 0.6000" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- units
def config_with(tmp_path, tiny_model_dir, datasets: list[dict], **push):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"}, push=push)
    raw["evaluate"]["datasets"] = datasets
    return validate(raw)


def report_of(run_dir: str, **sources: str) -> dict:
    metrics = {"spearman_cosine": dict(GAIN)}
    return {"run_dir": run_dir, "primary": {"dataset": "main", "metric": "spearman_cosine", **GAIN},
            "datasets": {name: {"task": "sts", "main_metric": "spearman_cosine", "source": source,
                                "metrics": metrics} for name, source in sources.items()}}


def test_forgetting_sets_are_those_with_their_own_source(tmp_path, tiny_model_dir):
    config = config_with(tmp_path, tiny_model_dir, [
        {"name": "main", "task": "sts"}, {"name": "stsb", "task": "sts", "source": {"path": "stsb.csv"}}])
    report = report_of("/runs/r", main="/runs/r/data/test.jsonl", stsb="/data/stsb.csv",
                       extra="/data/other.csv", again="/runs/r/data/dev.jsonl")
    # 'extra' and 'again' were evaluated with an override: their recorded source decides.
    assert forgetting_sets(config, report) == ["stsb", "extra"]


def test_a_set_marked_general_or_not_overrides_where_it_comes_from(tmp_path, tiny_model_dir):
    config = config_with(tmp_path, tiny_model_dir, [
        {"name": "main", "task": "sts"}, {"name": "dev-as-general", "task": "sts", "split": "dev", "general": True},
        {"name": "domain-file", "task": "sts", "source": {"path": "mine.csv"}, "general": False},
        {"name": "stsb", "task": "sts", "source": {"path": "stsb.csv"}}])
    report = report_of("/runs/r", main="/runs/r/data/test.jsonl", **{"dev-as-general": "/runs/r/data/dev.jsonl",
                       "domain-file": "/data/mine.csv"}, stsb="/data/stsb.csv")
    assert forgetting_sets(config, report) == ["dev-as-general", "stsb"]
    report["datasets"]["domain-file"]["metrics"] = {"spearman_cosine": {**GAIN, "delta": -0.2, "significant": True}}
    assert gate_findings(config, report) == []  # a loss on a domain set is not forgetting (the primary decides)


def test_the_gate_refuses_or_reports_and_allow_regression_lets_through(tmp_path, tiny_model_dir):
    config = config_with(tmp_path, tiny_model_dir, [{"name": "main", "task": "sts"}])
    report = report_of(str(tmp_path), main=str(tmp_path / "data" / "test.jsonl"))
    assert gate_findings(config, report) == [] and check_gate(config, report) == []
    report["primary"].update(undefined="tuned: not a finite number", significant=False, delta=None)
    with pytest.raises(UserError, match=r"the primary metric main spearman_cosine is undefined \(tuned: not a "
                                        r"finite number\): 0.5000 → 0.7000, delta —"):
        check_gate(config, report)
    allowed = config_with(tmp_path, tiny_model_dir, [{"name": "main", "task": "sts"}], allow_regression=True)
    assert check_gate(allowed, None) == [f"the run was never evaluated (no {tmp_path / 'run' / 'eval'}/report.json)"]


def set_bm25(run_dir: Path, **stats) -> None:
    """Give the primary set's BM25 row these paired statistics against the tuned model (delta = BM25 - tuned)."""
    path = run_dir / "eval" / "report.json"
    report = json.loads(path.read_text())
    row = report["datasets"]["incidents"]["reference"]["bm25"]
    row["metrics"]["ndcg@10"] = report["datasets"]["incidents"]["metrics"]["ndcg@10"]["tuned"] + stats["delta"]
    row["vs"]["ndcg@10"].update(stats)
    path.write_text(json.dumps(report))


def test_bm25_significantly_better_than_the_tuned_model_is_refused_unless_allowed(run_dir, tmp_path, capsys):
    edit_report(run_dir, "incidents", **GAIN)
    set_bm25(run_dir, delta=0.1, ci_low=0.05, ci_high=0.15, p_value=0.001, significant=True)
    assert push(run_dir, tmp_path / "pub") == 2
    err = capsys.readouterr().err
    assert "Not publishing: the tuned model lost to BM25.\n  - BM25 alone is significantly better than the tuned " \
           "model on incidents ndcg@10: 0.8000 against 0.7000, delta +0.1000, 95% CI [+0.0500, +0.1500], p=0.001\n" \
           in err
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    allowed = validate({**yaml.safe_load((run_dir / "config.resolved.yaml").read_text()),
                        "push": {"allow_regression": True, "local_dir": str(tmp_path / "pub")}})
    assert check_gate(allowed, report) == [err.split("  - ", 1)[1].split("\n", 1)[0]]  # the card's first lines


def test_bm25_better_but_not_significantly_does_not_stop_the_push(run_dir, tmp_path):
    edit_report(run_dir, "incidents", **GAIN)
    set_bm25(run_dir, delta=0.02, ci_low=-0.01, ci_high=0.05, p_value=0.3, significant=False)
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert gate_findings(validate(yaml.safe_load((run_dir / "config.resolved.yaml").read_text())), report) == []
