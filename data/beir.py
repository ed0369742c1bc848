"""BEIR folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) as query → document pairs."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from datasets import Dataset

from configs.errors import UserError
from configs.schema import SourceConfig
from data.readers import decode, line_rows_before
from data.table import GRADE_COLUMN, Table

log = logging.getLogger(__name__)


def doc_text(doc: dict) -> str:
    """Title and text joined with a space, as MTEB and BEIR join them for retrieval."""
    return f"{doc.get('title') or ''} {doc.get('text') or ''}".strip()


def read_jsonl_by_id(path: Path, encoding: str = "utf-8", role: str = "data") -> dict[str, dict]:
    """Objects by ``_id``; one error listing every ``_id`` that occurs twice (a later one would replace a text)."""
    if not path.is_file():
        raise UserError(f"BEIR folder {path.parent} has no {path.name}. Expected corpus.jsonl, queries.jsonl, qrels/.")
    items: dict[str, dict] = {}
    lines_of: dict[str, list[int]] = {}
    for number, line in enumerate(decode(path, encoding, role, line_rows_before).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key = str(item["_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{path}, line {number}: expected a JSON object with an '_id'.") from None
        items.setdefault(key, item)
        lines_of.setdefault(key, []).append(number)
    repeated = {key: lines for key, lines in lines_of.items() if len(lines) > 1}
    if repeated:
        shown = "; ".join(f"{key} (lines {', '.join(map(str, lines))})" for key, lines in list(repeated.items())[:20])
        more = " ..." if len(repeated) > 20 else ""
        raise UserError(f"{path}: {len(repeated)} _id(s) occur more than once: {shown}{more}. Each _id must name one "
                        "text; remove or renumber the duplicates.")
    return items


def read_qrels(path: Path) -> list[tuple[int, str, str, int]]:
    """(line number, query id, doc id, relevance) rows of a qrels TSV with a header line."""
    if not path.is_file():
        options = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise UserError(f"{path} does not exist. Set split to one of the qrels files: {options}.")
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)  # header: query-id, corpus-id, score
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue  # blank lines (a trailing newline) carry no judgement
            try:
                rows.append((number, row[0], row[1], int(row[2])))
            except (IndexError, ValueError):
                raise UserError(f"{path}, line {number}: expected query-id<TAB>corpus-id<TAB>integer score.") from None
    return rows


def check_qrels(path: Path, qrels: list, queries: dict[str, dict], corpus: dict[str, str]) -> None:
    """One error listing every unknown query id and empty query the qrels name (and their documents when none is in
    the corpus); a warning listing documents missing from the corpus, which evaluation counts as trec_eval does."""
    documents = {d for _, _, d, _ in qrels}
    missing = sorted(d for d in documents if d not in corpus)
    problems = {
        "query ids not in queries.jsonl": sorted({q for _, q, _, _ in qrels if q not in queries}),
        "queries with empty text": sorted({q for _, q, _, _ in qrels
                                           if q in queries and not str(queries[q].get("text") or "").strip()}),
        "document ids, none of them in corpus.jsonl (is it the right corpus?)":
            missing if len(missing) == len(documents) else [],
    }
    found = [f"{what} ({len(ids)}): {_shown(ids)}" for what, ids in problems.items() if ids]
    if found:
        raise UserError(f"{path} names ids the folder cannot resolve. Fix the qrels or the files:\n  "
                        + "\n  ".join(found))
    if missing:
        log.warning(missing_documents_warning(path, qrels, set(missing)))


def _shown(ids: list[str], limit: int = 20) -> str:
    return ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")


def missing_documents_warning(path: Path, qrels: list, missing: set[str]) -> str:
    """What judgements of documents missing from the corpus do to the scores, and how many queries they touch."""
    touched = sorted({q for _, q, d, _ in qrels if d in missing})
    relevant: dict[str, list[bool]] = {}  # query -> for each judgement > 0: is its document missing?
    for _, q, d, grade in qrels:
        if grade > 0:
            relevant.setdefault(q, []).append(d in missing)
    unreachable = sorted(q for q, flags in relevant.items() if all(flags))
    judged = sum(d in missing for _, _, d, _ in qrels)
    one = len(unreachable) == 1
    zero = (f"; {len(unreachable)} of them ({_shown(unreachable)}) {'has' if one else 'have'} no relevant document "
            f"left to find and score{'s' if one else ''} 0" if unreachable else "")
    return (f"{path}: {len(missing)} document id(s) are not in corpus.jsonl: {_shown(sorted(missing))}. Their "
            f"{judged} judgement(s) are kept, as trec_eval and MTEB keep them: relevant but never retrieved, so they "
            f"stay in nDCG's ideal ranking and in recall's and MAP's denominators. They touch {len(touched)} "
            f"quer{'y' if len(touched) == 1 else 'ies'} ({_shown(touched)}){zero}. If the documents exist, add "
            "them to corpus.jsonl.")


def split_judgements(qrels: list, queries: dict[str, dict], corpus: dict[str, str]) -> tuple[dict, list, dict]:
    """Every judgement > 0 of a corpus document as a pair row (with its grade in ``relevance``); the others (grades
    <= 0, documents missing from the corpus) as qrels beside the rows. A pair judged twice keeps its last grade, as
    BEIR's loader does.

    Returns:
        (columns of the rows, where each row sits in the qrels file, query id -> doc id -> grade of the others).
    """
    last = {(q, d): (number, grade) for number, q, d, grade in qrels}
    columns: dict[str, list] = {"anchor": [], "positive": [], "anchor_id": [], "positive_id": [], "group": [],
                                GRADE_COLUMN: []}
    where: list[str] = []
    extra: dict[str, dict[str, int]] = {}
    for (query_id, doc_id), (number, grade) in last.items():
        if grade <= 0 or doc_id not in corpus:
            extra.setdefault(query_id, {})[doc_id] = grade
            continue
        values = (queries[query_id]["text"], corpus[doc_id], query_id, doc_id, query_id, grade)
        for key, value in zip(columns, values):
            columns[key].append(value)
        where.append(f"line {number} (query {query_id}, document {doc_id})")
    return columns, where, extra


def read_beir(source: SourceConfig, role: str) -> Table:
    """Every relevant (relevance > 0) qrel of a corpus document as an (anchor, positive) pair carrying its grade;
    the corpus comes along whole, and the other judgements beside the rows (``Table.extra_qrels``)."""
    folder = Path(source.path)
    if source.split is None:
        raise UserError(f"{role}.split must name a qrels file of {folder}/qrels (e.g. train or test).")
    encoding = getattr(source, "encoding", "utf-8")  # SourceConfig.encoding where the schema has it
    documents = read_jsonl_by_id(folder / "corpus.jsonl", encoding, role)
    corpus = {doc_id: doc_text(doc) for doc_id, doc in documents.items()}
    queries = read_jsonl_by_id(folder / "queries.jsonl", encoding, role)
    qrels_path = folder / "qrels" / f"{source.split}.tsv"
    qrels = read_qrels(qrels_path)
    check_qrels(qrels_path, qrels, queries, corpus)
    columns, where, extra = split_judgements(qrels, queries, corpus)
    if source.limit:
        columns, where, extra = _first_rows(columns, where, extra, source.limit)
    row_queries = set(columns["anchor_id"])
    return Table(rows=Dataset.from_dict(columns), kind="pairs", origin=str(qrels_path), corpus=corpus,
                 locations=where, extra_qrels=extra,
                 extra_queries={q: queries[q]["text"] for q in extra if q not in row_queries})


def _first_rows(columns: dict, where: list, extra: dict, limit: int) -> tuple[dict, list, dict]:
    """The first ``limit`` rows, and the other judgements of their queries only (``source.limit``)."""
    columns = {key: values[:limit] for key, values in columns.items()}
    kept = set(columns["anchor_id"])
    return columns, where[:limit], {q: docs for q, docs in extra.items() if q in kept}
