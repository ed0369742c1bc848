"""What an evaluation set is, for the top of its report section: what its task's spec says of it (queries and
corpus, pairs and gold levels, classes, ...) and the notes that apply to any set: long documents, queries that
cannot score, and whether its texts are another evaluated set's texts.

``about_sets`` builds the JSON-ready ``report.json`` entry ``datasets[name]["about"]`` with each spec's
``TaskSpec.about``; ``about_lines`` words it with the spec's ``TaskSpec.about_lines`` for both reports. Nothing here
branches on a task's name or a result's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from evaluate.evaluators import DEFAULT_TASK, EVALUATORS
from evaluate.report.wording import Quote
from evaluate.tasks.summaries import pairs_about, retrieval_about  # noqa: F401  (older callers import them here)


def describe(spec, table, result) -> dict:
    """The set's facts as its task's spec states them (``TaskSpec.about``)."""
    return spec.about(table, result)


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


def about_sets(tables: Mapping[str, object], results: Mapping[str, object],
               tasks: Mapping[str, str] | None = None) -> dict[str, dict]:
    """{dataset name: its ``about`` entry}, for report.json's ``datasets[name]["about"]``.

    Args:
        tables: dataset name -> its evaluation ``data.sources.Table``.
        results: dataset name -> one model's task result for it (the baseline's will do).
        tasks: dataset name -> its task; by default each table's kind's default task (``DEFAULT_TASK``), for
            callers that do not pass it.
    """
    tasks = tasks or {name: DEFAULT_TASK[table.kind] for name, table in tables.items()}
    out = {name: describe(EVALUATORS[tasks[name]], table, results[name]) for name, table in tables.items()}
    for name, note in derived_from({name: texts_of(table) for name, table in tables.items()}).items():
        out[name]["derived_from"] = note
    return out


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


def unscorable_lines(about: Mapping) -> list[str]:
    """Queries no model can score above 0 on (no relevant document can be found for them), when recorded."""
    count = about.get("unscorable_queries")
    if not count:
        return []
    of = f" of the {about['queries']}" if about.get("queries") else ""
    return [f"{count}{of} queries cannot score above 0 for any model: none of their relevant documents is in the "
            "corpus searched. They count as 0 in every metric for both models."]


def derived_lines(about: Mapping, quote: Quote) -> list[str]:
    note = about.get("derived_from")
    if not note:
        return []
    part = f"all {note['of']}" if note["shared"] == note["of"] else f"{note['shared']} of the {note['of']}"
    return [f"Not an independent set: {part} of its texts are also texts of {quote(note['set'])}."]


def about_lines(about: Mapping, quote: Quote = str, task: str | None = None) -> list[str]:
    """Sentences saying what the set is: its task spec's own (``TaskSpec.about_lines``), then the notes that apply
    to any task (long documents, unscorable queries, a set derived from another). A task no longer registered says
    only its notes."""
    spec: object | None = EVALUATORS.get(task or "")
    own: Callable[..., list[str]] | None = getattr(spec, "about_lines", None)
    lines = own(about, quote) if own else []
    return [*lines, *long_document_lines(about.get("long_documents")), *unscorable_lines(about),
            *derived_lines(about, quote)]
