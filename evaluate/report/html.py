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

from evaluate.report import frontier, legends, run_summary, wording
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
METRIC_HEAD = ("dataset", "task", "metric", "baseline", "tuned", "delta", "95% CI", "p", "significant")


def metric_row(name: str, info: dict, metric: str, v: dict, dim: str | None, flagged: bool) -> dict:
    """One metrics-table row; the main metric in bold, significant gains green and losses red."""
    classes = ["main"] * (metric == info["main_metric"]) + ["uninformative"] * flagged
    if v.get("significant") and v.get("delta") is not None:
        classes.append("gain" if v["delta"] > 0 else "loss")
    ci = f"[{num(v['ci_low'], '+.4f')}, {num(v['ci_high'], '+.4f')}]" if v.get("ci_low") is not None else "—"
    significant = ("yes" if v["significant"] else "no") if "significant" in v else "—"
    cells = [(dim, "")] * (dim is not None) + [(name, ""), (info["task"], ""), (metric + " †" * flagged, "")]
    cells += [(num(v["baseline"]), "num"), (num(v["tuned"]), "num"), (num(v["delta"], "+.4f"), "num delta"),
              (ci, "num"), (p_text(v.get("p_value"), v.get("n_resamples")), "num"), (significant, "")]
    return {"cls": " ".join(classes), "cells": cells}


def metrics_view(levels: dict[str, dict], table_id: str, corpus: dict[str, int | None], dims: bool = False) -> dict:
    """The metrics table (with a leading 'dim' column per truncation level when ``dims``) and its notes."""
    rows, notes = [], []
    for level, sets in levels.items():
        for name, info in sets.items():
            for metric, v in info["metrics"].items():
                flag = wording.uninformative(metric, corpus.get(name))
                rows.append(metric_row(name, info, metric, v, level if dims else None, bool(flag)))
                notes += [f"{level} {name} {metric}: {v['undefined']}".strip()] if v.get("undefined") else []
    head = ("dim",) * dims + METRIC_HEAD
    return {"table": {"id": table_id, "sortable": True, "head": head, "rows": rows},
            "notes": [f"Undefined (—): {n}" for n in notes]}


def reference_view(info: dict) -> dict | None:
    """BM25, hybrid, rerank or chunked rows beside the baseline and tuned model, and which wins, in words."""
    rows = info.get("reference") or {}
    if not rows:
        return None
    metrics, main = list(info["metrics"]), info["main_metric"]
    values = {m: {"baseline": v.get("baseline"), "tuned": v.get("tuned")} for m, v in info["metrics"].items()}
    table_rows = [{"cls": "", "cells": [(model, "")] + [(num(values[m][model]), "num") for m in metrics] + [("", "")]}
                  for model in ("baseline", "tuned")]
    sentences = []
    for name, row in rows.items():
        compared = wording.reference_stats(row, main)
        vs = f"{num(compared[1].get('delta'), '+.4f')} vs {compared[0]}" if compared else "—"
        cells = [(f"{name}: {row.get('description', '')}".rstrip(": "), "")]
        cells += [(num(row.get("metrics", {}).get(m)), "num") for m in metrics] + [(vs, "num")]
        table_rows.append({"cls": "reference", "cells": cells})
        sentences += [wording.comparison_sentence(name, *compared, main)] if compared else []
    ranking = {**{m: values[main][m] for m in ("baseline", "tuned")},
               **{n: r.get("metrics", {}).get(main) for n, r in rows.items()}}
    head = ("row", *metrics, f"Δ {main}")
    return {"table": {"id": "", "sortable": False, "head": head, "rows": table_rows},
            "sentences": [wording.ranking_sentence(ranking, main), *sentences]}


def query_row(q: dict) -> dict:
    def side(result: dict) -> dict:
        top = [{"text": short(d["text"]), "score": num(d["score"], ".3f"), "relevant": bool(d.get("relevant"))}
               for d in result.get("top", [])]
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


def dataset_view(name: str, info: dict, detail: dict | None, run_dir: str) -> dict:
    """One dataset's section: what the set is, its legend and flags, reference rows, then its pictures."""
    about = about_from_details(info, detail)
    flags = [wording.uninformative(m, about.get("corpus")) for m in info["metrics"]]
    detail = detail or {}
    charts = pair_charts(detail)
    return {"name": name, "task": info["task"], "about": about_lines(about), "rows": info.get("rows", "?"),
            "source": wording.source_name(info.get("source", ""), run_dir),
            "fingerprint": str(info.get("fingerprint", ""))[:16],
            "legend": f"{wording.metric_meanings(list(info['metrics']))} {legends.task_legend(info['task'])}".strip(),
            "notes": [f for f in flags if f], "reference": reference_view(info), "has_details": bool(detail),
            "charts": [{"heading": charts[0], "panels": charts[1]}] if charts else [],
            "map": map_view(detail["map"]) if detail.get("map") else None, "queries": queries_view(detail)}


def training_view(run: dict | None) -> dict | None:
    """The plan, which step final/ is, and the loss and dev-metric curves from run.json."""
    if not run:
        return None
    loss, dev, dev_name = run_summary.curves(run)
    return {"plan": run_summary.plan_text(run), "final": run_summary.final_text(run),
            "charts": training_charts(loss, dev, dev_name, run_summary.final_step(run))}


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
        "verdict": wording.verdict(report["primary"]),
        "leakage": wording.leakage_statements(report.get("leakage") or {}, list(datasets),
                                              report.get("leakage_checked")),
        "metrics": metrics_view({"": datasets}, "metrics", corpus),
        "truncated": {"dim": report.get("embedding_dim", "?"), "sizes": ", ".join(map(str, truncated)), **metrics_view(
            {str(d): sets for d, sets in truncated.items()}, "truncated", corpus, dims=True)} if truncated else None,
        "sections": [dataset_view(name, info, details.get(name), run_dir) for name, info in datasets.items()],
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
