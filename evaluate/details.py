"""What the HTML report draws, per dataset: each task's own details (``TaskSpec.details``: pair scores, per-query
wins and losses, score histograms) and a 2-D map of the texts ``TaskSpec.map_inputs`` picks.

Built from both models' task results and embeddings; returns plain JSON-ready dicts (``eval/details.json``).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from core.embed import Embeddings
from evaluate.evaluators import EVALUATORS

MAX_POINTS = 600


PROJECTION = ("{method} fitted once on both models' embeddings together and applied to each, so the two panels share "
              "their axes and scale")


def embedding_map(texts: list[str], labels: list[str], roles: list[str], base: Embeddings, tuned: Embeddings,
                  seed: int) -> dict:
    """2-D map of up to MAX_POINTS texts (each encoded as its role) in ONE projection fitted on both models'
    embeddings together, so the baseline's and the tuned panel can be compared point for point and axis for axis."""
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(texts), size=min(MAX_POINTS, len(texts)), replace=False))
    texts, labels, roles = [texts[i] for i in keep], [labels[i] for i in keep], [roles[i] for i in keep]
    vectors = [emb(texts, roles) for emb in (base, tuned)]  # 2 x (n_points, dim)
    if vectors[0].shape[1] == vectors[1].shape[1]:
        flat, method = project(np.concatenate(vectors), seed)  # (2 * n_points, 2): baseline rows first
        parts, note = np.split(flat, 2), {"projection": PROJECTION.format(method=method)}
    else:  # embeddings of different widths share no space: one projection each (the caption says so)
        (first, method), (second, _) = (project(v, seed) for v in vectors)
        parts, note = [first, second], {}
    points = {name: [[round(float(x), 4), round(float(y), 4)] for x, y in part]
              for name, part in zip(("baseline", "tuned"), parts)}
    return {**points, "labels": labels, "texts": texts, "method": method, **note}


def project(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """2-D coordinates: UMAP when umap-learn is installed (and there are enough points), else PCA."""
    if len(vectors) <= 2:
        return vectors[:, :2], "PCA"
    try:
        from umap import UMAP
    except ImportError:  # umap-learn is optional
        return PCA(n_components=2, random_state=seed).fit_transform(vectors), "PCA"
    reducer = UMAP(n_components=2, n_neighbors=min(15, len(vectors) - 1), random_state=seed)
    return reducer.fit_transform(vectors), "UMAP"


def build_details(sets, baseline: dict, tuned: dict, base_emb: Embeddings, tuned_emb: Embeddings,
                  seed: int = 0) -> dict:
    """details.json content for every evaluated dataset: {"task", the task's own keys..., "map"}."""
    out = {}
    for item in sets:
        name, spec = item.config.name, EVALUATORS[item.config.task]
        b, t = baseline[name], tuned[name]
        info = {"task": item.config.task, **spec.details(item.table, b, t, (base_emb, tuned_emb), seed=seed)}
        info["map"] = embedding_map(*spec.map_inputs(item.table, b), base_emb, tuned_emb, seed)
        out[name] = info
    return out
