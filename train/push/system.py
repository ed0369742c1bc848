"""The retrieval system the report measured best, published so anyone can run it: ``retrieval.json`` and the card's
section with a snippet that reproduces its ranking.

On the primary retrieval set (``report.json`` ``primary``, else the first retrieval set) the candidates are

| system | what it is | report.json entry |
|---|---|---|
| ``model`` | the model alone, reading each document up to max_seq_length | tuned; chunked set: ``truncated`` |
| ``chunked`` | the model, each document scored by its best token window (MaxP) | tuned, when the set was chunked |
| ``hybrid_convex`` | weight x min-max(model) + (1 - weight) x min-max(BM25), weight chosen on dev | reference row |
| ``hybrid_rrf`` | reciprocal rank fusion (k = 60) of the model's and BM25's top 100 | reference row |

The hybrids fuse the dense ranking the set was evaluated with (chunked when it was). The best system is the one with
the highest test value of the set's main metric (ties: the simpler one, in the table's order). BM25 alone, rerankers
and baseline rows are listed among the candidates but never chosen: they do not use the published model (a BM25 that
beats the model stops the push gate instead, ``train.push.gate``). A hybrid folded into the row it equals (a dev
weight of 0 or 1) is not a candidate.

``push.system: best`` describes the best system; ``model`` the model alone. ``retrieval.json`` records both what was
measured best and what is described, with every candidate's main metric.
"""

from __future__ import annotations

import json
from pathlib import Path

from configs.schema import RunConfig
from evaluate.report.markdown import md_escape
from evaluate.report.writers import num
from train.push.card_usage import model_ref
from train.push.system_snippet import snippet_text

SYSTEMS = ("model", "chunked", "hybrid_convex", "hybrid_rrf")  # publishable, simplest first (the tie order)
RETRIEVAL_JSON = "retrieval.json"
DESCRIPTIONS = {
    "model": "the model alone (each document read up to the model's max_seq_length)",
    "chunked": "the model with chunked documents (each document scores its best token window, MaxP)",
    "hybrid_convex": "a hybrid of the model and BM25 (convex mix of min-max normalised scores)",
    "hybrid_rrf": "a hybrid of the model and BM25 (reciprocal rank fusion)",
}


def primary_retrieval_set(report: dict) -> str | None:
    """The dataset whose systems are compared: the primary one when it is a retrieval set, else the first."""
    datasets = report.get("datasets", {})
    primary = (report.get("primary") or {}).get("dataset")
    if primary in datasets and datasets[primary].get("task") == "retrieval":
        return primary
    return next((name for name, info in datasets.items() if info.get("task") == "retrieval"), None)


def _chunking(info: dict) -> dict | None:
    """{max_tokens, overlap, first_whole} when the set was evaluated chunked, else None."""
    chunked = ((info.get("about") or {}).get("long_documents") or {}).get("chunked")
    return {"max_tokens": chunked["max_tokens"], "overlap": chunked["overlap"],
            "first_whole": bool(chunked.get("first_whole"))} if chunked else None


def candidates(info: dict) -> dict[str, dict]:
    """system name -> {metrics, vs (paired statistics and what they compare with), publishable, description} of one
    retrieval set's report entry."""
    main, rows = info["main_metric"], info.get("reference") or {}
    tuned = {"metrics": {m: v.get("tuned") for m, v in info["metrics"].items()},
             "vs": {"against": "baseline", main: info["metrics"][main]}}
    out = {}
    if _chunking(info):
        out["chunked"] = tuned
        if "truncated" in rows:
            out["model"] = {"metrics": rows["truncated"]["metrics"], "vs": rows["truncated"]["vs"]}
    else:
        out["model"] = tuned
    for name, row in rows.items():
        if name not in out and not row.get("folded_into") and name != "truncated":
            out[name] = {"metrics": row.get("metrics", {}), "vs": row.get("vs", {})}
    for name, entry in out.items():
        entry.update(publishable=name in SYSTEMS,
                     description=DESCRIPTIONS.get(name) or (rows.get(name) or {}).get("description", name))
    return out


def best_system(found: dict[str, dict], main: str) -> str:
    """The publishable candidate with the highest ``main`` metric (ties: the simpler one)."""
    scored = [(found[n]["metrics"].get(main), -SYSTEMS.index(n)) for n in SYSTEMS if n in found]
    scored = [(value, order) for value, order in scored if value is not None]
    return SYSTEMS[-max(scored)[1]] if scored else "model"


def system_settings(name: str, info: dict, report: dict) -> dict:
    """How to run system ``name`` as the evaluation ran it: the dense part (chunking, prompts, similarity), BM25's
    tokenizer and parameters, and the fusion."""
    prompts = (report.get("prompts") or {}).get("tuned") or {}
    dense = {"chunking": _chunking(info) if name != "model" else None, "scoring": "MaxP",
             "similarity": (report.get("similarity") or {}).get("tuned", "cosine"),
             "prompts": {role: (prompts.get(role) or {}).get("prompt", "") for role in ("query", "document")}}
    if dense["chunking"] is None:
        dense.pop("scoring")
    if not name.startswith("hybrid_"):
        return {"dense": dense, "bm25": None, "fusion": None}
    details = dict(info["reference"][name].get("details") or {})
    bm25 = details.pop("bm25", None) or (info["reference"].get("bm25") or {}).get("details")
    bm25 = {k: v for k, v in (bm25 or {}).items() if k != "unranked"}
    method = {"method": "convex"} if name == "hybrid_convex" else {"method": "rrf"}
    return {"dense": dense, "bm25": bm25, "fusion": {**method, **details}}


def retrieval_record(config: RunConfig, report: dict | None) -> dict | None:
    """What ``retrieval.json`` holds; None when the report has no retrieval set."""
    name = primary_retrieval_set(report or {})
    if name is None:
        return None
    info = report["datasets"][name]
    found, main = candidates(info), info["main_metric"]
    best = best_system(found, main)
    published = best if config.push.system == "best" else "model"
    if published not in found:  # a chunked set without its truncated row: the chunked model is what was measured
        published = "chunked"
    chosen = found[published]
    return {"dataset": name, "metric": main, "measured_best": best, "published": published,
            "push_system": config.push.system, "description": chosen["description"],
            "settings": system_settings(published, info, report), "metrics": chosen["metrics"],
            "interval": chosen["vs"],
            "candidates": {n: {main: c["metrics"].get(main), "publishable": c["publishable"],
                               "description": c["description"]} for n, c in found.items()},
            "folded": {n: r["folded_into"] for n, r in (info.get("reference") or {}).items() if r.get("folded_into")}}


def write_retrieval_json(config: RunConfig, report: dict | None, out: Path) -> dict | None:
    """Write ``retrieval.json`` into the folder being published (``out``, itself written atomically)."""
    record = retrieval_record(config, report)
    if record is not None:
        (out / RETRIEVAL_JSON).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def system_card_section(config: RunConfig, report: dict | None) -> list[str]:
    """The card's "Retrieval system" section: which system measured best on the primary retrieval set, every
    candidate's main metric, and a snippet (sentence-transformers, and bm25s for a hybrid) that reproduces the
    described system's ranking. Empty when the report has no retrieval set."""
    record = retrieval_record(config, report)
    if record is None:
        return []
    metric, best, shown = record["metric"], record["measured_best"], record["published"]
    lines = ["## Retrieval system", "",
             f"On {md_escape(record['dataset'])} (held-out test, {md_escape(metric)}) the system that measured best "
             f"is **{record['candidates'][best]['description']}**: {num(record['candidates'][best][metric])}.", ""]
    if shown != best:
        lines += [f"This card describes {record['description']} instead (`push.system: {config.push.system}`): "
                  f"{num(record['metrics'].get(metric))}.", ""]
    lines += ["| system | " + md_escape(metric) + " | can be run from this card |", "|---|---:|---|"]
    lines += [f"| {md_escape(n)} | {num(c[metric])} | {'yes' if c['publishable'] else 'no'} |"
              for n, c in record["candidates"].items()]
    lines += [*[f"`{md_escape(n)}` is the same ranking as `{md_escape(into)}` (its dev-chosen weight is an end "
                "of the grid) and is not listed." for n, into in record["folded"].items()],
              "", f"How to run {record['description']} (`{RETRIEVAL_JSON}` in this folder holds its settings):", "",
              "```python", snippet(record["published"], record["settings"], model_ref(config)).rstrip(), "```"]
    return lines


def snippet(name: str, settings: dict, ref: str) -> str:
    """Python that ranks a corpus as system ``name`` did in the evaluation (``settings``: ``system_settings``)."""
    return snippet_text(name, settings, ref)
