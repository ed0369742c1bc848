"""What push refuses, and what a publish looks like: weights, fingerprints, the evaluation's identity, the user's own
files, permissions, a Hub that is down. One real tiny run (data → train → evaluate) is shared; each test copies it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pytest

from configs.cli import run
from configs.load import validate
from configs.runs import sha256_file
from conftest import INCIDENT_ROWS, tiny_config, write_config, write_csv
from core.model import model_fingerprint
from fake_hub import FakeHub
from train.push.card import model_card

DEAD_ENDPOINT = "http://127.0.0.1:9"  # a closed local port: the Hub is "down"


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory, tiny_model_dir) -> Path:
    """A run folder after `python -m train` and `python -m evaluate` on the tiny model (built once per module)."""
    from evaluate.__main__ import main as evaluate_main
    from train.__main__ import main as train_main

    root = tmp_path_factory.mktemp("push_run")
    pairs = write_csv(root / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(root, tiny_model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": 0.2},
                      {"name": "mnrl"})
    raw["evaluate"]["datasets"] = [{"name": "incidents", "task": "retrieval", "split": "test"}]
    config = str(write_config(root, raw))
    for main in (train_main, evaluate_main):
        assert run(lambda main=main: main([config])) == 0
    run_id = json.loads((root / "run" / "run.json").read_text())["run_id"]
    report = json.loads((root / "run" / "eval" / "report.json").read_text())
    assert report.get("run_id") == run_id, "python -m evaluate must copy run.json's run_id into report.json"
    # A significant gain, so the gate lets it through: these tests are about the other checks (see test_gate.py).
    report["primary"].update(delta=0.2, ci_low=0.1, ci_high=0.3, p_value=0.001, significant=True, improved=True)
    (root / "run" / "eval" / "report.json").write_text(json.dumps(report))
    return root / "run"


@pytest.fixture
def run_dir(trained_once, tmp_path) -> Path:
    """A private copy of the trained run, free to damage."""
    return Path(shutil.copytree(trained_once, tmp_path / "run"))


def push(run_dir: Path, *overrides: str) -> int:
    from train.push.publish import main as push_main

    return run(lambda: push_main([str(run_dir), *overrides]))


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------------------------------- a good publish
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_a_publish_has_a_manifest_provenance_and_the_users_normal_permissions(run_dir, tmp_path, umask):
    target = tmp_path / "pub"
    old = os.umask(umask)
    try:
        assert push(run_dir, f"push.local_dir={target}") == 0
    finally:
        os.umask(old)
    manifest = json.loads((target / "embtune_manifest.json").read_text())["files"]
    on_disk = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert sorted(manifest) == [f for f in on_disk if f != "embtune_manifest.json"]
    assert all(manifest[f] == sha256_file(target / f) for f in manifest)
    for path in [target, *target.rglob("*")]:
        expected = (0o755 if path.is_dir() else 0o644) & ~umask
        assert path.stat().st_mode & 0o777 == expected, path
    card = (target / "README.md").read_text()
    info = json.loads((run_dir / "run.json").read_text())
    assert model_fingerprint(run_dir / "final") in card and info["base_fingerprint"] in card
    assert info["weights_sha256"] in card and info["run_id"] in card
    # A reader can check the published folder against its card: the files a publish adds do not count.
    assert model_fingerprint(target) == model_fingerprint(run_dir / "final")


# ------------------------------------------------------------------------------------------- what it refuses
def test_a_final_folder_without_weights_is_refused(run_dir, tmp_path, capsys):
    (run_dir / "final" / "model.safetensors").unlink()
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}") == 2
    assert "final holds no weights" in capsys.readouterr().err
    assert not (tmp_path / "pub").exists()


def test_a_final_folder_changed_after_training_is_refused(run_dir, tmp_path, capsys):
    pooling = run_dir / "final" / "1_Pooling" / "config.json"
    edit_json(pooling, pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}") == 2
    assert "was changed after training" in capsys.readouterr().err
    assert not (tmp_path / "pub").exists()


@pytest.mark.parametrize("change", [
    {"tuned_fingerprint": "0" * 64},  # the evaluated model is another one
    {"run_id": "20240101-000000-abcdef"},  # the same weights file name, another run
    {"tuned_fingerprint": None, "run_id": None},  # a report from before the keys existed
])
def test_an_evaluation_of_another_model_is_never_published(run_dir, tmp_path, capsys, change):
    edit_json(run_dir / "eval" / "report.json", **change)
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}") == 2
    err = capsys.readouterr().err
    assert f"The evaluation in {run_dir / 'eval'} is of another model" in err
    assert f"run 'python -m evaluate {run_dir}' again before pushing" in err
    assert not (tmp_path / "pub").exists()


def test_a_local_dir_that_is_a_file_is_refused(run_dir, tmp_path, capsys):
    (tmp_path / "pub").write_text("notes")
    assert push(run_dir, f"push.local_dir={tmp_path / 'pub'}") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "pub").read_text() == "notes"


def test_files_added_to_an_earlier_publish_are_never_deleted(run_dir, tmp_path, capsys):
    target = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={target}") == 0
    (target / "notes.txt").write_text("my own notes")
    (target / "README.md").write_text("my own card")
    assert push(run_dir, f"push.local_dir={target}") == 2
    err = capsys.readouterr().err
    assert "holding files it did not write" in err and "notes.txt (added)" in err and "README.md (edited)" in err
    assert (target / "notes.txt").read_text() == "my own notes" and (target / "README.md").read_text() == "my own card"
    (target / "notes.txt").unlink()
    (target / "README.md").unlink()
    assert push(run_dir, f"push.local_dir={target}") == 0  # its own files only: replaced
    assert "my own" not in (target / "README.md").read_text()


def test_an_earlier_publish_without_a_manifest_owns_only_what_a_publish_writes(run_dir, tmp_path, capsys):
    target = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={target}") == 0
    (target / "embtune_manifest.json").unlink()  # as published before manifests existed
    (target / "notes.txt").write_text("my own notes")
    assert push(run_dir, f"push.local_dir={target}") == 2
    assert "notes.txt (added)" in capsys.readouterr().err
    (target / "notes.txt").unlink()
    assert push(run_dir, f"push.local_dir={target}") == 0
    assert (target / "embtune_manifest.json").is_file()


def test_hub_down_keeps_the_local_publish_and_the_retry_command_works(run_dir, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", "hf_test_0123456789abcdef")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", DEAD_ENDPOINT)
    target = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={target}", "push.repo_id=acme/tiny", "push.revision=v1") == 2
    err = capsys.readouterr().err
    assert f"The local publish in {target} is complete. The Hub part failed" in err
    retry = f"python -m train.push {run_dir} push.local_dir=null push.repo_id=acme/tiny push.private=true " \
            "push.revision=v1"
    assert retry in err
    assert (target / "model.safetensors").is_file() and (target / "embtune_manifest.json").is_file()
    with FakeHub() as hub:  # the Hub is back: the suggested command pushes only the Hub part
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        args = shlex.split(retry)[3:]
        assert push(Path(args[0]), *args[1:]) == 0
    assert {"model.safetensors", "README.md", "embtune_manifest.json"} <= set(hub.files[("acme/tiny", "v1")])


# ------------------------------------------------------------------------------------------- the card
def test_the_card_shows_user_text_as_text(tmp_path, tiny_model_dir):
    evil = "<img src=x onerror=alert(1)>|`x`"
    source = {"path": str(tmp_path / "<script>.csv"), "columns": {"anchor": "a", "positive": "b"}}
    config = validate(tiny_config(tmp_path, tiny_model_dir, {"train": source}, {"name": "mnrl"}))
    metrics = {"ndcg@10": {"baseline": 0.5, "tuned": 0.6, "delta": 0.1}}
    report = {"primary": {"dataset": evil, "metric": "ndcg@10", "baseline": 0.5, "tuned": 0.6, "delta": 0.1,
                          "improved": True},
              "datasets": {evil: {"task": "retrieval", "main_metric": "ndcg@10", "metrics": metrics}}}
    run_info = {"base_model": "<b>base</b>", "model_revision": None, "weights_sha256": "a" * 64,
                "base_fingerprint": "b" * 64, "run_id": "r1", "data_sha256": {"train": "c" * 64},
                "versions": {"torch": "2"}, "train": {"rows": 3}}
    card = model_card(config, run_info, report, fingerprint="d" * 64)
    body = card.split("---", 2)[2]
    assert "<img" not in card and "<script>" not in body and "<b>" not in body
    assert "| &lt;img src=x onerror=alert(1)&gt;\\|\\`x\\` | retrieval |" in card
    assert "&lt;script&gt;.csv" in card and "a" * 64 in card and "b" * 64 in card and "d" * 64 in card
    assert "embtune run: r1" in card


def test_the_card_names_the_recipe_mined_negatives_prompts_and_the_best_checkpoint(tmp_path, tiny_model_dir):
    source = {"path": "pairs.csv", "columns": {"anchor": "a", "positive": "b"}}
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": source, "hard_negatives": {"num_negatives": 2}},
                      {"name": "cached_mnrl"})
    raw["train"].update(prompts={"anchor": "query: "}, select_best=True, eval_steps=2)
    config = validate(raw)
    run_info = {"base_model": "base", "model_revision": None, "weights_sha256": "a" * 64, "data_sha256": {},
                "versions": {}, "train": {"rows": 3, "steps": 8}, "prompts": {"anchor": "query: "},
                "best_checkpoint": {"step": 6, "metric": "eval_dev_ndcg@10", "dev_score": 0.71234}}
    report = {"primary": {"dataset": "t", "metric": "ndcg@10", "baseline": None, "tuned": 0.6, "delta": None,
                          "improved": False},
              "datasets": {}}
    card = model_card(config, run_info, report)
    assert "Best dev checkpoint: step 6 of 8, eval\\_dev\\_ndcg@10 = 0.7123" in card
    assert "num\\_negatives" in card and "query: " in card
    assert card.startswith("---\n")  # an undefined baseline (null delta) does not crash the card
