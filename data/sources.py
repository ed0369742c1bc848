"""Read a source (local CSV/TSV/JSONL/Parquet, BEIR folder, Hub dataset) into canonical columns.

The canonical column sets (the *kind* of a dataset) are ``data.table.KINDS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
from datasets import Dataset

from configs.errors import UserError, did_you_mean
from configs.schema import SourceConfig
from data.beir import read_beir
from data.hub_reader import read_hub
from data.readers import read_csv, read_jsonl
from data.table import CANONICAL, GRADE_COLUMN, ID_COLUMNS, KINDS, Table, negative_columns

log = logging.getLogger(__name__)


def read_source(source: SourceConfig, role: str) -> Table:
    """Load ``source`` and map it onto canonical columns. ``role`` ('data.train', ...) names it in errors."""
    _check_score_range(source, role)
    fmt = detect_format(source, role)
    if fmt == "beir":
        table = read_beir(source, role)
    else:
        frame = _read_frame(source, fmt, role)
        frame = _filter_split(frame, source, role)
        if source.limit:
            frame = frame.iloc[: source.limit]
        mapped = map_columns(frame, source, role)
        table = Table(rows=Dataset.from_pandas(mapped, preserve_index=False), kind=kind_of(mapped.columns, role),
                      origin=source.path, locations=list(frame["__where__"]))
    return cap_per_anchor(table, source.max_per_anchor, role) if source.max_per_anchor else table


def cap_per_anchor(table: Table, limit: int, role: str) -> Table:
    """At most ``limit`` rows per query (``anchor_id`` when the rows have one, else the anchor text): the highest
    graded (``relevance``) first, then a fixed order by a hash of the row's texts, so the same file keeps the same
    rows under any seed. A BEIR row that is dropped stays a judgement of its query (``extra_qrels``): evaluation still
    counts that document relevant, training no longer pairs it."""
    rows = table.rows
    if "anchor" not in rows.column_names:
        raise UserError(f"{role}.max_per_anchor keeps rows per anchor, but {table.origin} is of kind '{table.kind}' "
                        f"(columns {', '.join(rows.column_names)}), which has none. Remove {role}.max_per_anchor.")
    anchors = rows["anchor_id"] if "anchor_id" in rows.column_names else rows["anchor"]
    grades = rows[GRADE_COLUMN] if GRADE_COLUMN in rows.column_names else [0] * len(rows)
    texts = list(zip(rows["anchor"], rows["positive"] if "positive" in rows.column_names else rows["anchor"]))
    order = sorted(range(len(rows)), key=lambda i: (-grades[i], hashlib.sha256("\0".join(texts[i]).encode()).digest()))
    taken: Counter = Counter()
    keep = []
    for i in order:
        if taken[anchors[i]] < limit:
            taken[anchors[i]] += 1
            keep.append(i)
    keep.sort()
    if len(keep) == len(rows):
        return table
    extra = {q: dict(docs) for q, docs in table.extra_qrels.items()}
    if "positive_id" in rows.column_names and "anchor_id" in rows.column_names:
        kept, doc_ids = set(keep), rows["positive_id"]  # columns read once: a Dataset column read is a copy
        for i in (i for i in range(len(rows)) if i not in kept):
            extra.setdefault(anchors[i], {})[doc_ids[i]] = grades[i]
    capped = sum(count > limit for count in Counter(anchors).values())
    log.info("%s: %d of %d rows kept, at most %d per query (%d queries had more; max_per_anchor)", role, len(keep),
             len(rows), limit, capped)
    return replace(table, rows=rows.select(keep), extra_qrels=extra,
                   locations=[table.locations[i] for i in keep] if table.locations else None)


def _check_score_range(source: SourceConfig, role: str) -> None:
    if source.score_range is not None and not all(math.isfinite(bound) for bound in source.score_range):
        raise UserError(f"{role}.score_range {list(source.score_range)}: both bounds must be finite numbers, the "
                        "lowest and highest score the data can hold, e.g. [0, 5].")


def detect_format(source: SourceConfig, role: str) -> str:
    if source.format != "auto":
        return source.format
    path = Path(source.path)
    if path.is_dir():
        if (path / "corpus.jsonl").is_file() and (path / "qrels").is_dir():
            return "beir"
        raise UserError(f"{role}.path {path} is a folder but not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    suffixes = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
    if path.suffix.lower() in suffixes:
        if not path.is_file():
            raise UserError(f"{role}.path: file {path} does not exist. Check the path (relative to where you run).")
        return suffixes[path.suffix.lower()]
    if not path.exists() and source.path.count("/") == 1:
        return "hub"
    raise UserError(f"{role}.path {path}: cannot tell the format. Set {role}.format to csv, tsv, jsonl, parquet, "
                    "beir or hub.")


def _read_frame(source: SourceConfig, fmt: str, role: str) -> pd.DataFrame:
    """The raw table, with a ``__where__`` column locating each row in its file (it survives filtering)."""
    if fmt == "hub":

        frame = read_hub(source, role)
        return frame.assign(__where__=[f"split {source.split} row {i + 1}" for i in range(len(frame))])
    path = Path(source.path)
    if not path.is_file():
        raise UserError(f"{role}.path: file {path} does not exist. Check the path (relative to where you run).")
    encoding = getattr(source, "encoding", "utf-8")  # SourceConfig.encoding (default utf-8) where the schema has it
    if fmt in ("csv", "tsv"):
        return read_csv(path, "\t" if fmt == "tsv" else ",", encoding, role)
    if fmt == "jsonl":
        return read_jsonl(path, encoding, role)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot be read as parquet: {err}") from None
    return frame.assign(__where__=[f"row {i + 1}" for i in range(len(frame))])


def _filter_split(frame: pd.DataFrame, source: SourceConfig, role: str) -> pd.DataFrame:
    if source.split_column is None:
        return frame
    _require_columns(frame, [source.split_column], source, role, what="split_column")
    kept = frame[frame[source.split_column].astype(str) == str(source.split)]
    if kept.empty:
        found = sorted(frame[source.split_column].astype(str).unique())
        raise UserError(f"{source.path}: no row has {source.split_column}='{source.split}'. Found: {found}.")
    return kept


def map_columns(frame: pd.DataFrame, source: SourceConfig, role: str) -> pd.DataFrame:
    """Rename source columns to canonical ones (only those), keeping ids when present and adding a ``group`` key."""
    for canonical in source.columns:
        if canonical not in CANONICAL + ID_COLUMNS and not negative_columns([canonical]):
            hint = did_you_mean(canonical, CANONICAL + ("negative_1",))
            raise UserError(f"{role}.columns: '{canonical}' is not a canonical column.{hint}")
    _require_columns(frame, list(source.columns.values()), source, role, what="columns")
    mapping = complete_mapping(file_columns(frame), dict(source.columns), role)
    mapping.update({c: c for c in ID_COLUMNS if c in frame.columns and c not in mapping})
    out = pd.DataFrame({canonical: frame[column].to_numpy() for canonical, column in mapping.items()})
    if source.group_column is not None:
        _require_columns(frame, [source.group_column], source, role, what="group_column")
        out["group"] = frame[source.group_column].astype(str).to_numpy()
    else:  # group by the first text column: rows about the same sentence or query stay together
        first_text = next((c for c in ("sentence1", "anchor", "text") if c in out.columns), None)
        out["group"] = out[first_text].astype(str).to_numpy() if first_text else ""
    return out


def file_columns(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if c != "__where__"]


def complete_mapping(have: list[str], given: dict[str, str], role: str) -> dict[str, str]:
    """canonical -> file column. Without ``given``: every canonical column the file has by name (negative_1..n
    too). With a partial ``given``: completed by the fewest columns the file has under their canonical names that
    make a canonical set (``{label: score}`` on sentence1, sentence2, score → labeled); negatives are never added
    to a mapping by name. A mapping that is complete already is used as it is."""
    used = set(given.values())
    by_name = [c for c in (*CANONICAL, *negative_columns(have)) if c in have and c not in given and c not in used]
    if not given:
        kind_of(by_name, role, have)  # an error listing the file's columns when they form no set
        return {c: c for c in by_name}
    mapped_negatives = negative_columns(given)
    base = set(given) - set(mapped_negatives) - set(ID_COLUMNS)
    choices = []
    for kind in ("pairs",) if mapped_negatives else ("triplets", "scored", "labeled", "pairs", "classes"):
        missing = set(KINDS[kind]) - base
        if base <= set(KINDS[kind]) and missing <= set(by_name):
            choices.append((len(missing), [c for c in KINDS[kind] if c in missing]))
    if not choices:
        sets = " | ".join(", ".join(cols) for cols in KINDS.values())
        raise UserError(f"{role}.columns maps {sorted(given)}; the file's other columns do not complete a canonical "
                        f"set ({sets}). The file has: {', '.join(have)}. Map the missing columns in {role}.columns.")
    return {**given, **{c: c for c in min(choices, key=lambda choice: choice[0])[1]}}


def _require_columns(frame: pd.DataFrame, needed: list[str], source: SourceConfig, role: str, what: str) -> None:
    have = [str(c) for c in frame.columns if c != "__where__"]
    for column in needed:
        if column not in have:
            raise UserError(
                f"{source.path}: column '{column}' (from {role}.{what}) is not in the file."
                f"{did_you_mean(column, have)} The file has: {', '.join(have)}."
            )


def kind_of(columns, role: str, have: list[str] | None = None) -> str:
    """Which canonical set the columns form; an error naming the sets (and the file's ``have`` columns) when they
    form none."""
    present = {c for c in columns if c in CANONICAL}
    negatives = negative_columns(columns)
    if present == {"anchor", "positive"} and negatives:
        if negatives != [f"negative_{i}" for i in range(1, len(negatives) + 1)]:
            raise UserError(f"{role}: negative columns must be numbered negative_1 ... negative_n without gaps; "
                            f"got {', '.join(negatives)}.")
        return "tuples"
    for kind in ("triplets", "scored", "labeled", "pairs", "classes"):
        if set(KINDS[kind]) == present:
            return kind
    sets = " | ".join(", ".join(cols) for cols in KINDS.values())
    listed = f" The file has: {', '.join(have)}." if have is not None else ""
    raise UserError(f"{role}: columns {sorted(present)} form no canonical set. Map them with {role}.columns to one of: "
                    f"{sets}.{listed}")
