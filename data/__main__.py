"""``python -m data CONFIG [key=value ...]``: prepare the splits and write a stats report into the run folder.

Writes ``RUN_DIR/data/{train,dev,test}.jsonl`` (+ ``corpus.jsonl`` for BEIR sources), ``stats.json`` and
``stats.md``, then prints the stats table.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from configs.cli import parse, run
from configs.runs import is_main_process, write_resolved
from configs.schema import RunConfig
from data.prepare import Prepared, leakage, prepare, save_prepared
from data.stats import split_stats, stats_markdown

log = logging.getLogger("data")


def describe(prepared: Prepared, config: RunConfig) -> dict:
    """Stats of every split, with token lengths measured by the base model's own tokenizer."""
    from core.model import load_tokenizer

    tokenizer, max_len = load_tokenizer(config.model)
    splits = {name: split_stats(t.rows, tokenizer, max_len) for name, t in prepared.splits().items()}
    stats = {"kind": prepared.train.kind, "splits": splits, "shared_texts": leakage(prepared),
             "corpus_size": len(prepared.test.corpus)}
    if prepared.mining:
        stats["hard_negatives"] = prepared.mining
    return stats


def save_run_data(config: RunConfig, prepared: Prepared) -> dict:
    """Describe the splits and write them with the resolved config (main process only); returns the stats."""
    stats = describe(prepared, config)
    if is_main_process():
        write_resolved(config)
        extra = {"stats.json": json.dumps(stats, indent=2) + "\n", "stats.md": stats_markdown(stats)}
        save_prepared(prepared, Path(config.run_dir), extra)
    return stats


def main(argv: list[str] | None = None) -> int:
    # 1. Config and overrides.
    _, config = parse(argv, "python -m data", "Prepare the splits and a stats report.")
    # 2. Load, check, split, describe, write.
    stats = save_run_data(config, prepare(config))
    # 3. Show the report.
    print(stats_markdown(stats))
    log.info("prepared data written to %s/data", config.run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
