"""What the prepared data looks like before anyone trains on it: sizes, balance, duplicates, truncation."""

from __future__ import annotations

import statistics
from collections import Counter

from datasets import Dataset

from data.checks import text_columns
from data.mining_report import mining_markdown


def split_stats(rows: Dataset, tokenizer=None, max_seq_length: int | None = None) -> dict:
    """Rows, label balance, duplicate pairs and token lengths of one split. Pure: returns a dict."""
    stats: dict = {"rows": len(rows), "groups": len(set(rows["group"])) if "group" in rows.column_names else None}
    if "score" in rows.column_names:
        scores = rows["score"]
        stats["score"] = {"mean": statistics.fmean(scores), "min": min(scores), "max": max(scores),
                          "share_at_least_0.5": sum(s >= 0.5 for s in scores) / len(scores)}
    if "label" in rows.column_names:
        stats["label_counts"] = {str(k): v for k, v in sorted(Counter(rows["label"]).items())}
    texts = text_columns(rows.column_names)
    pairs = list(zip(*(rows[c] for c in texts)))
    stats["duplicate_pairs"] = len(pairs) - len(set(pairs))
    if tokenizer is not None and max_seq_length:
        stats["tokens"] = {c: token_lengths(rows[c], tokenizer, max_seq_length) for c in texts}
    return stats


def token_lengths(texts: list[str], tokenizer, max_seq_length: int) -> dict:
    """Token counts (with special tokens) and the share of texts the model will truncate."""
    lengths = sorted(len(ids) for ids in tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"])
    return {
        "mean": statistics.fmean(lengths),
        "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        "max": lengths[-1],
        "max_seq_length": max_seq_length,
        "share_truncated": sum(n > max_seq_length for n in lengths) / len(lengths),
    }


def stats_markdown(stats: dict) -> str:
    """A table per split, for people."""
    lines = ["# Prepared data", ""]
    for split, info in stats["splits"].items():
        lines += [f"## {split}: {info['rows']} rows, {info.get('groups')} groups, "
                  f"{info['duplicate_pairs']} duplicate pairs", ""]
        if "score" in info:
            s = info["score"]
            lines.append(f"- score: mean {s['mean']:.3f}, range {s['min']:.3f}–{s['max']:.3f}, "
                         f"{s['share_at_least_0.5']:.1%} at least 0.5")
        if "label_counts" in info:
            lines.append("- labels: " + ", ".join(f"{k}: {v}" for k, v in info["label_counts"].items()))
        for column, t in info.get("tokens", {}).items():
            lines.append(f"- {column}: {t['mean']:.1f} tokens on average, p95 {t['p95']}, max {t['max']}; "
                         f"{t['share_truncated']:.1%} longer than max_seq_length {t['max_seq_length']}")
        lines.append("")
    if stats.get("chunking"):
        lines += chunking_markdown(stats["chunking"])
    if stats.get("hard_negatives"):
        lines += mining_markdown(stats["hard_negatives"])
    if stats.get("shared_texts"):
        lines.append(f"Texts shared between train and test (source splits): {stats['shared_texts']}")
    return "\n".join(lines) + "\n"


def chunking_markdown(info: dict) -> list[str]:
    """What data.chunking did to the training positives: documents split, positives moved, a few examples."""
    how = {"similarity": "the window the base model scores closest to its anchor",
           "bm25": "the window with the highest BM25 score for its anchor",
           "all": "every window, each a training row of its own"}[info["positive"]]
    lines = ["## Long positives as token windows (data.chunking)", "",
             f"- {info['documents_split']:,} of {info['documents']:,} documents are longer than "
             f"{info['max_tokens']} tokens and were split into windows ({info['windows']:,} windows, overlap "
             f"{info['overlap']}); hard negatives, when mined, are drawn from these windows.",
             f"- {info['pairs_with_long_positive']:,} of {info['pairs']:,} training pairs had a positive longer than "
             f"the model reads ({info['positive_documents_split']:,} of {info['positive_documents']:,} positive "
             f"documents); each now trains on {how}.",
             f"- {info['moved_past_first_window']:,} positives are a window after the first: text the model never "
             "saw when the positive was truncated. The positive's other windows are never its anchor's negatives.",
             ""]
    for example in info.get("examples", []):
        lines.append(f"  - \"{example['anchor']}\" → window {example['window']} of {example['windows']}: "
                     f"\"{example['text']}…\"")
    return lines + ([""] if info.get("examples") else [])
