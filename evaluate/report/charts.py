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

MODELS = ("baseline", "tuned")
MAX_LEVELS = 6  # gold levels drawn as a strip per level; more: a scatter


def short(text: object, limit: int = 160) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gold_levels(pairs: Sequence[dict]) -> list[float]:
    return sorted({float(p["gold"]) for p in pairs})


def pair_tip(p: dict) -> str:
    return f"{short(p['sentence1'], 80)} | {short(p['sentence2'], 80)} (gold {p['gold']:g})"


def gold_scatter(pairs: Sequence[dict]) -> list[Markup]:
    """Gold score against each model's similarity, one panel per model on shared axes."""
    ranges = (padded_range([p["gold"] for p in pairs]), padded_range([p[m] for p in pairs for m in MODELS]))
    tips = [pair_tip(p) for p in pairs]
    return [scatter_svg(f"{model}: gold vs similarity", [(p["gold"], p[model]) for p in pairs],
                        [MODEL_COLOURS[model]] * len(pairs), "gold score", "similarity", ranges, tips,
                        legend=[(model, MODEL_COLOURS[model])]) for model in MODELS]


def gold_strips(pairs: Sequence[dict]) -> list[Markup]:
    """Few gold levels: each model's similarities per level as a box over its dots, the two models side by side."""
    levels = [f"{g:g}" for g in gold_levels(pairs)]
    by_level = {m: {lv: [p[m] for p in pairs if f"{p['gold']:g}" == lv] for lv in levels} for m in MODELS}
    tips = {lv: [pair_tip(p) for p in pairs if f"{p['gold']:g}" == lv] for lv in levels}
    series = [(m, MODEL_COLOURS[m], by_level[m]) for m in MODELS]
    return [strip_svg("similarity per gold level", levels, series, "gold level", "similarity", tips)]


def relevance_histograms(positive: dict, negative: dict, names: tuple[str, str]) -> list[Markup]:
    """Positive vs negative similarity histograms, one panel per model on shared axes."""
    x_range = padded_range([s for scores in (positive, negative) for m in MODELS for s in scores.get(m, [])], 0.02)
    return [histogram_svg(f"{model}: {names[0]} vs {names[1]}", [
        (names[0], RELEVANCE_COLOURS["positive"], positive.get(model, [])),
        (names[1], RELEVANCE_COLOURS["negative"], negative.get(model, []))], "similarity", x_range)
        for model in MODELS]


def pair_charts(detail: dict) -> tuple[str, list[Markup]] | None:
    """The picture of a set's pairs or scored relevant/non-relevant samples, with its heading."""
    pairs = detail.get("pairs")
    if pairs and set(gold_levels(pairs)) <= {0.0, 1.0}:
        positive = {m: [p[m] for p in pairs if p["gold"] == 1] for m in MODELS}
        negative = {m: [p[m] for p in pairs if p["gold"] == 0] for m in MODELS}
        return "Similarity of similar and dissimilar pairs", relevance_histograms(positive, negative,
                                                                                  ("similar", "dissimilar"))
    if pairs and len(gold_levels(pairs)) <= MAX_LEVELS:
        return "Similarity per gold level", gold_strips(pairs)
    if pairs:
        return "Gold score vs predicted similarity", gold_scatter(pairs)
    if "positive_scores" in detail:
        return "Similarity of relevant and non-relevant documents", relevance_histograms(
            detail.get("positive_scores") or {}, detail.get("negative_scores") or {}, ("relevant", "non-relevant"))
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


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """The most frequent labels get a category colour; numeric labels (gold levels) keep their numeric order."""
    common = [label for label, _ in Counter(labels).most_common(len(CATEGORY_COLOURS))]
    try:
        common.sort(key=float)
    except ValueError:
        pass
    return {label: CATEGORY_COLOURS[i] for i, label in enumerate(common)}


def map_view(m: dict) -> dict:
    """Both models' 2-D maps of each distinct text once, coloured by label when labels belong to texts."""
    keep, by_text = distinct_points(m)
    labels = [str(m["labels"][i]) for i in keep]
    texts = [*m.get("texts", []), *[""] * len(m.get("labels", []))]
    colours = label_colours(labels) if by_text else {}
    dots = [colours.get(label, GREY if by_text else NEUTRAL) for label in labels]
    tips = [f"[{short(label, 40)}] {short(texts[i], 120)}" for label, i in zip(labels, keep)]
    method = str(m.get("method", "2-D"))
    panels = [scatter_svg(f"{model} ({method})", [tuple(m[model][i]) for i in keep if i < len(m.get(model, []))],
                          dots, f"{method} 1", f"{method} 2", tips=tips) for model in MODELS]
    keys = [(short(label, 40), c) for label, c in colours.items()]
    if by_text and len(colours) < len(set(labels)):
        keys.append(("other labels", GREY))
    return {"panels": panels, "legend": keys, "coloured": by_text, "points": len(keep), "of": len(m.get("labels", []))}


def delta_histogram(deltas: Sequence[float], metric: str) -> Markup:
    """Per-query tuned - baseline differences, with a mark at 0 (no change)."""
    spread = max((abs(d) for d in deltas), default=0.0) or 1.0
    return histogram_svg(f"per-query Δ {metric}", [("queries", NEUTRAL, deltas)], f"Δ {metric} (tuned - baseline)",
                         (-spread * 1.02, spread * 1.02), bins=21, y_label="share of queries",
                         marks=[(0.0, "no change")])


def training_charts(loss: Sequence[tuple[float, float]], dev: Sequence[tuple[float, float]], dev_name: str,
                    final_step: float | None) -> list[Markup]:
    """Training loss and the dev metric against the step, in the tuned model's colour (it is the model training),
    with a mark at the step ``final/`` holds."""
    marks = [(final_step, "final/")] if final_step is not None else []
    series = ("tuned model, while training", MODEL_COLOURS["tuned"])
    charts = [line_svg("training loss", [(*series, loss)], "step", "loss", marks)] if loss else []
    if dev:
        charts.append(line_svg(f"{dev_name} on the dev split", [(*series, dev)], "step", dev_name, marks))
    return charts
