"""The report's pictures, chosen from what a dataset's details hold (never from its task's name).

| details hold                                   | picture                                                       |
|------------------------------------------------|---------------------------------------------------------------|
| ``pairs`` with gold in {0, 1}                  | positive vs negative similarity histograms, one per model     |
| ``pairs`` with at most ``MAX_LEVELS`` levels   | box-and-strip plot of similarity per gold level, both models  |
| ``pairs`` with more gold values                | gold vs similarity scatter, one panel per model               |
| ``positive_scores`` / ``negative_scores``      | relevant vs non-relevant similarity histograms                |
| ``map``                                        | each distinct text once, coloured by its label if it has one  |
| ``per_query_delta``                            | histogram of tuned - baseline per query                       |

Each function returns ``markupsafe.Markup`` panels built by :mod:`evaluate.report.svg`, which escapes every string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from markupsafe import Markup

from evaluate.report.svg import (
    CATEGORY_COLOURS,
    CATEGORY_SHAPES,
    GREY,
    MODEL_COLOURS,
    NEUTRAL,
    RELEVANCE_COLOURS,
    histogram_svg,
    line_svg,
    padded_range,
    scatter_svg,
    strip_svg,
)
from evaluate.report.svg_map import map_svg, marker_key

MODELS = ("baseline", "tuned")
MAX_LEVELS = 6  # gold levels drawn as a strip per level; more: a scatter


def short(text: object, limit: int = 160) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gold_levels(pairs: Sequence[dict]) -> list[float]:
    return sorted({float(p["gold"]) for p in pairs})


def gold_scatter(pairs: Sequence[dict]) -> list[Markup]:
    """Gold score against each model's similarity, one panel per model on shared axes."""
    ranges = (padded_range([p["gold"] for p in pairs]), padded_range([p[m] for p in pairs for m in MODELS]))
    return [scatter_svg(f"{model}: gold vs similarity", [(p["gold"], p[model]) for p in pairs],
                        [MODEL_COLOURS[model]] * len(pairs), "gold score", "similarity (cosine)", ranges,
                        legend=[(model, MODEL_COLOURS[model])]) for model in MODELS]


def gold_strips(pairs: Sequence[dict]) -> list[Markup]:
    """Few gold levels: each model's similarities per level as a box over its dots, the two models side by side."""
    levels = [f"{g:g}" for g in gold_levels(pairs)]
    by_level = {m: {lv: [p[m] for p in pairs if f"{p['gold']:g}" == lv] for lv in levels} for m in MODELS}
    series = [(m, MODEL_COLOURS[m], by_level[m]) for m in MODELS]
    return [strip_svg("similarity per gold level", levels, series, "gold level", "similarity (cosine)")]


def relevance_histograms(positive: dict, negative: dict, names: tuple[str, str]) -> list[Markup]:
    """Positive vs negative similarity histograms, one panel per model on shared axes."""
    x_range = padded_range([s for scores in (positive, negative) for m in MODELS for s in scores.get(m, [])], 0.02)
    return [histogram_svg(f"{model}: {names[0]} vs {names[1]}", [
        (names[0], RELEVANCE_COLOURS["positive"], positive.get(model, [])),
        (names[1], RELEVANCE_COLOURS["negative"], negative.get(model, []))], "similarity (cosine)", x_range)
        for model in MODELS]


LOOK_APART = ("Bars: the share of each group per similarity bin (x: the model's cosine similarity; y: share of the "
              "group, so groups of different sizes compare). Look for the two groups further apart, overlapping less, "
              "in the tuned panel than in the baseline's.")


def pair_charts(detail: dict) -> tuple[str, list[Markup], str] | None:
    """The picture of a set's pairs or scored relevant/non-relevant samples: (heading, panels, caption)."""
    pairs = detail.get("pairs")
    if pairs and set(gold_levels(pairs)) <= {0.0, 1.0}:
        positive = {m: [p[m] for p in pairs if p["gold"] == 1] for m in MODELS}
        negative = {m: [p[m] for p in pairs if p["gold"] == 0] for m in MODELS}
        return "Similarity of similar and dissimilar pairs", relevance_histograms(positive, negative, (
            "similar", "dissimilar")), LOOK_APART
    if pairs and len(gold_levels(pairs)) <= MAX_LEVELS:
        return "Similarity per gold level", gold_strips(pairs), (
            f"{len(pairs)} pairs, each a faint dot (y: the model's cosine similarity of the pair); boxes span the "
            "middle half of a level's pairs, the thick line is its median. Look for boxes that rise with the gold "
            "level and overlap less for the tuned model (blue) than for the baseline (orange).")
    if pairs:
        return "Gold score vs predicted similarity", gold_scatter(pairs), (
            f"{len(pairs)} pairs: the gold score (x) against the model's cosine similarity (y). Look for a narrower "
            "rising band in the tuned panel.")
    if "positive_scores" in detail:
        return "Similarity of relevant and non-relevant documents", relevance_histograms(
            detail.get("positive_scores") or {}, detail.get("negative_scores") or {}, ("relevant", "non-relevant")), \
            "Queries paired with their relevant documents and with random other documents. " + LOOK_APART
    return None


def distinct_points(m: dict) -> tuple[list[int], bool]:
    """Indices of each distinct text's first point, and whether every text carries one label (so the label is a
    property of the text and may colour it). Points without a text are all kept."""
    labels, texts = [str(v) for v in m.get("labels", [])], list(m.get("texts", []))
    texts += [""] * (len(labels) - len(texts))
    placed: set[str] = set()
    seen: dict[str, set[str]] = {}
    keep = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        seen.setdefault(text, set()).add(label)
        if not text or text not in placed:
            keep.append(i)
            placed.add(text)
    return keep, all(len(v) == 1 for t, v in seen.items() if t)


def label_styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The most frequent labels get a (category colour, marker shape); numeric labels (gold levels) keep their
    numeric order."""
    common = [label for label, _ in Counter(labels).most_common(len(CATEGORY_COLOURS))]
    try:
        common.sort(key=float)
    except ValueError:
        pass
    return {label: (CATEGORY_COLOURS[i], CATEGORY_SHAPES[i]) for i, label in enumerate(common)}


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    return {label: colour for label, (colour, _) in label_styles(labels).items()}


def map_caption(m: dict, points: int, coloured: bool, look_for: str = "") -> str:
    """What the map shows, how it was projected, and what to look for."""
    recorded = len(m.get("labels", []))
    drawn = f"{points} distinct texts, each drawn once" + (f" ({recorded} recorded)" if recorded != points else "")
    how = str(m.get("projection") or f"{m.get('method', 'PCA')} fitted on each model's embeddings separately, so "
              "the two panels' axes are not comparable")
    look = (look_for or "Look for texts with the same marker closer together in the tuned panel.") if coloured else (
        "Not coloured: the recorded labels belong to pairs, not to texts. Look for tighter, better separated "
        "clusters in the tuned panel.")
    return f"{drawn}. Projection: {how}. {look}"


def map_view(m: dict, look_for: str = "") -> dict:
    """Both models' 2-D maps of each distinct text once, on shared axes, each label a (colour, shape) marker when
    labels belong to texts; ``look_for``: what its task's spec says to look for (``TaskSpec.map_look_for``)."""
    keep, by_text = distinct_points(m)
    labels = [str(m["labels"][i]) for i in keep]
    texts = [*m.get("texts", []), *[""] * len(m.get("labels", []))]
    styles = label_styles(labels) if by_text else {}
    marks = [styles.get(label, (GREY if by_text else NEUTRAL, "circle")) for label in labels]
    tips = [f"{short(label, 24)}: {short(texts[i], 60)}" for label, i in zip(labels, keep)]  # which text a dot is
    method = str(m.get("method", "2-D"))
    points = {model: [tuple(m[model][i]) for i in keep if i < len(m.get(model, []))] for model in MODELS}
    ranges = (padded_range([p[0] for ps in points.values() for p in ps]),
              padded_range([p[1] for ps in points.values() for p in ps]))
    shared = bool(m.get("projection"))
    panels = [map_svg(f"{model} ({method})", points[model], marks, ranges if shared else (
        padded_range([p[0] for p in points[model]]), padded_range([p[1] for p in points[model]])), method, tips)
        for model in MODELS]
    keys = [(short(label, 40), colour, marker_key(colour, shape)) for label, (colour, shape) in styles.items()]
    if by_text and len(styles) < len(set(labels)):
        keys.append(("other labels", GREY, marker_key(GREY, "circle")))
    return {"panels": panels, "legend": keys, "coloured": by_text, "points": len(keep), "of": len(m.get("labels", [])),
            "caption": map_caption(m, len(keep), by_text, look_for)}


def delta_histogram(deltas: Sequence[float], metric: str) -> Markup:
    """Per-query tuned - baseline differences, with a mark at 0 (no change)."""
    spread = max((abs(d) for d in deltas), default=0.0) or 1.0
    return histogram_svg(f"per-query Δ {metric}", [("queries", NEUTRAL, deltas)], f"Δ {metric} (tuned − baseline)",
                         (-spread * 1.02, spread * 1.02), bins=21, y_label="share of queries",
                         marks=[(0.0, "no change")])


def training_charts(loss: Sequence[tuple[float, float]], dev: Sequence[tuple[float, float]], dev_name: str,
                    final_step: float | None, base_dev: float | None = None) -> list[Markup]:
    """Training loss and the dev metric against the step, in the tuned model's colour (it is the model training),
    with a mark at the step ``final/`` holds; the dev chart's axis includes the base model's dev score
    ``base_dev`` (a dashed line in the baseline's sense), when known, so a gain is read against where it started."""
    marks = [(final_step, "final/")] if final_step is not None else []
    series = ("tuned model, while training", MODEL_COLOURS["tuned"])
    charts = [line_svg("training loss", [(*series, loss)], "optimiser step", "training loss (per batch)", marks)] \
        if loss else []
    if dev:
        levels = [(base_dev, f"base model {base_dev:.4f}")] if base_dev is not None else []
        charts.append(line_svg(f"{dev_name} on the dev split", [(*series, dev)], "optimiser step",
                               f"{dev_name} (dev split)", marks, levels))
    return charts
