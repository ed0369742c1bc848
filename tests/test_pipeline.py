"""End to end through the four CLIs on the tiny model: data → train → evaluate → push (local folder and Hub)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from configs.cli import run
from conftest import REPO, tiny_config, write_config
from fake_hub import FakeHub


@pytest.fixture
def trained_run(tmp_path, tiny_model_dir, pairs_csv, scored_csv):
    """A run folder after `python -m data`, `python -m train` and `python -m evaluate` on the tiny model."""
    from data.__main__ import main as data_main
    from evaluate.__main__ import main as evaluate_main
    from train.__main__ import main as train_main

    source = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": 0.2},
                      {"name": "mnrl"})
    raw["evaluate"]["datasets"] = [
        {"name": "incidents", "task": "retrieval", "split": "test"},
        {"name": "general-sts", "task": "sts", "source": {"path": str(scored_csv), "score_range": [0, 5]}},
    ]
    config = str(write_config(tmp_path, raw))
    for main in (data_main, train_main, evaluate_main):
        assert run(lambda main=main: main([config])) == 0
    return tmp_path / "run", config


def test_run_folder_is_complete_and_reproducible(trained_run):
    run_dir, _ = trained_run
    for name in ("config.resolved.yaml", "versions.json", "run.json", "data/train.jsonl", "data/test.jsonl",
                 "data/dev.jsonl", "data/stats.json", "data/stats.md", "final/model.safetensors",
                 "eval/report.json", "eval/report.md", "eval/report.html", "eval/details.json"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["seed"] == 7 and len(info["weights_sha256"]) == 64
    assert set(info["data_sha256"]) == {"train", "dev", "test"}
    assert info["train"]["steps"] == 2
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert resolved["train"]["max_steps"] == 2
    assert resolved["loss"] == {"name": "mnrl", "scale": 20.0, "matryoshka_dims": None}
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_held_out_topics_never_reach_training(trained_run):
    run_dir, _ = trained_run
    rows = {s: [json.loads(x) for x in (run_dir / "data" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "dev", "test")}
    topics = {s: {r["group"] for r in rs} for s, rs in rows.items()}
    assert not topics["train"] & topics["test"] and not topics["train"] & topics["dev"]


def test_report_pairs_baseline_and_tuned_on_every_dataset(trained_run):
    run_dir, _ = trained_run
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert list(report["datasets"]) == ["incidents", "general-sts"]
    assert set(report["datasets"]["incidents"]["metrics"]) == {"ndcg@10", "mrr@10", "map@100", "recall@1",
                                                               "recall@10", "recall@100"}
    for info in report["datasets"].values():
        for values in info["metrics"].values():
            assert values["delta"] == pytest.approx(values["tuned"] - values["baseline"])
            assert values["ci_low"] <= values["ci_high"] and values["significant"] in (True, False)
    assert report["primary"]["dataset"] == "incidents" and report["primary"]["metric"] == "ndcg@10"
    assert "| incidents | retrieval | **ndcg@10** |" in (run_dir / "eval" / "report.md").read_text()


def test_push_to_a_local_folder_gives_a_loadable_model_with_its_card(trained_run, tmp_path):
    from sentence_transformers import SentenceTransformer

    from train.push.publish import main as push_main

    run_dir, _ = trained_run
    target = tmp_path / "published"
    assert run(lambda: push_main([str(run_dir), f"push.local_dir={target}", "push.allow_regression=true"])) == 0
    card = (target / "README.md").read_text()
    assert "Base model:" in card and "loss:MultipleNegativesRankingLoss" in card
    assert "| incidents | retrieval | **ndcg@10** |" in card
    assert (target / "eval_report.json").is_file() and (target / "embtune_config.yaml").is_file()
    assert (target / "eval_report.html").is_file()
    assert SentenceTransformer(str(target)).encode(["disk full"]).shape == (1, 32)


def test_push_to_the_hub_sends_the_token_but_never_writes_or_prints_it(trained_run, tmp_path):
    run_dir, _ = trained_run
    token = "hf_secretTOKEN1234567890"
    with FakeHub() as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": token, "HF_HUB_OFFLINE": "0",
               "HF_HOME": str(tmp_path / "hf_home")}
        done = subprocess.run(
            [sys.executable, "-m", "train.push", str(run_dir), "push.repo_id=acme/tiny-incidents", "push.revision=v1",
             "push.private=true", "push.allow_regression=true"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    assert hub.repos["acme/tiny-incidents"]["private"] is True
    files = hub.files[("acme/tiny-incidents", "v1")]
    assert {"README.md", "model.safetensors", "eval_report.json", "embtune_config.yaml"} <= set(files)
    assert all(token.encode() not in content for content in files.values())
    assert set(hub.auth_headers) == {f"Bearer {token}"}


def test_push_without_a_token_says_how_to_provide_one(trained_run, tmp_path, monkeypatch, capsys):
    from train.push.publish import main as push_main

    run_dir, _ = trained_run
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "empty_home" / "token"))
    assert run(lambda: push_main([str(run_dir), "push.repo_id=acme/x"])) == 2
    assert "set HF_TOKEN" in capsys.readouterr().err


def test_evaluate_before_training_says_to_train_first(tmp_path, tiny_model_dir, pairs_csv, capsys):
    from evaluate.__main__ import main as evaluate_main

    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": str(pairs_csv), "columns": {
        "anchor": "jargon", "positive": "plain"}}}, {"name": "mnrl"})
    assert run(lambda: evaluate_main([str(write_config(tmp_path, raw))])) == 2
    assert "Run 'python -m train" in capsys.readouterr().err


def test_torchrun_with_two_processes_trains_two_real_ranks_on_cpu(tmp_path, tiny_model_dir, pairs_csv):
    """On CPU, ranks only form when the trainer is told it runs on CPU: each rank then sees half the batches."""
    source = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": 0},
                      {"name": "mnrl"})
    config = write_config(tmp_path, raw)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "train", str(config)]
    done = subprocess.run(torchrun, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    rows, steps = info["train"]["rows"], info["train"]["steps"]
    single_process_epochs = steps / -(-rows // raw["train"]["batch_size"])
    # Two ranks share each epoch, so the same number of steps covers more of it (at least 1.5x with drop_last).
    assert info["train"]["epoch"] >= 1.5 * single_process_epochs


def test_compare_ranks_runs_on_the_same_data_and_refuses_different_data(trained_run, tmp_path, capsys):
    import shutil

    from evaluate.__main__ import main as evaluate_main

    run_dir, _ = trained_run
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    assert run(lambda: evaluate_main(["compare", str(run_dir), str(twin)])) == 0
    board = capsys.readouterr().out
    assert "| run | incidents ndcg@10 | general-sts spearman_cosine |" in board and "| baseline (" in board
    report = json.loads((twin / "eval" / "report.json").read_text())
    report["datasets"]["incidents"]["fingerprint"] = "0" * 64
    (twin / "eval" / "report.json").write_text(json.dumps(report))
    assert run(lambda: evaluate_main(["compare", str(run_dir), str(twin)])) == 2
    assert "evaluated on different data" in capsys.readouterr().err


def test_evaluation_data_shared_with_training_is_reported_as_leakage_first(trained_run, tmp_path, caplog):
    from evaluate.__main__ import main as evaluate_main

    run_dir, _ = trained_run
    train_rows = (run_dir / "data" / "train.jsonl").read_text().splitlines()
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text("\n".join(train_rows[:3]) + "\n")
    override = ("evaluate.datasets=[{name: leaky, task: retrieval, source: {path: " + str(leaked) + "}}]")
    caplog.clear()
    assert run(lambda: evaluate_main([str(run_dir), override])) == 0
    assert "LEAKAGE: leaky shares 3 of its 3 texts with the training split" in caplog.text
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert report["leakage"]["leaky"]["shared"] == 3
    md = (run_dir / "eval" / "report.md").read_text()
    assert md.index("LEAKAGE") < md.index("| dataset |")


def test_a_moved_run_folder_is_evaluated_and_pushed_where_it_now_is(trained_run, tmp_path):
    import shutil

    from train.push.publish import main as push_main

    run_dir, _ = trained_run
    moved = tmp_path / "elsewhere" / "moved-run"
    shutil.move(str(run_dir), moved)
    assert run(lambda: push_main([str(moved), f"push.local_dir={tmp_path / 'pub'}",
                                  "push.allow_regression=true"])) == 0
    assert (tmp_path / "pub" / "model.safetensors").is_file()


def test_push_refuses_to_replace_a_folder_that_is_not_an_earlier_publish(trained_run, tmp_path, capsys):
    from train.push.publish import main as push_main

    run_dir, _ = trained_run
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    assert run(lambda: push_main([str(run_dir), f"push.local_dir={precious}", "push.allow_regression=true"])) == 2
    assert "is not an earlier embtune publish" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "do not delete"
