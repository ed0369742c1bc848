"""``python -m data CONFIG [key=value ...]``: prepare the splits and write a stats report into the run folder.

Writes ``RUN_DIR/data/{train,dev,test}.jsonl`` (+ ``corpus.jsonl`` for BEIR sources), ``stats.json`` and
``stats.md``, and in ``meta.json`` what the data was prepared from (``data.provenance``: the settings that change
the rows and a content hash of every source) and how long it took; then prints the stats table. ``python -m train``
reads this folder instead of preparing (and mining) again while the settings and sources still match.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from configs.cli import parse, run
from configs.runs import check_not_nested, is_main_process, write_resolved
from configs.schema import RunConfig
from data.prepare import Prepared, leakage, load_prepared, prepare, save_prepared
from data.provenance import provenance, stale_reason
from data.stats import split_stats, stats_markdown

log = logging.getLogger("data")


def describe(prepared: Prepared, config: RunConfig) -> dict:
    """Stats of every split, with token lengths measured by the base model's own tokenizer."""
    from core.model import load_tokenizer

    tokenizer, max_len = load_tokenizer(config.model)
    splits = {name: split_stats(t.rows, tokenizer, max_len) for name, t in prepared.splits().items()}
    stats = {"kind": prepared.train.kind, "splits": splits, "shared_texts": leakage(prepared),
             "corpus_size": len(prepared.test.corpus)}
    if prepared.chunking:
        stats["chunking"] = prepared.chunking
    if prepared.mining:
        stats["hard_negatives"] = prepared.mining
    return stats


def prepare_timed(config: RunConfig) -> tuple[Prepared, dict[str, float]]:
    """The prepared splits and the wall time it took: {"prepare": all of it, "mining": the mining inside it}."""
    start = time.perf_counter()
    prepared = prepare(config)
    seconds = {"prepare": round(time.perf_counter() - start, 2)}
    return prepared, {**seconds, "mining": prepared.mining.get("seconds", 0.0)}


def save_run_data(config: RunConfig, prepared: Prepared, seconds: dict[str, float]) -> dict:
    """Describe the splits and write them with the resolved config and what they were prepared from (main process
    only); returns the stats."""
    stats = describe(prepared, config)
    if is_main_process():
        write_resolved(config)
        extra = {"stats.json": json.dumps(stats, indent=2) + "\n", "stats.md": stats_markdown(stats)}
        save_prepared(prepared, Path(config.run_dir), extra, {**provenance(config), "seconds": seconds})
    return stats


def data_for_training(config: RunConfig) -> tuple[Prepared, dict | None, dict[str, float]]:
    """What ``python -m train`` trains on: ``RUN_DIR/data`` as ``python -m data`` wrote it when its recorded
    settings and source hashes match ``config`` (mined negatives included), else the data prepared again. One log
    line says which, and why.

    Returns:
        (prepared, stats.json when read else None (the caller describes and writes), seconds: {"prepare" or
        "read", "mining" (0 when read)}).
    """
    folder = Path(config.run_dir) / "data"
    reason = stale_reason(config, folder)
    if reason is not None:
        log.info("data/: prepared %s: %s", "again" if (folder / "meta.json").is_file() else "here", reason)
        prepared, seconds = prepare_timed(config)
        return prepared, None, seconds
    start = time.perf_counter()
    prepared, stats = load_prepared(Path(config.run_dir)), json.loads((folder / "stats.json").read_text())
    log.info("data/: read as prepared by python -m data (settings and sources match)")
    return prepared, stats, {"read": round(time.perf_counter() - start, 2), "mining": 0.0}


def main(argv: list[str] | None = None) -> int:
    # 1. Config and overrides.
    _, config = parse(argv, "python -m data", "Prepare the splits and a stats report.")
    check_not_nested(Path(config.run_dir))  # before any work: data/ inside another run would be lost
    # 2. Load, check, split (and mine), timed.
    prepared, seconds = prepare_timed(config)
    # 3. Describe and write data/ with what it was prepared from, so `python -m train` can read it as it is.
    stats = save_run_data(config, prepared, seconds)
    # 4. Show the report.
    print(stats_markdown(stats))
    log.info("prepared data written to %s/data", config.run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
