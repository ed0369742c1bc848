"""Training mechanics on the tiny model: every loss takes a step and changes the weights; misfits fail early."""

from __future__ import annotations

import math
import re

import pytest
import torch
from datasets import Dataset

from configs.errors import UserError
from configs.load import validate
from conftest import tiny_config, write_config
from core.model import load_model
from data.prepare import prepare
from data.table import Table
from train.losses import LOSSES
from train.trainer import build_trainer, trainer_dataset


def nothing_written(run_dir) -> bool:
    """No file in the run folder (``python -m train`` may create the folder itself to check it is writable)."""
    return not run_dir.exists() or not any(run_dir.iterdir())


def _data(kind: str, paths: dict) -> dict:
    if kind == "scored":
        return {"train": {"path": str(paths["scored"]), "score_range": [0, 5], "group_column": "topic"}}
    if kind == "labeled":
        return {"train": {"path": str(paths["labeled"]), "group_column": "topic"}}
    columns = {"anchor": "jargon", "positive": "plain"}
    source = {"path": str(paths["pairs"]), "columns": columns, "group_column": "topic"}
    if kind == "triplets":
        source = {"path": str(paths["triplets"]), "group_column": "topic"}
    if kind == "classes":
        return {"train": {"path": str(paths["classes"]), "columns": {"text": "plain", "label": "topic"}},
                "test_fraction": 0.3, "dev_fraction": 0}
    return {"train": source}


@pytest.fixture
def paths(pairs_csv, scored_csv, labeled_csv, tmp_path):
    import csv

    from conftest import INCIDENT_ROWS, same_topic_neighbour

    triplets = tmp_path / "triplets.csv"
    with open(triplets, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anchor", "positive", "negative", "topic"])
        for i, (topic, jargon, plain) in enumerate(INCIDENT_ROWS):
            writer.writerow([jargon, plain, INCIDENT_ROWS[same_topic_neighbour(i)][2], topic])
    return {"pairs": pairs_csv, "scored": scored_csv, "labeled": labeled_csv, "triplets": triplets,
            "classes": pairs_csv}


KIND_OF_LOSS = {"cosine": "scored", "cosent": "scored", "angle": "scored", "mnrl": "pairs", "cached_mnrl": "pairs",
                "gist": "pairs", "cached_gist": "pairs", "contrastive": "labeled", "online_contrastive": "labeled",
                "triplet": "triplets", "batch_all_triplet": "classes"}
TUPLE_LOSSES = sorted(name for name, spec in LOSSES.items() if "tuples" in spec.kinds)


def test_every_registered_loss_has_a_test_kind():
    assert set(KIND_OF_LOSS) == set(LOSSES)


def test_the_losses_that_read_tuples_are_the_in_batch_negative_ones():
    # GISTEmbedLoss reads 2 or 3 columns only ("Expected 2 or 3 embeddings"), so tuples go to cached_gist.
    assert TUPLE_LOSSES == ["cached_gist", "cached_mnrl", "mnrl"]


def _step_changes_parameters(config, model, train, dev) -> None:
    before = [p.detach().clone() for p in model.parameters()]
    trainer = build_trainer(config, model, train, dev)
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    changed = [not torch.equal(b, a.detach()) for b, a in zip(before, model.parameters())]
    assert any(changed), "no parameter changed after two optimiser steps"


@pytest.mark.parametrize("loss_name", sorted(KIND_OF_LOSS))
def test_loss_takes_a_step_and_changes_parameters(loss_name, paths, tiny_model_dir, tmp_path):
    raw = tiny_config(tmp_path, tiny_model_dir, _data(KIND_OF_LOSS[loss_name], paths), {"name": loss_name})
    config = validate(raw)
    prepared = prepare(config)
    model, _ = load_model(config.model)
    _step_changes_parameters(config, model, prepared.train, prepared.dev)


def tuples_table() -> Table:
    """(anchor, positive, negative_1, negative_2): each incident with the plain lines of its topic's other two
    incidents, as hard-negative mining would write them (topics come in threes)."""
    from conftest import INCIDENT_ROWS, same_topic_neighbour

    first = [same_topic_neighbour(i) for i in range(len(INCIDENT_ROWS))]
    second = [same_topic_neighbour(i) for i in first]
    return Table(rows=Dataset.from_dict({
        "anchor": [r[1] for r in INCIDENT_ROWS], "positive": [r[2] for r in INCIDENT_ROWS],
        "negative_1": [INCIDENT_ROWS[i][2] for i in first], "negative_2": [INCIDENT_ROWS[i][2] for i in second],
    }), kind="tuples", origin="tuples (test)")


@pytest.mark.parametrize("loss_name", TUPLE_LOSSES)
def test_tuple_losses_take_a_step_on_two_negatives(loss_name, paths, tiny_model_dir, tmp_path):
    config = validate(tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": loss_name}))
    train = tuples_table()
    assert trainer_dataset(train).column_names == ["anchor", "positive", "negative_1", "negative_2"]
    model, _ = load_model(config.model)
    _step_changes_parameters(config, model, train, None)


def test_columns_reach_the_trainer_in_the_loss_order_not_the_file_order(tmp_path, tiny_model_dir):
    path = tmp_path / "reordered.csv"
    path.write_text("score,sentence2,sentence1\n5,the disk is full,disk full on server\n0,my mail,printer jam\n"
                    "4,the site is down,dns name error\n1,paper,vpn lost\n", encoding="utf-8")
    raw = tiny_config(tmp_path, tiny_model_dir, {"train": {"path": str(path), "score_range": [0, 5]},
                                                 "test_fraction": 0.25, "dev_fraction": 0}, {"name": "cosine"})
    prepared = prepare(validate(raw))
    assert trainer_dataset(prepared.train).column_names == ["sentence1", "sentence2", "score"]


@pytest.mark.parametrize("loss_name", ["mnrl", "cached_mnrl", "gist", "cached_gist"])
def test_in_batch_negative_losses_use_the_no_duplicates_sampler(loss_name):
    assert LOSSES[loss_name].batch_sampler.value == "no_duplicates"


@pytest.mark.parametrize("loss_name,kind", [("mnrl", "scored"), ("cosine", "pairs"), ("triplet", "labeled")])
def test_a_loss_that_does_not_fit_the_columns_fails_before_training(
    loss_name, kind, paths, tiny_model_dir, tmp_path, capsys
):
    from configs.cli import run
    from train.__main__ import main

    config_path = write_config(tmp_path, tiny_config(tmp_path, tiny_model_dir, _data(kind, paths), {"name": loss_name}))
    assert run(lambda: main([str(config_path)])) == 2
    assert f"loss '{loss_name}' consumes columns" in capsys.readouterr().err
    assert nothing_written(tmp_path / "run"), "a misfit must leave nothing in the run folder"


def test_misfit_message_names_the_columns_and_the_losses_that_fit(paths, tiny_model_dir, tmp_path):
    from train.losses import check_fit

    with pytest.raises(UserError, match=r"loss 'mnrl' consumes columns \(anchor, positive\) or \(anchor, positive, "
                                        r"negative\) or \(anchor, positive, negative_1\.\.\.\), but .* has "
                                        r"\(sentence1, sentence2, score\)\. Losses that fit this data: angle, cosent, "
                                        r"cosine"):
        check_fit("mnrl", "scored", "data.train (x.csv)")


def test_fp16_on_cpu_is_a_clear_error(paths, tiny_model_dir, tmp_path):
    from train.trainer import training_arguments

    raw = tiny_config(tmp_path, tiny_model_dir, _data("scored", paths), {"name": "cosine"})
    raw["train"]["precision"] = "fp16"
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        training_arguments(validate(raw), None)


def test_an_evaluation_task_that_cannot_read_its_split_fails_before_training(paths, tiny_model_dir, tmp_path, capsys):
    from configs.cli import run
    from train.__main__ import main

    raw = tiny_config(tmp_path, tiny_model_dir, _data("scored", paths), {"name": "cosine"})
    raw["evaluate"]["datasets"] = [{"name": "x", "task": "retrieval", "split": "test"}]
    assert run(lambda: main([str(write_config(tmp_path, raw))])) == 2
    assert "task 'retrieval' cannot read the test split (sentence1, sentence2, score). Tasks that can: sts" in \
        capsys.readouterr().err
    assert nothing_written(tmp_path / "run")


# ------------------------------------------------------------------------------ memory levers and schedule
LEVERS = {"gradient_accumulation_steps": 3, "gradient_checkpointing": True, "max_grad_norm": 0.5,
          "scheduler": "cosine"}


def test_memory_levers_reach_the_training_arguments(paths, tiny_model_dir, tmp_path):
    from train.trainer import training_arguments

    raw = tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": "mnrl"})
    raw["train"].update(LEVERS)
    args = training_arguments(validate(raw), None)
    assert args.gradient_accumulation_steps == 3 and args.max_grad_norm == 0.5
    assert args.activation_checkpointing is True and args.lr_scheduler_type.value == "cosine"
    defaults = training_arguments(validate(tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths),
                                                       {"name": "mnrl"})), None)
    assert (defaults.gradient_accumulation_steps, defaults.activation_checkpointing, defaults.max_grad_norm,
            defaults.lr_scheduler_type.value) == (1, False, 1.0, "linear")


@pytest.mark.parametrize("key,value", sorted((k, v) for k, v in LEVERS.items() if k != "gradient_checkpointing"))
def test_each_lever_that_changes_training_is_in_the_config_hash(paths, tiny_model_dir, tmp_path, key, value):
    from configs.runs import config_hash

    raw = tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": "mnrl"})
    before = config_hash(validate(raw))
    raw["train"][key] = value
    assert config_hash(validate(raw)) != before


def test_gradient_checkpointing_is_switched_on_and_trains_to_the_same_weights(paths, tiny_model_dir, tmp_path):
    """Recomputing activations (dropout's random state included) changes memory and time, not the result."""
    weights = []
    for checkpointing in (False, True):
        raw = tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": "mnrl"})
        raw["train"].update(gradient_checkpointing=checkpointing, max_steps=2)
        config = validate(raw)
        model, _ = load_model(config.model)
        build_trainer(config, model, prepare(config).train, None).train()
        assert model[0].auto_model.is_activation_checkpointing is checkpointing
        weights.append([p.detach() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


# ------------------------------------------------------------------------------ console
def test_the_console_says_the_plan_a_dev_line_per_evaluation_and_progress_lines(paths, tiny_model_dir, tmp_path,
                                                                                caplog):
    import logging

    from configs.cli import run
    from train.__main__ import main

    raw = tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": "mnrl"})
    raw["train"].update(max_steps=4, eval_steps=2, gradient_accumulation_steps=2)
    with caplog.at_level(logging.INFO, logger="train"):
        assert run(lambda: main([str(write_config(tmp_path, raw))])) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "train"]
    plan = next(line for line in lines if line.startswith("plan: "))
    assert re.search(r"plan: \d+ training rows in \d+ batches of 4 per epoch, 2 batches per optimiser step "
                     r"\(effective batch 8\); 4 optimiser steps \([\d.]+ epochs\); "
                     r"precision (fp32|bf16) \(auto: [^)]*\); full fine-tuning "
                     r"\([\d,]+ of [\d,]+ parameters trainable\); dev evaluated every 2 steps", plan), plan
    dev = [line for line in lines if re.fullmatch(r"step \d/4: dev ndcg@10 [\d.]+ \(best [\d.]+ at step \d\)", line)]
    # step 0 is the base model's dev score (eval_on_start), the point the dev curve starts from
    assert [line.split(":")[0] for line in dev] == ["step 0/4", "step 2/4", "step 4/4"]
    progress = [line for line in lines if re.match(r"step \d/4 \(\d+%\): loss [\d.]+, lr ", line)]
    assert len(progress) == 4  # logging_steps=1, and stderr is not a terminal under pytest


@pytest.mark.parametrize("logging_steps", [1, 10])
def test_a_slow_step_gets_a_progress_line_even_between_logging_steps(paths, tiny_model_dir, tmp_path, caplog,
                                                                     monkeypatch, logging_steps):
    """At 80 s a step and logging_steps 10 a log file was silent for 13 minutes. A step ending HEARTBEAT seconds after
    the last line now gets one (here every step, at 0 s), and a logging step still gets exactly one line, with loss."""
    import logging

    import train.console
    from configs.cli import run
    from train.__main__ import main

    monkeypatch.setattr(train.console, "HEARTBEAT", 0.0)
    raw = tiny_config(tmp_path, tiny_model_dir, _data("pairs", paths), {"name": "mnrl"})
    raw["train"].update(max_steps=3, logging_steps=logging_steps)
    with caplog.at_level(logging.INFO, logger="train"):
        assert run(lambda: main([str(write_config(tmp_path, raw))])) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "train" and re.match(r"step \d/3 \(", r.getMessage())]
    assert [line.split(" (")[0] for line in lines] == ["step 1/3", "step 2/3", "step 3/3"], lines
    with_loss = [bool(re.match(r"step \d/3 \(\d+%\): loss [\d.]+, lr ", line)) for line in lines]
    assert with_loss == ([True] * 3 if logging_steps == 1 else [False] * 3), lines
    assert all(re.search(r"\d:\d\d:\d\d elapsed, ~\d:\d\d:\d\d left$", line) for line in lines), lines


def test_a_step_soon_after_a_dev_line_gets_no_progress_line(caplog):
    """The dev line counts as the last line: a step ending 30 s after it is not announced; one 60 s after it is."""
    import logging
    from types import SimpleNamespace

    from train.console import ProgressLines

    now = [0.0]
    lines = ProgressLines(interval=60.0)
    lines.clock = lambda: now[0]
    state = SimpleNamespace(global_step=0, max_steps=12, is_world_process_zero=True)
    control = SimpleNamespace(should_log=False)
    with caplog.at_level(logging.INFO, logger="train"):
        lines.on_train_begin(None, state, control)
        now[0], state.global_step = 90.0, 1
        lines.on_evaluate(None, state, control)  # a dev evaluation of 90 s, then its line
        now[0], state.global_step = 120.0, 2
        lines.on_step_end(None, state, control)
        now[0], state.global_step = 150.0, 3
        lines.on_step_end(None, state, control)
    said = [r.getMessage() for r in caplog.records if r.name == "train"]
    assert said == ["step 3/12 (25%): 0:02:30 elapsed, ~0:07:30 left"], said
