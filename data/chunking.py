"""Chunk-aware training pairs (``data.chunking``): train on what the model reads.

A model reads at most ``max_seq_length`` tokens, so a positive longer than that is truncated while training: the
anchor is paired with the first window of a document whose answer may lie past it (a noisy positive). Here such a
positive is split into token windows by the same splitter evaluation uses (``core.windows``), and the pair keeps
the window chosen by ``data.chunking.positive``:

| positive     | the window kept                                                                  |
|--------------|----------------------------------------------------------------------------------|
| ``similarity`` | the one the base model scores closest to the anchor (cosine of the embeddings)  |
| ``bm25``       | the one with the highest BM25 score for the anchor (bm25s; English stemmer when PyStemmer is there) |
| ``all``        | every window, each a row of its own                                              |

A pair whose positive fits keeps its exact text. The other windows of the positive's document are recorded
(``Chunked.siblings``) so hard-negative mining never hands them to that anchor as negatives; mining draws its
candidates from windows (``Chunked.corpus``), the units the model reads at test time too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from datasets import Dataset

from configs.errors import UserError
from configs.schema import RunConfig
from core.embed_cache import cached_embed
from core.export import encoder_for
from core.keyword import available, build_index, score_blocks
from core.prompts import resolve_prompts
from core.windows import Windows, resolve_max_tokens, split_documents, token_limit
from data.table import Table

log = logging.getLogger(__name__)
KEY = "data.chunking"
EXAMPLES = 3


@dataclass
class Chunked:
    """What ``chunk_pairs`` returns: the new train table and what a person checks in stats.md."""

    table: Table
    corpus: dict[str, str]  # window id -> text: every document of the training side as windows (mining candidates)
    siblings: dict[int, set[str]]  # row of the new table -> texts of its positive's other windows (never negatives)
    stats: dict = field(default_factory=dict)
    doc_windows: dict[str, list[str]] = field(default_factory=dict)  # doc id -> its window texts, in text order


def documents(train: Table) -> tuple[dict[str, str], list[str]]:
    """(doc id -> text, each row's positive doc id): a BEIR corpus keeps its ids; other positives get one id per
    distinct text, so two rows with the same positive share its windows."""
    positives = list(train.rows["positive"])
    if train.corpus and "positive_id" in train.rows.column_names:
        return dict(train.corpus), [str(i) for i in train.rows["positive_id"]]
    ids = {text: f"p{n}" for n, text in enumerate(dict.fromkeys(positives))}
    return {doc: text for text, doc in ids.items()}, [ids[text] for text in positives]


def split_corpus(config: RunConfig, model, corpus: dict[str, str]) -> tuple[Windows, int]:
    """The training side's documents as windows of what the model reads (positive prompt included)."""
    settings = config.data.chunking
    prompt = config.train.prompts.get("positive", "")
    limit = token_limit(model, prompt)
    size = resolve_max_tokens(settings.max_tokens, settings.overlap, limit, key=KEY)
    return split_documents(corpus, model.tokenizer, size, settings.overlap, key=KEY, first_whole=size == limit), size


def windows_of(windows: Windows) -> dict[str, list[str]]:
    """doc id -> its window ids, in text order."""
    found: dict[str, list[str]] = defaultdict(list)
    for window, doc in windows.doc_of.items():
        found[doc].append(window)
    return dict(found)


def similarity_choice(config: RunConfig, model, anchors: list[str], candidates: list[list[str]],
                      fingerprint: str = "", folder: Path | None = None) -> list[int]:
    """Per anchor, the index of its candidate window the model scores highest (cosine, the model's prompts).

    With the base model's ``fingerprint`` the vectors go through the embedding store (``evaluate.cache_dir``): the
    windows encoded here are the ones mining then ranks, and neither encodes them twice. With ``folder`` the
    encoder is the one mining and evaluation use (``evaluate.backend``: the model, or its export)."""
    texts = {"query": list(dict.fromkeys(anchors)), "document": list(dict.fromkeys(t for c in candidates for t in c))}
    encoder, precision, backend = encoder_for(model, folder, config.evaluate, Path(config.run_dir))
    prompts = resolve_prompts(encoder, texts, config.train.prompts)
    emb = cached_embed(encoder, texts, config.data.hard_negatives.batch_size if config.data.hard_negatives else 64,
                       fingerprint, config.evaluate.cache_dir, precision, prompts, backend)
    picks = []
    for anchor, windows in zip(anchors, candidates):
        scores = emb.scores(emb([anchor], "query"), emb(windows, "document"))[0]  # (n_windows,)
        picks.append(int(np.argmax(scores)))
    return picks


def bm25_choice(anchors: list[str], candidates: list[list[str]]) -> list[int]:
    """Per anchor, the index of its candidate window with the highest BM25 score (IDF over every candidate window),
    tokenised and stemmed as evaluation's BM25 row is (``core.keyword``). An anchor with no indexed term (only
    stopwords, or words no window uses) keeps its first window: no keyword evidence moves it."""
    bm25 = available("english", key=f"{KEY}.positive=bm25")
    texts = list(dict.fromkeys(t for c in candidates for t in c))
    position = {t: i for i, t in enumerate(texts)}
    retriever = build_index(dict(enumerate(texts)), bm25)
    picks = []
    for start, scores in score_blocks(retriever, anchors, bm25):  # (block, n_texts); no indexed term: all 0
        for row, windows in zip(scores, candidates[start:start + len(scores)]):
            picks.append(int(np.argmax([row[position[w]] for w in windows])) if row.any() else 0)
    return picks


def chunk_pairs(config: RunConfig, train: Table, model, fingerprint: str = "", folder: Path | None = None
                ) -> Chunked:
    """The train split with every long positive replaced by its chosen window(s) (see the module docstring).

    Args:
        config: the run config; ``config.data.chunking`` holds the settings.
        train: the train split, kind ``pairs`` (anchor, positive).
        model: the base model (its tokenizer cuts the windows; ``similarity`` scores with it).
        fingerprint: the base model's folder fingerprint: ``similarity`` then reads and fills the embedding store.
        folder: the base model's folder: with ``evaluate.backend`` onnx | openvino, ``similarity`` encodes with its
            export, as mining and evaluation do (``core.export.encoder_for``); None: with the model.
    """
    if train.kind != "pairs":
        raise UserError(f"{KEY}: chunk-aware training needs (anchor, positive) pairs, but data.train ({train.origin}) "
                        f"is of kind '{train.kind}'. Map two columns to anchor and positive, or remove {KEY}.")
    corpus, row_docs = documents(train)
    windows, size = split_corpus(config, model, corpus)
    by_doc = windows_of(windows)
    long_rows = [i for i, doc in enumerate(row_docs) if len(by_doc[doc]) > 1]
    anchors = [train.rows["anchor"][i] for i in long_rows]
    candidates = [[windows.corpus[w] for w in by_doc[row_docs[i]]] for i in long_rows]
    picks = choose(config, model, anchors, candidates, fingerprint, folder)
    rows, positives, docs = expand(train.rows, row_docs, dict(zip(long_rows, picks)), windows, by_doc)
    siblings = {n: {windows.corpus[w] for w in by_doc[doc]} - {positives[n]}
                for n, doc in enumerate(docs) if len(by_doc[doc]) > 1}
    stats = chunk_stats(config, windows, size, row_docs, by_doc, long_rows, picks, anchors, candidates)
    table = replace(train, rows=rows, origin=f"{train.origin} (long positives as token windows)")
    log.info("%s: %s; %d of %d training pairs had a positive longer than the model reads, %d of them now train on "
             "a window past the first", KEY, windows.describe(len(corpus)), len(long_rows), len(row_docs),
             stats["moved_past_first_window"])
    doc_windows = {doc: [windows.corpus[w] for w in ids] for doc, ids in by_doc.items()}
    return Chunked(table, dict(windows.corpus), siblings, stats, doc_windows)


def choose(config: RunConfig, model, anchors: list[str], candidates: list[list[str]], fingerprint: str = "",
           folder: Path | None = None) -> list[int | None]:
    """Per long pair, the index of the window it keeps; None for ``all`` (every window is kept)."""
    how = config.data.chunking.positive
    if how == "all" or not anchors:
        return [None] * len(anchors)
    return similarity_choice(config, model, anchors, candidates, fingerprint, folder) if how == "similarity" else \
        bm25_choice(anchors, candidates)


def expand(rows: Dataset, row_docs: list[str], picks: dict[int, int | None], windows: Windows,
           by_doc: dict[str, list[str]]) -> tuple[Dataset, list[str], list[str]]:
    """(new rows, their positives, their positive doc ids): a long pair keeps its picked window, or (pick None)
    becomes one row per window; every other column is copied from the pair."""
    columns: dict[str, list] = {c: [] for c in rows.column_names}
    docs = []
    for i, row in enumerate(rows):
        if i not in picks:
            chosen = [None]  # the positive fits: its exact text stays
        elif picks[i] is None:
            chosen = by_doc[row_docs[i]]  # 'all': one row per window
        else:
            chosen = [by_doc[row_docs[i]][picks[i]]]
        for window in chosen:
            for column in rows.column_names:
                value = windows.corpus[window] if column == "positive" and window is not None else row[column]
                columns[column].append(value)
            docs.append(row_docs[i])
    return Dataset.from_dict(columns, features=rows.features), columns["positive"], docs


def chunk_stats(config: RunConfig, windows: Windows, size: int, row_docs: list[str], by_doc: dict[str, list[str]],
                long_rows: list[int], picks: list[int | None], anchors: list[str],
                candidates: list[list[str]]) -> dict:
    """Counts and a few examples for stats.md: how many documents were split, how many positives moved."""
    moved = [n for n, pick in enumerate(picks) if pick]  # picked a window after the first
    examples = [{"anchor": anchors[n][:160], "window": picks[n] + 1, "windows": len(candidates[n]),
                 "text": candidates[n][picks[n]][:240]} for n in moved[:EXAMPLES]]
    past_first = len(moved) if config.data.chunking.positive != "all" else sum(len(c) - 1 for c in candidates)
    positive_docs = set(row_docs)
    return {"positive": config.data.chunking.positive, "max_tokens": size, "overlap": config.data.chunking.overlap,
            "documents": len(by_doc), "documents_split": windows.chunked, "windows": len(windows.corpus),
            "positive_documents": len(positive_docs),
            "positive_documents_split": sum(len(by_doc[d]) > 1 for d in positive_docs),
            "pairs": len(row_docs), "pairs_with_long_positive": len(long_rows),
            "moved_past_first_window": past_first, "examples": examples}
