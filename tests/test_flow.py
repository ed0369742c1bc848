"""Data flows one way: `python -m train` reads what `python -m data` wrote while the recorded settings and source
hashes match (hard negatives are mined once), prepares again when they do not and says why; run.json records the
precision and the wall time of each phase; a log file gets plain lines, never a library's progress bar."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import data.negatives
from configs.cli import run
from configs.load import validate
from conftest import INCIDENT_ROWS, REPO, tiny_config, write_config, write_csv

MINING = {"num_negatives": 1, "range_min": 0, "range_max": 5, "relative_margin": None}


def _raw(tmp_path: Path, model_dir: Path, **mining) -> dict:
    pairs = write_csv(tmp_path / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    data = {"train": source, "test_fraction": 0.34, "dev_fraction": 0.2, "hard_negatives": {**MINING, **mining}}
    raw = tiny_config(tmp_path, model_dir, data, {"name": "mnrl"})
    raw["train"]["eval_steps"] = 1
    return raw


@pytest.fixture
def mining_calls(monkeypatch) -> list[int]:
    """Counts calls of the function that mines (data.negatives.run_miner)."""
    calls: list[int] = []
    original = data.negatives.run_miner

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(data.negatives, "run_miner", counted)
    return calls


def test_train_reads_what_data_prepared_and_mines_once(tmp_path, tiny_model_dir, mining_calls, caplog):
    from data.__main__ import main as data_main
    from train.__main__ import main as train_main

    raw = _raw(tmp_path, tiny_model_dir)
    raw["train"]["save_steps"] = 1  # a checkpoint before the last step (the last step writes none: final/ follows)
    config = str(write_config(tmp_path, raw))
    assert run(lambda: data_main([config])) == 0
    meta_before = (tmp_path / "run" / "data" / "meta.json").read_text()
    with caplog.at_level(logging.INFO):
        assert run(lambda: train_main([config])) == 0
    assert len(mining_calls) == 1  # by python -m data only
    assert "data/: read as prepared by python -m data (settings and sources match)" in caplog.text
    assert (tmp_path / "run" / "data" / "meta.json").read_text() == meta_before  # data/ was not rewritten
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["data_prepared_by"] == "python -m data"
    assert record["precision"]["train"] in ("fp32", "bf16") and record["precision"]["why"].startswith("auto: ")
    seconds = record["seconds"]
    assert {"data", "data_mining", "load_model", "setup", "training_steps", "dev_evaluation", "checkpoints",
            "write_final", "total"} <= set(seconds)
    assert seconds["data_mining"] == 0 and seconds["dev_evaluation"] > 0 and seconds["checkpoints"] > 0
    assert sum(v for k, v in seconds.items() if k not in ("total", "data_mining")) <= seconds["total"] + 0.05


@pytest.mark.parametrize(("change", "reason"), [
    ("setting", "data.hard_negatives.num_negatives changed (1 -> 2)"),
    ("source", "the source of data.train changed since data/ was prepared (its content hash differs)"),
    ("seed", "seed changed (7 -> 8)"),
])
def test_a_changed_setting_or_source_prepares_again_and_says_why(tmp_path, tiny_model_dir, mining_calls, caplog,
                                                                  change, reason):
    from data.__main__ import data_for_training
    from data.__main__ import main as data_main

    raw = _raw(tmp_path, tiny_model_dir)
    assert run(lambda: data_main([str(write_config(tmp_path, raw))])) == 0
    if change == "setting":
        raw["data"]["hard_negatives"]["num_negatives"] = 2
    elif change == "seed":
        raw["seed"] = 8
    else:
        with open(tmp_path / "pairs.csv", "a", encoding="utf-8") as handle:
            handle.write("disk,disk quota full,the disk is out of space\n")
    with caplog.at_level(logging.INFO):
        prepared, stats, seconds = data_for_training(validate(raw))
    assert f"data/: prepared again: {reason}" in caplog.text
    # mined again (a cached tiny mining can round to 0.0 s, so the time is checked to be the mining's own)
    assert len(mining_calls) == 2 and stats is None and seconds["mining"] == prepared.mining["seconds"]


def test_unchanged_settings_and_sources_read_data_as_it_is(tmp_path, tiny_model_dir, mining_calls):
    from data.__main__ import data_for_training
    from data.__main__ import main as data_main
    from data.prepare import prepare

    raw = _raw(tmp_path, tiny_model_dir)
    raw["train"]["learning_rate"] = 0.5  # not a data setting
    assert run(lambda: data_main([str(write_config(tmp_path, raw))])) == 0
    prepared, stats, seconds = data_for_training(validate({**raw, "train": {**raw["train"], "max_steps": 9}}))
    fresh = prepare(validate(raw))
    assert prepared.train.rows.to_list() == fresh.train.rows.to_list()  # the same rows, mined negatives included
    assert stats is not None and "read" in seconds


def test_a_data_folder_without_a_record_is_prepared_again(tmp_path, tiny_model_dir, caplog):
    from data.__main__ import data_for_training
    from data.__main__ import main as data_main

    raw = _raw(tmp_path, tiny_model_dir)
    del raw["data"]["hard_negatives"]
    assert run(lambda: data_main([str(write_config(tmp_path, raw))])) == 0
    meta = tmp_path / "run" / "data" / "meta.json"
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "settings"}))
    with caplog.at_level(logging.INFO):
        data_for_training(validate(raw))
    assert "does not record what it was prepared from" in caplog.text


# ------------------------------------------------------------------------------------------ bars in a log file
def test_a_log_file_gets_plain_lines_and_no_library_bar(tmp_path, tiny_model_dir):
    raw = _raw(tmp_path, tiny_model_dir)
    config = str(write_config(tmp_path, raw))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TQDM_DISABLE", None)  # as a user's shell would have it
    for stage in ("data", "train"):
        with open(tmp_path / f"{stage}.log", "w") as log_file:
            done = subprocess.run([sys.executable, "-m", stage, config], cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=log_file, timeout=600, env=env)
        text = (tmp_path / f"{stage}.log").read_text()
        assert done.returncode == 0, text
        assert "\r" not in text and "Computing widget examples" not in text and "it/s]" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), "a line was written twice"
    assert re.search(r"^\d\d:\d\d:\d\d train: plan: ", text, re.M)  # at the start of its own line
    assert "data/: read as prepared by python -m data" in text


def test_a_terminal_keeps_its_bars(monkeypatch):
    import io

    from tqdm import tqdm

    from core.bars import bars_on_terminal_only

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        with bars_on_terminal_only():
            for _ in tqdm(range(3), desc="bar", mininterval=0):
                pass
            print("a plain line", file=sys.stderr)
        assert ("\r" in stream.getvalue()) is drawn
        assert "a plain line\n" in stream.getvalue()


def test_a_moved_source_folder_is_hashed_by_content(tmp_path):
    from configs.schema import SourceConfig
    from data.provenance import source_fingerprint

    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "disk full"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    before = source_fingerprint(SourceConfig(path=str(folder)))
    shutil.copytree(folder, tmp_path / "moved")
    assert source_fingerprint(SourceConfig(path=str(tmp_path / "moved"))) == before
    (tmp_path / "moved" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    assert source_fingerprint(SourceConfig(path=str(tmp_path / "moved"))) != before
    assert source_fingerprint(SourceConfig(path="org/name", revision="abc")) == "hub:org/name:None@abc"
    assert source_fingerprint(SourceConfig(path="org/name")) is None
