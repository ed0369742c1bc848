"""Chunk-aware training pairs (data/chunking.py) on the tiny BERT: which window a long positive becomes."""

from __future__ import annotations

import json
import random

import pytest
from datasets import Dataset

from configs.errors import UserError
from configs.schema import RunConfig
from conftest import WORDS, tiny_config
from data.chunking import chunk_pairs
from data.table import Table

FILLER = [w for w in WORDS if w not in {"printer", "paper", "jam", "vpn", "wifi", "dns"}]


def long_document(answer: str, at: int, length: int = 60) -> str:
    """``length`` filler words with ``answer`` written at word ``at`` (one vocabulary word is one token here). The
    filler order is shuffled with the answer as seed, so no two documents share a run of words."""
    words = FILLER.copy()
    random.Random(answer).shuffle(words)
    words = words[:length]
    return " ".join(words[:at] + answer.split() + words[at:])


@pytest.fixture
def model(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir), local_files_only=True)


def config_for(tmp_path, tiny_model_dir, positive: str) -> RunConfig:
    data = {"train": {"path": "unused.csv"}, "chunking": {"positive": positive, "max_tokens": 20, "overlap": 0}}
    return RunConfig.model_validate(tiny_config(tmp_path, tiny_model_dir, data, {"name": "mnrl"}))


def pairs() -> Table:
    rows = Dataset.from_dict({
        "anchor": ["printer paper jam", "vpn wifi dns", "short one"],
        "positive": [long_document("printer paper jam", 30), long_document("vpn wifi dns", 45), "disk full server"],
    })
    return Table(rows=rows, kind="pairs", origin="pairs.csv")


def test_bm25_keeps_the_window_that_holds_the_answer_and_a_short_positive_keeps_its_text(tmp_path, tiny_model_dir,
                                                                                         model):
    chunked = chunk_pairs(config_for(tmp_path, tiny_model_dir, "bm25"), pairs(), model)
    positives = chunked.table.rows["positive"]
    assert len(positives) == 3
    assert "printer paper jam" in positives[0] and "vpn wifi dns" in positives[1]
    assert positives[2] == "disk full server"
    assert chunked.stats["pairs_with_long_positive"] == 2 and chunked.stats["moved_past_first_window"] == 2
    assert chunked.stats["examples"][0]["window"] > 1


def test_similarity_keeps_one_of_the_documents_own_windows(tmp_path, tiny_model_dir, model):
    table = pairs()
    chunked = chunk_pairs(config_for(tmp_path, tiny_model_dir, "similarity"), table, model)
    for original, kept in zip(table.rows["positive"], chunked.table.rows["positive"]):
        assert kept in original and len(kept.split()) <= 20 or kept == original
    assert len(chunked.table.rows) == 3


def test_all_makes_a_row_per_window_and_siblings_are_never_the_rows_positive(tmp_path, tiny_model_dir, model):
    chunked = chunk_pairs(config_for(tmp_path, tiny_model_dir, "all"), pairs(), model)
    rows = chunked.table.rows
    n_windows = [sum(1 for a in rows["anchor"] if a == anchor) for anchor in ("printer paper jam", "vpn wifi dns")]
    assert all(n >= 3 for n in n_windows) and rows["anchor"].count("short one") == 1
    for i, positive in enumerate(rows["positive"]):
        assert positive not in chunked.siblings.get(i, set())
    first = rows["anchor"].index("printer paper jam")
    assert len(chunked.siblings[first]) == n_windows[0] - 1
    assert chunked.stats["moved_past_first_window"] == sum(n - 1 for n in n_windows)


def test_windows_are_the_mining_corpus_and_a_non_pair_table_is_refused(tmp_path, tiny_model_dir, model):
    config = config_for(tmp_path, tiny_model_dir, "bm25")
    chunked = chunk_pairs(config, pairs(), model)
    assert set(chunked.table.rows["positive"]) <= set(chunked.corpus.values())
    triplets = Table(rows=Dataset.from_dict({"anchor": ["a"], "positive": ["b"], "negative": ["c"]}), kind="triplets",
                     origin="t.csv")
    with pytest.raises(UserError, match="data.chunking: chunk-aware training needs .anchor, positive. pairs"):
        chunk_pairs(config, triplets, model)


def test_a_window_longer_than_the_model_reads_is_refused(tmp_path, tiny_model_dir, model):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "unused.csv"}, "chunking": {"max_tokens": 500}},
                      {"name": "mnrl"})
    with pytest.raises(UserError, match=r"data.chunking.max_tokens is 500, but the model reads at most \d+ tokens"):
        chunk_pairs(RunConfig.model_validate(raw), pairs(), model)


def test_prepare_mines_windows_never_the_positives_own_other_windows_and_stats_say_so(tmp_path, tiny_model_dir):
    from configs.cli import run
    from conftest import write_config, write_csv
    from data.__main__ import main as data_main

    answers = ["printer paper jam", "vpn wifi dns", "disk quota full", "login password reset", "cpu high load",
               "backup restore job", "certificate expired site", "badge access denied"]
    rows = [(answer, long_document(answer, 25 + 5 * (i % 4))) for i, answer in enumerate(answers)] * 2
    path = write_csv(tmp_path / "pairs.csv", ["anchor", "positive"], rows)
    data = {"train": {"path": str(path)}, "test_fraction": 0.25, "dev_fraction": 0.0,
            "chunking": {"positive": "bm25", "max_tokens": 20, "overlap": 0},
            # 15 of the ~20 windows of other documents: without the guard a pair could not miss all its siblings
            "hard_negatives": {"num_negatives": 15, "range_min": 0, "range_max": 40, "relative_margin": None}}
    config = write_config(tmp_path, tiny_config(tmp_path, tiny_model_dir, data, {"name": "mnrl"}))
    assert run(lambda: data_main([str(config)])) == 0
    folder = tmp_path / "run" / "data"
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert train and all(len(r["positive"].split()) <= 20 for r in train)  # positives are windows now
    for r in train:
        assert r["anchor"] in r["positive"]  # bm25 kept the window that holds the answer
        source = dict(rows)[r["anchor"]]
        for n in range(1, 16):  # no window of the anchor's own document is its negative
            assert r[f"negative_{n}"] not in source, (r["anchor"], r[f"negative_{n}"])
    stats = (folder / "stats.md").read_text()
    assert "Long positives as token windows (data.chunking)" in stats and "window after the first" in stats
    assert json.loads((folder / "meta.json").read_text())["chunking"]["positive"] == "bm25"


def test_sibling_windows_are_excluded_for_their_anchor_only_and_never_masked_as_positives():
    """The other windows of a positive's document are never its anchor's negatives, and are left out after the
    library ranks rather than given to it as positive rows: as rows they would set the margin's reference score to
    the document's weakest window (tests/test_negatives.py checks that margin with judged documents)."""
    from data.chunking import Chunked
    from data.negatives import excluded_texts, guard_plan

    rows = Dataset.from_dict({"anchor": ["q1", "q2"], "positive": ["doc one window b", "doc two window a"]})
    table = Table(rows=rows, kind="pairs", origin="p.csv")
    chunked = Chunked(table, {}, {0: {"doc one window a", "Doc one window C"}, 1: {"doc two window b"}})
    assert excluded_texts(table, chunked) == {"q1": {"doc one window a", "doc one window c"},
                                              "q2": {"doc two window b"}}
    candidates = ["doc one window a", "doc one window b", "doc one window c", "doc two window a", "doc two window b"]
    assert not guard_plan(rows, candidates).masked  # nothing added to the library's positives


def test_similarity_choice_and_mining_encode_each_window_once(tmp_path, tiny_model_dir, monkeypatch):
    """data.chunking's similarity choice and hard-negative mining use the same base model on the same windows: the
    embedding store (evaluate.cache_dir) makes the second read the first's vectors instead of encoding again."""
    import core.embed
    from configs.load import validate
    from conftest import write_csv
    from data.prepare import prepare

    encoded: list[str] = []
    real = core.embed.encode_keys  # every encode of core.embed (cached or not) goes through it

    def counting(model, keys, *args, **kwargs):
        encoded.extend(text for _, _, text in keys)
        return real(model, keys, *args, **kwargs)

    monkeypatch.setattr(core.embed, "encode_keys", counting)
    answers = ["printer paper jam", "vpn wifi dns", "disk quota full", "login password reset", "cpu high load",
               "backup restore job"]
    rows = [(answer, long_document(answer, 25 + 5 * (i % 3))) for i, answer in enumerate(answers)]
    path = write_csv(tmp_path / "pairs.csv", ["anchor", "positive"], rows)
    data = {"train": {"path": str(path)}, "test_fraction": 0.3, "dev_fraction": 0.0,
            "chunking": {"positive": "similarity", "max_tokens": 20, "overlap": 0},
            "hard_negatives": {"num_negatives": 2, "range_min": 0, "range_max": 10, "relative_margin": None}}
    raw = tiny_config(tmp_path, tiny_model_dir, data, {"name": "mnrl"})
    raw["evaluate"]["cache_dir"] = str(tmp_path / "cache")
    prepared = prepare(validate(raw))
    assert len(prepared.train.rows) > 0 and encoded
    assert len(encoded) == len(set(encoded)), "a text was encoded twice by the base model in one preparation"


def test_bm25_keeps_the_first_window_for_an_anchor_without_an_indexed_term(tmp_path, tiny_model_dir, model):
    """An anchor of stopwords only, or of words no window uses, has no BM25 evidence: it keeps its first window
    (NFCorpus has such queries; bm25s raised IndexError on the empty one)."""
    rows = Dataset.from_dict({
        "anchor": ["is it the", "zebra quokka", "printer paper jam"],
        "positive": [long_document("printer paper jam", 30), long_document("vpn wifi dns", 45),
                     long_document("printer paper jam", 35)],
    })
    chunked = chunk_pairs(config_for(tmp_path, tiny_model_dir, "bm25"), Table(rows=rows, kind="pairs", origin="p.csv"),
                          model)
    positives = chunked.table.rows["positive"]
    assert positives[0] == rows["positive"][0][:len(positives[0])]  # the first window: a prefix of the document
    assert positives[1] == rows["positive"][1][:len(positives[1])]
    assert "printer paper jam" in positives[2]
