"""The embedding map's SVG: each text a marker whose colour AND shape name its category (so categories stay apart
without telling hues apart: deuteranopia, greyscale print), on axes the two models' panels share. Every string is
escaped by :mod:`evaluate.report.svg`'s ``esc``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup

from evaluate.report.svg import Frame, axes, esc, no_data, svg


def marker(x: float, y: float, colour: str, shape: str, tip: str | None = None, r: float = 3.0) -> str:
    """A point drawn as ``shape`` (one of ``CATEGORY_SHAPES``; anything else a circle), centred on (x, y)."""
    title = f"<title>{esc(tip)}</title>" if tip is not None else ""
    outlines = {"square": [(-r, -r), (r, -r), (r, r), (-r, r)],
                "triangle": [(0, -1.2 * r), (1.1 * r, r), (-1.1 * r, r)],
                "diamond": [(0, -1.3 * r), (1.3 * r, 0), (0, 1.3 * r), (-1.3 * r, 0)],
                "down": [(0, 1.2 * r), (1.1 * r, -r), (-1.1 * r, -r)]}
    if shape == "cross":
        d = f"M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}L{x + r:.1f} {y - r:.1f}"
        return f'<path d="{d}" stroke="{colour}" stroke-width="1.8">{title}</path>'
    if shape in outlines:
        d = "M" + "L".join(f"{x + dx:.1f} {y + dy:.1f}" for dx, dy in outlines[shape]) + "Z"
        return f'<path d="{d}" fill="{colour}">{title}</path>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}">{title}</circle>'


def marker_key(colour: str, shape: str) -> Markup:
    """A legend swatch: the marker alone in a small inline SVG."""
    return Markup(f'<svg class="key" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">'
                  f'{marker(6, 6, colour, shape, r=3.6)}</svg>')


def map_svg(title: str, points: Sequence[tuple[float, float]], styles: Sequence[tuple[str, str]],
            ranges: tuple[tuple[float, float], tuple[float, float]], axis: str,
            tips: Sequence[str] | None = None) -> Markup:
    """A 2-D map: each point a (colour, shape) marker on axes shared with the other model's panel."""
    frame = Frame(*ranges, top=30)
    parts = [marker(frame.x(x), frame.y(y), colour, shape, tips[i] if tips is not None else None)
             for i, ((x, y), (colour, shape)) in enumerate(zip(points, styles))
             if math.isfinite(x) and math.isfinite(y)]
    body = axes(frame, title, f"{axis} 1", f"{axis} 2") + ("".join(parts) if parts else no_data(frame))
    return svg(frame, title, body)
