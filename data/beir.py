"""BEIR folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) as query → document pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from datasets import Dataset

from configs.errors import UserError
from configs.schema import SourceConfig
from data.readers import decode, line_rows_before
from data.sources import Table


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
    """One error listing every unknown query id, unknown document id and empty query the qrels name."""
    problems = {
        "query ids not in queries.jsonl": sorted({q for _, q, _, _ in qrels if q not in queries}),
        "document ids not in corpus.jsonl": sorted({d for _, _, d, _ in qrels if d not in corpus}),
        "queries with empty text": sorted({q for _, q, _, _ in qrels
                                           if q in queries and not str(queries[q].get("text") or "").strip()}),
    }
    found = [f"{what} ({len(ids)}): {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}"
             for what, ids in problems.items() if ids]
    if found:
        raise UserError(f"{path} names ids the folder cannot resolve. Fix the qrels or the files:\n  "
                        + "\n  ".join(found))


def read_beir(source: SourceConfig, role: str) -> Table:
    """Every relevant (relevance > 0) qrel as an (anchor, positive) pair; the corpus comes along whole."""
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
    columns: dict[str, list[str]] = {"anchor": [], "positive": [], "anchor_id": [], "positive_id": [], "group": []}
    where: list[str] = []
    for number, query_id, doc_id, relevance in qrels:
        if relevance <= 0:
            continue
        for key, value in zip(columns, (queries[query_id]["text"], corpus[doc_id], query_id, doc_id, query_id)):
            columns[key].append(value)
        where.append(f"line {number} (query {query_id}, document {doc_id})")
    if source.limit:
        columns = {key: values[: source.limit] for key, values in columns.items()}
        where = where[: source.limit]
    return Table(rows=Dataset.from_dict(columns), kind="pairs", origin=str(qrels_path), corpus=corpus, locations=where)
