"""Row-level checks at the boundary: every bad cell is reported with file, row, line and column."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

from configs.errors import UserError
from configs.schema import SourceConfig
from data.table import Table, negative_columns

TEXT_COLUMNS = ("sentence1", "sentence2", "anchor", "positive", "negative", "text")


def text_columns(columns) -> list[str]:
    """The text columns among ``columns``: the canonical ones, then ``negative_1 ... negative_n``."""
    columns = list(columns)
    return [c for c in columns if c in TEXT_COLUMNS] + negative_columns(columns)


def check_table(table: Table, source: SourceConfig | None) -> Table:
    """Validate texts and labels; rescale ``score`` to 0..1. Returns a new table, raises ``UserError``."""
    if len(table.rows) == 0:
        raise UserError(f"{table.origin}: no rows to use. Check the file, its split and its filters.")
    columns = table.rows.column_names
    updates: dict[str, list] = {}
    texts = set(text_columns(columns))
    for column in columns:
        values = table.rows[column]
        if column in texts:
            _check_texts(table, source, column, values)
        elif column == "score":
            updates[column] = _scores(table, source, values)
        elif column == "label" and table.kind == "classes":
            updates[column] = _classes(table, source, values)
        elif column == "label":
            updates[column] = _labels(table, source, values)
    rows = table.rows
    for column, values in updates.items():
        rows = rows.remove_columns(column).add_column(column, values)
    rows = rows.select_columns([c for c in columns])  # keep the canonical order after replacing columns
    return dataclasses.replace(table, rows=rows)  # keeps corpus, locations and judgements that are not rows


def where(table: Table, source: SourceConfig | None, index: int, column: str) -> str:
    mapped = (source.columns.get(column) if source else None) or column
    name = f"column '{mapped}'" + (f" (used as {column})" if mapped != column else "")
    location = table.locations[index] if table.locations else f"row {index + 1}"
    return f"{table.origin}, {location}, {name}"


def _check_texts(table: Table, source: SourceConfig | None, column: str, values: list) -> None:
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise UserError(
                f"{where(table, source, index, column)}: expected non-empty text, got {value!r}. "
                "Fill it in or remove the row."
            )


def _scores(table: Table, source: SourceConfig | None, values: list) -> list[float]:
    low, high = source.score_range if source and source.score_range else (0.0, 1.0)
    scaled = []
    for index, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isnan(number) or not low <= number <= high:
            hint = "" if source and source.score_range else " If your scores use another range, set score_range."
            raise UserError(
                f"{where(table, source, index, 'score')}: expected a number in [{low:g}, {high:g}], got {value!r}."
                + hint
            )
        scaled.append((number - low) / (high - low))
    return scaled


def _labels(table: Table, source: SourceConfig | None, values: list) -> list[int]:
    labels = []
    for index, value in enumerate(values):
        text = str(value).strip()
        if text not in ("0", "1", "0.0", "1.0", "True", "False", "true", "false"):
            raise UserError(f"{where(table, source, index, 'label')}: expected 0 or 1, got {value!r}.")
        labels.append(1 if text in ("1", "1.0", "True", "true") else 0)
    return labels


def _classes(table: Table, source: SourceConfig | None, values: list) -> list[str]:
    """Class names: any non-empty text (numbers are read as their text)."""
    for index, value in enumerate(values):
        if value is None or not str(value).strip():
            raise UserError(f"{where(table, source, index, 'label')}: expected a class name, got {value!r}.")
    return [str(v).strip() for v in values]


def check_classes_fill_batches(table: Table, batch_size: int) -> dict:
    """Errors, before training, for (text, label) data that label-grouped batches cannot be drawn from.

    A batch-triplet loss (BatchAllTripletLoss) trains on batches the library's ``GroupByLabelBatchSampler`` draws:
    two texts of a label at a time, several labels per batch. A label with one text is never drawn.

    Args:
        table: the train split, kind ``classes``.
        batch_size: ``train.batch_size`` (texts per batch).
    Returns:
        {"labels", "usable_labels", "unused_texts", "texts_per_epoch"}: what the sampler will draw.
    Raises:
        UserError: an odd batch size or one below 4, fewer than 2 labels with 2+ texts, or most labels with 1 text.
    """
    counts = Counter(str(label) for label in table.rows["label"])
    usable = {label: n for label, n in counts.items() if n >= 2}
    single = sorted(label for label, n in counts.items() if n < 2)
    if batch_size < 4 or batch_size % 2:
        raise UserError(f"train.batch_size {batch_size}: label-grouped batches take 2 texts per label, so the size "
                        "must be an even number of at least 4, e.g. train.batch_size=16.")
    shown = ", ".join(repr(label) for label in single[:10]) + (" ..." if len(single) > 10 else "")
    if len(usable) < 2:
        raise UserError(f"{table.origin}: a batch-triplet loss needs at least 2 labels with 2 or more texts each; "
                        f"{len(usable)} of {len(counts)} labels have that. Add texts to the labels, or use a pair "
                        "loss.")
    if len(single) > len(counts) / 2:
        raise UserError(f"{table.origin}: {len(single)} of {len(counts)} labels have a single text ({shown}); "
                        "a batch-triplet loss never draws them. Give each label 2 or more texts, or merge labels.")
    pairs = sorted((n // 2 for n in usable.values()), reverse=True)
    drawn = 2 * sum(min(p, pairs[1]) for p in pairs)  # the sampler stops when one label is left (round-robin)
    return {"labels": len(counts), "usable_labels": len(usable), "unused_texts": len(table.rows) - drawn,
            "texts_per_epoch": drawn}
