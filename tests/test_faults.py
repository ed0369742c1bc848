"""The last silent faults: the machine failing under a command (disk full, permissions, undecodable files, bugs) says
one line naming the path and what to do; run folders cannot nest; leakage compares texts as people read them;
degenerate training data is named before training; a refused resume shows the values each run used; eval/ is
replaced as one set; ``python -m evaluate`` ends with three lines."""

from __future__ import annotations

import errno
import json
import unicodedata
from pathlib import Path

import pytest
from datasets import Dataset

from configs.cli import run
from configs.errors import UserError
from configs.load import load_config, validate
from configs.runs import changed_settings, check_not_nested, config_hash
from conftest import INCIDENT_ROWS, tiny_config, trained_incidents_run, write_config
from data.checks import COMPARISON, check_training_data, comparable
from data.near_duplicates import near_duplicates
from data.splits import grouped_split, shared_texts
from data.table import Table


def pairs_config(tmp_path: Path, model_dir: Path, pairs_csv: Path) -> Path:
    source = {"path": str(pairs_csv), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    return write_config(tmp_path, tiny_config(tmp_path, model_dir, {"train": source, "test_fraction": 0.34},
                                              {"name": "mnrl"}))


# ------------------------------------------------------------------------------------------- the last line of defence
def disk_full(monkeypatch) -> None:
    """Every atomic text write of the run folder fails as a full disk does."""
    import configs.runs

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(configs.runs, "atomic_write_text", full)


def test_a_full_disk_is_one_line_naming_the_file_and_the_command_to_rerun(tmp_path, tiny_model_dir, pairs_csv,
                                                                          monkeypatch, capsys):
    from data.__main__ import main

    config = pairs_config(tmp_path, tiny_model_dir, pairs_csv)
    previous = tmp_path / "run" / "previous" / "20260101-000000-abcdef-20260102-000000"
    previous.mkdir(parents=True)
    disk_full(monkeypatch)
    monkeypatch.delenv("EMBTUNE_DEBUG", raising=False)
    assert run(lambda: main([str(config)])) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: no space left on the device")
    assert str(tmp_path / "run" / "config.resolved.yaml") in line
    assert f"run the same command again: python -m data {config}" in line
    assert f"The previous finished run (its model in final/) is in {previous}" in line


@pytest.mark.parametrize("how", ["--debug", "EMBTUNE_DEBUG=1"])
def test_the_traceback_is_shown_only_when_asked_for(tmp_path, tiny_model_dir, pairs_csv, monkeypatch, capsys, how):
    from data.__main__ import main

    config = pairs_config(tmp_path, tiny_model_dir, pairs_csv)
    disk_full(monkeypatch)
    argv = [str(config)]
    if how == "--debug":
        argv.append("--debug")
    else:
        monkeypatch.setenv("EMBTUNE_DEBUG", "1")
    assert run(lambda: main(argv)) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "OSError: [Errno 28]" in err
    assert err.strip().splitlines()[-1].startswith("error: no space left on the device")


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/srv/runs/a/final"),
         r"^error: permission denied: /srv/runs/a/final\. Give yourself access to it"),
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/run"),
         r"^error: /mnt/ro/run is on a read-only file system\. Choose a writable folder with run_dir=PATH"),
        (OSError(errno.EMFILE, "Too many open files", "/data/x.csv"),
         r"^error: too many open files \(while opening /data/x\.csv\)\. Raise the limit \(ulimit -n 4096\)"),
        (UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "invalid continuation byte"),
         r"^error: a file could not be read as utf-8: byte 0xe9 at offset 3"),
        (ZeroDivisionError("division by zero"),
         r"^error: unexpected ZeroDivisionError: division by zero .* Rerun with --debug \(or EMBTUNE_DEBUG=1\)"),
    ],
)
def test_each_failure_of_the_machine_or_a_bug_is_one_line_and_exit_1(error, said, monkeypatch, capsys):
    import re

    def failing() -> int:
        raise error

    monkeypatch.delenv("EMBTUNE_DEBUG", raising=False)
    assert run(failing) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(said, err), err


def test_user_errors_still_exit_2_and_ctrl_c_130(capsys):
    def mistake() -> int:
        raise UserError("data.train.path: no such file")

    assert run(mistake) == 2
    assert capsys.readouterr().err == "error: data.train.path: no such file\n"


def test_a_config_saved_in_latin_1_names_the_line_and_byte(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("seed: 7\n# réglages\nrun_dir: runs/x\n".encode("latin-1"))
    with pytest.raises(UserError, match=rf"^{path}, line 2: byte 0xe9 at offset 11 is not valid UTF-8\. Save the "
                                        r"config as UTF-8"):
        load_config(path)


def test_a_config_saved_in_utf_8_with_a_bom_reads(tmp_path, tiny_model_dir):
    path = write_config(tmp_path, tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}},
                                              {"name": "mnrl"}))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_config(path).seed == 7


# ------------------------------------------------------------------------------------------------ nested run folders
@pytest.mark.parametrize("part", ["final", "checkpoints", "data", "eval"])
def test_a_run_folder_inside_another_runs_part_is_refused(tmp_path, part):
    outer = tmp_path / "runs" / "a"
    (outer / part).mkdir(parents=True)
    (outer / "config.resolved.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match=rf"run_dir .*/a/{part}/b is inside .*/a/{part}, a part of the run in "
                                        r".*/a that is replaced as a whole.*Choose a folder outside"):
        check_not_nested(outer / part / "b")


def test_a_run_folder_around_another_run_is_refused_and_its_own_checkpoints_are_not_another_run(tmp_path):
    outer = tmp_path / "a"
    (outer / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (outer / "checkpoints" / "checkpoint-4" / "embtune_checkpoint.json").write_text("{}")
    check_not_nested(outer)  # its own checkpoint: fine
    inner = outer / "data" / "b"
    inner.mkdir(parents=True)
    (inner / "run.json").write_text("{}")
    with pytest.raises(UserError, match=rf"{outer / 'data'} holds another run's folder \({inner}\).*Move"):
        check_not_nested(outer)


def test_python_m_train_refuses_a_nested_run_dir_before_any_work(tmp_path, tiny_model_dir, pairs_csv, capsys):
    from train.__main__ import main

    outer = tmp_path / "run"
    (outer / "final").mkdir(parents=True)
    (outer / "run.json").write_text("{}")
    config = pairs_config(tmp_path, tiny_model_dir, pairs_csv)
    assert run(lambda: main([str(config), f"run_dir={outer / 'final' / 'inner'}"])) == 2
    assert "is inside" in capsys.readouterr().err
    assert not (outer / "final" / "inner").exists()


# ----------------------------------------------------------------------------------------------------------- leakage
NFC = unicodedata.normalize("NFC", "Le café ferme à 18 h")
NFD = unicodedata.normalize("NFD", NFC)


def pairs_table(anchors: list[str], positives: list[str], origin: str = "train.csv") -> Table:
    return Table(rows=Dataset.from_dict({"anchor": anchors, "positive": positives}), kind="pairs", origin=origin)


def test_the_same_sentence_in_nfc_and_nfd_other_case_and_spacing_is_leakage():
    from evaluate.leakage import leakage

    assert NFC != NFD and comparable(NFC) == comparable(NFD) == comparable("  LE CAFÉ   ferme à 18 h ")
    train = pairs_table([NFC, "disk full"], ["the shop is closed", "no space"])
    test = pairs_table([NFD, "LE CAFÉ ferme à 18 h", "printer jam"], ["x", "y", "z"], "test.csv")
    found = leakage(train, {"test": test})["test"]
    assert (found["shared"], found["of"]) == (1, 2)
    assert found["examples"][0] in (NFD, "LE CAFÉ ferme à 18 h")
    assert COMPARISON == "exact text after Unicode NFKC, case folding and whitespace collapsing"


def test_near_duplicates_are_counted_with_examples_and_exact_copies_are_not_among_them():
    from evaluate.leakage import leakage

    train = pairs_table(["the vpn drops every hour on the office wifi", "disk full on server"],
                        ["network lost", "no space left"])
    test = pairs_table(["the vpn drops every hour on the office wifi!", "Disk full on server",
                        "printer paper jam"], ["a", "b", "c"], "test.csv")
    found = leakage(train, {"test": test})["test"]
    assert found["shared"] == 1
    near = found["near_duplicates"]
    assert near["count"] == 1 and near["threshold"] == 0.8
    (text, match, similarity), = near["examples"]
    assert text == "the vpn drops every hour on the office wifi!"
    assert match == "the vpn drops every hour on the office wifi"
    assert 0.8 <= similarity < 1


def test_near_duplicates_find_every_pair_above_the_threshold_that_brute_force_finds():
    import random

    rng = random.Random(3)
    words = [w for _, jargon, plain in INCIDENT_ROWS for w in (jargon + " " + plain).split()]
    train = [" ".join(rng.choices(words, k=rng.randint(4, 12))) for _ in range(300)]
    evaluated = [t.replace(" ", "  ", 1) + rng.choice(["", "s", " it", "!"]) for t in rng.sample(train, 60)]
    evaluated = [comparable(t) for t in evaluated + [" ".join(rng.choices(words, k=8)) for _ in range(60)]]
    train = [comparable(t) for t in train]

    def jaccard(a: str, b: str) -> float:
        from data.near_duplicates import shingles

        x, y = shingles(a), shingles(b)
        return len(x & y) / len(x | y)

    brute = {e for e in evaluated if any(e != t and jaccard(e, t) >= 0.8 for t in train)}
    assert set(near_duplicates(evaluated, train)) == brute and len(brute) > 10


def test_a_split_keeps_case_and_unicode_variants_of_a_text_on_one_side():
    rows = Dataset.from_dict({"anchor": [NFC, NFD.upper(), "a", "b", "c", "d"],
                              "positive": ["p1", "p2", "p3", "p4", "p5", "p6"], "group": list("123456")})
    for seed in range(8):
        kept, held = grouped_split(rows, 0.4, seed)
        assert shared_texts(kept, held) == set()
        assert len({comparable(a) for a in kept["anchor"]} & {comparable(a) for a in held["anchor"]}) == 0


def test_report_json_records_how_leakage_was_compared_and_evaluate_ends_with_three_lines(tmp_path, tiny_model_dir,
                                                                                       capsys):
    from evaluate.__main__ import main

    run_dir = trained_incidents_run(tmp_path, tiny_model_dir)
    capsys.readouterr()
    assert run(lambda: main([str(run_dir)])) == 0
    out = capsys.readouterr().out.strip().splitlines()
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert report["leakage_comparison"] == COMPARISON
    assert isinstance(report["leakage"]["incidents"]["near_duplicates"], dict)
    assert len(out) == 3, out
    assert out[0].split(":")[0] in ("The tuned model is better than the baseline",
                                    "The tuned model is WORSE than the baseline",
                                    "No significant difference from the baseline", "No verdict")
    assert out[1] == f"Report: {run_dir / 'eval' / 'report.html'} (Markdown: {run_dir / 'eval' / 'report.md'})"
    assert out[2] == f"Next: python -m train.push {run_dir} push.repo_id=ORG/NAME (or push.local_dir=FOLDER)"


# ------------------------------------------------------------------------------------------- eval/ as one set
def test_ctrl_c_after_report_json_leaves_the_previous_evaluation_whole(tmp_path, tiny_model_dir, monkeypatch):
    import evaluate.report.writers as writers
    from evaluate.__main__ import main

    run_dir = trained_incidents_run(tmp_path, tiny_model_dir)
    assert run(lambda: main([str(run_dir)])) == 0
    out = run_dir / "eval"
    report = json.loads((out / "report.json").read_text())
    (out / "report.json").write_text(json.dumps({**report, "marker": "the previous evaluation"}))
    (out / "report.md").write_text("the previous report.md\n")
    (out / "exports").mkdir()
    (out / "exports" / "model.onnx").write_text("an export")
    (out / "merge.json").write_text(json.dumps({"tuned_fingerprint": "another final/", "ratios": []}))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    real = writers.write_json

    def interrupted(path: Path, data: object) -> None:
        real(path, data)
        if path.name == "report.json":
            raise KeyboardInterrupt

    monkeypatch.setattr(writers, "write_json", interrupted)
    assert run(lambda: main([str(run_dir)])) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".eval")) == []
    monkeypatch.setattr(writers, "write_json", real)
    assert run(lambda: main([str(run_dir)])) == 0  # the new set: exports carried, the stale frontier dropped
    assert "marker" not in json.loads((out / "report.json").read_text())
    assert (out / "exports" / "model.onnx").read_text() == "an export" and not (out / "merge.json").exists()


# ------------------------------------------------------------------------------------ degenerate training data
def test_pairs_of_a_text_with_itself_are_counted_with_rows_and_refused_when_they_are_all(caplog):
    table = pairs_table(["disk full", "Disk  FULL", "vpn lost", "printer jam", NFC],
                        ["the shop is down", "disk full", "no network", "Printer jam", NFD])
    (said,) = check_training_data(table)
    assert said.startswith("train.csv: 3 of 5 rows have the same text as anchor and positive (compared as exact text "
                           "after Unicode NFKC, case folding and whitespace collapsing; row 2, row 4, row 5)")
    assert said in caplog.text
    with pytest.raises(UserError, match=r"train\.csv: 2 of 2 rows have the same text as anchor and positive.*column "
                                        r"mapping"):
        check_training_data(pairs_table(["a b", "c"], ["A  b", "C"]))


@pytest.mark.parametrize(
    ("kind", "columns", "message"),
    [
        ("labeled", {"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"], "label": [1, 1, 1]},
         r"every one of the 3 rows has the same label \(1\): the model never sees a pair of the other label"),
        ("classes", {"text": ["a", "b", "c"], "label": ["db", "db", "db"]},
         r"same label \('db'\): the model never sees another class"),
        ("scored", {"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"], "score": [0.6, 0.6, 0.6]},
         r"same score \(0\.6\): there is no order of pairs to learn"),
        ("pairs", {"anchor": ["the vpn", "The VPN", "the  vpn"], "positive": ["x", "y", "z"]},
         r"same anchor \('the vpn'\)"),
    ],
)
def test_a_single_label_score_or_anchor_is_refused(kind, columns, message):
    with pytest.raises(UserError, match=message):
        check_training_data(Table(rows=Dataset.from_dict(columns), kind=kind, origin="train.csv"))


def test_a_mostly_single_anchor_and_repeated_rows_are_warned_with_counts():
    table = pairs_table(["q", "q", "Q", "r"], ["a", "b", "B", "c"])
    said = check_training_data(table)
    assert said == ["train.csv: 3 of 4 rows have the same anchor ('q'); the model mostly learns that one text.",
                    "train.csv: 1 of 4 rows repeat an earlier row's texts (row 3); they weigh those pairs more. "
                    "Remove the copies unless that is meant."]
    assert check_training_data(pairs_table(["a", "b"], ["c", "d"])) == []


# ------------------------------------------------------------------------------------ a refused resume's values
def test_changed_settings_show_the_values_each_run_used_defaults_included(tmp_path, tiny_model_dir):
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"})
    interrupted = validate({**raw, "seed": 42})  # the default: left out of the config hash
    resumed = validate(raw)  # seed 7
    assert changed_settings(interrupted, resumed) == ["seed: 42 -> 7"]
    assert changed_settings(resumed, resumed) == []
    other_loss = validate({**raw, "loss": {"name": "cosent"}, "data": {"train": {"path": "x.csv"}}})
    assert "loss.name: 'mnrl' -> 'cosent'" in changed_settings(resumed, other_loss)
    assert config_hash(interrupted) == config_hash(validate({k: v for k, v in raw.items() if k != "seed"}))
