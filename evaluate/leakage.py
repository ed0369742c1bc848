"""Texts an evaluation set shares with the training split: reported before any number, with examples."""

from __future__ import annotations

import hashlib
import json
import logging

from data.checks import COMPARISON as COMPARISON  # re-exported: report.json's "leakage_comparison"
from data.checks import comparable, text_columns
from data.near_duplicates import THRESHOLD, near_duplicates
from data.table import Table

# Distinct training + evaluation texts up to which near-duplicates are looked for: 110,000 texts (100,000 training
# texts of ~140 characters against 10,000 evaluated) took 42 s of CPU on this project's 2-core machine.
NEAR_DUPLICATE_LIMIT = 110_000
log = logging.getLogger(__name__)

# For query → document data a shared document is normal (one corpus); a shared query is leakage.
QUERY_SIDE = {"pairs": ("anchor",), "triplets": ("anchor",), "scored": ("sentence1", "sentence2"),
              "labeled": ("sentence1", "sentence2"), "classes": ("text",), "tuples": ("anchor",)}


def texts_of(table: Table) -> dict[str, str]:
    """The query-side texts of a set, including BEIR queries whose judgements are not rows (extra_queries): each
    text as compared (``data.checks.comparable``) -> its first spelling in the set (what examples show)."""
    values = [v for c in QUERY_SIDE[table.kind] if c in table.rows.column_names for v in table.rows[c]]
    return spellings([*values, *table.extra_queries.values()])


def training_texts(train: Table) -> dict[str, str]:
    """Every text of the training split: as compared -> its first spelling."""
    return spellings(v for c in text_columns(train.rows.column_names) for v in train.rows[c])


def spellings(values) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        found.setdefault(comparable(value), str(value).strip())
    return found


def leakage(train: Table, evaluated: dict[str, Table], examples: int = 3) -> dict[str, dict]:
    """{dataset: {"shared": count, "of": texts checked, "examples": [...], "near_duplicates": ...}} for every
    evaluated set, leaked or not, so a report can say "0 of 320 test texts appear in training" as plainly as a leak.

    Texts are compared as ``COMPARISON`` says (report.json records it as ``leakage_comparison``).
    ``near_duplicates`` is {"count", "threshold", "examples": [[evaluated, training, similarity], ...]}: texts that
    are not the same but share most of their character 5-grams (``data.near_duplicates``); or "not checked" when
    the texts are more than the check was measured to handle in about a minute (the log says how many)."""
    seen = training_texts(train)
    found = {}
    for name, table in evaluated.items():
        texts = texts_of(table)
        shared = sorted(texts.keys() & seen.keys())
        found[name] = {"shared": len(shared), "of": len(texts), "examples": [texts[t] for t in shared[:examples]],
                       "near_duplicates": near_duplicate_record(name, texts, seen, examples)}
    return found


def near_duplicate_record(name: str, texts: dict[str, str], seen: dict[str, str], examples: int) -> dict | str:
    """The near-duplicates of a set's ``texts`` among the training texts ``seen`` (both as ``texts_of`` gives
    them), or "not checked" when there are more texts than ``NEAR_DUPLICATE_LIMIT``."""
    unseen = texts.keys() - seen.keys()
    if len(unseen) + len(seen) > NEAR_DUPLICATE_LIMIT:
        log.info("%s: near-duplicates not checked: %d texts, more than the %d the check handles in about a minute",
                 name, len(unseen) + len(seen), NEAR_DUPLICATE_LIMIT)
        return "not checked"
    found = near_duplicates(unseen, seen)
    shown = sorted(found.items(), key=lambda item: (-item[1][1], item[0]))[:examples]
    return {"count": len(found), "threshold": THRESHOLD,
            "examples": [[texts[text], seen[match], similarity] for text, (match, similarity) in shown]}


def leakage_lines(found: dict[str, dict]) -> list[str]:
    """Warnings for the sets that share texts with the training split, or nearly repeat some of them."""
    lines = []
    for name, info in found.items():
        if info["shared"]:
            shown = "; ".join(repr(t[:80]) for t in info.get("examples") or ())
            lines.append(f"LEAKAGE: {name} shares {info['shared']} of its {info['of']} texts with the training split"
                         + (f", e.g. {shown}" if shown else "."))
        near = info.get("near_duplicates")
        if isinstance(near, dict) and near["count"]:
            shown = "; ".join(f"{a[:60]!r} ~ {b[:60]!r}" for a, b, _ in near["examples"])
            lines.append(f"NEAR-DUPLICATES: {near['count']} of the {info['of']} texts of {name} share at least "
                         f"{near['threshold']:.0%} of their character 5-grams with a training text, e.g. {shown}")
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
