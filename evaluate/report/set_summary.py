"""What an evaluation set is, for the top of its report section: queries and corpus size, relevant documents per
query, pairs and gold levels, classes, and whether its texts are another evaluated set's texts.

``about_sets`` builds the JSON-ready ``report.json`` entry ``datasets[name]["about"]`` from the tables and one
model's task results (the counts do not depend on the model); ``about_lines`` words it for both reports. Which
facts apply is decided from what the result and the table hold, never from the task's name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from evaluate.report.wording import Quote, num

MAX_LEVELS = 10  # more distinct gold scores than this: a range, not levels


def retrieval_about(queries: Mapping[str, str], corpus: Mapping[str, str], qrels: Mapping[str, Mapping]) -> dict:
    """Queries, corpus size, relevant documents per query (min, mean, max) and the relevance grades used."""
    per_query = [sum(1 for grade in qrels.get(q, {}).values() if grade > 0) for q in queries]
    grades = sorted({grade for judged in qrels.values() for grade in judged.values() if grade > 0})
    spread = {"min": min(per_query), "mean": sum(per_query) / len(per_query), "max": max(per_query)} \
        if per_query else {"min": 0, "mean": 0.0, "max": 0}
    return {"queries": len(queries), "corpus": len(corpus), "relevant_per_query": spread, "grades": grades}


def pairs_about(first: Sequence[str], second: Sequence[str], gold: Sequence[float]) -> dict:
    """Pairs, distinct texts, and the gold levels with their pair counts (or only the range when there are many)."""
    levels = Counter(float(g) for g in gold)
    out = {"pairs": len(gold), "texts": len(set(first) | set(second)),
           "gold_range": [min(levels), max(levels)] if levels else None}
    if len(levels) <= MAX_LEVELS:
        out["gold_levels"] = {f"{g:g}": n for g, n in sorted(levels.items())}
    return out


def classes_about(labels: Sequence[object]) -> dict:
    counts = Counter(labels)
    return {"texts": len(labels), "classes": len(counts), "smallest_class": min(counts.values(), default=0)}


def describe(table, result) -> dict:
    """The facts that apply: a result with a retrieval set (queries, corpus, qrels), pairs with gold, or labels."""
    columns = table.rows.column_names
    if getattr(result, "retrieval", None):
        return retrieval_about(*result.retrieval[:3])
    if "sentence1" in columns and getattr(result, "gold", None) is not None:
        return pairs_about(table.rows["sentence1"], table.rows["sentence2"], list(result.gold))
    if "label" in columns:
        return classes_about(list(table.rows["label"]))
    return {"rows": len(table.rows)}


def about_from_details(info: Mapping, detail: Mapping | None) -> dict:
    """An ``about`` for a report written before ``about`` was recorded: what its metrics and details still tell."""
    if info.get("about"):
        return dict(info["about"])
    pairs = (detail or {}).get("pairs")
    if pairs:
        about = pairs_about([p["sentence1"] for p in pairs], [p["sentence2"] for p in pairs],
                            [p["gold"] for p in pairs])
        if info.get("rows", len(pairs)) > len(pairs):  # details keep the first pairs only: no counts from them
            return {"pairs": info["rows"], "gold_range": about["gold_range"]}
        return about
    main = info.get("metrics", {}).get(info.get("main_metric"), {})
    return {"queries": main["n_units"]} if (detail or {}).get("queries") is not None and "n_units" in main else {}


def texts_of(table) -> set[str]:
    from data.checks import text_columns  # late: rendering a report must not load the data stack (datasets, pandas)

    return {str(v).strip() for c in text_columns(table.rows.column_names) for v in table.rows[c]}


def derived_from(texts: Mapping[str, set[str]]) -> dict[str, dict]:
    """For each set whose texts mostly (at least half) are texts of a set evaluated before it: that set and how
    many. Only earlier sets count, so of two sets built from the same texts the second one carries the note."""
    out, earlier = {}, {}
    for name, own in texts.items():
        shared, other_name = max(((len(own & other), other_name) for other_name, other in earlier.items()),
                                 default=(0, ""))
        if own and 2 * shared >= len(own):
            out[name] = {"set": other_name, "shared": shared, "of": len(own)}
        earlier[name] = own
    return out


def about_sets(tables: Mapping[str, object], results: Mapping[str, object]) -> dict[str, dict]:
    """{dataset name: its ``about`` entry}, for report.json's ``datasets[name]["about"]``.

    Args:
        tables: dataset name -> its evaluation ``data.sources.Table``.
        results: dataset name -> one model's task result for it (the baseline's will do).
    """
    out = {name: describe(table, results[name]) for name, table in tables.items()}
    for name, note in derived_from({name: texts_of(table) for name, table in tables.items()}).items():
        out[name]["derived_from"] = note
    return out


def relevant_text(spread: Mapping[str, float]) -> str:
    """'1 relevant document per query', '1 to 3 (mean 1.2) relevant documents per query'."""
    if spread["min"] == spread["max"]:
        return f"{spread['min']:g} relevant document{'s' * (spread['min'] != 1)} per query"
    return f"{spread['min']:g} to {spread['max']:g} (mean {spread['mean']:.2g}) relevant documents per query"


def retrieval_lines(about: Mapping) -> list[str]:
    if "corpus" not in about:  # an older report: only the query count is known
        return [f"{about['queries']} queries (corpus size not recorded)."]
    grades = about.get("grades") or []
    graded = f", judged at grades {', '.join(f'{g:g}' for g in grades)}" if len(grades) > 1 else ""
    return [f"{about['queries']} queries search a corpus of {about['corpus']} documents; "
            f"{relevant_text(about['relevant_per_query'])}{graded}."]


def pairs_lines(about: Mapping) -> list[str]:
    levels = about.get("gold_levels")
    if levels:
        gold = f"{len(levels)} gold levels: " + ", ".join(f"{g} ({n} pairs)" for g, n in levels.items())
    else:
        low, high = about.get("gold_range") or (None, None)
        gold = f"gold scores from {num(low, 'g')} to {num(high, 'g')}"
    texts = f" of {about['texts']} distinct texts" if about.get("texts") else ""
    return [f"{about['pairs']} pairs{texts}; {gold}."]


def classes_lines(about: Mapping) -> list[str]:
    return [f"{about['texts']} texts in {about['classes']} classes (the smallest has {about['smallest_class']})."]


def long_document_lines(note: Mapping | None) -> list[str]:
    """How many documents are longer than the model reads, and whether they were chunked (evaluate.chunking)."""
    if not note:
        return []
    over = f"{note['longer_than_limit']} of {note['documents']} documents are longer than the {note['token_limit']} " \
           "tokens the model reads"
    chunked = note.get("chunked")
    if not chunked:
        tail = "; their ends are ignored (evaluate.chunking scores them by their best window)" \
            if note["longer_than_limit"] else ""
        return [f"{over}{tail}."]
    return [f"{over}; {chunked['documents']} were chunked into {chunked['windows']} windows of at most "
            f"{chunked['max_tokens']} tokens (overlap {chunked['overlap']}), each document scored by its best window."]


def about_lines(about: Mapping, quote: Quote = str) -> list[str]:
    """Sentences saying what the set is, from whichever facts its ``about`` entry holds."""
    lines: list[str] = []
    if "queries" in about:
        lines += retrieval_lines(about)
    if "pairs" in about:
        lines += pairs_lines(about)
    if "classes" in about:
        lines += classes_lines(about)
    lines += long_document_lines(about.get("long_documents"))
    note = about.get("derived_from")
    if note:
        part = f"all {note['of']}" if note["shared"] == note["of"] else f"{note['shared']} of the {note['of']}"
        lines.append(f"Not an independent set: {part} of its texts are also texts of {quote(note['set'])}.")
    return lines
