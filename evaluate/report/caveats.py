"""What a reader must know before trusting the numbers, written once for report.md, report.html and the model card.

- ``reference_caveats``: a reference row (BM25, a hybrid) that is significantly better than the tuned model on the
  primary set, said next to the verdict;
- ``precision_sentence``: which precision the embeddings were computed in (bf16 changes the last digits);
- ``evaluation_notes``: per set, what it is (its task spec's words), uninformative metrics, whether it is
  independent of another set, queries that cannot score, and how leakage was checked.

Every function returns plain text; user strings pass through ``quote`` as in :mod:`evaluate.report.wording`.
"""

from __future__ import annotations

from evaluate.report import wording
from evaluate.report.set_summary import about_from_details, about_lines
from evaluate.report.wording import Quote, num


def reference_caveats(report: dict, quote: Quote = str) -> list[str]:
    """'But bm25 (...) is significantly better than the tuned model on incidents ndcg@10: ...' for every reference
    row of the primary set whose paired comparison against the tuned model is a significant gain."""
    primary = report.get("primary") or {}
    info = (report.get("datasets") or {}).get(primary.get("dataset"), {})
    metric, out = primary.get("metric"), []
    for name, row in (info.get("reference") or {}).items():
        compared = wording.reference_stats(row, metric)
        if not compared or compared[0] != "tuned":
            continue
        stats = compared[1]
        if stats.get("significant") and (stats.get("delta") or 0) > 0:
            what = f" ({quote(row['description'])})" if row.get("description") else ""
            value = (row.get("metrics") or {}).get(metric)
            out.append(f"But {quote(name)}{what} is significantly better than the tuned model on "
                       f"{quote(primary['dataset'])} {quote(metric)}: {num(value)} against {num(primary.get('tuned'))}"
                       f" (Δ {num(stats.get('delta'), '+.4f')}, 95% CI {wording.interval_text(stats)}"
                       + (f", {wording.p_words(stats)}" if wording.p_words(stats) else "") + ").")
    return out


def precision_sentence(report: dict) -> str:
    """'Embeddings computed in bf16 for both models (not fp32): ...' or '... in fp32.'"""
    used = {str(e.get("precision") or "fp32") for e in (report.get("encoding") or {}).values()}
    if not used:
        return ""
    if used == {"fp32"}:
        return "Embeddings were computed in fp32."
    shown = ", ".join(f"{model} {e.get('precision') or 'fp32'}" for model, e in report["encoding"].items())
    return (f"Embeddings were computed in reduced precision ({shown}), not fp32: the last digits of a score can "
            "differ from an fp32 evaluation.")


def set_notes(name: str, info: dict, quote: Quote) -> list[str]:
    """What set ``name`` is, and which of its metrics tell little."""
    about = about_from_details(info, None)
    flags = [wording.uninformative(m, about.get("corpus")) for m in info["metrics"]]
    return [*about_lines(about, quote, info.get("task")), *[f for f in flags if f]]


def evaluation_notes(report: dict, quote: Quote = str) -> list[str]:
    """The card's "Evaluation and limitations" items: per set what it is and its flags, how leakage was checked,
    the precision, and a reference row that beats the tuned model."""
    datasets = report.get("datasets") or {}
    lines = [f"{quote(name)} ({info['task']}): " + " ".join(set_notes(name, info, quote))
             for name, info in datasets.items()]
    lines += [f"{label}: {text}" for _, label, text in wording.leakage_statements(
        report.get("leakage") or {}, list(datasets), report.get("leakage_checked"), quote,
        report.get("leakage_comparison"))]
    lines += [s for s in (precision_sentence(report), *reference_caveats(report, quote)) if s]
    return lines
