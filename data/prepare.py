"""config → train/dev/test tables in canonical columns, written to (and read back from) ``RUN_DIR/data``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset

from configs.errors import UserError
from configs.runs import atomic_dir
from configs.schema import RunConfig, SourceConfig
from core.model import load_model
from data.checks import check_table, check_training_data
from data.chunking import chunk_pairs
from data.mining_report import meta_record
from data.negatives import mine_train
from data.sources import read_source
from data.splits import grouped_split, held_out_queries, shared_texts
from data.table import Table

SPLITS = ("train", "dev", "test")
EXTRA_NAME = "qrels_extra.json"  # beside corpus.jsonl: judgements that are not rows (data.prepare.extra_judgements)


@dataclass
class Prepared:
    train: Table
    test: Table
    dev: Table | None = None
    mining: dict = field(default_factory=dict)  # data.mining_report.summary when the train split was mined
    chunking: dict = field(default_factory=dict)  # data.chunking.Chunked.stats when long positives became windows

    def splits(self) -> dict[str, Table]:
        return {name: table for name in SPLITS if (table := getattr(self, name)) is not None}


def load_table(source: SourceConfig, role: str) -> Table:
    """A source read and checked; only its rows are rewritten by the checks, so everything else the reader found
    (corpus, judgements that are not rows) comes along as it is."""
    table = read_source(source, role)
    return replace(table, rows=check_table(table, source).rows)


def prepare(config: RunConfig) -> Prepared:
    """Read, check and split the data a config names. Deterministic for a given seed."""
    data = config.data
    train = load_table(data.train, "data.train")
    check_training_data(train)  # warned (or refused) before anything is split, mined or trained
    test = load_table(data.test, "data.test") if data.test else None
    dev = load_table(data.dev, "data.dev") if data.dev else None
    if test is None:
        train, test = split_table(train, data.test_fraction, config.seed, " (held-out test split)")
    if dev is None and data.dev_fraction > 0:
        train, dev = split_table(train, data.dev_fraction, config.seed + 1, " (dev split)")
    # after splitting: only the train split is chunked and mined, never dev or test
    chunked = None
    if data.chunking is not None:
        base, resolved = load_model(config.model)
        chunked = chunk_pairs(config, train, base, resolved.fingerprint, resolved.path)
    if chunked is not None:
        train = chunked.table
    stats = chunked.stats if chunked else {}
    if data.hard_negatives is None:
        return Prepared(train=train, test=test, dev=dev, chunking=stats)
    train, mining = mine_train(config, train, held_out=[t for t in (dev, test) if t is not None], chunked=chunked)
    return Prepared(train=train, test=test, dev=dev, mining=mining, chunking=stats)


def split_table(table: Table, fraction: float, seed: int, suffix: str) -> tuple[Table, Table]:
    """(kept, held out): rows split by ``grouped_split``; the judgements that are not rows follow their query."""
    kept, held = grouped_split(table.rows, fraction, seed)
    held_ids = held_out_queries(held, table.extra_queries, fraction, seed)
    return _part(table, kept, lambda q: q not in held_ids, ""), _part(table, held, held_ids.__contains__, suffix)


def _part(table: Table, rows: Dataset, has_query: Callable[[str], bool], suffix: str) -> Table:
    return replace(table, rows=rows, origin=table.origin + suffix, locations=None,
                   extra_qrels={q: docs for q, docs in table.extra_qrels.items() if has_query(q)},
                   extra_queries={q: text for q, text in table.extra_queries.items() if has_query(q)})


def leakage(prepared: Prepared) -> int:
    """How many texts sit in both train and test (0 for made splits; a source's own split may share some)."""
    return len(shared_texts(prepared.train.rows, prepared.test.rows))


def save_prepared(prepared: Prepared, run_dir: Path, extra_files: dict[str, str],
                  record: dict | None = None) -> dict[str, str]:
    """Write splits (+ corpus, + extra files such as stats) atomically; return each split's sha256.

    ``record``: more keys for meta.json (what the data was prepared from and how long it took, see
    ``data.provenance``)."""
    fingerprints: dict[str, str] = {}
    with atomic_dir(run_dir / "data") as tmp:
        for name, table in prepared.splits().items():
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in table.rows)
            (tmp / f"{name}.jsonl").write_text(text, encoding="utf-8")
            fingerprints[name] = hashlib.sha256(text.encode()).hexdigest()
        corpus = prepared.test.corpus
        if corpus:
            text = "".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in corpus.items())
            (tmp / "corpus.jsonl").write_text(text, encoding="utf-8")
            fingerprints["corpus"] = hashlib.sha256(text.encode()).hexdigest()
        extra = extra_judgements(prepared)
        if extra:
            text = json.dumps(extra, ensure_ascii=False, indent=1) + "\n"
            (tmp / EXTRA_NAME).write_text(text, encoding="utf-8")
            fingerprints["qrels_extra"] = hashlib.sha256(text.encode()).hexdigest()
        meta = {"kinds": {n: t.kind for n, t in prepared.splits().items()}, "sha256": fingerprints, **(record or {})}
        if prepared.mining:
            meta["hard_negatives"] = meta_record(prepared.mining)
        if prepared.chunking:
            meta["chunking"] = {k: v for k, v in prepared.chunking.items() if k != "examples"}  # counts, no text
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        for name, text in extra_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return fingerprints


def load_prepared(run_dir: Path) -> Prepared:
    """Read back exactly the splits the run trained and will be evaluated on."""
    folder = run_dir / "data"
    if not (folder / "meta.json").is_file():
        raise UserError(f"{folder} holds no prepared data. Run 'python -m data CONFIG' or 'python -m train CONFIG'.")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    corpus = {}
    if (folder / "corpus.jsonl").is_file():
        for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            corpus[item["_id"]] = item["text"]
    extra = json.loads((folder / EXTRA_NAME).read_text(encoding="utf-8")) if (folder / EXTRA_NAME).is_file() else {}
    tables = {}
    for name, kind in meta["kinds"].items():
        rows = _read_rows(folder / f"{name}.jsonl")
        judgements = extra.get(name, {})
        tables[name] = Table(rows=rows, kind=kind, origin=f"{folder / name}.jsonl", corpus=corpus,
                             extra_qrels=judgements.get("qrels", {}), extra_queries=judgements.get("queries", {}))
    return Prepared(**tables)


def extra_judgements(prepared: Prepared) -> dict[str, dict]:
    """split -> {"qrels": judgements that are not rows, "queries": texts of queries without rows}, for the splits
    that have any (BEIR qrels naming documents missing from the corpus, or grades <= 0)."""
    return {name: {"qrels": table.extra_qrels, "queries": table.extra_queries}
            for name, table in prepared.splits().items() if table.extra_qrels or table.extra_queries}


def _read_rows(path: Path) -> Dataset:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Dataset.from_list(rows)
