"""Shared fixtures: a tiny randomly initialised BERT built offline, and small data written in our own words."""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Nothing in the suite may reach the Hub: these make any attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Vectors the suite encodes go to a folder of its own, never the user's ~/.cache/embtune (evaluate.cache_dir's
# default moves under $XDG_CACHE_HOME): a test neither fills the user's cache nor reads what an earlier run left.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="embtune-tests-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

WORDS = (
    "the a an is are was of to in on for with and or not my our it this that server disk full memory out "
    "network slow down up login password reset email mail printer paper jam cpu high load database query "
    "timeout error page site website shop cart pay payment card failed cannot open file folder backup restore "
    "certificate expired dns name address vpn wifi connect connection lost restart reboot update patch deploy "
    "rollback queue backlog job cron log disk space quota user account locked screen black blue crash app "
    "phone laptop keyboard mouse battery charge cable power office door badge access denied permission"
).split()


def write_vocab(path: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    path.write_text("\n".join(specials + sorted(set(WORDS))) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) with mean pooling, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    hf_dir = root / "hf"
    hf_dir.mkdir()
    # transformers 5 ignores vocab_file= in the fast tokenizer (every word became [UNK]); vocab= loads the file.
    tokenizer = BertTokenizerFast(vocab=str(write_vocab(root / "vocab.txt")), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension())], device="cpu")
    out = root / "st"
    model.save_pretrained(str(out))
    return out


INCIDENT_ROWS = [
    # (topic, jargon, plain) written for these tests
    ("disk", "disk full on server", "the shop website cannot open any page"),
    ("disk", "backup job failed disk quota", "our backup did not run and space is out"),
    ("disk", "log disk space high", "the app is slow because the log is full"),
    ("mail", "email queue backlog", "my mail is not arriving"),
    ("mail", "mail certificate expired", "email app says the connection is not safe"),
    ("mail", "email login locked account", "I cannot login to my mail account"),
    ("net", "vpn connection lost", "I cannot connect from the office laptop"),
    ("net", "dns name error", "the website address does not open"),
    ("net", "wifi connect failed", "my laptop has no network in the office"),
    ("print", "printer paper jam", "the printer in the office does not print"),
    ("print", "printer queue job stuck", "my file never comes out of the printer"),
    ("print", "printer access denied", "I have no permission to print"),
    ("db", "database query timeout", "the payment page is slow and then shows an error"),
    ("db", "database cpu high load", "everything in the app is slow today"),
    ("db", "database restore failed", "the data from yesterday is not there"),
    ("pay", "payment card failed", "my card did not pay in the shop"),
    ("pay", "pay page error deploy", "the cart page crashed after the update"),
    ("pay", "payment rollback patch", "paying works again after they undo the update"),
]


def same_topic_neighbour(i: int) -> int:
    """Index of the next incident of the same topic (rows come in threes), so texts never join two topics."""
    return i - i % 3 + (i + 1) % 3


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def neighbour_pairs(same: float, neighbour: float) -> list[tuple]:
    """Each jargon line with its own plain line (``same``) and a same-topic neighbour's (``neighbour``)."""
    rows = []
    for i, (topic, jargon, plain) in enumerate(INCIDENT_ROWS):
        rows.append((jargon, plain, same, topic))
        rows.append((jargon, INCIDENT_ROWS[same_topic_neighbour(i)][2], neighbour, topic))
    return rows


@pytest.fixture
def pairs_csv(tmp_path) -> Path:
    """anchor/positive pairs with a topic column (18 rows, 6 topics)."""
    return write_csv(tmp_path / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)


@pytest.fixture
def scored_csv(tmp_path) -> Path:
    """sentence1/sentence2/score (0-5) pairs: same incident 5, another incident of the same topic 2."""
    return write_csv(tmp_path / "scored.csv", ["sentence1", "sentence2", "score", "topic"], neighbour_pairs(5.0, 2.0))


@pytest.fixture
def labeled_csv(tmp_path) -> Path:
    """sentence1/sentence2/label pairs: a jargon line with its own plain line (1) and a neighbour's (0)."""
    return write_csv(tmp_path / "labeled.csv", ["sentence1", "sentence2", "label", "topic"], neighbour_pairs(1, 0))


def tiny_config(tmp_path: Path, model_dir: Path, data: dict, loss: dict, **extra) -> dict:
    """A raw config dict (as YAML would give) for a one-step run on the tiny model."""
    config = {
        "run_dir": str(tmp_path / "run"),
        "seed": 7,
        "model": {"name": str(model_dir)},
        "data": data,
        "loss": loss,
        "train": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1},
        "evaluate": {"batch_size": 8},
    }
    config.update(extra)
    return config


def write_config(tmp_path: Path, config: dict) -> Path:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def trained_incidents_run(tmp: Path, model_dir: Path, **evaluate) -> Path:
    """A run folder after `python -m data` and `python -m train` on the tiny model: incident pairs (a third of the
    topics held out) evaluated by retrieval, plus a general STS set; ``evaluate`` adds evaluate settings."""
    from configs.cli import run
    from data.__main__ import main as data_main
    from train.__main__ import main as train_main

    pairs = write_csv(tmp / "pairs.csv", ["topic", "jargon", "plain"], INCIDENT_ROWS)
    scored = write_csv(tmp / "scored.csv", ["sentence1", "sentence2", "score", "topic"], neighbour_pairs(5.0, 2.0))
    source = {"path": str(pairs), "columns": {"anchor": "jargon", "positive": "plain"}, "group_column": "topic"}
    raw = tiny_config(tmp, model_dir, {"train": source, "test_fraction": 0.34}, {"name": "mnrl"})
    raw["evaluate"].update(evaluate, datasets=[
        {"name": "incidents", "task": "retrieval", "split": "test"},
        {"name": "general-sts", "task": "sts", "source": {"path": str(scored), "score_range": [0, 5]}}])
    config = str(write_config(tmp, raw))
    for main in (data_main, train_main):
        assert run(lambda main=main: main([config])) == 0
    return tmp / "run"
