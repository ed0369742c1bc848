"""Texts an evaluation set shares with the training split: reported before any number, with examples."""

from __future__ import annotations

import hashlib
import json

from data.checks import text_columns
from data.table import Table

# For query → document data a shared document is normal (one corpus); a shared query is leakage.
QUERY_SIDE = {"pairs": ("anchor",), "triplets": ("anchor",), "scored": ("sentence1", "sentence2"),
              "labeled": ("sentence1", "sentence2"), "classes": ("text",), "tuples": ("anchor",)}


def texts_of(table: Table) -> set[str]:
    """The query-side texts of a set, including BEIR queries whose judgements are not rows (extra_queries)."""
    rows = {str(v).strip() for c in QUERY_SIDE[table.kind] if c in table.rows.column_names for v in table.rows[c]}
    return rows | {str(v).strip() for v in table.extra_queries.values()}


def leakage(train: Table, evaluated: dict[str, Table], examples: int = 3) -> dict[str, dict]:
    """{dataset: {"shared": count, "of": texts checked, "examples": [...]}} for every evaluated set, leaked or not,
    so a report can say "0 of 320 test texts appear in training" as plainly as a leak."""
    seen = {str(v).strip() for c in text_columns(train.rows.column_names) for v in train.rows[c]}
    found = {}
    for name, table in evaluated.items():
        shared = sorted(texts_of(table) & seen)
        found[name] = {"shared": len(shared), "of": len(texts_of(table)), "examples": shared[:examples]}
    return found


def leakage_lines(found: dict[str, dict]) -> list[str]:
    lines = []
    for name, info in found.items():
        if not info["shared"]:
            continue
        shown = "; ".join(repr(t[:80]) for t in info.get("examples") or ())
        lines.append(f"LEAKAGE: {name} shares {info['shared']} of its {info['of']} texts with the training split"
                     + (f", e.g. {shown}" if shown else "."))
    return lines


def fingerprint(table: Table) -> str:
    """sha256 of an evaluation set's rows and corpus: runs compare only when these agree."""
    digest = hashlib.sha256()
    for row in table.rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for doc_id in sorted(table.corpus):
        digest.update(f"{doc_id}\0{table.corpus[doc_id]}".encode())
    if table.extra_qrels or table.extra_queries:  # judgements that are not rows (BEIR); older sets keep their hash
        digest.update(json.dumps([table.extra_qrels, table.extra_queries], sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()
