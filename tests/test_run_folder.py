"""One consistent run folder: a rerun never mixes two runs, crash leftovers go, divergence writes no final/,
best-checkpoint selection and its misfits, and every stage after training checks the run's record."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from configs.cli import run
from configs.errors import UserError
from conftest import tiny_config, write_config
from core.run_record import check_run_consistent


def _config(tmp_path: Path, model_dir: Path, pairs_csv: Path, dev: float = 0.2, **train) -> str:
    source = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp_path, model_dir, {"train": source, "test_fraction": 0.34, "dev_fraction": dev},
                      {"name": "mnrl"})
    raw["train"].update(train)
    return str(write_config(tmp_path, raw))


def _train(config: str, *overrides: str) -> int:
    from train.__main__ import main

    return run(lambda: main([config, *overrides]))


def test_a_rerun_moves_the_finished_run_aside_and_never_mixes_them(tmp_path, tiny_model_dir, pairs_csv):
    config = _config(tmp_path, tiny_model_dir, pairs_csv)
    run_dir = tmp_path / "run"
    assert _train(config) == 0
    first = json.loads((run_dir / "run.json").read_text())
    assert _train(config, "train.learning_rate=0.01") == 0
    second = json.loads((run_dir / "run.json").read_text())
    assert first["run_id"] != second["run_id"] and first["config_hash"] != second["config_hash"]
    (moved,) = (run_dir / "previous").iterdir()
    assert moved.name.startswith(first["run_id"])
    assert json.loads((moved / "run.json").read_text())["run_id"] == first["run_id"]
    assert (moved / "final").is_dir() and (moved / "data" / "meta.json").is_file()
    assert check_run_consistent(run_dir)["run_id"] == second["run_id"]
    assert not (run_dir / "checkpoints").exists()  # final/ holds the chosen weights; checkpoints are gone


def test_python_m_data_with_other_settings_moves_a_finished_run_aside(tmp_path, tiny_model_dir, pairs_csv):
    from data.__main__ import main as data_main

    config = _config(tmp_path, tiny_model_dir, pairs_csv)
    assert _train(config) == 0
    assert run(lambda: data_main([config])) == 0  # same settings: the finished run stays
    assert check_run_consistent(tmp_path / "run")
    assert run(lambda: data_main([config, "data.test_fraction=0.5"])) == 0
    assert not (tmp_path / "run" / "run.json").exists() and (tmp_path / "run" / "previous").is_dir()


def test_leftovers_of_a_crash_are_removed_at_the_next_start(tmp_path, tiny_model_dir, pairs_csv, caplog):
    config = _config(tmp_path, tiny_model_dir, pairs_csv)
    orphan = tmp_path / "run" / ".final.k3j2h1"
    orphan.mkdir(parents=True)
    (orphan / "model.safetensors").write_bytes(b"half")
    assert _train(config) == 0
    assert not orphan.exists()
    assert "left behind by an interrupted run" in caplog.text


def test_every_later_stage_refuses_a_folder_that_no_longer_describes_one_run(tmp_path, tiny_model_dir, pairs_csv):
    config = _config(tmp_path, tiny_model_dir, pairs_csv)
    run_dir = tmp_path / "run"
    assert _train(config) == 0
    pooling = run_dir / "final" / "1_Pooling" / "config.json"
    original = pooling.read_text()
    pooling.write_text(original.replace('"mean"', '"cls"'))
    with pytest.raises(UserError, match="final/ is not the model this run trained"):
        check_run_consistent(run_dir)
    pooling.write_text(original)
    shutil.copy(run_dir / "data" / "dev.jsonl", run_dir / "data" / "train.jsonl")
    meta = json.loads((run_dir / "data" / "meta.json").read_text())
    meta["sha256"]["train"] = "0" * 64
    (run_dir / "data" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="data/ was rewritten"):
        check_run_consistent(run_dir)


def test_divergence_stops_with_the_step_and_writes_no_final(tmp_path, tiny_model_dir, pairs_csv, capsys):
    config = _config(tmp_path, tiny_model_dir, pairs_csv, learning_rate=1e30, warmup_ratio=0, max_steps=4)
    assert _train(config) == 2
    err = capsys.readouterr().err
    assert "Training diverged at step" in err and "Lower train.learning_rate (now 1e+30" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "final").exists() and not (tmp_path / "run" / "run.json").exists()


def test_select_best_keeps_the_best_dev_checkpoint_and_records_it(tmp_path, tiny_model_dir, pairs_csv):
    config = _config(tmp_path, tiny_model_dir, pairs_csv, select_best=True, eval_steps=1, max_steps=4,
                     learning_rate=5e-3)
    assert _train(config) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    scores = {e["step"]: e["eval_dev_ndcg@10"] for e in record["dev_history"] if "eval_dev_ndcg@10" in e}
    assert sorted(scores) == [0, 1, 2, 3, 4]  # step 0: the base model's dev score (eval_on_start)
    del scores[0]  # no checkpoint exists at step 0: the best is chosen among the saved steps
    best = record["best_checkpoint"]
    assert best["metric"] == "eval_dev_ndcg@10" and best["dev_score"] == max(scores.values())
    assert scores[best["step"]] == best["dev_score"]


def test_early_stopping_stops_a_run_that_stopped_improving(tmp_path, tiny_model_dir, pairs_csv):
    config = _config(tmp_path, tiny_model_dir, pairs_csv, eval_steps=1, max_steps=30, learning_rate=1e-9,
                     early_stopping_patience=2)
    assert _train(config) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["train"]["steps"] < 30  # a learning rate of 1e-9 never improves the dev score


@pytest.mark.parametrize("overrides,message", [
    (["train.select_best=true"], "no dev split. Set data.dev_fraction"),
    (["train.early_stopping_patience=2"], "no dev split. Set data.dev_fraction"),
    (["train.prompts={anchr: 'query: '}"], "train.prompts names column 'anchr'.*Did you mean 'anchor'"),
    (["run_dir=/proc/version/run"], "run_dir /proc/version/run cannot be written"),
    (["model.max_seq_length=300"], "model.max_seq_length 300 is longer than .* at most 128 tokens"),
    (["evaluate.datasets=[{name: general, task: sts, source: {path: missing/stsb.csv}}]"],
     "missing/stsb.csv does not exist"),
])
def test_misfits_fail_before_any_training(tmp_path, tiny_model_dir, pairs_csv, capsys, overrides, message):
    import re

    dev = 0 if "select_best" in overrides[0] or "early" in overrides[0] else 0.2
    config = _config(tmp_path, tiny_model_dir, pairs_csv, dev=dev)
    assert _train(config, *overrides) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "run" / "final").exists()


def test_the_run_folder_is_readable_by_others(tmp_path, tiny_model_dir, pairs_csv):
    import os
    import stat

    old = os.umask(0o022)
    try:
        assert _train(_config(tmp_path, tiny_model_dir, pairs_csv)) == 0
    finally:
        os.umask(old)
    run_dir = tmp_path / "run"
    for path in [run_dir / "final", run_dir / "data", *(run_dir / "final").rglob("*"), run_dir / "run.json",
                 run_dir / "data" / "train.jsonl", run_dir / "config.resolved.yaml"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_progress_in_a_log_file_is_lines_not_bars(tmp_path, tiny_model_dir, pairs_csv):
    import os
    import subprocess
    import sys

    from conftest import REPO

    config = _config(tmp_path, tiny_model_dir, pairs_csv, logging_steps=1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TQDM_DISABLE", None)
    for stage in ("train", "evaluate"):
        done = subprocess.run([sys.executable, "-m", stage, config], cwd=REPO, capture_output=True, text=True,
                              timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        assert "\r" not in done.stderr + done.stdout and "it/s]" not in done.stderr, stage
    done = subprocess.run([sys.executable, "-m", "train", config, "train.learning_rate=0.01"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)
    assert re.search(r"step \d+/\d+ \(\d+%\): loss \d", done.stderr), done.stderr  # one readable line per log


def test_an_abort_with_ctrl_c_ends_without_a_traceback(capsys):
    def aborted() -> int:
        raise KeyboardInterrupt

    assert run(aborted) == 130
    assert "interrupted" in capsys.readouterr().err
