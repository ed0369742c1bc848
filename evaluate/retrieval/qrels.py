"""A retrieval set's (queries, corpus, qrels) from a table, each judgement with its grade: what trec_eval is given.

| table                       | queries                           | qrels (query id -> doc id -> grade)  |
|-----------------------------|-----------------------------------|--------------------------------------|
| BEIR pairs (``relevance``)  | every query the qrels judge       | every judgement with its own grade   |
| pairs, triplets (no grades) | each anchor                       | its positives, grade 1               |
| labeled                     | each sentence1 with a label-1 row | its label-1 sentence2 texts, grade 1 |

A BEIR source keeps what trec_eval and MTEB keep beyond its rows (``Table.extra_qrels``): a judgement of a document
missing from the corpus stays relevant but can never be retrieved (it counts in nDCG's ideal ranking and in recall's
and MAP's denominators), and a query whose judgements are all <= 0 or name missing documents is still a query and
scores 0. Training never sees any of this: it reads the canonical columns of the rows (every judgement > 0).
"""

from __future__ import annotations

import hashlib

from datasets import Dataset

from data.table import GRADE_COLUMN, Table

Qrels = dict[str, dict[str, int]]


def text_id(text: str) -> str:
    """A stable id for a text that has none of its own (non-BEIR data)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def retrieval_sets(table: Table, full_corpus: bool) -> tuple[dict[str, str], dict[str, str], Qrels]:
    """(queries, corpus, qrels) of a retrieval evaluation; BEIR ids are kept, other texts get content ids.

    Args:
        table: pairs, triplets or labeled rows (negatives join the corpus, label 0 documents too).
        full_corpus: search the source's own corpus (BEIR) as well as the documents of the rows, as the
            standard benchmarks do.

    Returns:
        query id -> text, doc id -> text, and query id -> doc id -> grade (documents missing from the corpus
        included). Every query of the qrels has a text.
    """
    rows, labeled = table.rows, table.kind == "labeled"
    q_col, d_col = ("sentence1", "sentence2") if labeled else ("anchor", "positive")
    q_ids, d_ids = _ids(rows, "anchor_id", q_col), _ids(rows, "positive_id", d_col)
    corpus = dict(table.corpus) if full_corpus else {}
    corpus.update(zip(d_ids, rows[d_col]))
    if "negative" in rows.column_names:
        corpus.update((text_id(t), t) for t in rows["negative"])
    qrels: Qrels = {}
    for q_id, d_id, grade in zip(q_ids, d_ids, grades(table)):
        if grade > 0:  # labeled: label 0 pairs are not judgements, their documents only join the corpus
            qrels.setdefault(q_id, {})[d_id] = grade
    queries = {q: t for q, t in zip(q_ids, rows[q_col]) if q in qrels}  # a query with nothing relevant: no query
    queries.update((q, t) for q, t in table.extra_queries.items() if q in table.extra_qrels)
    for q_id, docs in table.extra_qrels.items():
        if q_id in queries:  # a split keeps the judgements of its own queries only
            qrels.setdefault(q_id, {}).update(docs)
    return queries, corpus, qrels


def grades(table: Table) -> list[int]:
    """Each row's grade: BEIR's ``relevance``; 1 for label 1 (0 for label 0) of labeled data; else 1."""
    rows = table.rows
    if table.kind == "labeled":
        return [int(label == 1) for label in rows["label"]]
    if GRADE_COLUMN in rows.column_names:
        return [int(grade) for grade in rows[GRADE_COLUMN]]
    return [1] * len(rows)


def _ids(rows: Dataset, id_column: str, text_column: str) -> list[str]:
    if id_column in rows.column_names:
        return list(rows[id_column])
    return [text_id(t) for t in rows[text_column]]
