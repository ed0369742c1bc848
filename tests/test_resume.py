"""Runs that survive: SIGKILL at any point (mid-step, mid-checkpoint-write), resume, and the final model equals an
uninterrupted run's; Ctrl-C saves and says how to resume; a changed config or a live lock refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from configs.cli import run
from conftest import REPO, tiny_config, write_config

TEXTS = ["disk full on server", "my mail is not arriving", "printer paper jam", "the website address does not open"]

# A wrapper that runs `python -m train` with one fault planted: SIGKILL after N training steps, or in the middle of
# the Nth checkpoint write (after the model files, before optimizer/scheduler/RNG state are written).
KILLER = """
import os, signal, sys
import transformers
mode, n = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}
def count_then_kill(original):
    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if mode == "step" and calls["n"] > n:
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(*args, **kwargs)
        return out
    return wrapped
def kill_in_save(original):
    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return wrapped
if mode == "step":
    transformers.Trainer.training_step = count_then_kill(transformers.Trainer.training_step)
else:
    Trainer = transformers.Trainer
    Trainer._save_optimizer_and_scheduler = kill_in_save(Trainer._save_optimizer_and_scheduler)
from configs.cli import run
from train.__main__ import main
sys.exit(run(lambda: main(sys.argv[3:])))
"""


def _config(tmp_path: Path, model_dir: Path, pairs_csv: Path, name: str, **train) -> Path:
    data = {"train": {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"},
                      "group_column": "topic"}, "dev_fraction": 0}
    raw = tiny_config(tmp_path, model_dir, data, {"name": "mnrl"})
    raw["run_dir"] = str(tmp_path / name)
    raw["train"].update({"max_steps": 6, "batch_size": 4, "save_steps": 1, "save_total_limit": 2,
                         "learning_rate": 5e-3, **train})
    folder = tmp_path / f"cfg-{name}"
    folder.mkdir()
    return write_config(folder, raw)


def _train(config: Path, *wrapper: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", KILLER, *wrapper] if wrapper else [sys.executable, "-m", "train"]
    return subprocess.run([*command, str(config)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def _final_vectors(run_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(run_dir / "final"), device="cpu").encode(TEXTS, convert_to_numpy=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dir):
    from conftest import INCIDENT_ROWS, write_csv

    tmp = tmp_path_factory.mktemp("resume")
    pairs = write_csv(tmp / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    config = _config(tmp, tiny_model_dir, pairs, "straight")
    done = _train(config)
    assert done.returncode == 0, done.stderr
    return tmp, pairs, _final_vectors(tmp / "straight")


@pytest.mark.parametrize("mode,n", [("step", 3), ("save", 4)], ids=["killed-after-step-3", "killed-writing-ckpt-4"])
def test_killed_run_resumes_to_the_same_model_as_an_uninterrupted_one(uninterrupted, tiny_model_dir, mode, n):
    tmp, pairs, expected = uninterrupted
    config = _config(tmp, tiny_model_dir, pairs, f"killed-{mode}-{n}")
    run_dir = tmp / f"killed-{mode}-{n}"
    killed = _train(config, mode, str(n))
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "final").exists() and not (run_dir / "run.json").exists()
    if mode == "save":  # the half-written checkpoint is there, holding the model but not the optimizer state
        half = run_dir / "checkpoints" / f"checkpoint-{n}"
        assert (half / "model.safetensors").is_file() and not (half / "embtune_checkpoint.json").exists()
    resumed = _train(config)
    assert resumed.returncode == 0, resumed.stderr
    resumed_from = resumed.stderr.split("resuming from")[1].split("\n")[0]
    assert f"checkpoint-{n if mode == 'step' else n - 1} " in resumed_from  # the newest *complete* checkpoint
    record = json.loads((run_dir / "run.json").read_text())
    assert record["train"]["steps"] == 6
    np.testing.assert_allclose(_final_vectors(run_dir), expected, atol=1e-6, rtol=0)
    # run.json's train_loss is the whole run's, not only the steps after the resume (the checkpoint's log history
    # holds the earlier ones): close to the uninterrupted run's, not equal (floating point).
    straight = json.loads((tmp / "straight" / "run.json").read_text())["train"]
    assert record["train"]["resumed_at_step"] == (n if mode == "step" else n - 1)
    assert record["train"]["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-4)


def test_resume_with_changed_training_settings_is_refused_with_the_keys(uninterrupted, tiny_model_dir, capsys):
    tmp, pairs, _ = uninterrupted
    config = _config(tmp, tiny_model_dir, pairs, "changed")
    assert _train(config, "step", "2").returncode == -signal.SIGKILL
    from train.__main__ import main

    code = run(lambda: main([str(config), "train.learning_rate=0.01", "train.logging_steps=3"]))
    err = capsys.readouterr().err
    assert code == 2
    assert "train.learning_rate: 0.005 -> 0.01" in err and "logging_steps" not in err
    assert "run_dir=" in err


def test_resume_never_refuses_to_start_over_checkpoints(uninterrupted, tiny_model_dir, capsys):
    tmp, pairs, _ = uninterrupted
    config = _config(tmp, tiny_model_dir, pairs, "never")
    assert _train(config, "step", "2").returncode == -signal.SIGKILL
    from train.__main__ import main

    assert run(lambda: main([str(config), "train.resume=never"])) == 2
    assert "train.resume=auto" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(uninterrupted, tiny_model_dir):
    tmp, pairs, expected = uninterrupted
    config = _config(tmp, tiny_model_dir, pairs, "ctrlc", save_steps=100)  # no periodic checkpoint would exist
    run_dir = tmp / "ctrlc"
    slow = "import time, transformers\n" \
           "orig = transformers.Trainer.training_step\n" \
           "def step(*a, **k):\n    time.sleep(1.0)\n    return orig(*a, **k)\n" \
           "transformers.Trainer.training_step = step\n" \
           "import sys\nfrom configs.cli import run\nfrom train.__main__ import main\n" \
           "sys.exit(run(lambda: main(sys.argv[1:])))\n"
    proc = subprocess.Popen([sys.executable, "-c", slow, str(config)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / ".lock").exists():
        time.sleep(0.2)
    time.sleep(6)  # imports, data, model: then a step or two
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "Resume with:" in err and str(config) in err
    assert list((run_dir / "checkpoints").glob("checkpoint-*/embtune_checkpoint.json"))
    assert _train(config).returncode == 0
    np.testing.assert_allclose(_final_vectors(run_dir), expected, atol=1e-6, rtol=0)


def test_a_live_lock_refuses_and_a_dead_ones_does_not(uninterrupted, tiny_model_dir, capsys):
    import socket

    tmp, pairs, _ = uninterrupted
    config = _config(tmp, tiny_model_dir, pairs, "locked", max_steps=1)
    run_dir = tmp / "locked"
    run_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        from train.__main__ import main

        assert run(lambda: main([str(config)])) == 2
        assert f"process {sleeper.pid}" in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run(lambda: main([str(config)])) == 0  # the holder is gone: its lock is taken over
    assert not (run_dir / ".lock").exists() and (run_dir / "final").is_dir()


@pytest.mark.slow
def test_killed_two_rank_ddp_run_resumes_to_the_same_model(tmp_path, tiny_model_dir, pairs_csv):
    """torchrun with two CPU ranks (gloo): SIGKILL on rank 0 after step 3 ends both; a new torchrun resumes."""
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def torchrun(config: Path, *script: str) -> subprocess.CompletedProcess:
        target = [str(killer), *script] if script else ["-m", "train"]
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *target, str(config)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)

    straight = _config(tmp_path, tiny_model_dir, pairs_csv, "ddp-straight")
    assert torchrun(straight).returncode == 0
    config = _config(tmp_path, tiny_model_dir, pairs_csv, "ddp-killed")
    assert torchrun(config, "step", "3").returncode != 0
    assert not (tmp_path / "ddp-killed" / "final").exists()
    resumed = torchrun(config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    np.testing.assert_allclose(_final_vectors(tmp_path / "ddp-killed"), _final_vectors(tmp_path / "ddp-straight"),
                               atol=1e-6, rtol=0)


def test_the_last_step_writes_no_checkpoint_unless_it_is_needed():
    """final/ follows the last step, so its checkpoint would be written twice; the best one and an interrupt's stay."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from train.checkpoints import Interrupt, NoCheckpointAtTheEnd

    interrupt = Interrupt()
    skip = NoCheckpointAtTheEnd(interrupt)

    def saves(step: int, best: bool = False, stopped: bool = False, hook: str = "on_epoch_end") -> bool:
        interrupt.stopped = stopped
        control = TrainerControl(should_save=True)
        getattr(skip, hook)(SimpleNamespace(load_best_model_at_end=best), SimpleNamespace(global_step=step,
                                                                                         max_steps=10), control)
        return control.should_save

    assert saves(5) and saves(5, hook="on_step_end")
    assert not saves(10) and not saves(10, hook="on_step_end")
    assert saves(10, best=True) and saves(10, stopped=True)
