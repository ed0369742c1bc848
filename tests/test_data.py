"""The data stage: sources onto canonical columns, grouped splits without leakage, stats, and bad input that
stops with one clear message (file, row, line, column, what was expected) before anything is written."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset

from configs.cli import run
from configs.errors import UserError
from configs.load import RESOLVED_NAME, validate
from configs.schema import SourceConfig
from conftest import tiny_config, write_config
from data.__main__ import main
from data.prepare import leakage, load_table, prepare
from data.splits import grouped_split, shared_texts
from data.stats import split_stats, stats_markdown

SCORED = pd.DataFrame({
    "question": ["disk full on server", "email queue backlog", "vpn connection lost"],
    "answer": ["the shop website cannot open any page", "my mail is not arriving", "the printer is out of paper"],
    "similarity": [5, 2, 0],
    "topic": ["disk", "mail", "net"],
})


def write_frame(path: Path, frame: pd.DataFrame) -> Path:
    """``frame`` in the format the file name's suffix names."""
    if path.suffix in (".csv", ".tsv"):
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


def source(path: Path, **fields) -> SourceConfig:
    return SourceConfig(path=str(path), **fields)


# ------------------------------------------------------------------------------------------------- local files
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_local_file_maps_columns_and_rescales_scores(tmp_path, suffix):
    path = write_frame(tmp_path / f"scored{suffix}", SCORED)
    columns = {"sentence1": "question", "sentence2": "answer", "score": "similarity"}
    table = load_table(source(path, columns=columns, score_range=(0, 5), group_column="topic"), "data.train")
    assert table.kind == "scored"
    assert table.rows.column_names == ["sentence1", "sentence2", "score", "group"]
    assert table.rows["sentence1"] == SCORED["question"].tolist()
    assert table.rows["sentence2"] == SCORED["answer"].tolist()
    assert table.rows["score"] == pytest.approx([1.0, 0.4, 0.0])
    assert table.rows["group"] == ["disk", "mail", "net"]


def write_triplets(tmp_path: Path) -> Path:
    rows = [{"q": "disk full on server", "pos": "the website cannot open", "neg": "my mail is not arriving"},
            {"q": "printer paper jam", "pos": "the printer does not print", "neg": "the vpn is down"}]
    path = tmp_path / "triplets.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "fields", "kind"),
    [
        ("scored", {"score_range": (0, 5)}, "scored"),
        ("labeled", {}, "labeled"),
        ("pairs", {"columns": {"anchor": "jargon", "positive": "plain"}}, "pairs"),
        ("triplets", {"columns": {"anchor": "q", "positive": "pos", "negative": "neg"}}, "triplets"),
    ],
)
def test_kind_is_detected_from_the_canonical_columns(request, tmp_path, name, fields, kind):
    path = write_triplets(tmp_path) if name == "triplets" else request.getfixturevalue(f"{name}_csv")
    table = load_table(source(path, **fields), "data.train")
    assert table.kind == kind
    if kind == "scored":
        assert table.rows["score"] == pytest.approx([s / 5 for s in pd.read_csv(path)["score"]])
    if kind == "labeled":
        assert table.rows["label"] == pd.read_csv(path)["label"].tolist()


def test_explicit_format_reads_a_file_with_another_suffix(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("anchor\tpositive\ndisk full\tthe site is down\n", encoding="utf-8")
    with pytest.raises(UserError, match="cannot tell the format"):
        load_table(source(path), "data.train")
    table = load_table(source(path, format="tsv"), "data.train")
    assert (table.kind, table.rows["positive"]) == ("pairs", ["the site is down"])


def test_split_column_keeps_only_the_named_split(tmp_path):
    frame = SCORED.assign(part=["train", "test", "test"])
    path = write_frame(tmp_path / "all.csv", frame)
    columns = {"sentence1": "question", "sentence2": "answer", "score": "similarity"}
    table = load_table(source(path, columns=columns, score_range=(0, 5), split_column="part", split="test"),
                       "data.test")
    assert table.rows["sentence1"] == ["email queue backlog", "vpn connection lost"]
    assert "part" not in table.rows.column_names
    with pytest.raises(UserError, match=r"no row has part='dev'\. Found: \['test', 'train'\]"):
        load_table(source(path, columns=columns, split_column="part", split="dev"), "data.test")


# ------------------------------------------------------------------------------------------------------------ BEIR
@pytest.fixture
def beir_dir(tmp_path) -> Path:
    """Three documents (one without a title), three queries, test qrels with one relevance-0 row."""
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Disk", "text": "disk full on server"},
              {"_id": "d2", "title": "Mail", "text": "email queue backlog"},
              {"_id": "d3", "title": "", "text": "vpn connection lost"}]
    queries = [{"_id": "q1", "text": "the shop website cannot open"},
               {"_id": "q2", "text": "my mail is not arriving"},
               {"_id": "q3", "text": "I cannot connect from the office"}]
    for name, items in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t0\n"
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


def test_beir_folder_gives_relevant_pairs_with_ids(beir_dir):
    table = load_table(source(beir_dir, split="test"), "data.test")
    assert table.kind == "pairs"
    assert table.rows["anchor_id"] == ["q1", "q2"]  # q3's relevance-0 row is dropped
    assert table.rows["positive_id"] == ["d1", "d2"]
    assert table.rows["anchor"] == ["the shop website cannot open", "my mail is not arriving"]
    assert table.rows["positive"] == ["Disk disk full on server", "Mail email queue backlog"]
    assert table.corpus == {"d1": "Disk disk full on server", "d2": "Mail email queue backlog",
                            "d3": "vpn connection lost"}


def test_beir_qrels_naming_unknown_query_ids_or_empty_queries_list_them_all(beir_dir):
    qrels = beir_dir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8") + "q1\td9\t1\nq7\td1\t1\nq8\td8\t1\n", encoding="utf-8")
    queries = beir_dir / "queries.jsonl"
    queries.write_text(queries.read_text(encoding="utf-8").replace("my mail is not arriving", " "), encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_table(source(beir_dir, split="test"), "data.test")
    assert str(info.value) == (  # documents missing from the corpus are a warning (tests/test_graded_qrels.py)
        f"{qrels} names ids the folder cannot resolve. Fix the qrels or the files:\n"
        "  query ids not in queries.jsonl (2): q7, q8\n"
        "  queries with empty text (1): q2"
    )


def test_beir_qrels_naming_documents_missing_from_the_corpus_keep_them_as_judgements(beir_dir, caplog):
    qrels = beir_dir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8") + "q1\td9\t1\nq1\td8\t2\n", encoding="utf-8")
    table = load_table(source(beir_dir, split="test"), "data.test")
    assert table.rows["anchor_id"] == ["q1", "q2"]
    assert table.extra_qrels == {"q1": {"d9": 1, "d8": 2}, "q3": {"d3": 0}}
    assert "2 document id(s) are not in corpus.jsonl: d8, d9" in caplog.text


def test_prepared_beir_splits_keep_grades_and_other_judgements_through_the_run_folder(beir_dir, tmp_path):
    from data.prepare import Prepared, load_prepared, save_prepared

    test = load_table(source(beir_dir, split="test"), "data.test")
    train = load_table(source(beir_dir, split="test", limit=1), "data.train")
    fingerprints = save_prepared(Prepared(train=train, test=test), tmp_path, {})
    reread = load_prepared(tmp_path)
    assert reread.test.rows["relevance"] == [1, 1] and reread.test.extra_qrels == {"q3": {"d3": 0}}
    assert reread.test.extra_queries == {"q3": "I cannot connect from the office"}
    assert reread.train.extra_qrels == {} and reread.train.extra_queries == {}
    assert set(fingerprints) == {"train", "test", "corpus", "qrels_extra"}


def test_beir_qrels_with_a_trailing_blank_line_loads(beir_dir):
    qrels = beir_dir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_table(source(beir_dir, split="test"), "data.test").rows["anchor_id"] == ["q1", "q2"]


# ---------------------------------------------------------------------------------------------------------- splits
def test_grouped_split_puts_no_text_on_both_sides(labeled_csv):
    rows = load_table(source(labeled_csv), "data.train").rows
    rows_per_text = Counter(t for pair in zip(rows["sentence1"], rows["sentence2"]) for t in set(pair))
    assert max(rows_per_text.values()) > 1, "texts must recur across rows for this to test anything"
    train, test = grouped_split(rows, 0.2, seed=7)
    assert len(test) > 0 and len(train) + len(test) == len(rows)
    assert shared_texts(train, test) == set()


def pairs_by_topic(pairs_csv: Path) -> Dataset:
    fields = {"columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    return load_table(source(pairs_csv, **fields), "data.train").rows


def test_group_column_keeps_a_topic_on_one_side(pairs_csv):
    rows = pairs_by_topic(pairs_csv)
    train, test = grouped_split(rows, 0.3, seed=7)
    assert len(test) > 0 and len(train) + len(test) == len(rows)
    assert set(train["group"]) & set(test["group"]) == set()
    assert Counter(test["group"]) == {topic: Counter(rows["group"])[topic] for topic in set(test["group"])}


def test_grouped_split_is_deterministic_per_seed(pairs_csv):
    rows = pairs_by_topic(pairs_csv)
    first, again = grouped_split(rows, 0.3, seed=7), grouped_split(rows, 0.3, seed=7)
    assert first[0].to_list() == again[0].to_list() and first[1].to_list() == again[1].to_list()
    held = {tuple(sorted(set(grouped_split(rows, 0.3, seed=seed)[1]["group"]))) for seed in range(5)}
    assert len(held) > 1, "other seeds should hold out other topics"


def test_prepare_makes_leak_free_train_dev_test(tmp_path, tiny_model_dir, labeled_csv):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": str(labeled_csv)}}, {"name": "contrastive"})
    prepared = prepare(validate(raw))
    assert prepared.dev is not None
    sizes = [len(table.rows) for table in prepared.splits().values()]
    assert min(sizes) > 0 and sum(sizes) == len(pd.read_csv(labeled_csv))
    assert leakage(prepared) == 0
    assert shared_texts(prepared.train.rows, prepared.dev.rows) == set()


# ----------------------------------------------------------------------------------------------------------- stats
def test_stats_count_rows_labels_duplicates_and_truncation(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = Dataset.from_dict({
        "sentence1": ["disk full", "disk full", "printer paper jam in the office"],  # 4, 4, 8 tokens with [CLS]/[SEP]
        "sentence2": ["server down", "server down", "my printer is out of paper"],  # 4, 4, 8
        "label": [1, 1, 0],
        "group": ["a", "a", "b"],
    })
    stats = split_stats(rows, tokenizer, max_seq_length=6)
    assert (stats["rows"], stats["groups"], stats["duplicate_pairs"]) == (3, 2, 1)
    assert stats["label_counts"] == {"0": 1, "1": 2}
    expected = {"mean": pytest.approx(16 / 3), "p95": 8, "max": 8, "max_seq_length": 6,
                "share_truncated": pytest.approx(1 / 3)}
    assert stats["tokens"] == {"sentence1": expected, "sentence2": expected}
    assert "33.3% longer than max_seq_length 6" in stats_markdown({"splits": {"train": stats}})


def test_stats_of_rescaled_scores(scored_csv):
    rows = load_table(source(scored_csv, score_range=(0, 5)), "data.train").rows
    stats = split_stats(rows)
    scaled = [s / 5 for s in pd.read_csv(scored_csv)["score"]]
    assert stats["score"] == pytest.approx({"mean": sum(scaled) / len(scaled), "min": min(scaled), "max": max(scaled),
                                            "share_at_least_0.5": sum(s >= 0.5 for s in scaled) / len(scaled)})
    assert "tokens" not in stats


# ------------------------------------------------------------------------------------------- the CLI: python -m data
def run_data(tmp_path: Path, model_dir: Path, train: dict, capsys) -> tuple[int, str, Path]:
    """Run ``python -m data CONFIG`` in-process (as its ``__main__`` does); returns (exit code, stderr, run_dir)."""
    config = tiny_config(tmp_path, model_dir, {"train": train}, {"name": "cosine"})
    path = write_config(tmp_path, config)
    code = run(lambda: main([str(path)]))
    return code, capsys.readouterr().err, Path(config["run_dir"])


def test_cli_writes_splits_stats_and_resolved_config(tmp_path, tiny_model_dir, pairs_csv, capsys):
    train = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    code, err, run_dir = run_data(tmp_path, tiny_model_dir, train, capsys)
    assert code == 0, err
    assert (run_dir / RESOLVED_NAME).is_file()
    written = {p.name for p in (run_dir / "data").iterdir()}
    assert {"train.jsonl", "dev.jsonl", "test.jsonl", "meta.json", "stats.json", "stats.md"} <= written
    stats = json.loads((run_dir / "data" / "stats.json").read_text(encoding="utf-8"))
    assert (stats["kind"], stats["shared_texts"]) == ("pairs", 0)
    assert sum(split["rows"] for split in stats["splits"].values()) == len(pd.read_csv(pairs_csv))


SCORED_CSV = ("sentence1,sentence2,score\n"
              "disk full on server,the shop website cannot open any page,5\n"
              "{row2}\n"
              "vpn connection lost,{text3},3\n")
GOOD_ROW2 = "email queue backlog,my mail is not arriving,4"
SCORES = {"columns": {"sentence1": "sentence1", "sentence2": "sentence2", "score": "score"}, "score_range": [0, 5]}


def scored_csv_text(row2: str = GOOD_ROW2, text3: str = "I cannot connect from the office") -> str:
    return SCORED_CSV.format(row2=row2, text3=text3)


BAD_INPUTS = {
    # id: (file name, file text or None for no file, source fields, message parts)
    "missing_file": ("missing.csv", None, {}, ["data.train.path", "missing.csv", "does not exist"]),
    "misnamed_column": (
        "scored.csv", scored_csv_text(),
        {"columns": {"sentence1": "sentence1", "sentence2": "sentense2", "score": "score"}},
        ["scored.csv", "column 'sentense2'", "data.train.columns", "Did you mean 'sentence2'?",
         "The file has: sentence1, sentence2, score"],
    ),
    "canonical_typo": (
        "scored.csv", scored_csv_text(),
        {"columns": {"sentense1": "sentence1", "sentence2": "sentence2", "score": "score"}},
        ["data.train.columns", "'sentense1' is not a canonical column", "Did you mean 'sentence1'?"],
    ),
    "empty_text": (
        "scored.csv", scored_csv_text(text3=""), SCORES,
        ["scored.csv, row 3 (line 4), column 'sentence2'", "expected non-empty text, got ''"],
    ),
    "empty_score": (
        "scored.csv", scored_csv_text(row2="email queue backlog,my mail is not arriving,"), SCORES,
        ["scored.csv, row 2 (line 3), column 'score'", "expected a number in [0, 5], got ''"],
    ),
    "nan_score": (
        "scored.jsonl",
        '{"sentence1": "disk full", "sentence2": "the site is down", "score": 4}\n'
        '{"sentence1": "mail queue", "sentence2": "no mail", "score": NaN}\n',
        {"score_range": [0, 5]},
        ["scored.jsonl, row 2 (line 2), column 'score'", "expected a number in [0, 5], got"],
    ),
    "score_out_of_range": (
        "scored.csv", scored_csv_text(row2="email queue backlog,my mail is not arriving,7"), SCORES,
        ["scored.csv, row 2 (line 3), column 'score'", "expected a number in [0, 5], got '7'"],
    ),
    "score_outside_0_1_without_range": (
        "scored.csv", scored_csv_text(), {},
        ["scored.csv, row 1 (line 2), column 'score'", "expected a number in [0, 1], got '5'", "set score_range"],
    ),
    "score_not_a_number": (
        "scored.csv", scored_csv_text(row2="email queue backlog,my mail is not arriving,high"), SCORES,
        ["scored.csv, row 2 (line 3), column 'score'", "expected a number in [0, 5], got 'high'"],
    ),
    "label_not_0_or_1": (
        "labeled.csv", "a,b,same\ndisk full,the site is down,1\nmail queue,no mail,2\n",
        {"columns": {"sentence1": "a", "sentence2": "b", "label": "same"}},
        ["labeled.csv, row 2 (line 3), column 'same' (used as label)", "expected 0 or 1, got '2'"],
    ),
    "invalid_json_line": (
        "pairs.jsonl", '{"anchor": "disk full", "positive": "site down"}\n{"anchor": "mail"}\n{"anchor": "vpn", \n',
        {}, ["pairs.jsonl, line 3: not valid JSON", "Each line must be one object"],
    ),
    "empty_score_range": (
        "scored.csv", scored_csv_text(), {**SCORES, "score_range": [5, 5]}, ["score_range"],
    ),
    # Rows filtered out by split_column or blank JSONL lines must not shift the line a message names.
    "line_after_split_filter": (
        "all.csv", "sentence1,sentence2,score,part\ndisk full,site down,1,train\nmail queue,no mail,1,test\n"
        "vpn lost,,0,test\n", {"split_column": "part", "split": "test"},
        ["all.csv, row 3 (line 4), column 'sentence2'", "expected non-empty text"],
    ),
    "line_after_blank_jsonl_line": (
        "pairs.jsonl", '{"anchor": "disk full", "positive": "site down"}\n\n{"anchor": "vpn lost", "positive": ""}\n',
        {}, ["pairs.jsonl, row 2 (line 3), column 'positive'", "expected non-empty text"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(tmp_path, tiny_model_dir, capsys, case):
    name, text, fields, parts = BAD_INPUTS[case]
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    code, err, run_dir = run_data(tmp_path, tiny_model_dir, {"path": str(path), **fields}, capsys)
    assert code == 2
    assert err.startswith("error: ") and "Traceback" not in err
    for part in parts:
        assert part in err
    left = sorted(p.name for p in run_dir.rglob("*")) if run_dir.exists() else []
    assert left == [], f"a failed run left files in {run_dir}"


def test_hub_dataset_without_network_says_how_to_use_local_files(monkeypatch):
    from configs.errors import UserError
    from configs.schema import SourceConfig
    from data.sources import read_source

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = SourceConfig(path="someone/not-cached-dataset", format="hub", split="train")
    with pytest.raises(UserError, match=r"could not load Hub dataset 'someone/not-cached-dataset'.*local"):
        read_source(source, "data.train")


def test_text_and_class_label_form_the_classes_kind_and_class_names_must_not_be_empty(tmp_path):
    from configs.errors import UserError
    from configs.schema import SourceConfig
    from data.prepare import load_table

    path = tmp_path / "roles.csv"
    path.write_text("resume,role\nbuilt pipelines,Data Engineer\ntrained models,Data Scientist\n", encoding="utf-8")
    table = load_table(SourceConfig(path=str(path), columns={"text": "resume", "label": "role"}), "data.train")
    assert table.kind == "classes" and table.rows["label"] == ["Data Engineer", "Data Scientist"]
    path.write_text("resume,role\nbuilt pipelines,Data Engineer\ntrained models,\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"roles.csv, row 2 \(line 3\), column 'role' \(used as label\): expected a "
                                        r"class name"):
        load_table(SourceConfig(path=str(path), columns={"text": "resume", "label": "role"}), "data.train")


def test_jsonl_line_that_is_not_an_object_names_its_line(tmp_path):
    from configs.errors import UserError
    from configs.schema import SourceConfig
    from data.prepare import load_table

    path = tmp_path / "pairs.jsonl"
    path.write_text('{"anchor": "disk full", "positive": "site down"}\n"just text"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs.jsonl, line 2: expected a JSON object .* got str"):
        load_table(SourceConfig(path=str(path)), "data.train")
