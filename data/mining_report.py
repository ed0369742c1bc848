"""What hard-negative mining did, in numbers a person can check: candidates, what each false-negative guard
dropped, score distributions of positives and mined negatives, and example anchors. Pure: returns dicts and text."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from datasets import Dataset

from configs.schema import HardNegativesConfig
from data.table import Table

EXAMPLES = 5
CHUNK = 1024  # queries scored at a time: bounds the (queries, corpus) similarity matrix


def quartiles(values: list[float]) -> dict:
    """count, min, q1, median, q3, max (empty: count 0 only)."""
    if not values:
        return {"count": 0}
    q = np.percentile(np.asarray(values, dtype=np.float64), [0, 25, 50, 75, 100])
    return {"count": len(values), **{k: round(float(v), 4) for k, v in zip(("min", "q1", "median", "q3", "max"), q)}}


def guard_counts(plan, model, settings: HardNegativesConfig, embeddings: tuple) -> dict:
    """Per guard, how many candidates in the anchors' windows it dropped, recomputed from the embeddings the
    library used and applied in the library's order (absolute margin, relative margin, max_score, range_min).

    The window of an anchor is its ``range_max + max positives`` most similar texts minus its positives, as in
    ``mine_hard_negatives``; ``considered`` sums the window sizes."""
    import torch
    queries = list(dict.fromkeys(plan.dataset["anchor"]))
    corpus = list(dict.fromkeys(plan.corpus + list(plan.dataset["positive"])))
    q_emb, c_emb = (torch.as_tensor(e) for e in embeddings)
    if q_emb.shape[0] != len(queries) or c_emb.shape[0] != len(corpus):
        return {}  # the library changed how it caches: no counts rather than wrong ones
    index = {text: i for i, text in enumerate(corpus)}
    positives: dict[int, list[int]] = defaultdict(list)
    order = {q: i for i, q in enumerate(queries)}
    for anchor, positive in zip(plan.dataset["anchor"], plan.dataset["positive"]):
        positives[order[anchor]].append(index[positive])
    k = min((settings.range_max or len(corpus)) + max(len(set(p)) for p in positives.values()), len(corpus))
    counts = dict.fromkeys(("considered", "absolute_margin", "relative_margin", "max_score", "range_min"), 0)
    for start in range(0, len(queries), CHUNK):
        scores = model.similarity(q_emb[start:start + CHUNK], c_emb).float()  # (chunk, n_corpus)
        _count_chunk(scores, [positives[q] for q in range(start, start + scores.shape[0])], k, settings, counts)
    return counts


def _count_chunk(scores, positives: list[list[int]], k: int, s: HardNegativesConfig, counts) -> None:
    import torch

    top, idx = torch.topk(scores, k=k, dim=1)  # (chunk, k)
    is_pos = torch.stack([torch.isin(idx[r], torch.tensor(p)) for r, p in enumerate(positives)])
    min_pos = torch.stack([scores[r, p].min() for r, p in enumerate(positives)])[:, None]  # (chunk, 1)
    alive = ~is_pos
    counts["considered"] += int(alive.sum())
    guards = {"absolute_margin": None if s.absolute_margin is None else top + s.absolute_margin > min_pos,
              "relative_margin": None if s.relative_margin is None
              else top > min_pos - min_pos.abs() * s.relative_margin,
              "max_score": None if s.max_score is None else top > s.max_score}
    for name, dropped in guards.items():
        if dropped is not None:
            counts[name] += int((alive & dropped).sum())
            alive &= ~dropped
    counts["range_min"] += int(alive.sum(dim=1).clamp(max=s.range_min).sum())


def examples(rows: Dataset, limit: int = EXAMPLES, width: int = 300) -> list[dict]:
    """The first ``limit`` distinct anchors with their positive, mined negatives and scores."""
    negatives = [c for c in rows.column_names if c.startswith("negative_")]
    seen, found = set(), []
    for row in rows:
        if row["anchor"] in seen:
            continue
        seen.add(row["anchor"])
        found.append({"anchor": row["anchor"][:width], "positive": row["positive"][:width],
                      "negatives": [row[c][:width] for c in negatives],
                      "scores": [round(s, 4) for s in row["scores"]]})
        if len(found) == limit:
            break
    return found


def summary(settings, miner: dict, source: str, plan, model, embeddings: tuple, outcome: tuple, train: Table,
            held_out: list[Table], seconds: float) -> dict:
    """Everything stats.json / stats.md / meta.json say about mining (see ``mining_markdown``)."""
    mined, rows, violations = outcome
    negatives = [c for c in rows.column_names if c.startswith("negative_")]
    pairs = set(zip(train.rows["anchor"], train.rows["positive"]))
    held = {t for table in held_out for c in ("positive", "sentence2") if c in table.rows.column_names
            for t in table.rows[c]}
    mined_texts = {row[c] for row in rows for c in negatives}
    counts = guard_counts(plan, model, settings, embeddings)
    return {
        "settings": settings.model_dump(), "model": miner, "candidates_from": source, "seconds": round(seconds, 1),
        "candidates": {"given": plan.candidates_given, "unique": len(plan.corpus),
                       "merged_as_normalised_duplicates": plan.candidates_given - len(plan.corpus)},
        "guards": {**counts, "positive_duplicates_masked": len(plan.masked), "rows_failing_final_check": violations},
        "rows": {"pairs": len(train.rows), "distinct_pairs": len(pairs), "kept": len(rows),
                 "dropped_too_few_negatives": len(pairs) - len(rows) - violations},
        "negatives_that_are_dev_or_test_positives": len(mined_texts & held),
        "scores": {"positive": quartiles([s[0] for s in rows["scores"]]),
                   "negative": quartiles([v for s in rows["scores"] for v in s[1:]])},
        "examples": examples(rows),
    }


def meta_record(report: dict) -> dict:
    """The part of the summary that identifies the mined split (for meta.json): settings, miner, the precision it
    encoded in (and the export that encoded, if one did), counts."""
    return {k: report[k] for k in ("settings", "model", "precision", "backend", "candidates", "guards", "rows")
            if k in report}


GUARD_WORDS = {
    "absolute_margin": "within absolute_margin of the positive's score",
    "relative_margin": "within relative_margin of the positive's score",
    "max_score": "above max_score",
    "range_min": "among the range_min most similar survivors (skipped)",
}


def mining_markdown(report: dict) -> list[str]:
    """The 'Hard negatives' section of stats.md."""
    s, c, g, r = report["settings"], report["candidates"], report["guards"], report["rows"]
    lines = ["## Hard negatives (train split only)", "",
             f"- miner: {report['model']['name']} (fingerprint {report['model']['fingerprint'][:16]}...), encoding in "
             f"{report.get('precision', 'fp32')}" + (f" by its {report['backend']} export" if "backend" in report
                                                     else ""),
             f"- settings: {', '.join(f'{k}={v}' for k, v in s.items() if k != 'model')}",
             f"- candidates: {c['unique']} texts ({c['given']} given, {c['merged_as_normalised_duplicates']} merged "
             f"as duplicates after normalising case and whitespace) from {report['candidates_from']}",
             f"- kept {r['kept']} of {r['distinct_pairs']} distinct pairs ({r['pairs']} rows); "
             f"{r['dropped_too_few_negatives']} dropped with fewer than {s['num_negatives']} negatives left "
             "(a larger range_max keeps more of them); "
             f"mined in {report['seconds']} s"]
    if "considered" in g:
        lines.append(f"- probable false negatives dropped, of {g['considered']} candidates scored in the anchors' "
                     "windows: " + "; ".join(f"{g[k]} {w}" for k, w in GUARD_WORDS.items() if g.get(k)))
    if "excluded_left_out" in g:
        lines.append("- texts that answer the anchor but are not its positive (documents judged relevant to its query "
                     "that are not training pairs; the other windows of its positive's document) left out of its "
                     f"candidates after ranking: {g['excluded_left_out']}")
    lines += [f"- normalised duplicates of an anchor's positives (or of the anchor) masked: "
              f"{g['positive_duplicates_masked']}; rows failing the final duplicate check: "
              f"{g['rows_failing_final_check']}",
              f"- mined negatives that are dev/test positives: {report['negatives_that_are_dev_or_test_positives']}",
              "", "| similarity | count | min | q1 | median | q3 | max |", "|---|---|---|---|---|---|---|"]
    for name, q in report["scores"].items():
        cells = [str(q.get(k, "")) for k in ("count", "min", "q1", "median", "q3", "max")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Examples:", ""]
    for e in report["examples"]:
        lines.append(f"- anchor: {e['anchor'][:160]!r} → positive ({e['scores'][0]}): {e['positive'][:120]!r}")
        lines += [f"  - negative ({score}): {text[:120]!r}" for text, score in zip(e["negatives"], e["scores"][1:])]
    return lines + [""]
