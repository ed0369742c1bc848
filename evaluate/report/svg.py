"""Tiny inline-SVG charts for the HTML report: scatter plots, overlaid histograms, box-and-strip plots, line charts.

Every string that reaches the SVG (titles, labels, tooltips) is escaped here, so a chart is returned as
``markupsafe.Markup`` and the report's autoescaped template can place it as it is. Colours come from this module,
never from data, and each colour means one thing on a page:

| colour                          | means                                   |
|---------------------------------|-----------------------------------------|
| orange ``#E69F00`` / blue ``#0072B2`` | the baseline / the tuned model (Okabe-Ito) |
| green ``#009E73`` / purple ``#CC79A7`` | relevant (positive) / non-relevant (negative) pairs |
| ``CATEGORY_COLOURS``            | the categories of one map (topics, roles, gold levels), named in its legend |
| dark grey ``#555555``           | a neutral series (per-query deltas)      |

Each map category also has its own marker shape (``CATEGORY_SHAPES``, drawn by :mod:`evaluate.report.svg_map`), so no
category depends on telling hues apart. Legends sit in a band above the plot area, never on the data. The SVGs carry
no ``xmlns`` URL: inline SVG in HTML5 needs none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from markupsafe import Markup, escape

MODEL_COLOURS = {"baseline": "#E69F00", "tuned": "#0072B2"}
RELEVANCE_COLOURS = {"positive": "#009E73", "negative": "#CC79A7"}
# Colour-blind-safe hues far from the four above (Okabe-Ito sky blue and black, Paul Tol's muted indigo, olive, wine
# and sand); labels past the sixth are drawn grey. Vermillion is left out: at half opacity it reads as orange.
CATEGORY_COLOURS = ("#332288", "#56B4E9", "#999933", "#882255", "#DDCC77", "#000000")
# Each category colour comes with its own marker shape, so categories stay apart without telling hues apart
# (deuteranopia, greyscale print).
CATEGORY_SHAPES = ("circle", "square", "triangle", "diamond", "down", "cross")
NEUTRAL, GREY = "#555555", "#BBBBBB"
CHAR_WIDTH, LEGEND_ROW = 6.2, 16  # px per legend character (11 px font) and per legend row


def esc(value: object) -> Markup:
    """Text safe inside an HTML/SVG element or a quoted attribute."""
    return escape(str(value))


def finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def padded_range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    """(low, high) around ``values`` with a small margin; a unit range around a constant or empty series."""
    values = finite(values)
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (steps of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * power for m in (1, 2, 5, 10) if (hi - lo) / (m * power) <= count)
    first = math.ceil(lo / step)
    return [round(k * step, 10) for k in range(first, math.floor(hi / step) + 1)]


@dataclass(frozen=True)
class Frame:
    """A plot area: data ranges mapped onto a ``width`` x ``height`` SVG, with margins for title, legend, ticks."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = 420
    height: int = 300
    top: int = 30
    right: int = 14
    bottom: int = 44
    left: int = 54

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (value - lo) / (hi - lo) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return self.height - self.bottom - (value - lo) / (hi - lo) * (self.height - self.top - self.bottom)


def legend_rows(frame: Frame, entries: Sequence[tuple[str, str]]) -> list[list[tuple[str, str, float]]]:
    """Legend entries laid out left to right, wrapped to the frame's width: rows of (name, colour, x)."""
    rows, x = [[]], float(frame.left)
    for name, colour in entries:
        width = 18 + CHAR_WIDTH * len(name) + 12
        if rows[-1] and x + width > frame.width - frame.right:
            rows.append([])
            x = float(frame.left)
        rows[-1].append((name, colour, x))
        x += width
    return rows if entries else []


def with_legend(frame: Frame, entries: Sequence[tuple[str, str]]) -> tuple[Frame, str]:
    """The frame grown by a legend band above its plot area, and the band's SVG (so no legend covers data)."""
    rows = legend_rows(frame, entries)
    grown = replace(frame, top=frame.top + LEGEND_ROW * len(rows), height=frame.height + LEGEND_ROW * len(rows))
    parts = []
    for r, row in enumerate(rows):
        y = frame.top + LEGEND_ROW * r
        parts += [f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>'
                  f'<text x="{x + 14:.1f}" y="{y + 9}">{esc(name)}</text>' for name, colour, x in row]
    return grown, "".join(parts)


def axes(frame: Frame, title: str, x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]] | None = None
         ) -> str:
    """Plot box, tick marks with values (or the given (position, label) ticks on x), axis labels and title."""
    x0, x1, y0, y1 = frame.left, frame.width - frame.right, frame.top, frame.height - frame.bottom
    parts = [f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" class="box"/>']
    for t, label in x_ticks if x_ticks is not None else [(t, f"{t:g}") for t in nice_ticks(*frame.x_range)]:
        px = frame.x(t)
        parts.append(f'<line x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y1 + 4}" class="tick"/>'
                     f'<text x="{px:.1f}" y="{y1 + 16}" text-anchor="middle">{esc(label)}</text>')
    for t in nice_ticks(*frame.y_range):
        py = frame.y(t)
        parts.append(f'<line x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" class="tick"/>'
                     f'<text x="{x0 - 7}" y="{py + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{frame.height - 8}" text-anchor="middle" class="label">'
                 f"{esc(x_label)}</text>")
    parts.append(f'<text transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" text-anchor="middle" '
                 f'class="label">{esc(y_label)}</text>')
    parts.append(f'<text x="{frame.width / 2:.1f}" y="19" text-anchor="middle" class="title">{esc(title)}</text>')
    return "".join(parts)


def svg(frame: Frame, title: str, body: str) -> Markup:
    """Wrap chart parts (all escaped by this module) in an accessible, scalable ``<svg>`` element."""
    return Markup(f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
                  f'height="{frame.height}" role="img" aria-label="{esc(title)}">{body}</svg>')


def no_data(frame: Frame) -> str:
    return (f'<text x="{frame.width / 2:.1f}" y="{(frame.top + frame.height - frame.bottom) / 2:.1f}" '
            'text-anchor="middle" class="label">no data</text>')


def vertical_marks(frame: Frame, marks: Sequence[tuple[float, str]]) -> str:
    """Dashed vertical lines at data x positions, each with a short label at its top (e.g. 'final/')."""
    parts = []
    for x, label in marks:
        if frame.x_range[0] <= x <= frame.x_range[1]:
            px, right = frame.x(x), frame.x(x) > (frame.left + frame.width - frame.right) / 2
            anchor = f'x="{px - 3:.1f}" text-anchor="end"' if right else f'x="{px + 3:.1f}"'  # label stays inside
            parts.append(f'<line x1="{px:.1f}" y1="{frame.top}" x2="{px:.1f}" y2="{frame.height - frame.bottom}" '
                         f'class="mark"/><text {anchor} y="{frame.top + 11}">{esc(label)}</text>')
    return "".join(parts)


def dot(x: float, y: float, colour: str, tip: str | None, radius: float = 2.6, opacity: float = 1.0) -> str:
    title = f"<title>{esc(tip)}</title>" if tip is not None else ""
    fade = f' fill-opacity="{opacity}"' if opacity < 1 else ""
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}"{fade}>{title}</circle>'


def dots_path(points: Sequence[tuple[float, float]], colour: str, radius: float, opacity: float = 1.0) -> str:
    """Many dots without hover text as ONE path of zero-length segments with round caps (a dot each): ~15 bytes a
    dot instead of ~80 for a circle element, so a plot of thousands of pairs stays light."""
    if not points:
        return ""
    d = "".join(f"M{x:.1f} {y:.1f}h0" for x, y in points)
    fade = f' stroke-opacity="{opacity}"' if opacity < 1 else ""
    return (f'<path class="dots" d="{d}" fill="none" stroke="{colour}" stroke-width="{2 * radius:g}" '
            f'stroke-linecap="round"{fade}/>')


def scatter_svg(title: str, points: Sequence[tuple[float, float]], colours: Sequence[str], x_label: str,
                y_label: str, ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
                tips: Sequence[str] | None = None, legend: Sequence[tuple[str, str]] = ()) -> Markup:
    """Scatter plot; each point has its colour and, if ``tips`` is given, a hover tooltip.

    Args:
        points: (x, y) pairs in data units; pairs with a non-finite coordinate are skipped.
        colours: one colour per point (from this module's constants).
        ranges: (x_range, y_range); by default each axis spans its own data.
        tips: one tooltip text per point (escaped here).
        legend: (name, colour) entries for the band above the plot.
    """
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    frame, key = with_legend(Frame(*(ranges or (padded_range(xs), padded_range(ys)))), legend)
    dots = [dot(frame.x(x), frame.y(y), colours[i], tips[i] if tips is not None else None)
            for i, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)]
    body = axes(frame, title, x_label, y_label) + ("".join(dots) if dots else no_data(frame))
    return svg(frame, title, body + key)


def bin_shares(values: Sequence[float], lo: float, hi: float, bins: int) -> list[float]:
    """Share of ``values`` falling in each of ``bins`` equal bins over [lo, hi] (the last bin includes hi)."""
    counts = [0] * bins
    values = finite(values)
    for v in values:
        counts[min(max(int((v - lo) / (hi - lo) * bins), 0), bins - 1)] += 1
    return [c / len(values) for c in counts] if values else counts


def histogram_svg(title: str, series: Sequence[tuple[str, str, Sequence[float]]], x_label: str,
                  x_range: tuple[float, float], bins: int = 20, y_max: float | None = None,
                  y_label: str = "share of pairs", marks: Sequence[tuple[float, str]] = ()) -> Markup:
    """Overlaid, semi-transparent histograms normalised to shares, so series of different sizes compare.

    Args:
        series: (name, colour, values) per histogram; the name goes into the legend with its count.
        x_range: the binned range, shared by the panels that should be compared.
        y_max: the top of the y axis (share); by default the largest bar.
        marks: (x, label) dashed vertical lines, e.g. (0, "no change").
    """
    shares = [bin_shares(values, *x_range, bins) for _, _, values in series]
    top = y_max or max((s for row in shares for s in row), default=0.0) or 1.0
    names = [(f"{name} (n={len(finite(values))})", colour) for name, colour, values in series]
    frame, key = with_legend(Frame(x_range, (0.0, top * 1.08)), names)
    width = (x_range[1] - x_range[0]) / bins
    bars = []
    for (_, colour, _), row in zip(series, shares):
        for k, share in enumerate(row):
            if share > 0:
                x0, x1, y = frame.x(x_range[0] + k * width), frame.x(x_range[0] + (k + 1) * width), frame.y(share)
                bars.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" '
                            f'height="{frame.y(0) - y:.1f}" fill="{colour}" fill-opacity="0.55"/>')
    empty = not any(finite(values) for _, _, values in series)
    body = axes(frame, title, x_label, y_label) + "".join(bars) + vertical_marks(frame, marks)
    return svg(frame, title, body + (no_data(frame) if empty else "") + key)


def box(frame: Frame, centre: float, half: float, values: Sequence[float], colour: str) -> str:
    """A box from the first to the third quartile with the median line and whiskers to the extremes."""
    lo, q1, med, q3, hi = (frame.y(v) for v in np.percentile(values, [0, 25, 50, 75, 100]))
    x0, x1 = frame.x(centre - half), frame.x(centre + half)
    mid = (x0 + x1) / 2
    return (f'<line x1="{mid:.1f}" y1="{lo:.1f}" x2="{mid:.1f}" y2="{hi:.1f}" stroke="{colour}"/>'
            f'<rect x="{x0:.1f}" y="{q3:.1f}" width="{x1 - x0:.1f}" height="{max(q1 - q3, 1):.1f}" fill="#fff" '
            f'fill-opacity="0.6" stroke="{colour}" stroke-width="1.5"/>'
            f'<line x1="{x0:.1f}" y1="{med:.1f}" x2="{x1:.1f}" y2="{med:.1f}" stroke="{colour}" stroke-width="2.5"/>')


def strip_svg(title: str, levels: Sequence[str], series: Sequence[tuple[str, str, Mapping[str, Sequence[float]]]],
              x_label: str, y_label: str) -> Markup:
    """Box-and-strip plot: for each level on x, each series' values as jittered dots under a box (quartiles).

    Args:
        levels: the categories on the x axis, in order (e.g. gold levels '0', '0.4', '1').
        series: (name, colour, {level: values}) per series, drawn side by side within a level. No dot has a
            tooltip: thousands of them weigh hundreds of kilobytes and one pair's text tells nothing of a box.
    """
    values = [v for _, _, by_level in series for level in levels for v in finite(by_level.get(level, []))]
    frame, key = with_legend(Frame((-0.5, len(levels) - 0.5), padded_range(values), width=460), [
        (name, colour) for name, colour, _ in series])
    band = 0.8 / max(len(series), 1)
    parts = []
    for i, level in enumerate(levels):
        for s, (_, colour, by_level) in enumerate(series):
            centre, level_values = i - 0.4 + band * (s + 0.5), list(by_level.get(level, []))
            jitter = [((j * 0.618034) % 1 - 0.5) * band * 0.7 for j in range(len(level_values))]  # evenly spread
            parts.append(dots_path([(frame.x(centre + dx), frame.y(v)) for dx, v in zip(jitter, level_values)
                                    if math.isfinite(v)], colour, radius=2.2, opacity=0.45))
            if finite(level_values):
                parts.append(box(frame, centre, band * 0.4, finite(level_values), colour))
    ticks = [(i, level) for i, level in enumerate(levels)]
    body = axes(frame, title, x_label, y_label, ticks) + ("".join(parts) if values else no_data(frame))
    return svg(frame, title, body + key)


def horizontal_marks(frame: Frame, marks: Sequence[tuple[float, str]]) -> str:
    """Dashed horizontal lines at data y positions, each labelled at its left end (e.g. 'base model 0.65')."""
    parts = []
    for y, label in marks:
        py = frame.y(y)
        parts.append(f'<line x1="{frame.left}" y1="{py:.1f}" x2="{frame.width - frame.right}" y2="{py:.1f}" '
                     f'class="mark"/><text x="{frame.left + 4}" y="{py - 4:.1f}">{esc(label)}</text>')
    return "".join(parts)


def line_svg(title: str, series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]], x_label: str,
             y_label: str, marks: Sequence[tuple[float, str]] = (), levels: Sequence[tuple[float, str]] = ()
             ) -> Markup:
    """Lines through (x, y) points with a dot per point, e.g. the training loss against the step.

    Args:
        series: (name, colour, points) per line, points in x order.
        marks: (x, label) dashed vertical lines, e.g. the step ``final/`` was saved at.
        levels: (y, label) dashed horizontal lines, e.g. the base model's score; the y axis includes them.
    """
    xs = [x for _, _, points in series for x, _ in points] + [x for x, _ in marks]
    ys = [y for _, _, points in series for _, y in points]
    frame, key = with_legend(Frame(padded_range(xs, 0.03), padded_range(ys + [y for y, _ in levels], 0.08)), [
        (name, colour) for name, colour, _ in series])
    parts = []
    for _, colour, points in series:
        kept = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in kept)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        parts += [dot(frame.x(x), frame.y(y), colour, f"step {x:g}: {y:.4g}", radius=2.4) for x, y in kept]
    body = axes(frame, title, x_label, y_label) + ("".join(parts) if ys else no_data(frame))
    return svg(frame, title, body + vertical_marks(frame, marks) + horizontal_marks(frame, levels) + key)
