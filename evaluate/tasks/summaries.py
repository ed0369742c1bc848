"""Building blocks a task spec uses to say what its evaluation set is and what its metrics mean.

A spec picks the ones that fit it (``TaskSpec.about`` builds the JSON-ready ``report.json`` entry
``datasets[name]["about"]`` from the table and one model's result; ``TaskSpec.about_lines`` words it;
``TaskSpec.metric_meanings`` lists what its metrics mean), so the report never decides from a result's shape or a
task's name what a set is. Notes that apply to any task (a set derived from another, long documents, queries that
cannot score) are added by ``evaluate.report.set_summary``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from evaluate.report.wording import Quote, num

MAX_LEVELS = 10  # more distinct gold scores than this: a range, not levels
Meaning = tuple[str, str, str]  # (metric-name regex with one group for k, display name, what it measures)

RANKING_MEANINGS: tuple[Meaning, ...] = (
    (r"ndcg@(\d+)", "nDCG@{k}", "ranking quality of the top {k} (1 = every relevant document ranked first, graded)"),
    (r"mrr@(\d+)", "MRR@{k}", "1 / rank of the first relevant document within the top {k}"),
    (r"map@(\d+)", "MAP@{k}", "mean average precision over the top {k}"),
    (r"recall@(\d+)", "recall@{k}", "share of the relevant documents found in the top {k}"),
)
CORRELATION_MEANINGS: tuple[Meaning, ...] = (
    (r"spearman.*()", "Spearman", "rank correlation of the similarity with the gold score over all pairs"),
    (r"pearson.*()", "Pearson", "linear correlation of the similarity with the gold score"),
)
PAIR_CLASS_MEANINGS: tuple[Meaning, ...] = (
    (r"accuracy()", "accuracy", "share of pairs a single similarity threshold (the best one) classifies right"),
    (r"f1()", "F1", "of similar pairs at the similarity threshold that maximises it"),
    (r"ap()", "AP", "average precision of ranking similar pairs above dissimilar ones by similarity"),
)
PROBE_MEANINGS: tuple[Meaning, ...] = (
    (r"accuracy()", "accuracy", "of a cross-validated linear probe on the embeddings"),
    (r"f1_macro()", "macro F1", "of a cross-validated linear probe"),
    (r"roc_auc()", "ROC AUC", "of a cross-validated linear probe (one-vs-rest)"),
)
CLUSTER_MEANINGS: tuple[Meaning, ...] = (
    (r"v_measure()", "V-measure", "of k-means (k = number of classes) against the labels"),
)


# --- retrieval: queries search a corpus ------------------------------------------------------------------------------
def retrieval_about(queries: Mapping[str, str], corpus: Mapping[str, str], qrels: Mapping[str, Mapping]) -> dict:
    """Queries, corpus size, relevant documents per query (min, mean, max) and the relevance grades used."""
    per_query = [sum(1 for grade in qrels.get(q, {}).values() if grade > 0) for q in queries]
    grades = sorted({grade for judged in qrels.values() for grade in judged.values() if grade > 0})
    spread = {"min": min(per_query), "mean": sum(per_query) / len(per_query), "max": max(per_query)} \
        if per_query else {"min": 0, "mean": 0.0, "max": 0}
    return {"queries": len(queries), "corpus": len(corpus), "relevant_per_query": spread, "grades": grades}


def relevant_text(spread: Mapping[str, float]) -> str:
    """'1 relevant document per query', '1 to 3 (mean 1.2) relevant documents per query'."""
    if spread["min"] == spread["max"]:
        return f"{spread['min']:g} relevant document{'s' * (spread['min'] != 1)} per query"
    return f"{spread['min']:g} to {spread['max']:g} (mean {spread['mean']:.2g}) relevant documents per query"


def retrieval_lines(about: Mapping, quote: Quote = str) -> list[str]:
    """'160 queries search a corpus of 160 documents; 1 relevant document per query.'"""
    if "queries" not in about:
        return []
    if "corpus" not in about:  # an older report: only the query count is known
        return [f"{about['queries']} queries (corpus size not recorded)."]
    grades = about.get("grades") or []
    graded = f", judged at grades {', '.join(f'{g:g}' for g in grades)}" if len(grades) > 1 else ""
    return [f"{about['queries']} queries search a corpus of {about['corpus']} documents; "
            f"{relevant_text(about['relevant_per_query'])}{graded}."]


# --- pairs with gold --------------------------------------------------------------------------------------------------
def pairs_about(first: Sequence[str], second: Sequence[str], gold: Sequence[float]) -> dict:
    """Pairs, distinct texts, and the gold levels with their pair counts (or only the range when there are many)."""
    levels = Counter(float(g) for g in gold)
    out = {"pairs": len(gold), "texts": len(set(first) | set(second)),
           "gold_range": [min(levels), max(levels)] if levels else None}
    if len(levels) <= MAX_LEVELS:
        out["gold_levels"] = {f"{g:g}": n for g, n in sorted(levels.items())}
    return out


def pairs_lines(about: Mapping, quote: Quote = str) -> list[str]:
    """'8 pairs of 8 distinct texts; 3 gold levels: 0 (2 pairs), 0.4 (2 pairs), 1 (4 pairs).'"""
    if "pairs" not in about:
        return []
    levels = about.get("gold_levels")
    if levels:
        gold = f"{len(levels)} gold levels: " + ", ".join(f"{g} ({n} pairs)" for g, n in levels.items())
    else:
        low, high = about.get("gold_range") or (None, None)
        gold = f"gold scores from {num(low, 'g')} to {num(high, 'g')}"
    texts = f" of {about['texts']} distinct texts" if about.get("texts") else ""
    return [f"{about['pairs']} pairs{texts}; {gold}."]


# --- labelled texts ---------------------------------------------------------------------------------------------------
def classes_about(labels: Sequence[object]) -> dict:
    counts = Counter(labels)
    return {"texts": len(labels), "classes": len(counts), "smallest_class": min(counts.values(), default=0)}


def classes_lines(about: Mapping, quote: Quote = str) -> list[str]:
    if "classes" not in about:
        return []
    return [f"{about['texts']} texts in {about['classes']} classes (the smallest has {about['smallest_class']})."]


# --- anything else ----------------------------------------------------------------------------------------------------
def rows_lines(about: Mapping, quote: Quote = str) -> list[str]:
    """What a spec that says nothing of its own set can say: how many rows it has."""
    return [f"{about['rows']} rows."] if "rows" in about else []
