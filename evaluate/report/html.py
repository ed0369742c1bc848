"""``report.html``: one self-contained page (inline CSS, inline SVG, one small inline script, no network).

Rendered from ``templates/report.html.j2`` by jinja2 with autoescaping, from ``eval/report.json`` (the numbers),
``eval/details.json`` (per dataset: scored pairs, per-query wins and losses, similarity samples, a 2-D map), the
run's ``run.json`` (training curves) and ``eval/merge.json`` (the merge frontier, when it evaluated the same tuned
model). This module only arranges plain values for the template; the words come from
:mod:`evaluate.report.wording` (shared with ``report.md``) and the charts from :mod:`evaluate.report.charts`. Data never
reaches the ``<script>`` block or an unquoted attribute.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from evaluate.report import caveats, frontier, legends, run_summary, wording
from evaluate.report.charts import delta_histogram, map_view, pair_charts, short, training_charts
from evaluate.report.set_summary import about_from_details, about_lines
from evaluate.report.wording import num, p_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
CSS = Markup((TEMPLATES / "report.css").read_text(encoding="utf-8"))
# Click a header to sort its table; numbers sort numerically, the rest as text. Reads no data from the page source.
SORT_JS = (TEMPLATES / "sort.js").read_text(encoding="utf-8")
# Defence in depth: only the script above may run (by hash), and nothing may be fetched from anywhere.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; script-src 'sha256-"
       + base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode() + "'")
METRIC_HEAD = ("metric", "baseline → tuned", "Δ [95% CI]", "p (resamples)", "significant")
DOCS_SHOWN, DOC_CHARS = 3, 110  # per-query view: each model's top documents, each cut to this many characters


def cell(text: object, cls: str = "", sub: str = "") -> dict:
    """A table cell: its text, CSS class and an optional second line (the interval under a delta)."""
    return {"text": text, "cls": cls, "sub": sub}


def metric_row(info: dict, metric: str, v: dict, flagged: bool) -> dict:
    """One metrics-table row: metric, baseline → tuned, delta over its interval, p with its resample count, verdict.
    The main metric in bold, significant gains green and losses red, an uninformative metric marked †."""
    classes = ["main"] * (metric == info["main_metric"]) + ["uninformative"] * flagged
    if v.get("significant") and v.get("delta") is not None:
        classes.append("gain" if v["delta"] > 0 else "loss")
    n = v.get("n_resamples")
    p = p_text(v.get("p_value"), n) + (f" ({n:,})" if n and v.get("p_value") is not None else "")
    significant = ("yes" if v["significant"] else "no") if "significant" in v else "—"
    return {"cls": " ".join(classes), "cells": [
        cell(metric + " †" * flagged, "metric"), cell(f"{num(v['baseline'])} → {num(v['tuned'])}", "num"),
        cell(num(v["delta"], "+.4f"), "num delta", wording.interval_text(v)), cell(p, "num"), cell(significant)]}


def metrics_view(levels: dict[str, dict], table_id: str, corpus: dict[str, int | None], dims: bool = False) -> dict:
    """The metrics table, one row group per dataset (per truncation level and dataset when ``dims``), its notes."""
    groups, notes = [], []
    for level, sets in levels.items():
        for name, info in sets.items():
            rows = [metric_row(info, metric, v, bool(wording.uninformative(metric, corpus.get(name))))
                    for metric, v in info["metrics"].items()]
            notes += [f"{level} {name} {m}: {v['undefined']}".strip() for m, v in info["metrics"].items()
                      if v.get("undefined")]
            heading = f"{level} dimensions · {name}" if dims else name
            groups.append({"heading": heading, "task": info["task"], "rows": rows})
    return {"table": {"id": table_id, "sortable": True, "head": METRIC_HEAD, "groups": groups},
            "notes": [f"Undefined (—): {n}" for n in notes]}


def reference_view(info: dict) -> dict | None:
    """BM25, hybrid, rerank or chunked rows beside the baseline and tuned model, and which wins, in words. A row's
    description goes under the table (a long description in a cell wraps to many lines on a phone)."""
    rows = info.get("reference") or {}
    if not rows:
        return None
    metrics, main = list(info["metrics"]), info["main_metric"]
    values = {m: {"baseline": v.get("baseline"), "tuned": v.get("tuned")} for m, v in info["metrics"].items()}
    table_rows = [{"cls": "", "cells": [cell(model)] + [cell(num(values[m][model]), "num") for m in metrics]
                   + [cell("")]} for model in ("baseline", "tuned")]
    sentences, described = [], []
    for name, row in rows.items():
        compared = wording.reference_stats(row, main)
        vs = cell(num(compared[1].get("delta"), "+.4f"), "num", f"vs {compared[0]}") if compared else cell("—")
        table_rows.append({"cls": "reference", "cells": [cell(name)] + [
            cell(num(row.get("metrics", {}).get(m)), "num") for m in metrics] + [vs]})
        sentences += [wording.comparison_sentence(name, *compared, main)] if compared else []
        described += [f"{name}: {row['description']}"] if row.get("description") else []
    ranking = {**{m: values[main][m] for m in ("baseline", "tuned")},
               **{n: r.get("metrics", {}).get(main) for n, r in rows.items()}}
    head = ("row", *metrics, f"Δ {main}")
    return {"table": {"id": "", "sortable": False, "head": head, "rows": table_rows}, "described": described,
            "sentences": [wording.ranking_sentence(ranking, main), *sentences]}


def query_row(q: dict) -> dict:
    def side(result: dict) -> dict:
        top = [{"text": short(d["text"], DOC_CHARS), "score": num(d["score"], ".3f"),
                "relevant": bool(d.get("relevant"))} for d in result.get("top", [])[:DOCS_SHOWN]]
        return {"ndcg": num(result.get("ndcg@10"), ".3f"), "top": top}
    return {"cls": "gain" if q["delta"] > 0 else "loss" if q["delta"] < 0 else "", "query": q["query"],
            "relevant": "; ".join(short(r, 80) for r in q.get("relevant", [])), "delta": num(q["delta"], "+.3f"),
            "move": wording.rank_move(q).removeprefix("rank "), "baseline": side(q["baseline"]),
            "tuned": side(q["tuned"])}


def queries_view(detail: dict) -> dict | None:
    """The biggest per-query wins and losses, the won/tied/lost counts and the histogram of per-query deltas."""
    queries = sorted(detail.get("queries") or [], key=lambda q: q["delta"], reverse=True)
    if not queries:
        return None
    record = detail.get("per_query_delta") or {}
    deltas, metric = record.get("values"), record.get("metric", "nDCG@10")
    counts = wording.win_counts(deltas if deltas is not None else [q["delta"] for q in queries])
    words = f"{counts['won']} won, {counts['tied']} tied, {counts['lost']} lost"
    words += f" of {len(deltas)} queries" if deltas is not None else f" among the {len(queries)} shown"
    depth = max((len(q["baseline"].get("top", [])) for q in queries), default=0)
    return {"counts": words, "metric": metric, "depth": depth, "rows": [query_row(q) for q in queries],
            "histogram": delta_histogram(deltas, metric) if deltas else None}


def same_map_as(details: dict) -> dict[str, str]:
    """{set: the earlier set whose map plots the same texts}: a map is drawn once per distinct text set."""
    seen: dict[frozenset, str] = {}
    out = {}
    for name, detail in details.items():
        texts = frozenset((detail or {}).get("map", {}).get("texts") or ())
        if texts and texts in seen:
            out[name] = seen[texts]
        seen.setdefault(texts, name) if texts else None
    return out


def dataset_view(name: str, info: dict, detail: dict | None, run_dir: str, same_map: str | None = None) -> dict:
    """One dataset's section: what the set is, its legend and flags, reference rows, then its pictures (its map
    only when no earlier set's map plots the same texts: ``same_map`` names that set)."""
    about = about_from_details(info, detail)
    flags = [wording.uninformative(m, about.get("corpus")) for m in info["metrics"]]
    detail = detail or {}
    charts = pair_charts(detail)
    meanings = legends.task_meanings(info["task"], list(info["metrics"]))
    return {"name": name, "task": info["task"], "about": about_lines(about, str, info["task"]),
            "rows": info.get("rows", "?"), "source": wording.source_name(info.get("source", ""), run_dir),
            "fingerprint": str(info.get("fingerprint", ""))[:16],
            "legend": f"{meanings} {legends.task_legend(info['task'])}".strip(),
            "notes": [f for f in flags if f], "reference": reference_view(info), "has_details": bool(detail),
            "charts": [{"heading": charts[0], "panels": charts[1], "caption": charts[2]}] if charts else [],
            "map": map_view(detail["map"], legends.map_look_for(info["task"])) if detail.get("map") and not same_map
            else None,
            "same_map": same_map, "queries": queries_view(detail)}


def training_view(run: dict | None) -> dict | None:
    """The plan, which step final/ is, and the loss and dev-metric curves from run.json."""
    if not run:
        return None
    loss, dev, dev_name = run_summary.curves(run)
    base = run_summary.base_dev_score(run)
    captions = ["Training loss: the loss of each logged batch (in the loss's own units; lower is better)."] * bool(loss)
    captions += [run_summary.dev_caption(run, dev_name)] if dev else []
    return {"plan": run_summary.plan_text(run), "final": run_summary.final_text(run), "captions": captions,
            "charts": training_charts(loss, [p for p in dev if p[0] != 0], dev_name, run_summary.final_step(run),
                                      base)}


def same_tuned_model(merge: dict | None, report: dict) -> bool:
    """Whether ``merge`` (merge.json) interpolated the tuned model ``report`` evaluated (and, where both record it,
    from the same base): a frontier of an earlier final/ is not shown beside this one's numbers."""
    if not merge or not report.get("tuned_fingerprint"):
        return False
    bases = merge.get("base_fingerprint"), report.get("base_fingerprint")
    return merge.get("tuned_fingerprint") == report["tuned_fingerprint"] and (None in bases or bases[0] == bases[1])


def change_class(entry: dict) -> str:
    """A number cell, green for a significant gain over the base and red for a significant loss."""
    delta = entry.get("delta")
    moved = "" if not entry.get("significant") or not delta else " gain" if delta > 0 else " loss"
    return "num" + moved


def merge_view(record: dict) -> dict:
    """The merge frontier: its picture, one row per ratio (the merged model's value, delta [95% CI] and * per set;
    the suggested ratio in bold), the suggestion in words and what a row is."""
    best, cols = frontier.suggested(record), frontier.columns(record)
    rows = [{"cls": "main" if row is best else "",
             "cells": [(f"{row['ratio']:g}", "num")] + [(frontier.cell(entry), change_class(entry)) for entry in
                                                         (frontier.main_entry(row, n, m) for n, m, _ in cols)]}
            for row in record["ratios"]]
    legend = f"{frontier.FRONTIER_LEGEND} Bold: the suggested ratio; green / red: a significant gain / loss."
    return {"chart": frontier.frontier_svg(record), "suggestion": frontier.suggestion_text(record, str),
            "table": {"id": "merge", "sortable": False, "head": ("r", *frontier.headings(record, str)),
                      "rows": rows}, "legend": legend}


def prompts_view(prompts: dict) -> dict:
    """The prompt each role was encoded with (per model, repr so spaces show) and where each came from."""
    base, tuned = prompts.get("baseline") or {}, prompts.get("tuned") or {}
    rows = []
    for role in dict.fromkeys([*base, *tuned]):
        b, t = base.get(role, {}), tuned.get(role, {})
        rows.append({"cls": "", "cells": [(role, ""), ((b or t).get("encode", ""), ""), (repr(b.get("prompt", "")), ""),
                                           (repr(t.get("prompt", "")), ""),
                                           (f"{b.get('source', '')} / {t.get('source', '')}", "")]})
    return {"id": "", "sortable": False, "rows": rows,
            "head": ("texts", "encoded with", "baseline prompt", "tuned prompt", "from (baseline / tuned)")}


def encoding_view(encoding: dict) -> dict:
    rows = [{"cls": "", "cells": [(model, ""), (num(e["seconds"], ".1f"), "num"), (str(int(e["texts"])), "num"),
                                  (num(e["texts"] / e["seconds"] if e["seconds"] and not e.get("cached") else None,
                                       ".0f"), "num"),
                                  ("yes" if e.get("cached") else "no", "")]} for model, e in encoding.items()]
    return {"id": "", "sortable": False, "rows": rows, "head": ("model", "seconds", "texts", "texts/s", "from cache")}


def page_view(report: dict, details: dict, run: dict | None, merge: dict | None = None) -> dict:
    """Everything the template prints, as plain values (and chart Markup)."""
    datasets, run_dir = report["datasets"], str(report.get("run_dir", ""))
    corpus = {name: about_from_details(info, details.get(name)).get("corpus") for name, info in datasets.items()}
    truncated = report.get("truncated") or {}
    return {
        "title": wording.run_name(run_dir), "base_model": wording.model_name(report["base_model"]),
        "revision": report.get("model_revision") or "unpinned",
        "tuned_model": wording.model_name(report["tuned_model"]),
        "verdict": wording.verdict(report["primary"]), "caveats": caveats.reference_caveats(report),
        "precision": caveats.precision_sentence(report),
        "leakage": wording.leakage_statements(report.get("leakage") or {}, list(datasets),
                                              report.get("leakage_checked"), str, report.get("leakage_comparison")),
        "metrics": metrics_view({"": datasets}, "metrics", corpus),
        "truncated": {"dim": report.get("embedding_dim", "?"), "sizes": ", ".join(map(str, truncated)), **metrics_view(
            {str(d): sets for d, sets in truncated.items()}, "truncated", corpus, dims=True)} if truncated else None,
        "sections": [dataset_view(name, info, details.get(name), run_dir, same_map_as(details).get(name))
                     for name, info in datasets.items()],
        "training": training_view(run), "merge": merge_view(merge) if same_tuned_model(merge, report) else None,
        "similarity": wording.similarity_sentence(report.get("similarity") or {}),
        "prompts": prompts_view(report.get("prompts") or {}), "encoding": encoding_view(report.get("encoding") or {}),
        "identity": [(k, report[k]) for k in ("run_id", "config_hash", "tuned_fingerprint") if report.get(k)],
    }


def html_report(report: dict, details: dict, run: dict | None = None, merge: dict | None = None) -> str:
    """Render ``report.json``, ``details.json``, ``run.json`` and ``merge.json`` as one self-contained HTML page.

    Args:
        report: the evaluation report (run, models, primary verdict, leakage, encoding, per-dataset metrics).
        details: per dataset name, the material for its charts; may be partial or empty.
        run: the run's ``run.json`` (plan, loss and dev history); None leaves the training section out.
        merge: the merge frontier record (``python -m evaluate merge``); shown only when it interpolated the tuned
            model this report evaluated (``same_tuned_model``), else left out like None.

    Returns:
        The page as a string; it loads nothing from the network.
    """
    return ENV.get_template("report.html.j2").render(
        page=page_view(report, details, run, merge), css=CSS, script=Markup(SORT_JS), csp=CSP,
        legend=legends.table_legend([info["task"] for info in report["datasets"].values()]))
