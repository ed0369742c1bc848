"""Read a source (local CSV/TSV/JSONL/Parquet, BEIR folder, Hub dataset) into canonical columns.

Canonical column sets (the *kind* of a dataset) are what losses and evaluators declare they consume:

| kind     | columns                          | label                      |
|----------|----------------------------------|----------------------------|
| scored   | sentence1, sentence2, score      | float in 0..1              |
| labeled  | sentence1, sentence2, label      | int, 1 similar / 0 not     |
| pairs    | anchor, positive                 | none                       |
| triplets | anchor, positive, negative       | none                       |
| classes  | text, label                      | str, the class of the text |
| tuples   | anchor, positive, negative_1..n  | none (mined hard negatives)|
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from datasets import Dataset

from configs.errors import UserError, did_you_mean
from configs.schema import SourceConfig

KINDS: dict[str, tuple[str, ...]] = {
    "scored": ("sentence1", "sentence2", "score"),
    "labeled": ("sentence1", "sentence2", "label"),
    "pairs": ("anchor", "positive"),
    "triplets": ("anchor", "positive", "negative"),
    "classes": ("text", "label"),
    # anchor, positive and n >= 1 negatives named negative_1 ... negative_n (what hard-negative mining writes)
    "tuples": ("anchor", "positive", "negative_1"),
}
CANONICAL = ("sentence1", "sentence2", "score", "label", "anchor", "positive", "negative", "text")


def negative_columns(columns) -> list[str]:
    """``negative_1 ... negative_n`` among ``columns``, in numeric order."""
    found = [c for c in columns if c.startswith("negative_") and c.removeprefix("negative_").isdigit()]
    return sorted(found, key=lambda c: int(c.removeprefix("negative_")))


def kind_columns(kind: str, columns) -> list[str]:
    """The canonical columns of ``kind`` present in a table, in the order losses read them (label last)."""
    if kind == "tuples":
        return ["anchor", "positive", *negative_columns(columns)]
    return list(KINDS[kind])
ID_COLUMNS = ("anchor_id", "positive_id")  # kept when a source has them (BEIR), so retrieval uses real ids


@dataclass
class Table:
    """Rows of one source in canonical columns, plus what a retrieval evaluator needs beyond the rows."""

    rows: Dataset
    kind: str
    origin: str  # the file or Hub id, for error messages
    corpus: dict[str, str] = field(default_factory=dict)  # doc id -> text (BEIR: the full corpus)
    locations: list[str] | None = None  # where row i sits in its file ("row 3 (line 4)"), for error messages


def read_source(source: SourceConfig, role: str) -> Table:
    """Load ``source`` and map it onto canonical columns. ``role`` ('data.train', ...) names it in errors."""
    fmt = detect_format(source, role)
    if fmt == "beir":
        from data.beir import read_beir

        return read_beir(source, role)
    frame = _read_frame(source, fmt, role)
    frame = _filter_split(frame, source, role)
    if source.limit:
        frame = frame.iloc[: source.limit]
    mapped = map_columns(frame, source, role)
    return Table(rows=Dataset.from_pandas(mapped, preserve_index=False), kind=kind_of(mapped.columns, role),
                 origin=source.path, locations=list(frame["__where__"]))


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
        from data.hub import read_hub

        frame = read_hub(source, role)
        return frame.assign(__where__=[f"split {source.split} row {i + 1}" for i in range(len(frame))])
    path = Path(source.path)
    if not path.is_file():
        raise UserError(f"{role}.path: file {path} does not exist. Check the path (relative to where you run).")
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
            return frame.assign(__where__=[f"row {i + 1} (line {i + 2})" for i in range(len(frame))])
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            return frame.assign(__where__=[f"row {i + 1}" for i in range(len(frame))])
        return _read_jsonl(path)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot be read as {fmt}: {err}") from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records, where = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}, line {number}: not valid JSON ({err.msg}). Each line must be one object.") \
                    from None
            if not isinstance(record, dict):
                raise UserError(f"{path}, line {number}: expected a JSON object ({{\"column\": value, ...}}), "
                                f"got {type(record).__name__}.")
            records.append(record)
            where.append(f"row {len(records)} (line {number})")
    return pd.DataFrame.from_records(records).assign(__where__=where)


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
        if canonical not in CANONICAL + ID_COLUMNS:
            hint = did_you_mean(canonical, CANONICAL)
            raise UserError(f"{role}.columns: '{canonical}' is not a canonical column.{hint}")
    mapping = dict(source.columns) or {c: c for c in CANONICAL if c in frame.columns}
    mapping.update({c: c for c in ID_COLUMNS if c in frame.columns and c not in mapping})
    _require_columns(frame, list(mapping.values()), source, role, what="columns")
    out = pd.DataFrame({canonical: frame[column].to_numpy() for canonical, column in mapping.items()})
    if source.group_column is not None:
        _require_columns(frame, [source.group_column], source, role, what="group_column")
        out["group"] = frame[source.group_column].astype(str).to_numpy()
    else:  # group by the first text column: rows about the same sentence or query stay together
        first_text = next((c for c in ("sentence1", "anchor", "text") if c in out.columns), None)
        out["group"] = out[first_text].astype(str).to_numpy() if first_text else ""
    return out


def _require_columns(frame: pd.DataFrame, needed: list[str], source: SourceConfig, role: str, what: str) -> None:
    have = [str(c) for c in frame.columns if c != "__where__"]
    for column in needed:
        if column not in have:
            raise UserError(
                f"{source.path}: column '{column}' (from {role}.{what}) is not in the file."
                f"{did_you_mean(column, have)} The file has: {', '.join(have)}."
            )


def kind_of(columns, role: str) -> str:
    """Which canonical set the columns form; an error naming the sets when they form none."""
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
    raise UserError(f"{role}: columns {sorted(present)} form no canonical set. Map them with {role}.columns to one of: "
                    f"{sets}.")
