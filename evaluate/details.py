"""What the HTML report draws, per dataset: pair scores, per-query wins and losses, score histograms, a 2-D map.

Built from both models' task results and embeddings; returns plain JSON-ready dicts (``eval/details.json``).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from evaluate.embed import Embeddings
from evaluate.tasks import TaskResult

MAX_PAIRS, MAX_POINTS, WINS_AND_LOSSES, TOP_DOCS = 2000, 600, 10, 5


def pair_details(table, base: TaskResult, tuned: TaskResult) -> dict:
    rows = table.rows.select(range(min(MAX_PAIRS, len(table.rows))))
    columns = zip(rows["sentence1"], rows["sentence2"], base.gold, base.cosines, tuned.cosines)
    return {"pairs": [{"sentence1": a, "sentence2": b, "gold": float(g), "baseline": float(x), "tuned": float(y)}
                      for a, b, g, x, y in columns]}


def _top(result: TaskResult, q_id: str) -> list[dict]:
    queries, corpus, qrels = result.retrieval
    return [{"text": corpus[d], "score": s, "relevant": qrels[q_id].get(d, 0) > 0}
            for d, s in list(result.run[q_id].items())[:TOP_DOCS]]


def query_details(base: TaskResult, tuned: TaskResult) -> list[dict]:
    """The biggest per-query nDCG@10 wins and losses of the tuned model, with both models' top documents."""
    queries, corpus, qrels = base.retrieval
    delta = tuned.per_query["ndcg@10"] - base.per_query["ndcg@10"]  # (n_queries,), aligned by query id
    order = np.argsort(delta)
    picked = [i for i in [*order[::-1][:WINS_AND_LOSSES], *order[:WINS_AND_LOSSES]] if delta[i] != 0]
    out = []
    for i in dict.fromkeys(picked):
        q_id = base.query_ids[i]
        out.append({"query": queries[q_id], "relevant": [corpus[d] for d, r in qrels[q_id].items() if r > 0],
                    "delta": float(delta[i]),
                    "baseline": {"ndcg@10": float(base.per_query["ndcg@10"][i]), "top": _top(base, q_id)},
                    "tuned": {"ndcg@10": float(tuned.per_query["ndcg@10"][i]), "top": _top(tuned, q_id)}})
    return out


def score_samples(result: TaskResult, emb: Embeddings, seed: int) -> tuple[list[float], list[float]]:
    """Similarities of queries with their relevant documents, and with as many random non-relevant ones."""
    queries, corpus, qrels = result.retrieval
    rng, doc_ids = np.random.default_rng(seed), list(corpus)
    positive, negative = [], []
    for q_id in result.query_ids[:MAX_PAIRS]:
        q = emb([queries[q_id]], "query")  # (1, dim)
        relevant = [d for d, r in qrels[q_id].items() if r > 0]
        others = [doc_ids[j] for j in rng.choice(len(doc_ids), size=min(len(doc_ids), 3), replace=False)]
        positive += [float(v) for v in emb.scores(q, emb([corpus[d] for d in relevant], "document"))[0]]
        negative += [float(v) for v in emb.scores(q, emb([corpus[d] for d in others if d not in relevant],
                                                         "document"))[0]]
    return positive, negative


def embedding_map(texts: list[str], labels: list[str], roles: list[str], base: Embeddings, tuned: Embeddings,
                  seed: int) -> dict:
    """2-D PCA of up to MAX_POINTS texts (each encoded as its role), fitted per model, for side-by-side plots."""
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(texts), size=min(MAX_POINTS, len(texts)), replace=False))
    texts, labels, roles = [texts[i] for i in keep], [labels[i] for i in keep], [roles[i] for i in keep]
    points, method = {}, "PCA"
    for name, emb in (("baseline", base), ("tuned", tuned)):
        flat, method = project(emb(texts, roles), seed)  # (n_points, 2)
        points[name] = [[round(float(x), 4), round(float(y), 4)] for x, y in flat]
    return {**points, "labels": labels, "texts": texts, "method": method}


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


def map_inputs(task: str, table, base: TaskResult) -> tuple[list[str], list[str], list[str]]:
    """Which texts to place on the map, how to colour them, and the role each is encoded as."""
    if task == "retrieval":
        queries, corpus, qrels = base.retrieval
        relevant = list(dict.fromkeys(d for q in qrels.values() for d, r in q.items() if r > 0))
        return list(queries.values()) + [corpus[d] for d in relevant], \
            ["query"] * len(queries) + ["relevant document"] * len(relevant), \
            ["query"] * len(queries) + ["document"] * len(relevant)
    if task in ("classification", "clustering"):
        return list(table.rows["text"]), list(table.rows["label"]), ["text"] * len(table.rows)
    names = ["similar" if g >= 0.5 else "dissimilar" for g in base.gold]
    return list(table.rows["sentence2"]), names, ["sentence2"] * len(table.rows)


def build_details(sets, baseline: dict, tuned: dict, base_emb: Embeddings, tuned_emb: Embeddings,
                  seed: int = 0) -> dict:
    """details.json content for every evaluated dataset."""
    out = {}
    for item in sets:
        name, task = item.config.name, item.config.task
        b, t = baseline[name], tuned[name]
        info: dict = {"task": task}
        if task == "retrieval":
            info["queries"] = query_details(b, t)
            pos_b, neg_b = score_samples(b, base_emb, seed)
            pos_t, neg_t = score_samples(t, tuned_emb, seed)
            info["positive_scores"] = {"baseline": pos_b, "tuned": pos_t}
            info["negative_scores"] = {"baseline": neg_b, "tuned": neg_t}
        elif task in ("sts", "pair_classification"):
            info.update(pair_details(item.table, b, t))
        texts, labels, roles = map_inputs(task, item.table, b)
        info["map"] = embedding_map(texts, labels, roles, base_emb, tuned_emb, seed)
        out[name] = info
    return out
