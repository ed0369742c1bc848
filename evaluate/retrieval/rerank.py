"""Rerankers: re-score each query's top k with a cross-encoder (sentence-transformers ``CrossEncoder``).

A cross-encoder reads the query and a document together and outputs one relevance score; it is too slow to score a
whole corpus, so it re-orders what a first-stage retriever (the tuned model, BM25) found. ``rerank_run`` takes and
returns runs (``{query_id: {doc_id: score}}``): the top ``top_k`` documents of each query, in trec_eval's order, get
the cross-encoder's score (after its activation, a sigmoid for a one-label model); documents ranked below ``top_k``
keep their order beneath them, with scores strictly below the lowest re-scored one (lowest - 1, lowest - 2, ...).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from configs.errors import UserError
from core.model import check_cross_encoder_folder
from core.model import load_cross_encoder as core_load_cross_encoder
from evaluate.retrieval.metrics import rank_documents

log = logging.getLogger(__name__)

Run = Mapping[str, Mapping[str, float]]
PAIRS_PER_CALL = 8192  # pairs handed to one predict call: memory stays bounded and progress is logged per block
RERANKER_ARCHITECTURES = ("ForSequenceClassification", "ForCausalLM")  # what CrossEncoder can score pairs with


def load_cross_encoder(name: str):
    """The ``CrossEncoder`` named by ``evaluate.rerank.model``: a local folder or a Hub id, loaded by the one loader
    (``core.model.load_cross_encoder``: missing folder, no config.json, corrupt weights, a model that cannot load).

    Raises:
        UserError: for those, for an embedding model (a CrossEncoder would bolt a randomly initialised head on it),
            a model without a pair-scoring head, or one with more than one output.
    """
    what = f"evaluate.rerank.model '{name}'"
    path = Path(name).expanduser()
    if path.exists() or name.startswith(("./", "../", "/", "~")):
        check_cross_encoder_folder(path, what)
        _check_not_embedding(name, path)
    model = core_load_cross_encoder(name, what)
    _check_loaded(name, model)
    return model


def _check_not_embedding(name: str, path: Path) -> None:
    st_config = path / "config_sentence_transformers.json"
    model_type = json.loads(st_config.read_text(encoding="utf-8")).get("model_type") if st_config.is_file() else None
    if model_type not in (None, "CrossEncoder"):
        raise UserError(f"evaluate.rerank.model '{name}' is a {model_type} (an embedding model), not a "
                        "CrossEncoder: it scores texts one at a time, not query-document pairs. Use a cross-encoder "
                        "(reranker) model.")


def _check_loaded(name: str, model) -> None:
    architectures = getattr(model[0].model.config, "architectures", None) or []
    if architectures and not any(a.endswith(RERANKER_ARCHITECTURES) for a in architectures):
        raise UserError(f"evaluate.rerank.model '{name}' is a {architectures[0]}, which has no pair-scoring head "
                        "(a CrossEncoder would score with random weights). Use a cross-encoder (reranker) model.")
    if model.num_labels != 1:
        raise UserError(f"evaluate.rerank.model '{name}' outputs {model.num_labels} labels per pair; a reranker "
                        "outputs one relevance score. Use a one-label cross-encoder (e.g. an ms-marco reranker).")


def rerank_run(cross_encoder, queries: Mapping[str, str], corpus: Mapping[str, str], run: Run, top_k: int,
               batch_size: int = 32) -> dict[str, dict[str, float]]:
    """Each query's top ``top_k`` documents re-ordered by the cross-encoder; the rest keep their order below.

    Args:
        cross_encoder: a one-label ``CrossEncoder`` (``load_cross_encoder``).
        queries: query id -> text (every query of ``run``).
        corpus: doc id -> text (every document of ``run``).
        run: query id -> {doc id: first-stage score}.
        top_k: documents re-scored per query.
        batch_size: pairs per forward pass.

    Returns:
        query id -> {doc id: score}, best first: cross-encoder scores, then the unscored tail below them.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1; got {top_k}")
    ranked = {q_id: rank_documents(doc_scores) for q_id, doc_scores in run.items()}
    pairs = [(q_id, doc) for q_id, docs in ranked.items() for doc in docs[:top_k]]
    scores = _predict(cross_encoder, [(queries[q], corpus[d]) for q, d in pairs], batch_size)  # (n_pairs,)
    head: dict[str, dict[str, float]] = {q_id: {} for q_id in ranked}
    for (q_id, doc), score in zip(pairs, scores.tolist()):
        head[q_id][doc] = score
    return {q_id: _with_tail(head[q_id], docs[top_k:]) for q_id, docs in ranked.items()}


def _predict(cross_encoder, texts: list[tuple[str, str]], batch_size: int) -> np.ndarray:
    """(n_pairs,) float64 scores, predicted in blocks of PAIRS_PER_CALL pairs."""
    out = []
    for start in range(0, len(texts), PAIRS_PER_CALL):
        block = texts[start:start + PAIRS_PER_CALL]
        out.append(np.asarray(cross_encoder.predict(block, batch_size=batch_size, show_progress_bar=False),
                              dtype=np.float64).reshape(len(block)))
        log.info("reranked %d of %d pairs", start + len(block), len(texts))
    scores = np.concatenate(out) if out else np.zeros(0)
    if np.isnan(scores).any():
        raise ValueError("the cross-encoder returned NaN scores; check the model (a NaN has no rank)")
    return scores


def _with_tail(head: dict[str, float], tail: list[str]) -> dict[str, float]:
    """The re-scored head in trec_eval's order, then the tail in its given order with scores below the head."""
    ordered = {doc: head[doc] for doc in rank_documents(head)}
    floor = min(head.values(), default=0.0)
    ordered.update((doc, floor - 1.0 - i) for i, doc in enumerate(tail))
    return ordered
