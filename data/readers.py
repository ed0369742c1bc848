"""Local text files read with every row located: ``row N (line L)``, correct after quoted multi-line CSV fields,
blank lines and undecodable bytes (which name the row, line and the encoding setting to use instead)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from configs.errors import UserError


def decode(path: Path, encoding: str, role: str, rows_before: Callable[[str], str]) -> str:
    """The file's text. ``rows_before(prefix)`` names the row a bad byte sits in, from the text before it."""
    data = path.read_bytes()
    codec = "utf-8-sig" if encoding.lower().replace("-", "").replace("_", "") == "utf8" else encoding  # BOM or not
    try:
        return data.decode(codec)
    except LookupError:
        raise UserError(f"{role}.encoding: unknown encoding '{encoding}'. Use a Python codec name such as "
                        "utf-8, latin-1, cp1252 or utf-16.") from None
    except UnicodeDecodeError as err:
        prefix = data[: err.start].decode(codec, errors="replace")
        line = prefix.count("\n") + 1
        raise UserError(
            f"{path}, {rows_before(prefix)} (line {line}): byte 0x{data[err.start]:02x} at offset {err.start} is not "
            f"valid {encoding}. Save the file as UTF-8, or set {role}.encoding to the file's encoding "
            f"(e.g. {role}.encoding=cp1252 or latin-1)."
        ) from None


def line_rows_before(prefix: str) -> str:
    """For line-per-row files (JSONL): the row the next character belongs to (blank lines are not rows)."""
    lines = prefix.split("\n")
    return f"row {sum(1 for text in lines[:-1] if text.strip()) + 1}"


def csv_rows_before(sep: str) -> Callable[[str], str]:
    def rows_before(prefix: str) -> str:
        records = [r for r in csv.reader(io.StringIO(prefix, newline=""), delimiter=sep) if r]
        started = 0 if not prefix or prefix.endswith("\n") else 1  # the bad byte's record began before it
        record = len(records) + 1 - started  # 1 = the header
        return "the header" if record <= 1 else f"row {record - 1}"
    return rows_before


def read_csv(path: Path, sep: str, encoding: str, role: str) -> pd.DataFrame:
    """All cells as text, with a ``__where__`` column: 'row 3 (line 4)', or '(lines 4-6)' for a multi-line row."""
    text = decode(path, encoding, role, csv_rows_before(sep))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header, records, where, end = None, [], [], 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip() and header is not None):
                continue  # blank lines carry no row
            if header is None:
                header = _header(path, record)
                continue
            if len(record) != len(header):
                raise UserError(f"{path}, row {len(records) + 1} (line {start}): expected {len(header)} fields "
                                f"({', '.join(header)}), got {len(record)}. Quote fields that contain '{sep}'.")
            records.append(record)
            where.append(f"row {len(records)} (line {start})" if start == end
                         else f"row {len(records)} (lines {start}-{end})")
    except csv.Error as err:
        raise UserError(f"{path}, line {reader.line_num}: cannot be read as CSV ({err}).") from None
    if header is None:
        raise UserError(f"{path}: the file is empty; expected a header line naming the columns.")
    return pd.DataFrame(records, columns=header, dtype=str).assign(__where__=where)


def _header(path: Path, names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"{path}, line 1: column names must be unique; repeated: {', '.join(repeated)}.")
    return names


def read_jsonl(path: Path, encoding: str, role: str) -> pd.DataFrame:
    """One JSON object per line; ``__where__`` names row and line."""
    records, where = [], []
    for number, line in enumerate(decode(path, encoding, role, line_rows_before).split("\n"), start=1):
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
