"""Hard-negative mining as a data step: the library mines, we guard against false negatives (normalised
duplicates of an anchor's positives, the anchor itself), mine the train split only, and say what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from configs.cli import run
from configs.errors import UserError
from configs.load import validate
from conftest import tiny_config, write_config
from data.__main__ import main
from data.negatives import guard_plan, normalise
from data.prepare import load_prepared, prepare

# Every candidate can be mined when no library guard is on: only our guard stands between a duplicate and a row.
NO_LIBRARY_GUARDS = {"range_min": 0, "range_max": 50, "relative_margin": None, "num_negatives": 3}

CORPUS = {
    "d1": "disk full on server", "d1case": "Disk FULL on   server", "d1copy": "disk full on server",
    "d2": "email queue backlog", "d2case": "EMAIL queue\tbacklog",
    "d3": "printer paper jam", "d4": "Printer  paper jam",  # d4 is another anchor's positive, d3's twin
    "d5": "the shop website cannot open", "d6": "dns name error", "d7": "vpn connection lost",
    "d8": "database query timeout", "d9": "wifi connect failed", "d10": "payment card failed",
    "d11": "backup job failed", "d12": "cpu high load", "d13": "user account locked",
}
QUERIES = {"q1": "the shop website cannot open", "q2": "my mail is not arriving", "q3": "the printer does not print",
           "q4": "paper jam in the office printer", "q9": "my laptop battery is out"}
TRAIN_QRELS = [("q1", "d1"), ("q1", "d7"), ("q2", "d2"), ("q3", "d3"), ("q4", "d4")]  # q1 has two positives


@pytest.fixture(scope="module")
def bow_miner(tmp_path_factory) -> Path:
    """A known-answer miner: one dimension per vocabulary word, so cosine is the overlap of the texts' word bags
    ('disk full server' vs 'disk full server backup': 3 / sqrt(3 * 4) = 0.866), whatever the case and spacing."""
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from transformers import BertTokenizerFast

    from conftest import write_vocab

    root = tmp_path_factory.mktemp("bow")
    tokenizer = BertTokenizerFast(vocab=str(write_vocab(root / "vocab.txt")), do_lower_case=True)
    module = StaticEmbedding(tokenizer, embedding_weights=np.eye(tokenizer.vocab_size, dtype=np.float32))
    SentenceTransformer(modules=[module], device="cpu").save_pretrained(str(root / "st"))
    return root / "st"


def beir_folder(tmp_path: Path, corpus: dict = CORPUS, queries: dict = QUERIES, train: list = TRAIN_QRELS) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                                 for k, v in corpus.items()), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n"
                                                  for k, v in {**queries, "q9": "my laptop battery is out"}.items()),
                                          encoding="utf-8")
    test_doc = next(iter(corpus))
    for split, pairs in (("train", train), ("test", [("q9", test_doc)])):
        lines = "".join(f"{q}\t{d}\t1\n" for q, d in pairs)
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines, encoding="utf-8")
    return folder


def mining_config(tmp_path: Path, model_dir: Path, folder: Path, **settings) -> dict:
    data = {"train": {"path": str(folder), "split": "train"}, "test": {"path": str(folder), "split": "test"},
            "dev_fraction": 0, "hard_negatives": {**NO_LIBRARY_GUARDS, **settings}}
    return tiny_config(tmp_path, model_dir, data, {"name": "mnrl"})


def guarded(anchor: str) -> set[str]:
    """What ``anchor`` must never get as a negative: its positives and itself, normalised."""
    positives = {CORPUS[d] for q, d in TRAIN_QRELS if QUERIES[q] == anchor}
    return {normalise(t) for t in positives | {anchor}}


def test_planted_duplicates_of_positives_never_come_back_as_negatives(tmp_path, tiny_model_dir, bow_miner):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path), model=str(bow_miner))
    prepared = prepare(validate(raw))
    rows = prepared.train.rows
    assert prepared.train.kind == "tuples" and len(rows) == len(TRAIN_QRELS)
    for row in rows:
        negatives = {normalise(row[f"negative_{i}"]) for i in (1, 2, 3)}
        assert not negatives & guarded(row["anchor"]), row
    assert prepared.mining["guards"]["positive_duplicates_masked"] == 3  # q1/d5 (its own text), q3/d4, q4/d3
    # The control: the library alone, same settings, mines those duplicates. Only the anchors whose planted twin
    # scores exactly like the positive and strictly above every other candidate (q3: d4, q4: d3) are counted; the
    # other twins tie at 0 with most of the corpus, and the order of exact ties differs between machines.
    model = SentenceTransformer(str(bow_miner), local_files_only=True)
    plain = mine_hard_negatives(rows.select_columns(["anchor", "positive"]), model, corpus=list(CORPUS.values()),
                                output_format="n-tuple", verbose=False, **NO_LIBRARY_GUARDS)
    corpus_vectors = model.encode(list(CORPUS.values()))
    for query, twin, positive in (("q3", "d4", "d3"), ("q4", "d3", "d4")):  # the premise, in the miner's own scores
        score = dict(zip(CORPUS, model.similarity(model.encode([QUERIES[query]]), corpus_vectors)[0].tolist()))
        assert score[twin] == pytest.approx(score[positive])
        assert score[twin] > max(v for k, v in score.items() if k not in (twin, positive)) + 0.01
    leaked = {r["anchor"] for r in plain if {normalise(r[f"negative_{i}"]) for i in (1, 2, 3)} & guarded(r["anchor"])}
    assert {QUERIES["q3"], QUERIES["q4"]} <= leaked, "without our guard an anchor is mined its positive's twin"


def test_guard_plan_merges_variants_and_masks_other_anchors_twins():
    from datasets import Dataset

    rows = Dataset.from_dict({"anchor": ["q3", "q4"], "positive": ["printer paper jam", "Printer  paper jam"]})
    plan = guard_plan(rows, ["printer paper jam", "PRINTER paper jam", "dns name error", "q3 "])
    assert plan.corpus == ["printer paper jam", "dns name error", "q3 "]  # the variant merged onto a positive
    assert plan.masked == {("q3", "Printer  paper jam"), ("q4", "printer paper jam"), ("q3", "q3 ")}
    assert plan.candidates_given == 4


MARGIN_CORPUS = {  # bag-of-words cosine with the query 'disk full server'
    "pos": "disk full server backup",  # 0.866
    "same_bag": "server disk full",  # 1.0: above the positive, a probable false negative
    "close": "disk full server backup job",  # 0.775
    "half": "disk full cpu",  # 0.667
    "far1": "printer paper jam", "far2": "vpn connection lost", "far3": "email queue backlog",  # 0.0
}


@pytest.mark.parametrize(
    ("settings", "dropped", "negatives"),
    [
        ({"relative_margin": 0.05}, {"relative_margin": 1}, ["close", "half"]),  # 0.866 * 0.95 = 0.823
        ({"absolute_margin": 0.1}, {"absolute_margin": 2}, ["half"]),  # 0.866 - 0.1 = 0.766
        ({"max_score": 0.7}, {"max_score": 2}, ["half"]),
        ({"range_min": 1}, {"range_min": 1}, ["close", "half"]),
    ],
)
def test_each_guard_drops_the_candidates_it_names(tmp_path, tiny_model_dir, bow_miner, settings, dropped, negatives):
    folder = beir_folder(tmp_path, MARGIN_CORPUS, {"q1": "disk full server"}, [("q1", "pos")])
    raw = mining_config(tmp_path, tiny_model_dir, folder, model=str(bow_miner), **settings)
    prepared = prepare(validate(raw))
    row = prepared.train.rows[0]
    assert [row["negative_1"], row["negative_2"]] == [MARGIN_CORPUS[k] for k in negatives + ["far1"]][:2] or \
        [row["negative_1"]] == [MARGIN_CORPUS[negatives[0]]]
    guards = prepared.mining["guards"]
    assert guards["considered"] == 6
    assert {k: guards[k] for k in dropped} == dropped
    assert sum(guards[k] for k in ("absolute_margin", "relative_margin", "max_score", "range_min")) == \
        sum(dropped.values())
    scores = prepared.mining["examples"][0]["scores"]
    assert scores[0] == pytest.approx(0.866, abs=1e-3) and max(scores[1:]) < scores[0]


def test_mined_split_is_written_fingerprinted_and_explained(tmp_path, tiny_model_dir, bow_miner, capsys):
    from core.model import model_fingerprint

    raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path), model=str(bow_miner), range_min=1)
    code = run(lambda: main([str(write_config(tmp_path, raw))]))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\r" not in err, "progress-bar redraws must not reach a log file"
    folder = Path(raw["run_dir"]) / "data"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kinds"] == {"train": "tuples", "test": "pairs"}
    assert meta["hard_negatives"]["model"] == {"name": str(bow_miner), "fingerprint": model_fingerprint(bow_miner)}
    assert meta["hard_negatives"]["settings"]["range_min"] == 1
    assert len(meta["sha256"]["train"]) == 64
    stats = json.loads((folder / "stats.json").read_text())["hard_negatives"]
    # 16 documents: d1copy is d1's exact copy; d1case, d2case and d4 normalise onto a positive's spelling
    assert stats["candidates"] == {"given": 16, "unique": 12, "merged_as_normalised_duplicates": 4}
    assert stats["guards"]["range_min"] == 4  # one skipped per distinct anchor
    assert stats["rows"] == {"pairs": 5, "distinct_pairs": 5, "kept": 5, "dropped_too_few_negatives": 0}
    assert stats["scores"]["negative"]["count"] == 15 and len(stats["examples"]) == 4
    text = (folder / "stats.md").read_text()
    assert "## Hard negatives (train split only)" in text and "| negative | 15 |" in text
    reread = load_prepared(Path(raw["run_dir"]))
    assert reread.train.kind == "tuples" and reread.train.rows["anchor_id"][:2] == ["q1", "q1"]


def test_files_mine_the_train_split_only(tmp_path, tiny_model_dir, pairs_csv, bow_miner):
    train = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    settings = {**NO_LIBRARY_GUARDS, "num_negatives": 2, "model": str(bow_miner)}
    prepared = prepare(validate(tiny_config(tmp_path, tiny_model_dir, {"train": train, "hard_negatives": settings},
                                            {"name": "mnrl"})))
    mined = {row[c] for row in prepared.train.rows for c in ("negative_1", "negative_2")}
    assert mined <= set(prepared.train.rows["positive"])
    held = {t for split in (prepared.dev, prepared.test) for c in ("anchor", "positive") for t in split.rows[c]}
    assert not mined & held
    assert (prepared.dev.kind, prepared.test.kind) == ("pairs", "pairs")
    assert prepared.mining["candidates_from"].startswith("every positive text of the train split")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": "/no/such/miner"}, r"data\.hard_negatives\.model: folder /no/such/miner does not exist"),
        ({"range_min": 48, "range_max": 50}, r"range_max \(50\) - range_min \(48\) leaves fewer candidates"),
        ({"max_score": -1.0}, r"no training pair kept 3 negatives"),
    ],
)
def test_mining_settings_that_cannot_work_are_user_errors(tmp_path, tiny_model_dir, settings, message):
    with pytest.raises(UserError, match=message):
        prepare(validate(mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path), **settings)))


def test_mining_needs_pairs(tmp_path, tiny_model_dir, scored_csv):
    data = {"train": {"path": str(scored_csv), "score_range": [0, 5]}, "hard_negatives": {}}
    with pytest.raises(UserError, match=r"mining needs \(anchor, positive\) training pairs.*kind 'scored'"):
        prepare(validate(tiny_config(tmp_path, tiny_model_dir, data, {"name": "cosine"})))


def test_the_base_model_mines_when_no_miner_is_named(tmp_path, tiny_model_dir):
    from core.model import model_fingerprint

    prepared = prepare(validate(mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path))))
    assert prepared.mining["model"] == {"name": str(tiny_model_dir), "fingerprint": model_fingerprint(tiny_model_dir)}
    assert prepared.train.kind == "tuples" and len(prepared.train.rows) > 0


JUDGED_CORPUS = {  # bag-of-words cosine with the query 'disk full server'
    "pos": "disk full server backup",  # 0.866, grade 2: the row max_per_anchor keeps
    "judged_close": "disk server",  # 0.816, grade 1: judged relevant, below the margin, the hardest candidate
    "judged_far": "printer paper jam",  # 0.0, grade 1: judged relevant
    "close": "disk full server backup job",  # 0.775
    "half": "disk full cpu",  # 0.667
    "far1": "vpn connection lost", "far2": "email queue backlog",  # 0.0
}


@pytest.mark.parametrize("sampling", ["top", "random"])
def test_documents_judged_for_the_query_are_never_its_negatives(tmp_path, tiny_model_dir, bow_miner, sampling):
    """A BEIR query capped by max_per_anchor keeps its other judged documents as qrels; mining must not hand them
    back as negatives, and must measure the margin against the kept positive alone (as rows of the library they
    would set its reference score: 'printer paper jam' scores 0, and every candidate above 0 would be dropped)."""
    folder = beir_folder(tmp_path, JUDGED_CORPUS, {"q1": "disk full server"},
                         [("q1", "pos"), ("q1", "judged_close"), ("q1", "judged_far")])
    qrels = folder / "qrels" / "train.tsv"
    qrels.write_text(qrels.read_text().replace("q1\tpos\t1", "q1\tpos\t2"), encoding="utf-8")
    raw = mining_config(tmp_path, tiny_model_dir, folder, model=str(bow_miner), relative_margin=0.05,
                        num_negatives=2, sampling=sampling, range_max=4)
    raw["data"]["train"]["max_per_anchor"] = 1
    prepared = prepare(validate(raw))
    rows = prepared.train.rows
    assert len(rows) == 1 and rows[0]["positive"] == JUDGED_CORPUS["pos"]
    negatives = {rows[0]["negative_1"], rows[0]["negative_2"]}
    assert not negatives & {JUDGED_CORPUS["judged_close"], JUDGED_CORPUS["judged_far"]}
    if sampling == "top":  # the two hardest candidates that are neither judged nor within the margin
        assert [rows[0]["negative_1"], rows[0]["negative_2"]] == [JUDGED_CORPUS["close"], JUDGED_CORPUS["half"]]
    else:  # a sample of the survivors in range_max (4: judged_close, close, half and a 0-scored one) minus judged
        scores = prepared.mining["examples"][0]["scores"]
        assert len(negatives) == 2 and scores[1] >= scores[2]
    guards = prepared.mining["guards"]
    assert guards["excluded_left_out"] >= 1 and guards["rows_failing_final_check"] == 0


@pytest.mark.parametrize("judged", [False, True])
def test_the_library_ranks_keys_and_the_rows_come_back_as_texts(tmp_path, tiny_model_dir, bow_miner, monkeypatch,
                                                                judged):
    """The library is handed short keys, never the texts: its labeled-list output (used when judged documents are
    left out) lists every survivor in range_max for every pair, and as texts that outgrew 24 GB on NFCorpus at
    range_max 3,600. The rows written are texts, with the same guards."""
    import sentence_transformers.util as st_util

    library, seen = st_util.mine_hard_negatives, []

    def recording(dataset, model, corpus=None, **kwargs):
        seen.append([*dataset["anchor"], *dataset["positive"], *corpus])
        return library(dataset, model, corpus=corpus, **kwargs)

    monkeypatch.setattr(st_util, "mine_hard_negatives", recording)
    if judged:  # the query's other judged documents stay judgements (max_per_anchor): the labeled-list path
        folder = beir_folder(tmp_path, JUDGED_CORPUS, {"q1": "disk full server"},
                             [("q1", "pos"), ("q1", "judged_close"), ("q1", "judged_far")])
        raw = mining_config(tmp_path, tiny_model_dir, folder, model=str(bow_miner), relative_margin=0.05,
                            num_negatives=2, range_max=4)
        raw["data"]["train"]["max_per_anchor"] = 1
        texts = {*JUDGED_CORPUS.values(), "disk full server"}
    else:  # the library's n-tuples
        raw = mining_config(tmp_path, tiny_model_dir, beir_folder(tmp_path), model=str(bow_miner))
        texts = {*CORPUS.values(), *QUERIES.values()}
    rows = prepare(validate(raw)).train.rows
    assert len(seen) == 1 and all(text.isdigit() and len(text) <= 2 for text in seen[0])
    negatives = [c for c in rows.column_names if c.startswith("negative_")]
    assert len(rows) >= 1 and {row[c] for row in rows for c in ["anchor", "positive", *negatives]} <= texts
    if judged:
        assert [(r["negative_1"], r["negative_2"]) for r in rows] == [(JUDGED_CORPUS["close"], JUDGED_CORPUS["half"])]
    else:
        for row in rows:
            assert not {normalise(row[c]) for c in negatives} & guarded(row["anchor"]), row
