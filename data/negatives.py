"""Hard negatives for the (anchor, positive) training pairs, mined by sentence-transformers'
``util.mine_hard_negatives`` (output format "n-tuple" → our kind ``tuples``: anchor, positive, negative_1..n).

The library ranks the candidates, applies range_min / range_max / margins / max_score and drops a pair that keeps
fewer than ``num_negatives`` negatives (an n-tuple needs equal columns). What we add around it:

- candidates from the training side only (a BEIR source: its corpus; otherwise the train split's positives);
- a guard against false negatives the library cannot see: a text that equals one of the anchor's positives (or
  the anchor) once whitespace and case are normalised is never mined for that anchor (``guard_plan``);
- texts that answer the anchor but are not its training positive are never its negatives either
  (``excluded_texts``): documents judged relevant to its query that are not training rows (a BEIR source capped by
  ``max_per_anchor``), and under data.chunking the other windows of its positive's document. The library can mask
  only the positives it is given as rows, and it measures the margin against the lowest of them (a loosely judged
  document, a document's weakest window), so these are left out after it ranks: it returns every survivor in
  range_max (labeled-list), and range_min and the sampling are applied to the rest (``select_negatives``), which is
  what masking them would give with the margin measured against the pair's own positive;
- the library is handed every text as a short key (``KeyedTexts``), so that list holds keys, not copies of
  abstracts: its memory no longer grows with range_max times the length of the documents;
- the miner's identity (``model_fingerprint``) and counts a person can check (``data.mining_report``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset

from configs.errors import UserError
from configs.schema import HardNegativesConfig, RunConfig
from core.bars import bars_on_terminal_only
from core.embed import precision_context
from core.embed_cache import StoredEncoder
from core.export import encoder_for
from data.checks import comparable
from data.chunking import Chunked
from data.table import Table

log = logging.getLogger(__name__)
KEY = "data.hard_negatives"
KEPT_COLUMNS = ("group", "anchor_id", "positive_id")  # carried from a pair to its tuple


def normalise(text: str) -> str:
    """The project's one text comparison (``data.checks.comparable``: NFKC, case folded, whitespace collapsed):
    'Foo  Bar' and 'foo bar' are one text to the guard."""
    return comparable(text)


@dataclass
class GuardPlan:
    """What the library is given, arranged so that its own exact-positive mask enforces the normalised guard."""

    dataset: Dataset  # (anchor, positive): the train pairs, then one row per (anchor, spelling to mask)
    corpus: list[str]  # candidates, one spelling per normalised text (a positive's own spelling wins)
    masked: set[tuple[str, str]]  # the added (anchor, spelling) rows: masked as positives, never written
    guard: dict[str, set[str]]  # normalised anchor -> normalised texts it must never get as a negative
    candidates_given: int
    # normalised anchor -> normalised texts that answer it but are not its positive (``excluded_texts``): left out
    # after the library ranks (they must not lower the margin's reference score as positive rows would)
    excluded: dict[str, set[str]] = field(default_factory=dict)


def guard_plan(rows: Dataset, candidates: list[str]) -> GuardPlan:
    """Arrange pairs and candidates so that no anchor can be mined a normalised duplicate of its positives.

    The library masks, per distinct anchor, the exact texts of that anchor's positives. Normalised duplicates
    among the candidates are merged onto the positive's spelling, and the spellings that remain (positives of
    other anchors, the anchor's own text) are added as extra positive rows of that anchor, dropped after mining.
    """
    anchors, positives = list(rows["anchor"]), list(rows["positive"])
    guard: dict[str, set[str]] = defaultdict(set)
    for anchor, positive in zip(anchors, positives):
        guard[normalise(anchor)].update({normalise(anchor), normalise(positive)})
    spelling = {}
    for positive in positives:
        spelling.setdefault(normalise(positive), positive)
    merged: dict[str, str] = {}
    for text in candidates:
        merged.setdefault(normalise(text), spelling.get(normalise(text), text))
    corpus = list(merged.values())
    spellings: dict[str, set[str]] = defaultdict(set)
    for text in dict.fromkeys(corpus + positives):  # every text the library will rank
        spellings[normalise(text)].add(text)
    own: dict[str, set[str]] = defaultdict(set)
    for anchor, positive in zip(anchors, positives):
        own[anchor].add(positive)
    masked = {(anchor, text) for anchor in own for key in guard[normalise(anchor)]
              for text in spellings.get(key, ()) if text not in own[anchor]}
    extra = sorted(masked)
    dataset = Dataset.from_dict({"anchor": anchors + [a for a, _ in extra],
                                 "positive": positives + [t for _, t in extra]})
    return GuardPlan(dataset, corpus, masked, dict(guard), len(candidates))


def judged_positives(train: Table, doc_texts: dict[str, list[str]] | None = None) -> dict[str, set[str]]:
    """Normalised anchor -> normalised texts of the documents judged relevant (grade > 0) to its query that are not
    among its training rows: a BEIR source's judgements kept beside the rows (``Table.extra_qrels``, e.g. dropped by
    ``max_per_anchor``). As the candidates hold them: whole, or with ``doc_texts`` (doc id -> its window texts,
    data.chunking) as their windows. Empty for sources without query ids."""
    if not train.extra_qrels or not train.corpus or "anchor_id" not in train.rows.column_names:
        return {}
    texts: dict[str, set[str]] = {}  # doc id -> normalised texts, each document normalised once

    def of(doc: str) -> set[str]:
        if doc not in texts:
            texts[doc] = {normalise(t) for t in (doc_texts or {}).get(doc, [train.corpus[doc]])}
        return texts[doc]

    judged: dict[str, set[str]] = defaultdict(set)
    for anchor, query in zip(train.rows["anchor"], train.rows["anchor_id"]):
        for doc, grade in train.extra_qrels.get(str(query), {}).items():
            if grade > 0 and doc in train.corpus:
                judged[normalise(anchor)] |= of(doc)
    return dict(judged)


def excluded_texts(train: Table, chunked: Chunked | None = None) -> dict[str, set[str]]:
    """Normalised anchor -> normalised texts never to be its negatives that are not its positives: documents judged
    relevant to its query that are not rows (``judged_positives``), and with data.chunking the other windows of each
    of its positives' documents (``Chunked.siblings``)."""
    excluded = judged_positives(train, chunked.doc_windows if chunked else None)
    if chunked:
        anchors = train.rows["anchor"]
        for row, texts in chunked.siblings.items():
            excluded.setdefault(normalise(anchors[row]), set()).update(normalise(text) for text in texts)
    return excluded


class KeyedTexts:
    """The miner as the library sees it: each distinct text is a short key (its number as a string), and
    ``encode_query`` / ``encode_document`` encode the texts behind the keys; everything else is the model's own.

    The library's outputs then hold keys, not copies of the texts. Its labeled-list lists every survivor in
    range_max for every pair: 2,590 NFCorpus pairs at range_max 3,600 list about 9 million abstracts, which as
    texts outgrew 24 GB and were killed. Equal texts get equal keys, so the library's own masks (a positive, the
    anchor's own text among the candidates) and its de-duplication see what they saw with the texts."""

    def __init__(self, model):
        self._model, self.texts, self._keys = model, [], {}

    def __getattr__(self, name):
        if name == "_model":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)

    def keys(self, texts) -> list[str]:
        for text in texts:
            if text not in self._keys:
                self._keys[text] = str(len(self.texts))
                self.texts.append(text)
        return [self._keys[text] for text in texts]

    def text(self, key: str) -> str:
        return self.texts[int(key)]

    def encode_query(self, keys, **kwargs):
        return self._model.encode_query(self._texts(keys), **kwargs)

    def encode_document(self, keys, **kwargs):
        return self._model.encode_document(self._texts(keys), **kwargs)

    def _texts(self, keys):
        return self.text(keys) if isinstance(keys, str) else [self.text(key) for key in keys]


def select_negatives(listed: Dataset, plan: GuardPlan, settings: HardNegativesConfig, keyed: KeyedTexts
                     ) -> tuple[Dataset, int]:
    """The library's n-tuples from its labeled-list output (every survivor of the margins in range_max, hardest
    first, as ``keyed``'s keys), with the anchor's excluded texts left out before range_min and the sampling are
    applied, as the library applies them. A pair left with fewer than ``num_negatives`` is dropped, as the library
    drops it. Returns the n-tuples as texts (with ``scores``: positive first) and how many candidates were left
    out."""
    n = settings.num_negatives
    columns: dict[str, list] = {"anchor": [], "positive": [], **{f"negative_{i}": [] for i in range(1, n + 1)},
                                "scores": []}
    normalised: dict[str, str] = {}  # key -> normalised text, each text normalised once

    def norm(key: str) -> str:
        if key not in normalised:
            normalised[key] = normalise(keyed.text(key))
        return normalised[key]

    left_out = 0
    for anchor, keys, scores in zip(listed["anchor"], listed["positive"], listed["scores"]):
        anchor = keyed.text(anchor)
        excluded = plan.excluded.get(normalise(anchor), set())
        options = [(key, score) for key, score in zip(keys[1:], scores[1:]) if norm(key) not in excluded]
        left_out += len(keys) - 1 - len(options)
        options = options[settings.range_min:]
        if len(options) < n:
            continue
        chosen = options[:n] if settings.sampling == "top" else sorted(
            random.sample(options, k=n), key=lambda option: -option[1])
        columns["anchor"].append(anchor)
        columns["positive"].append(keyed.text(keys[0]))
        for i, (key, _) in enumerate(chosen, start=1):
            columns[f"negative_{i}"].append(keyed.text(key))
        columns["scores"].append([scores[0], *(score for _, score in chosen)])
    return Dataset.from_dict(columns), left_out


def check_settings(settings: HardNegativesConfig, train: Table) -> None:
    """Errors before any model is loaded: mining needs (anchor, positive) pairs and a window that fits."""
    if train.kind != "pairs":
        raise UserError(f"{KEY}: mining needs (anchor, positive) training pairs, but data.train ({train.origin}) is "
                        f"of kind '{train.kind}'. Map two columns to anchor and positive, or remove {KEY}.")
    if settings.range_max is not None and settings.range_max - settings.range_min < settings.num_negatives:
        raise UserError(f"{KEY}: range_max ({settings.range_max}) - range_min ({settings.range_min}) leaves fewer "
                        f"candidates than num_negatives ({settings.num_negatives}). Raise range_max or lower "
                        "range_min or num_negatives.")


def load_miner(config: RunConfig):
    """(model, {"name", "fingerprint"}, folder): the base model unless ``hard_negatives.model`` names a local folder;
    both through the one loader (``core.model``), with its checks of the folder and the weights. ``folder`` is the
    base model's (whose export mining uses under evaluate.backend, into the store the baseline reads); None for a
    miner of its own, whose vectors nothing else reads."""
    from core.model import load_model, load_model_folder, model_fingerprint

    folder = config.data.hard_negatives.model
    if folder is None:
        model, resolved = load_model(config.model)
        return model, {"name": resolved.base_model, "fingerprint": resolved.fingerprint}, resolved.path
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserError(f"{KEY}.model: folder {folder} does not exist. Give a local sentence-transformers model "
                        f"folder, or leave {KEY}.model empty to mine with the base model.")
    return load_model_folder(path, f"{KEY}.model"), {"name": str(path), "fingerprint": model_fingerprint(path)}, None


def candidate_texts(train: Table, windows: dict[str, str] | None = None) -> tuple[list[str], str]:
    """The candidate negatives and a sentence saying where they come from (for stats.md); with ``windows``
    (data.chunking) the training side's documents as the token windows the model reads."""
    if windows:
        return list(windows.values()), (
            f"the training side's documents as {len(windows):,} token windows (data.chunking), the units the model "
            "reads; a positive's other windows are never its negatives")
    if train.corpus:
        return list(train.corpus.values()), (
            f"the source's whole corpus ({len(train.corpus)} documents). It is the collection retrieval ranks at "
            "test time too; choosing candidates reads no dev/test judgement, so no test label reaches training "
            "(leaving out the documents judged for test queries would itself use the test labels)")
    return list(dict.fromkeys(train.rows["positive"])), "every positive text of the train split (never dev or test)"


@contextlib.contextmanager
def _seeded(seed: int):
    """The library's ``random`` sampling (sampling: random) seeded by the run; the global state is restored."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def run_miner(plan: GuardPlan, model, settings: HardNegativesConfig, seed: int, precision: str = "fp32"):
    """The library's n-tuples with scores, plus the query and corpus embeddings it computed (for the counts).

    ``precision``: 'bf16' encodes under bf16 autocast, as evaluation does on the same hardware
    (``core.embed.resolve_precision`` of ``evaluate.precision``)."""
    from sentence_transformers.util import mine_hard_negatives

    window = {"range_min": settings.range_min, "range_max": settings.range_max,
              "num_negatives": settings.num_negatives, "sampling_strategy": settings.sampling,
              "output_format": "n-tuple"}
    if plan.excluded:  # every survivor in range_max, so that the excluded texts are left out first (module doc)
        # (range_max empty: the library's own default window with margins, range_min + 10 x num_negatives)
        widest = settings.range_max or settings.range_min + 10 * settings.num_negatives
        window = {"range_min": 0, "range_max": widest, "num_negatives": widest, "sampling_strategy": "top",
                  "output_format": "labeled-list"}
    keyed = KeyedTexts(model)
    pairs = Dataset.from_dict({"anchor": keyed.keys(plan.dataset["anchor"]),
                               "positive": keyed.keys(plan.dataset["positive"])})
    corpus = keyed.keys(plan.corpus)
    with tempfile.TemporaryDirectory() as cache, _seeded(seed), precision_context(model, precision):
        try:
            mined = mine_hard_negatives(
                pairs, keyed, anchor_column_name="anchor", positive_column_name="positive",
                corpus=corpus, max_score=settings.max_score, absolute_margin=settings.absolute_margin,
                relative_margin=settings.relative_margin, output_scores=True, batch_size=settings.batch_size,
                verbose=False, cache_folder=cache, **window)
        except ValueError as err:  # the library's own checks of the window (range_min, range_max, num_negatives)
            raise UserError(f"{KEY}: {err}") from None
        embeddings = [np.load(next(Path(cache).glob(f"{name}_embeddings_*.npy"))) for name in ("query", "corpus")]
        left_out = 0
        if plan.excluded:
            mined, left_out = select_negatives(mined, plan, settings, keyed)
        else:
            mined = Dataset.from_dict({c: mined[c] if c == "scores" else [keyed.text(key) for key in mined[c]]
                                       for c in mined.column_names})
    return mined, embeddings[0], embeddings[1], left_out


def assemble(mined: Dataset, plan: GuardPlan, train: Table) -> tuple[Dataset, int]:
    """Mined rows minus the masking rows, each with its pair's group and ids; rows failing the final guard
    check are dropped (counted: the plan makes this 0, the check proves it)."""
    first = {}
    for index, pair in enumerate(zip(train.rows["anchor"], train.rows["positive"])):
        first.setdefault(pair, index)
    kept_columns = [c for c in KEPT_COLUMNS if c in train.rows.column_names]
    extra = {c: train.rows[c] for c in kept_columns}
    columns: dict[str, list] = {c: [] for c in [*mined.column_names, *kept_columns]}
    negatives = [c for c in mined.column_names if c.startswith("negative_")]
    violations = 0
    for row in mined:
        pair = (row["anchor"], row["positive"])
        if pair in plan.masked:
            continue
        never = plan.guard[normalise(row["anchor"])] | plan.excluded.get(normalise(row["anchor"]), set())
        if any(normalise(row[c]) in never for c in negatives):
            violations += 1
            continue
        for column in mined.column_names:
            columns[column].append(row[column])
        for column in kept_columns:
            columns[column].append(extra[column][first[pair]])
    return Dataset.from_dict(columns), violations


def mine_train(config: RunConfig, train: Table, held_out: list[Table] = (), chunked: Chunked | None = None
               ) -> tuple[Table, dict]:
    """The train split as tuples with mined negatives, and the mining summary (for meta.json and stats).

    Args:
        config: the run config; ``config.data.hard_negatives`` holds the settings.
        train: the train split, kind ``pairs`` (dev and test are never mined and never candidates).
        held_out: dev/test tables, only to count mined negatives that are also their positives (stats).
        chunked: what data.chunking made of ``train`` (its windows are the candidates, its siblings excluded).
    """
    from data.mining_report import summary

    settings = config.data.hard_negatives
    check_settings(settings, train)
    candidates, source = candidate_texts(train, chunked.corpus if chunked else None)
    plan = guard_plan(train.rows, candidates)
    plan.excluded = excluded_texts(train, chunked)
    start = time.perf_counter()
    with bars_on_terminal_only():
        model, miner, folder = load_miner(config)
        # what evaluation encodes the base model with: at evaluate.precision, or its export (evaluate.backend), so
        # the baseline reads these vectors; a miner of its own (no folder) stays in PyTorch
        export, precision, backend = encoder_for(model, folder, config.evaluate, Path(config.run_dir))
        log.info("hard negatives: mining %d pairs against %d candidate texts with %s (%s, batches of %d)",
                 len(train.rows), len(plan.corpus), miner["name"],
                 precision if backend == "torch" else f"{backend} export, {precision}", settings.batch_size)
        encoder = StoredEncoder(model, miner["fingerprint"], config.evaluate.cache_dir, precision, encoder=export,
                                backend=backend, train_prompts=config.train.prompts if folder else {})
        mined, queries, corpus, left_out = run_miner(plan, encoder, settings, config.seed, precision)
    rows, violations = assemble(mined, plan, train)
    seconds = time.perf_counter() - start
    report = {**summary(settings, miner, source, plan, model, (queries, corpus), (mined, rows, violations), train,
                        held_out, seconds), "precision": precision, **({"backend": backend} if backend != "torch"
                                                                         else {})}
    if plan.excluded:
        report["guards"]["excluded_left_out"] = left_out
    log.info("hard negatives: %d of %d pairs kept with %d negatives each in %.0f s (%d dropped with fewer left: "
             "a larger range_max keeps more)", len(rows), len(train.rows), settings.num_negatives, seconds,
             report["rows"]["dropped_too_few_negatives"])
    if len(rows) == 0:
        raise UserError(f"{KEY}: no training pair kept {settings.num_negatives} negatives after the guards. Raise "
                        f"range_max, lower range_min or num_negatives, or loosen relative_margin/absolute_margin.")
    table = Table(rows=rows.remove_columns("scores"), kind="tuples", origin=f"{train.origin} (with mined hard "
                  "negatives)", corpus=train.corpus)
    return table, report
