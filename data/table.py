"""The canonical table: column sets (the *kind* of a dataset) and the rows of one source.

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

from dataclasses import dataclass, field

from datasets import Dataset

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
GRADE_COLUMN = "relevance"  # BEIR pair rows: the qrels grade (> 0) of the pair, read by graded evaluation only


@dataclass
class Table:
    """Rows of one source in canonical columns, plus what a retrieval evaluator needs beyond the rows."""

    rows: Dataset
    kind: str
    origin: str  # the file or Hub id, for error messages
    corpus: dict[str, str] = field(default_factory=dict)  # doc id -> text (BEIR: the full corpus)
    locations: list[str] | None = None  # where row i sits in its file ("row 3 (line 4)"), for error messages
    # BEIR judgements that are not rows, kept so evaluation counts them as trec_eval does: documents missing from
    # the corpus (relevant but unretrievable) and grades <= 0. query id -> doc id -> grade.
    extra_qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    # Evaluation only (evaluate.chunking): the corpus as token windows (core.windows.Windows), or None.
    windows: object | None = None
    # query id -> text of each query in extra_qrels without a row (all its judgements are <= 0 or name missing
    # documents): it is still evaluated, and scores 0, as in trec_eval and MTEB
    extra_queries: dict[str, str] = field(default_factory=dict)
