"""The cost profile of a run: trainer.train() split into training steps, dev evaluations and checkpoint writes by
the trainer's own events (a fake clock, so nothing here is a timed test), the whole-run loss across a resume, and
the benchmark's table."""

from __future__ import annotations

import pytest

import train.timing
from core.run_record import whole_run_loss
from train.timing import PhaseClock, TrainingPhases


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_evaluations_and_checkpoints_are_told_apart_from_steps(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train.timing.time, "perf_counter", clock)
    phases = TrainingPhases()
    events = [(1.0, "on_step_end", {}), (0.5, "on_log", {"logs": {"loss": 1.0}}),
              (4.0, "on_log", {"logs": {"eval_dev_ndcg@10": 0.5}}),  # an evaluation logs before on_evaluate
              (0.0, "on_evaluate", {}), (2.0, "on_save", {}), (1.0, "on_step_end", {}), (3.0, "on_save", {})]
    for seconds, event, kwargs in events:
        clock.now += seconds
        getattr(phases, event)(None, None, None, **kwargs)
    assert phases.split(train_seconds=13.0) == {"training_steps": 4.0, "dev_evaluation": 4.0, "checkpoints": 5.0}


def test_the_phase_clock_adds_up_phases_and_the_total(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train.timing.time, "perf_counter", clock)
    phases = PhaseClock()
    for name, seconds in (("data", 2.0), ("train", 5.0), ("data", 1.0)):
        with phases.phase(name):
            clock.now += seconds
    clock.now += 0.5
    assert phases.record() == {"data": 3.0, "train": 5.0, "total": 8.5}


def test_the_whole_run_loss_counts_the_steps_before_a_resume():
    history = [{"step": 1, "loss": 4.0}, {"step": 3, "loss": 2.0}, {"eval_dev_x": 0.1, "step": 3},
               {"step": 4, "loss": 1.0}, {"step": 6, "loss": 1.0}]
    # resumed at step 3: steps 1..3 sum to 4 + 2 * 2 = 8; this process ran steps 4..6 with a mean of 1.0
    assert whole_run_loss(history, 3, 1.0, 6) == pytest.approx((8 + 3 * 1.0) / 6)
    assert whole_run_loss(history, 0, 1.5, 6) == 1.5  # no resume: the trainer's own mean
    assert whole_run_loss(history, 3, None, 6) is None


def _benchmark(name: str):
    """benchmarks/NAME.py as a module (benchmarks/ is not a package)."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_table_shares_add_up():
    module = _benchmark("recipe_cost")
    meta = {"seconds": {"prepare": 6.0, "mining": 4.0}}
    record = {"seconds": {"data": 0.5, "load_model": 1.0, "setup": 0.5, "training_steps": 10.0,
                          "dev_evaluation": 3.0, "checkpoints": 2.0, "write_final": 1.0, "total": 19.0}}
    rows = dict(module.phase_rows({"data": 10.0, "train": 25.0, "evaluate": 5.0}, meta, record))
    assert rows["data: mining hard negatives"] == 4.0 and rows["data: start-up"] == 4.0
    assert rows["train: start-up"] == 6.0 and rows["train: other"] == pytest.approx(1.0)
    assert sum(rows.values()) == pytest.approx(40.0)  # the three commands' wall time, nothing counted twice
    assert "| **total** | **40.0** | 100% |" in module.table(list(rows.items()))


def test_the_batch_size_benchmark_interleaves_sizes_and_compares_each_repeat_with_the_largest(capsys):
    import argparse

    module = _benchmark("encode_batch")
    assert module.batch_sizes("32,8,16,8") == [8, 16, 32]
    for bad in ("8", "0,8", "a,8"):
        with pytest.raises(argparse.ArgumentTypeError):
            module.batch_sizes(bad)
    for bad in ("0", "-3", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            module.positive(bad)

    calls = []

    class Recorder:  # an encoder that records the batch sizes it is asked for, in order
        def encode(self, texts, batch_size):
            calls.append(batch_size)

    seconds = module.measure(Recorder(), ["a text"] * 4, [8, 16], repeats=3)
    assert calls == [16, 8, 16, 16, 8, 8, 16]  # warm-up at the largest, then reversed every other repeat
    assert {size: len(times) for size, times in seconds.items()} == {8: 3, 16: 3}
    lines = module.table({8: [1.0, 2.0, 1.0], 16: [2.0, 2.0, 3.0]}, n_texts=10)
    assert lines[2] == "| 8 | 1.0 | 10.0 | 2.00x (1.00-3.00) |"  # per repeat 16's time over 8's: 2, 1, 3
    assert lines[3] == "| 16 | 2.0 | 5.0 | 1.00x (1.00-1.00) |"
