"""The merge frontier for people: ``merge.md`` (one row per ratio, then every metric) and ``merge.svg`` (domain gain
against general change, one point per ratio with 95% CI whiskers, one line per general set).

Reads the record ``evaluate.interpolate`` writes as ``merge.json``; maths and I/O live there. report.html shows the same
chart, columns, cells, headings and suggestion (``evaluate.report.html.merge_view``). Every user-supplied string
(dataset names, the run folder) is escaped: ``md_escape`` for Markdown, ``evaluate.report.svg.esc`` for the SVG; the
page
passes ``quote=str`` and its template escapes.
"""

from __future__ import annotations

import shlex

from markupsafe import Markup

from evaluate.report import legends, wording
from evaluate.report.markdown import markdown_table, md_escape
from evaluate.report.svg import CATEGORY_COLOURS, GREY, Frame, axes, dot, esc, padded_range, svg, with_legend
from evaluate.report.wording import Quote

# The rules of report.css that the charts use, so merge.svg also renders on its own (outside report.html).
SVG_STYLE = ("text{font-family:sans-serif;font-size:11px;fill:#333}.title{font-size:13px;font-weight:600}"
             ".label{font-size:12px}.box{fill:none;stroke:#999}.tick{stroke:#999}"
             ".mark{stroke:#333;stroke-dasharray:4 3}")
# What a frontier row is: said once, above the table in merge.md and in report.html.
FRONTIER_LEGEND = (
    "Each row interpolates the weights, (1 - r) × base + r × tuned, and compares the merged model with the base on "
    "the same units: its value, then (delta [95% CI]); * marks a significant delta. r = 0 is the base, r = 1 the "
    "tuned model. General sets are those with their own source (the forgetting check).")


def main_entry(row: dict, name: str, metric: str | None = None) -> dict:
    """The metric entry (baseline = base, tuned = merged, delta, CI) of one dataset at one ratio."""
    info = row["datasets"][name]
    return info["metrics"][metric or info["main_metric"]]


def lost(entry: dict) -> bool:
    return bool(entry.get("significant")) and (entry.get("delta") or 0) < 0


def suggested(record: dict) -> dict | None:
    """The ratio with the largest domain gain among those where no general set lost significantly."""
    p = record["primary"]
    safe = [row for row in record["ratios"]
            if not any(lost(main_entry(row, name)) for name in record["general"])
            and main_entry(row, p["dataset"], p["metric"]).get("delta") is not None]
    return max(safe, key=lambda row: main_entry(row, p["dataset"], p["metric"])["delta"], default=None)


def cell(entry: dict) -> str:
    ci = f" [{wording.num(entry.get('ci_low'), '+.4f')}, {wording.num(entry.get('ci_high'), '+.4f')}]"
    star = " *" if entry.get("significant") else ""
    return f"{wording.num(entry.get('tuned'))} ({wording.num(entry.get('delta'), '+.4f')}{ci}){star}"


def columns(record: dict) -> list[tuple[str, str | None, str]]:
    """(dataset, metric or None for its main metric, kind): the primary first, the other domain sets, the general."""
    p = record["primary"]
    domain = [(name, None, "domain") for name in record["domain"] if name != p["dataset"]]
    return [(p["dataset"], p["metric"], "domain, primary"), *domain, *[(n, None, "general") for n in record["general"]]]


def headings(record: dict, quote: Quote = md_escape) -> list[str]:
    """The frontier's column headings, 'dataset metric (kind)', in ``columns`` order; names pass through ``quote``
    (Markdown escaping by default; the HTML page passes ``str`` and lets its template escape)."""
    first = record["ratios"][0]["datasets"]
    return [f"{quote(name)} {quote(metric or first[name]['main_metric'])} ({kind})"
            for name, metric, kind in columns(record)]


def frontier_table(record: dict) -> list[str]:
    """One row per ratio: the merged model's value (delta vs the base [95% CI], * significant) per set."""
    cols = columns(record)
    lines = ["| r | " + " | ".join(headings(record)) + " |", "|---:|" + "---|" * len(cols)]
    for row in record["ratios"]:
        lines.append(f"| {row['ratio']:g} | " + " | ".join(cell(main_entry(row, n, m)) for n, m, _ in cols) + " |")
    return lines


def push_command(record: dict, ratio: float, quote: Quote = md_escape) -> str:
    """The command that publishes the interpolation at ``ratio`` (repr: the ratio exactly as merge.json holds it)."""
    return (f"python -m train.push {quote(shlex.quote(str(record['run_dir'])))} push.merge_ratio={float(ratio)!r} "
            "push.local_dir=FOLDER")


def suggestion_text(record: dict, quote: Quote = md_escape) -> str:
    """Which ratio to publish, in words (the same rule as ``suggested``); names pass through ``quote`` (Markdown
    escaping by default; the HTML page passes ``str`` and lets its template escape)."""
    best, p = suggested(record), record["primary"]
    if best is None:
        return "No ratio has a defined domain delta without a significant loss on a general set."
    said = f"{quote(p['dataset'])} {quote(p['metric'])} {cell(main_entry(best, p['dataset'], p['metric']))}"
    if best["ratio"] == 0 or main_entry(best, p["dataset"], p["metric"])["delta"] <= 0:
        return (f"No merged model gains on {quote(p['dataset'])} without a significant loss on a general set "
                f"(best: r = {best['ratio']:g}, {said}).")
    if best["ratio"] == 1:
        return (f"The tuned model itself (r = 1) gains most without a significant loss on any general set ({said}): "
                "publish it as it is.")
    return (f"Largest domain gain without a significant loss on any general set: r = {best['ratio']:g} ({said}). "
            f"Publish that interpolation with {push_command(record, best['ratio'], quote)} (the gate and the card "
            "then use the merged model's numbers).")


def merge_markdown(record: dict) -> str:
    tasks = [info["task"] for info in record["ratios"][0]["datasets"].values()]
    per_ratio = [line for row in record["ratios"] for line in (
        f"### r = {row['ratio']:g}", "", markdown_table(row["datasets"], names=("base", f"r={row['ratio']:g}")), "")]
    return "\n".join([
        f"# Merge frontier of {md_escape(wording.run_name(record['run_dir']))}", "", FRONTIER_LEGEND, "",
        *frontier_table(record), "", suggestion_text(record), "",
        "## Every metric at each ratio", "", *per_ratio, legends.table_legend(tasks), "",
    ])


def whiskered_dot(frame: Frame, x: dict, y: dict, colour: str, tip: str) -> str:
    """A point at (x delta, y delta) with its two 95% intervals as whiskers (left out where undefined)."""
    px, py = frame.x(x["delta"]), frame.y(y["delta"])
    parts = []
    if x.get("ci_low") is not None and x.get("ci_high") is not None:
        parts.append(f'<line x1="{frame.x(x["ci_low"]):.1f}" y1="{py:.1f}" x2="{frame.x(x["ci_high"]):.1f}" '
                     f'y2="{py:.1f}" stroke="{colour}" stroke-opacity="0.6"/>')
    if y.get("ci_low") is not None and y.get("ci_high") is not None:
        parts.append(f'<line x1="{px:.1f}" y1="{frame.y(y["ci_low"]):.1f}" x2="{px:.1f}" '
                     f'y2="{frame.y(y["ci_high"]):.1f}" stroke="{colour}" stroke-opacity="0.6"/>')
    return "".join(parts) + dot(px, py, colour, tip, radius=3.2)


def series(record: dict) -> list[tuple[str, str, list[tuple[float, dict, dict]]]]:
    """(general set, colour, [(ratio, domain entry, general entry)]) with both deltas defined."""
    p, out = record["primary"], []
    for i, name in enumerate(record["general"]):
        points = [(row["ratio"], main_entry(row, p["dataset"], p["metric"]), main_entry(row, name))
                  for row in record["ratios"]]
        kept = [(r, x, y) for r, x, y in points if x.get("delta") is not None and y.get("delta") is not None]
        out.append((name, CATEGORY_COLOURS[i] if i < len(CATEGORY_COLOURS) else GREY, kept))
    return out


def zero_lines(frame: Frame) -> str:
    """Dashed lines through 0 on both axes: the base model's position."""
    (x0, x1), (y0, y1) = frame.x_range, frame.y_range
    parts = [f'<line x1="{frame.x(0):.1f}" y1="{frame.top}" x2="{frame.x(0):.1f}" y2="{frame.height - frame.bottom}" '
             'class="mark"/>' if x0 <= 0 <= x1 else "",
             f'<line x1="{frame.left}" y1="{frame.y(0):.1f}" x2="{frame.width - frame.right}" y2="{frame.y(0):.1f}" '
             'class="mark"/>' if y0 <= 0 <= y1 else ""]
    return "".join(parts)


def frontier_svg(record: dict) -> Markup:
    """Domain gain (x) against the change on each general set (y, below 0: forgotten), one point per ratio."""
    p, lines = record["primary"], series(record)
    xs = [v for _, _, pts in lines for _, x, _ in pts for v in (x["delta"], x.get("ci_low"), x.get("ci_high"))]
    ys = [v for _, _, pts in lines for _, _, y in pts for v in (y["delta"], y.get("ci_low"), y.get("ci_high"))]
    ranges = padded_range([0.0, *[v for v in xs if v is not None]]), padded_range([0.0, *[v for v in ys
                                                                                       if v is not None]])
    legend = [(f"general: {name}", colour) for name, colour, _ in lines]
    frame, key = with_legend(Frame(*ranges, width=480, height=340, left=66), legend)
    title = "Merge frontier: base ↔ tuned"
    parts = [zero_lines(frame)]
    for name, colour, points in lines:
        path = " ".join(f"{frame.x(x['delta']):.1f},{frame.y(y['delta']):.1f}" for _, x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for ratio, x, y in points:
            tip = (f"r={ratio:g}: {p['dataset']} {p['metric']} {cell(x)}; {name} {cell(y)}")
            parts.append(whiskered_dot(frame, x, y, colour, tip))
            parts.append(f'<text x="{frame.x(x["delta"]) + 5:.1f}" y="{frame.y(y["delta"]) - 5:.1f}">'
                         f"{esc(f'r={ratio:g}')}</text>")
    x_label = f"domain gain: Δ {p['dataset']} {p['metric']} vs base"
    body = axes(frame, title, x_label, "Δ general set main metric (< 0: forgotten)") + "".join(parts)
    return svg(frame, title, body + key)


def standalone_svg(chart: Markup) -> str:
    """An inline chart as an SVG file of its own: the namespace and the report's chart styles added."""
    text = str(chart)
    if not text.startswith("<svg "):
        raise ValueError("standalone_svg takes an <svg> element from evaluate.report.svg")
    opening_end = text.index(">") + 1
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text[:5] + 'xmlns="http://www.w3.org/2000/svg" '
            + text[5:opening_end] + f"<style>{SVG_STYLE}</style>" + text[opening_end:] + "\n")
