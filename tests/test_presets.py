"""Every shipped preset smoke-runs one optimiser step on the tiny model, against the real data it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.cli import run
from configs.load import load_config
from conftest import REPO, SHARED_DATA

PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def smoke_overrides(path: Path, tiny_model_dir: Path, run_dir: Path) -> list[str]:
    """Tiny model, one step, a few rows of every source the preset reads."""
    config = load_config(path)
    overrides = [f"model.name={tiny_model_dir}", f"run_dir={run_dir}", "train.max_steps=1", "train.batch_size=4"]
    for split in ("train", "dev", "test"):
        source = getattr(config.data, split)
        if source is not None:
            # a source whose queries have dozens of judgements each (NFCorpus: the preset caps its train pairs per
            # query) needs 20 times the rows for more than one query
            many = config.data.train.max_per_anchor is not None
            overrides.append(f"data.{split}.limit={(60 if split == 'train' else 20) * (20 if many else 1)}")
    if config.data.hard_negatives is not None:
        # The random tiny model scores every candidate alike, so the margin guard would drop them all: mine its top
        # candidates instead (the guards themselves are tested with known scores in test_negatives.py).
        overrides += ["data.hard_negatives.relative_margin=null", "data.hard_negatives.range_min=0",
                      "data.hard_negatives.range_max=10"]
    return overrides


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_trains_one_step_on_the_tiny_model(path, tiny_model_dir, tmp_path):
    from train.__main__ import main as train_main

    if "../shared/data" in path.read_text() and not SHARED_DATA.is_dir():
        pytest.fail(f"{path.name} reads ../shared/data, which must sit beside the repository (as in CI)")
    overrides = smoke_overrides(path, tiny_model_dir, tmp_path / "run")
    assert run(lambda: train_main([str(path), *overrides])) == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
