"""Publishing a chosen merge ratio (``push.merge_ratio``): the interpolation's own numbers decide the gate and fill
the card, its weights are the interpolation ``python -m evaluate merge`` measured, and a ratio that was never measured
(or measured for another model) is refused before anything is written. Also the card's account of how the model was
made: custom code, a LoRA adapter, the trainable share."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from configs.cli import run
from configs.load import validate
from conftest import tiny_config, trained_incidents_run
from core.model import model_fingerprint
from evaluate.interpolate import MERGE_RECORD, interpolated_state
from train.push.card import model_card


@pytest.fixture(scope="module")
def merged_once(tmp_path_factory, tiny_model_dir) -> Path:
    """A tiny run: trained, evaluated, and merged at 0, 0.5 and 1."""
    from evaluate.__main__ import main as evaluate_main
    from evaluate.interpolate import main as merge_main

    tmp = tmp_path_factory.mktemp("push_merge")
    run_dir = trained_incidents_run(tmp, tiny_model_dir, cache_dir=str(tmp / "cache"))
    assert run(lambda: evaluate_main([str(run_dir)])) == 0
    assert run(lambda: merge_main([str(run_dir), "evaluate.merge_ratios=[0, 0.5, 1]"])) == 0
    return run_dir


@pytest.fixture
def run_dir(merged_once, tmp_path) -> Path:
    return Path(shutil.copytree(merged_once, tmp_path / "run"))


def push(run_dir: Path, *overrides: str) -> int:
    from train.push.publish import main as push_main

    return run(lambda: push_main([str(run_dir), *overrides]))


def set_primary(path: Path, ratio: float | None, gain: bool) -> None:
    """Make the primary metric (incidents nDCG@10) a significant gain or no gain: in report.json (ratio None, the
    tuned model) or in merge.json's row for ``ratio``."""
    values = {"delta": 0.2, "ci_low": 0.1, "ci_high": 0.3, "p_value": 0.001, "significant": True} if gain else \
        {"delta": 0.01, "ci_low": -0.05, "ci_high": 0.07, "p_value": 0.6, "significant": False}
    data = json.loads(path.read_text())
    datasets = data["datasets"] if ratio is None else next(
        row["datasets"] for row in data["ratios"] if row["ratio"] == ratio)
    datasets["incidents"]["metrics"]["ndcg@10"].update(values)
    if ratio is None:
        data["primary"].update(values, improved=gain)
    path.write_text(json.dumps(data))


def test_the_published_model_is_the_measured_interpolation_with_its_own_numbers(run_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    eval_dir = run_dir / "eval"
    set_primary(eval_dir / "report.json", None, gain=False)  # the tuned model alone would be refused ...
    set_primary(eval_dir / "merge.json", 0.5, gain=True)  # ... the interpolation at 0.5 passes the gate
    out = tmp_path / "pub"
    assert push(run_dir, "push.merge_ratio=0.5", f"push.local_dir={out}") == 0

    base = SentenceTransformer(str(json.loads((run_dir / "run.json").read_text())["base_model"]), device="cpu")
    tuned = SentenceTransformer(str(run_dir / "final"), device="cpu")
    expected = interpolated_state(base.state_dict(), tuned.state_dict(), 0.5)
    loaded = SentenceTransformer(str(out), device="cpu").state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert json.loads((out / MERGE_RECORD).read_text())["ratio"] == 0.5

    row = next(r for r in json.loads((eval_dir / "merge.json").read_text())["ratios"] if r["ratio"] == 0.5)
    merged = row["datasets"]["incidents"]["metrics"]["ndcg@10"]
    card = (out / "README.md").read_text()
    assert "## Merged with its base" in card and "**r = 0.5**" in card
    assert "**The merged model (r = 0.5) is better than the baseline**" in card
    assert f"{merged['baseline']:.4f} → {merged['tuned']:.4f} (Δ +0.2000" in card
    assert "with its base at r = 0.5, and every number here is of that interpolation." in card.split("\n\n", 3)[2]
    assert f"This model's fingerprint: `{model_fingerprint(out)}`" in card
    assert f"before merging: `{model_fingerprint(run_dir / 'final')}`" in card
    assert model_fingerprint(out) != model_fingerprint(run_dir / "final")
    published = json.loads((out / "eval_report.json").read_text())
    assert published["merge"]["ratio"] == 0.5 and published["primary"]["tuned"] == merged["tuned"]
    assert "truncated" not in published and (out / "eval_merge.md").is_file() and (out / "eval_merge.svg").is_file()
    manifest = json.loads((out / "embtune_manifest.json").read_text())["files"]
    assert {MERGE_RECORD, "eval_merge.json", "model.safetensors"} <= set(manifest)


def test_the_gate_reads_the_interpolations_numbers_not_the_tuned_models(run_dir, tmp_path, capsys):
    set_primary(run_dir / "eval" / "report.json", None, gain=True)  # the tuned model would pass ...
    set_primary(run_dir / "eval" / "merge.json", 0.5, gain=False)  # ... the interpolation at 0.5 does not
    out = tmp_path / "pub"
    assert push(run_dir, "push.merge_ratio=0.5", f"push.local_dir={out}") == 2
    err = capsys.readouterr().err
    assert "Not publishing: the tuned model did not beat its base." in err
    assert "did not improve significantly" in err and "delta +0.0100" in err and "p=0.6" in err
    assert not out.exists()
    assert push(run_dir, f"push.local_dir={out}") == 0  # unmerged, the tuned model's own numbers pass


def test_a_ratio_never_evaluated_is_refused_before_anything_is_written(run_dir, tmp_path, capsys):
    out = tmp_path / "pub"
    assert push(run_dir, "push.merge_ratio=0.3", f"push.local_dir={out}") == 2
    err = capsys.readouterr().err
    assert "merge ratio 0.3 was never evaluated" in err and "python -m evaluate merge" in err
    assert not out.exists()


def test_a_frontier_of_another_final_or_base_is_refused(run_dir, tmp_path, capsys):
    path, out = run_dir / "eval" / "merge.json", tmp_path / "pub"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "base_fingerprint": "0" * 64}))
    assert push(run_dir, "push.merge_ratio=0.5", f"push.local_dir={out}", "push.allow_regression=true") == 2
    assert "interpolated another base model than the one this run trained from" in capsys.readouterr().err
    path.write_text(json.dumps({**record, "tuned_fingerprint": "0" * 64}))
    assert push(run_dir, "push.merge_ratio=0.5", f"push.local_dir={out}", "push.allow_regression=true") == 2
    assert "evaluated another final/ than the one in" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("ratio", ["0", "1", "1.5"])
def test_a_ratio_that_is_not_an_interpolation_is_refused(run_dir, tmp_path, capsys, ratio):
    assert push(run_dir, f"push.merge_ratio={ratio}", f"push.local_dir={tmp_path / 'pub'}") == 2
    assert "push.merge_ratio" in capsys.readouterr().err


def test_the_retry_command_keeps_the_merge_keys(tmp_path, tiny_model_dir):
    from train.push.publish import hub_retry_command

    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "p.csv"}}, {"name": "mnrl"})
    raw["push"] = {"local_dir": "pub", "repo_id": "me/m", "merge_ratio": 0.25, "merge_adapter": True}
    command = hub_retry_command(validate(raw))
    assert "push.merge_ratio=0.25" in command and "push.merge_adapter=true" in command


def test_the_card_says_how_the_model_was_made_and_how_to_load_it(tmp_path, tiny_model_dir):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "p.csv"}}, {"name": "mnrl"})
    run_info = {"base_model": "base", "model_revision": None, "weights_sha256": "a" * 64, "data_sha256": {},
                "versions": {}, "train": {"rows": 3, "steps": 8}, "trust_remote_code": True,
                "adapter": {"kind": "lora", "r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "value"]},
                "parameters": {"trainable": 73728, "total": 22786944}}
    card = model_card(validate(raw), run_info, None)
    assert "Custom model code" in card and "trust\\_remote\\_code=True" not in card.split("```python")[1]
    assert "SentenceTransformer('PATH_TO_THIS_FOLDER', trust_remote_code=True)" in card
    assert "LoRA adapter (peft): r=8, alpha=16, dropout=0.1, target\\_modules=\\['query', 'value'\\]" in card
    assert "published as the adapter alone" in card and "pip install -U sentence-transformers peft" in card
    assert "Trainable parameters: 73,728 of 22,786,944 (0.324%)" in card
    raw["push"] = {"merge_adapter": True}
    merged = model_card(validate(raw), run_info, None)
    assert "merged into the base weights" in merged and "pip install -U sentence-transformers`" in merged
    plain = model_card(validate(raw), {**run_info, "trust_remote_code": False, "adapter": None}, None)
    assert "trust_remote_code" not in plain and "LoRA" not in plain
    full = model_card(validate(raw), {**run_info, "parameters": {"trainable": 22713216, "total": 22713216}}, None)
    assert "Trainable parameters: 22,713,216 of 22,713,216 (100%)" in full
