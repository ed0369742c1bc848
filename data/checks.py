"""Row-level checks at the boundary: every bad cell is reported with file, row, line and column."""

from __future__ import annotations

import dataclasses
import logging
import math
import unicodedata
from collections import Counter

from configs.errors import UserError
from configs.schema import SourceConfig
from data.table import Table, negative_columns

log = logging.getLogger(__name__)
TEXT_COLUMNS = ("sentence1", "sentence2", "anchor", "positive", "negative", "text")
# How two texts are compared wherever "the same text" matters (leakage, grouped splits, pairs of a text with itself);
# report.json records this sentence beside the leakage counts.
COMPARISON = "exact text after Unicode NFKC, case folding and whitespace collapsing"


def comparable(text: object) -> str:
    """``text`` as compared (see ``COMPARISON``): 'Café' in NFC or NFD, 'CAFÉ' and ' café ' are one text; a
    full-width 'Ａ' is 'a'. NFKC runs again after case folding, which can undo it (the Unicode caseless match)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", str(text)).casefold())
    return " ".join(folded.split())


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


# ------------------------------------------------------------------------------------ data a model learns nothing from
# (first column, second column, what a row with the two equal means): pairs whose two sides are the same text.
SAME_TEXT = {
    "pairs": [("anchor", "positive", "an anchor paired with itself teaches nothing")],
    "tuples": [("anchor", "positive", "an anchor paired with itself teaches nothing"),
               ("positive", "negative_1", "the positive is also its own hard negative: the loss pulls and pushes "
                                          "the same pair")],
    "triplets": [("anchor", "positive", "an anchor paired with itself teaches nothing"),
                 ("positive", "negative", "the positive is also the negative: the loss pulls and pushes the same "
                                          "pair")],
    "scored": [("sentence1", "sentence2", "a text scored against itself teaches nothing")],
    "labeled": [("sentence1", "sentence2", "a text labelled against itself teaches nothing")],
}


def check_training_data(table: Table) -> list[str]:
    """Warnings for training rows a model learns nothing (or the wrong thing) from, before any training.

    Looks for: rows whose two texts are the same after ``comparable``; one text as the anchor (or the positive) of
    every row; a single label (labeled, classes data); a single score (scored data); rows repeating an earlier row.
    Each warning gives the count and up to 3 example rows ("row N").

    Args:
        table: the train split, after ``check_table``.
    Returns:
        the warnings, also logged.
    Raises:
        UserError: when every row is degenerate in the same way, so training could learn nothing.
    """
    warnings = [*_same_text(table), *_one_value(table), *_repeated_rows(table)]
    for line in warnings:
        log.warning(line)
    return warnings


def _rows(table: Table, indices: list[int]) -> str:
    shown = [table.locations[i] if table.locations else f"row {i + 1}" for i in indices[:3]]
    return ", ".join(shown) + (", ..." if len(indices) > 3 else "")


def _same_text(table: Table) -> list[str]:
    found = []
    for first, second, meaning in SAME_TEXT.get(table.kind, ()):
        if first not in table.rows.column_names or second not in table.rows.column_names:
            continue
        pairs = zip(table.rows[first], table.rows[second])
        same = [i for i, (a, b) in enumerate(pairs) if comparable(a) == comparable(b)]
        said = (f"{table.origin}: {len(same)} of {len(table.rows)} rows have the same text as {first} and {second} "
                f"(compared as {COMPARISON}; {_rows(table, same)}): {meaning}")
        if len(same) == len(table.rows):
            raise UserError(said + ". Check the column mapping (data.train.columns): two columns may name the same "
                                   "field.")
        if same:
            found.append(said + ". Remove those rows or fix them.")
    return found


def _one_value(table: Table) -> list[str]:
    """A column whose every row holds one value: a label, a score, or one anchor or positive for all rows."""
    meaning = {"label": "the model never sees another class to tell it apart from" if table.kind == "classes" else
               "the model never sees a pair of the other label", "score": "there is no order of pairs to learn",
               "anchor": "every row pulls the same text towards its positive, and the other rows' positives of the "
                         "batch, its own positives too, become its negatives",
               "positive": "every anchor is pulled towards one text"}
    found = []
    for column, why in meaning.items():
        if column not in table.rows.column_names or len(table.rows) < 2:
            continue
        values = Counter(comparable(v) if column in TEXT_COLUMNS else v for v in table.rows[column])
        value, count = values.most_common(1)[0]
        if count == len(table.rows):
            raise UserError(f"{table.origin}: every one of the {count} rows has the same {column} ({value!r}): {why}. "
                            "Check the column mapping and the file; training on it would learn nothing.")
        if column in ("anchor", "positive") and count > len(table.rows) / 2:
            found.append(f"{table.origin}: {count} of {len(table.rows)} rows have the same {column} ({value!r:.80}); "
                         "the model mostly learns that one text.")
    return found


def _repeated_rows(table: Table) -> list[str]:
    columns = [c for c in table.rows.column_names if c in TEXT_COLUMNS or c.startswith("negative_")]
    seen: set[tuple] = set()
    repeated = []
    for index, row in enumerate(zip(*(table.rows[c] for c in columns))):
        key = tuple(comparable(v) for v in row)
        if key in seen:
            repeated.append(index)
        seen.add(key)
    if not repeated:
        return []
    return [f"{table.origin}: {len(repeated)} of {len(table.rows)} rows repeat an earlier row's texts "
            f"({_rows(table, repeated)}); they weigh those pairs more. Remove the copies unless that is meant."]
