"""``report.html``: one self-contained page (inline CSS, inline SVG, one small inline script, no network).

It reads ``eval/report.json`` (the numbers) and ``eval/details.json`` (per dataset: scored pairs, retrieval wins
and losses, similarity scores, a 2-D map of the embeddings). Every string from either file is escaped; data never
reaches the ``<script>`` block or an unquoted attribute.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter

from evaluate.svg import GREY, PALETTE, esc, histogram_svg, padded_range, scatter_svg

MODELS = ("baseline", "tuned")
MODEL_COLOURS = {"baseline": "#8c8c8c", "tuned": "#4e79a7"}
POS_NEG = (("positive", "#59a14f"), ("negative", "#e15759"))

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:32px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555}code{background:#f3f3f3;padding:0 3px;word-break:break-all}
.alert{border:2px solid #c0392b;background:#fdecea;padding:10px 14px;margin:14px 0;border-radius:4px}
.alert b{color:#c0392b}.verdict{font-size:17px;padding:12px 14px;border-radius:4px;margin:16px 0}
.better{background:#e6f4ea;border-left:6px solid #2e7d32}.worse{background:#fdecea;border-left:6px solid #c62828}
.same{background:#f1f1f1;border-left:6px solid #777}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f5f5f5;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer}table.sortable th:hover{background:#e8e8e8}
tr.main td{font-weight:600}tr.gain td.delta{background:#dff0d8;color:#1b5e20}
tr.loss td.delta{background:#f8d7da;color:#8b1a1a}
.panels{display:flex;flex-wrap:wrap;gap:12px}svg.chart{max-width:100%;height:auto;background:#fff}
svg text{font-size:11px;fill:#333}svg .title{font-size:13px;font-weight:600}svg .label{font-size:12px}
svg .box{fill:none;stroke:#999}svg .tick{stroke:#999}
.legend span{display:inline-block;margin:0 12px 4px 0}.legend i{display:inline-block;width:10px;height:10px;
margin-right:4px}ol.top{margin:0;padding-left:20px}ol.top li.rel{color:#1b5e20}.small{font-size:12px;color:#555}
td.q{max-width:260px}td.docs{max-width:360px}
"""

# Click a header to sort its table; numbers sort numerically, the rest as text. Reads no data from the page source.
SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], col = th.cellIndex, asc = th.dataset.dir !== "asc";
    th.dataset.dir = asc ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

# Defence in depth: only the script above may run (by hash), and nothing may be fetched from anywhere.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; script-src 'sha256-"
       + base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode() + "'")


def num(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def short(text: object, limit: int = 160) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header_html(report: dict) -> str:
    revision = report.get("model_revision") or "unpinned"
    identity = " · ".join(f"{key} <code>{esc(report[key])}</code>" for key in
                          ("run_id", "config_hash", "tuned_fingerprint") if report.get(key))
    return (f"<h1>embtune evaluation: {esc(report['run_dir'])}</h1>"
            f'<p class="meta">Base model <code>{esc(report["base_model"])}</code> (revision <code>{esc(revision)}'
            f'</code>) · tuned model <code>{esc(report["tuned_model"])}</code></p>'
            + (f'<p class="meta small">{identity}</p>' if identity else ""))


def prompt_row(role: str, base: dict, tuned: dict) -> str:
    """One role: the encode method, each model's prompt (repr, so spaces show) and where each came from."""
    cells = [esc(role), f"<code>{esc((base or tuned).get('encode', ''))}</code>",
             f"<code>{esc(repr(base.get('prompt', '')))}</code>", f"<code>{esc(repr(tuned.get('prompt', '')))}</code>",
             f"{esc(base.get('source', ''))} / {esc(tuned.get('source', ''))}"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def prompts_html(prompts: dict, similarity: dict) -> str:
    """The prompt each role was encoded with (per model, with its source), and the similarity metrics use."""
    base, tuned = prompts.get("baseline") or {}, prompts.get("tuned") or {}
    rows = "".join(prompt_row(role, base.get(role, {}), tuned.get(role, {})) for role in dict.fromkeys([*base, *tuned]))
    names = similarity or {"baseline": "cosine", "tuned": "cosine"}
    note = ("cosine (the models' own similarity_fn_name)" if set(names.values()) == {"cosine"} else
            ", ".join(f"{esc(m)} {esc(n)}" for m, n in names.items()) + ": metrics use the model's own similarity, "
            "not the cosine ('_cosine' metric names then score that similarity; embeddings are not normalised)")
    table = ("<table><thead><tr><th>texts</th><th>encoded with</th><th>baseline prompt</th><th>tuned prompt</th>"
             f"<th>from (baseline / tuned)</th></tr></thead><tbody>{rows}</tbody></table>") if rows else ""
    return f"<h2>Prompts and similarity</h2><p>Similarity: {note}.</p>{table}"


def leakage_html(leakage: dict) -> str:
    """A prominent box per evaluation set that shares texts with the training split."""
    boxes = []
    for name, info in leakage.items():
        examples = "".join(f"<li><code>{esc(short(t, 120))}</code></li>" for t in info.get("examples", []))
        boxes.append(f'<div class="alert"><b>Leakage:</b> <code>{esc(name)}</code> shares {int(info["shared"])} of '
                     f"its {int(info['of'])} texts with the training split; its scores overstate the gain."
                     f"<ul>{examples}</ul></div>")
    return "".join(boxes)


def verdict_html(primary: dict) -> str:
    """The primary comparison in plain words: better, worse or no significant difference."""
    where = (f"on <code>{esc(primary['dataset'])}</code> {esc(primary['metric'])}: {num(primary['baseline'])} → "
             f"{num(primary['tuned'])} (Δ {num(primary['delta'], '+.4f')}")
    if "ci_low" in primary:
        where += f", 95% CI [{num(primary['ci_low'], '+.4f')}, {num(primary['ci_high'], '+.4f')}]"
    if "p_value" in primary:
        where += f", p = {num(primary['p_value'], '.2g')}"
    where += ")"
    if "significant" not in primary:
        kind, words = ("better", "Better") if primary["improved"] else ("worse", "Not better")
        return f'<p class="verdict {kind}"><b>{words}</b> than the baseline {where}; no significance test.</p>'
    if primary["significant"]:
        kind, words = ("better", "Better") if primary["improved"] else ("worse", "Worse")
        return f'<p class="verdict {kind}"><b>{words}:</b> the tuned model is significantly {kind} {where}.</p>'
    return (f'<p class="verdict same"><b>No significant difference</b> between the tuned model and the baseline '
            f"{where}; the 95% interval includes 0.</p>")


def metric_row(name: str, info: dict, metric: str, v: dict, dim: str | None = None) -> str:
    """One metrics-table row; the main metric in bold, significant gains green and losses red."""
    classes = ["main"] if metric == info["main_metric"] else []
    if v.get("significant"):
        classes.append("gain" if v["delta"] > 0 else "loss")
    ci = f"[{num(v['ci_low'], '+.4f')}, {num(v['ci_high'], '+.4f')}]" if v.get("ci_low") is not None else "—"
    significant = ("yes" if v["significant"] else "no") if "significant" in v else "—"
    cells = [esc(dim)] * (dim is not None) + [esc(name), esc(info["task"]), esc(metric)]
    numbers = [num(v["baseline"]), num(v["tuned"]), num(v["delta"], "+.4f")]
    return (f'<tr class="{" ".join(classes)}">' + "".join(f"<td>{c}</td>" for c in cells)
            + "".join(f'<td class="num">{n}</td>' for n in numbers[:2])
            + f'<td class="num delta">{numbers[2]}</td><td class="num">{ci}</td>'
            + f'<td class="num">{num(v.get("p_value"), ".2g")}</td><td>{significant}</td></tr>')


def undefined_notes(levels: dict[str, dict]) -> str:
    notes = "".join(f"<li>{esc(level)} {esc(name)} {esc(metric)}: {esc(v['undefined'])}</li>"
                    for level, sets in levels.items() for name, info in sets.items()
                    for metric, v in info["metrics"].items() if v.get("undefined"))
    return f'<p class="small">Undefined (—):</p><ul class="small">{notes}</ul>' if notes else ""


def metrics_table(datasets: dict, table_id: str = "metrics", levels: dict[str, dict] | None = None) -> str:
    """The metrics table; with ``levels`` ({dimension: datasets}) a leading 'dim' column and rows per dimension."""
    columns = ("dim",) * bool(levels) + ("dataset", "task", "metric", "baseline", "tuned", "delta", "95% CI", "p",
                                          "significant")
    head = "".join(f"<th>{h}</th>" for h in columns)
    rows = "".join(metric_row(name, info, metric, v, level if levels else None)
                   for level, sets in (levels or {"": datasets}).items() for name, info in sets.items()
                   for metric, v in info["metrics"].items())
    return (f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            + undefined_notes(levels or {"": datasets}) +
            '<p class="small">Bold: each dataset\'s main metric. Intervals: paired bootstrap over queries or pairs; '
            "p: paired randomization test; significant: p &lt; 0.05 and the interval excludes 0. "
            "Click a column header to sort.</p>")


def truncated_html(report: dict) -> str:
    """Every metric again with embeddings truncated to each evaluate.truncate_dims size."""
    truncated = report.get("truncated") or {}
    if not truncated:
        return ""
    return (f"<h2>Truncated embeddings</h2><p class=\"small\">First n of {esc(report.get('embedding_dim', '?'))} "
            "dimensions, re-normalised for cosine; the baseline is truncated the same way.</p>"
            + metrics_table({}, "truncated", {str(d): sets for d, sets in truncated.items()}))


def gold_scatter(pairs: list[dict]) -> str:
    """STS: gold score against each model's cosine, one panel per model on shared axes."""
    ranges = (padded_range([p["gold"] for p in pairs]),
              padded_range([p[m] for p in pairs for m in MODELS]))
    tips = [f"{short(p['sentence1'], 80)} | {short(p['sentence2'], 80)} (gold {p['gold']:g})" for p in pairs]
    return "".join(scatter_svg(f"{model}: gold vs cosine", [(p["gold"], p[model]) for p in pairs],
                               [MODEL_COLOURS[model]] * len(pairs), "gold score", "cosine similarity", ranges, tips)
                   for model in MODELS)


def pair_scores(pairs: list[dict]) -> tuple[dict, dict]:
    """Split pair cosines into positives (gold >= 0.5 or label 1) and negatives, per model."""
    positive = {m: [p[m] for p in pairs if p["gold"] >= 0.5] for m in MODELS}
    negative = {m: [p[m] for p in pairs if p["gold"] < 0.5] for m in MODELS}
    return positive, negative


def histograms(positive: dict, negative: dict) -> str:
    """Positive vs negative similarity histograms, one panel per model on shared axes."""
    x_range = padded_range([s for scores in (positive, negative) for m in MODELS for s in scores.get(m, [])], 0.02)
    return "".join(histogram_svg(f"{model}: positive vs negative", [
        (POS_NEG[0][0], POS_NEG[0][1], positive.get(model, [])),
        (POS_NEG[1][0], POS_NEG[1][1], negative.get(model, []))], "cosine similarity", x_range) for model in MODELS)


def label_colours(labels: list[str]) -> dict[str, str]:
    """The 12 most frequent labels get a palette colour; the rest are drawn grey."""
    return {label: PALETTE[i] for i, (label, _) in enumerate(Counter(labels).most_common(len(PALETTE)))}


def map_html(m: dict) -> str:
    """The 2-D map of both models' embeddings side by side, coloured by label, with a legend."""
    labels = [str(label) for label in m.get("labels", [])]
    colours = label_colours(labels)
    dots = [colours.get(label, GREY) for label in labels]
    texts = [*m.get("texts", []), *[""] * len(labels)]
    tips = [f"[{short(label, 40)}] {short(text, 120)}" for label, text in zip(labels, texts)]
    method = str(m.get("method", "2-D"))
    panels = "".join(scatter_svg(f"{model} ({method})", [tuple(xy) for xy in m.get(model, [])][: len(labels)], dots,
                                 f"{method} 1", f"{method} 2", tips=tips) for model in MODELS)
    keys = "".join(f'<span><i style="background:{c}"></i>{esc(short(label, 40))}</span>'
                   for label, c in colours.items())
    if len(colours) < len(set(labels)):
        keys += f'<span><i style="background:{GREY}"></i>other labels</span>'
    return f'<div class="panels">{panels}</div><div class="legend">{keys}</div>'


def top_docs(result: dict) -> str:
    items = "".join(f'<li class="{"rel" if d.get("relevant") else ""}">{"✓ " if d.get("relevant") else ""}'
                    f'{esc(short(d["text"]))} <span class="small">({num(d["score"], ".3f")})</span></li>'
                    for d in result.get("top", []))
    return f'<span class="small">nDCG@10 {num(result.get("ndcg@10"), ".3f")}</span><ol class="top">{items}</ol>'


def queries_table(queries: list[dict]) -> str:
    """Retrieval: the biggest per-query wins and losses with both models' top documents side by side."""
    rows = []
    for q in sorted(queries, key=lambda q: q["delta"], reverse=True):
        kind = "gain" if q["delta"] > 0 else "loss" if q["delta"] < 0 else ""
        relevant = "; ".join(esc(short(r, 80)) for r in q.get("relevant", []))
        rows.append(f'<tr class="{kind}"><td class="q">{esc(q["query"])}<div class="small">relevant: {relevant}'
                    f'</div></td><td class="num delta">{num(q["delta"], "+.3f")}</td>'
                    f'<td class="docs">{top_docs(q["baseline"])}</td><td class="docs">{top_docs(q["tuned"])}</td></tr>')
    return ('<table class="sortable"><thead><tr><th>query</th><th>Δ nDCG@10</th><th>baseline top 5</th>'
            f'<th>tuned top 5</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            '<p class="small">✓ marks a relevant document; the number after a document is its cosine score.</p>')


def dataset_html(name: str, info: dict, detail: dict | None) -> str:
    """One dataset's section: provenance, then its charts and tables in the order a reviewer reads them."""
    parts = [f"<h2>{esc(name)} <span class=\"small\">({esc(info['task'])})</span></h2>",
             f'<p class="small">{int(info["rows"])} rows from <code>{esc(info["source"])}</code>, fingerprint '
             f'<code>{esc(str(info.get("fingerprint", ""))[:16])}</code></p>']
    if not detail:
        return "".join(parts + ['<p class="small">No details recorded for this dataset.</p>'])
    if detail.get("task") == "sts":
        parts += ["<h3>Gold score vs predicted similarity</h3>",
                  f'<div class="panels">{gold_scatter(detail["pairs"])}</div>']
    if "pairs" in detail or "positive_scores" in detail:  # classification and clustering have no pairs
        positive, negative = pair_scores(detail["pairs"]) if "pairs" in detail else \
            (detail.get("positive_scores", {}), detail.get("negative_scores", {}))
        parts += ["<h3>Similarity of positive and negative pairs</h3>",
                  f'<div class="panels">{histograms(positive, negative)}</div>']
    if detail.get("map"):
        parts += ["<h3>Map of the embeddings</h3>", map_html(detail["map"])]
    if detail.get("queries"):
        parts += ["<h3>Per-query wins and losses</h3>", queries_table(detail["queries"])]
    return "".join(parts)


def encoding_html(encoding: dict) -> str:
    rows = "".join(f"<tr><td>{esc(model)}</td><td class=\"num\">{num(e['seconds'], '.1f')}</td>"
                   f"<td class=\"num\">{int(e['texts'])}</td><td class=\"num\">"
                   f"{num(e['texts'] / e['seconds'] if e['seconds'] else None, '.0f')}</td>"
                   f"<td>{'yes' if e.get('cached') else 'no'}</td></tr>" for model, e in encoding.items())
    return ("<h2>Encoding time</h2><table><thead><tr><th>model</th><th>seconds</th><th>texts</th><th>texts/s</th>"
            f"<th>from cache</th></tr></thead><tbody>{rows}</tbody></table>")


def html_report(report: dict, details: dict) -> str:
    """Render ``report.json`` and ``details.json`` as one self-contained HTML page.

    Args:
        report: the evaluation report (run, models, primary verdict, leakage, encoding, per-dataset metrics).
        details: per dataset name, the material for its charts (see the module docstring); may be partial.

    Returns:
        The page as a string; it loads nothing from the network.
    """
    datasets = report["datasets"]
    body = [header_html(report), leakage_html(report.get("leakage") or {}), verdict_html(report["primary"]),
            "<h2>Metrics</h2>", metrics_table(datasets), truncated_html(report),
            prompts_html(report.get("prompts") or {}, report.get("similarity") or {}),
            *[dataset_html(name, info, details.get(name)) for name, info in datasets.items()],
            encoding_html(report.get("encoding") or {})]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>embtune: {esc(report['run_dir'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + f"<script>{SORT_JS}</script></body></html>\n")
