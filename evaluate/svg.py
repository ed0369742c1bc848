"""Tiny inline-SVG charts for the HTML report: axes with ticks, scatter plots and overlaid histograms.

Every string that reaches the SVG (titles, labels, tooltips) goes through ``html.escape``; colours come from this
module's palette, never from data. The SVGs carry no ``xmlns`` URL: inline SVG in HTML5 needs none.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Tableau-like qualitative palette: distinguishable, print-safe. Labels past the 12th are drawn grey.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#1f77b4", "#8c564b", "#17becf")
GREY = "#b8b8b8"


def esc(value: object) -> str:
    """Text safe inside an HTML/SVG element or a quoted attribute."""
    return html.escape(str(value), quote=True)


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
    """A plot area: data ranges mapped onto a ``width`` x ``height`` SVG, with margins for title, ticks, labels."""

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


def axes(frame: Frame, title: str, x_label: str, y_label: str) -> str:
    """Plot box, tick marks with values, axis labels and the chart title."""
    x0, x1, y0, y1 = frame.left, frame.width - frame.right, frame.top, frame.height - frame.bottom
    parts = [f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" class="box"/>']
    for t in nice_ticks(*frame.x_range):
        px = frame.x(t)
        parts.append(f'<line x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y1 + 4}" class="tick"/>'
                     f'<text x="{px:.1f}" y="{y1 + 16}" text-anchor="middle">{t:g}</text>')
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


def svg(frame: Frame, title: str, body: str) -> str:
    """Wrap chart parts in an accessible, scalable ``<svg>`` element."""
    return (f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
            f'height="{frame.height}" role="img" aria-label="{esc(title)}">{body}</svg>')


def no_data(frame: Frame) -> str:
    return (f'<text x="{frame.width / 2:.1f}" y="{frame.height / 2:.1f}" text-anchor="middle" class="label">'
            "no data</text>")


def legend(frame: Frame, entries: Sequence[tuple[str, str]]) -> str:
    """Coloured squares with names in the plot's top-left corner; ``entries`` are (name, colour)."""
    longest = max((len(name) for name, _ in entries), default=0)
    parts = [f'<rect x="{frame.left + 4}" y="{frame.top + 4}" width="{26 + 6 * longest}" '
             f'height="{16 * len(entries) + 4}" fill="#fff" fill-opacity="0.85"/>']
    for i, (name, colour) in enumerate(entries):
        y = frame.top + 8 + 16 * i
        parts.append(f'<rect x="{frame.left + 8}" y="{y}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{frame.left + 22}" y="{y + 9}">{esc(name)}</text>')
    return "".join(parts)


def scatter_svg(title: str, points: Sequence[tuple[float, float]], colours: Sequence[str], x_label: str,
                y_label: str, ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
                tips: Sequence[str] | None = None) -> str:
    """Scatter plot; each point has its colour and, if ``tips`` is given, a hover tooltip.

    Args:
        points: (x, y) pairs in data units; pairs with a non-finite coordinate are skipped.
        colours: one colour per point (from :data:`PALETTE` or :data:`GREY`).
        ranges: (x_range, y_range); by default each axis spans its own data.
        tips: one tooltip text per point (escaped here).
    """
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    frame = Frame(*(ranges or (padded_range(xs), padded_range(ys))))
    dots = []
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        tip = f"<title>{esc(tips[i])}</title>" if tips is not None else ""
        dots.append(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.6" fill="{colours[i]}">{tip}'
                    "</circle>")
    body = axes(frame, title, x_label, y_label) + ("".join(dots) if dots else no_data(frame))
    return svg(frame, title, body)


def bin_shares(values: Sequence[float], lo: float, hi: float, bins: int) -> list[float]:
    """Share of ``values`` falling in each of ``bins`` equal bins over [lo, hi] (the last bin includes hi)."""
    counts = [0] * bins
    values = finite(values)
    for v in values:
        counts[min(max(int((v - lo) / (hi - lo) * bins), 0), bins - 1)] += 1
    return [c / len(values) for c in counts] if values else counts


def histogram_svg(title: str, series: Sequence[tuple[str, str, Sequence[float]]], x_label: str,
                  x_range: tuple[float, float], bins: int = 20, y_max: float | None = None) -> str:
    """Overlaid, semi-transparent histograms normalised to shares, so series of different sizes compare.

    Args:
        series: (name, colour, values) per histogram; the name goes into the legend with its count.
        x_range: the binned range, shared by the panels that should be compared.
        y_max: the top of the y axis (share); by default the largest bar.
    """
    shares = [bin_shares(values, *x_range, bins) for _, _, values in series]
    top = y_max or max((s for row in shares for s in row), default=0.0) or 1.0
    frame = Frame(x_range, (0.0, top * 1.08))
    width = (x_range[1] - x_range[0]) / bins
    bars = []
    for (_, colour, _), row in zip(series, shares):
        for k, share in enumerate(row):
            if share > 0:
                x0, x1, y = frame.x(x_range[0] + k * width), frame.x(x_range[0] + (k + 1) * width), frame.y(share)
                bars.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" '
                            f'height="{frame.y(0) - y:.1f}" fill="{colour}" fill-opacity="0.5"/>')
    names = [(f"{name} (n={len(finite(values))})", colour) for name, colour, values in series]
    empty = not any(finite(values) for _, _, values in series)
    body = axes(frame, title, x_label, "share of pairs") + "".join(bars) + (no_data(frame) if empty else "")
    return svg(frame, title, body + legend(frame, names))
