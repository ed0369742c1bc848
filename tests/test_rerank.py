"""Cross-encoder reranking (evaluate/retrieval/rerank.py) with a tiny randomly initialised cross-encoder
built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from configs.errors import UserError
from conftest import INCIDENT_ROWS, write_vocab
from evaluate.retrieval.rerank import load_cross_encoder, rerank_run

QUERIES = {"q1": "disk full on server", "q2": "printer paper jam"}
CORPUS = {f"d{i}": plain for i, (_, _, plain) in enumerate(INCIDENT_ROWS)}


def save_tiny_cross_encoder(root: Path, num_labels: int = 1) -> Path:
    """A 2-layer BERT (hidden 32) with a ``num_labels`` head, saved by CrossEncoder.save_pretrained."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    hf_dir = root / "hf"
    tokenizer = BertTokenizerFast(vocab=str(write_vocab(root / "vocab.txt")), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=128, num_labels=num_labels,
                        initializer_range=0.5)  # wide weights: pair scores spread out, so their order is clear
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    out = root / "ce"
    CrossEncoder(str(hf_dir), device="cpu").save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> Path:
    return save_tiny_cross_encoder(tmp_path_factory.mktemp("cross"))


@pytest.fixture(scope="module")
def cross_encoder(cross_encoder_dir):
    return load_cross_encoder(str(cross_encoder_dir))


def first_stage() -> dict[str, dict[str, float]]:
    """Each query's six documents, scored 6 (best) down to 1 in doc order."""
    return {q: {f"d{j}": float(6 - j % 6) for j in range(i * 6, i * 6 + 6)} for i, q in enumerate(QUERIES)}


def test_reranked_order_follows_the_cross_encoder(cross_encoder):
    reranked = rerank_run(cross_encoder, QUERIES, CORPUS, first_stage(), top_k=6, batch_size=4)
    for q_id, docs in first_stage().items():
        alone = {d: float(cross_encoder.predict((QUERIES[q_id], CORPUS[d]))) for d in docs}
        expected = sorted(alone, key=alone.get, reverse=True)
        assert min(np.diff(sorted(alone.values()))) > 1e-4  # gaps well above batching noise: the order is defined
        assert list(reranked[q_id]) == expected
        assert reranked[q_id] == pytest.approx(alone, abs=1e-5)
    assert any(list(reranked[q]) != list(first_stage()[q]) for q in QUERIES)  # it did reorder something


def test_only_the_top_k_are_rescored_and_the_rest_keep_their_order(cross_encoder):
    run = first_stage()
    reranked = rerank_run(cross_encoder, QUERIES, CORPUS, run, top_k=3)
    for q_id, docs in run.items():
        order, ranked = list(reranked[q_id]), list(docs)
        assert set(order[:3]) == set(ranked[:3]) and order[3:] == ranked[3:]
        head, tail = [reranked[q_id][d] for d in order[:3]], [reranked[q_id][d] for d in order[3:]]
        assert head == sorted(head, reverse=True) and max(tail) < min(head)
        assert tail == sorted(tail, reverse=True)


def test_top_k_beyond_the_run_and_empty_queries(cross_encoder):
    run = {"q1": {"d0": 1.0, "d1": 0.5}, "q2": {}}
    reranked = rerank_run(cross_encoder, QUERIES, CORPUS, run, top_k=100)
    assert set(reranked["q1"]) == {"d0", "d1"} and reranked["q2"] == {}


def test_top_k_must_be_positive(cross_encoder):
    with pytest.raises(ValueError, match="top_k must be >= 1; got 0"):
        rerank_run(cross_encoder, QUERIES, CORPUS, first_stage(), top_k=0)


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"evaluate.rerank.model '.*nowhere': no folder .* Give a CrossEncoder folder"):
        load_cross_encoder(str(tmp_path / "nowhere"))


def test_folder_without_config_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"has no config.json, so it is not a saved model"):
        load_cross_encoder(str(tmp_path))


def test_embedding_model_is_not_a_cross_encoder(tiny_model_dir):
    with pytest.raises(UserError, match=r"is a SentenceTransformer \(an embedding model\), not a CrossEncoder"):
        load_cross_encoder(str(tiny_model_dir))


def test_plain_encoder_without_a_head_is_refused(tiny_model_dir, tmp_path):
    plain = tiny_model_dir  # its config.json says BertModel; without the sentence-transformers config it loads
    hf_only = tmp_path / "plain"
    hf_only.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (hf_only / name).write_bytes((plain / name).read_bytes())
    assert json.loads((hf_only / "config.json").read_text())["architectures"] == ["BertModel"]
    with pytest.raises(UserError, match=r"is a BertModel, which has no pair-scoring head"):
        load_cross_encoder(str(hf_only))


def test_multi_label_cross_encoder_is_refused(tmp_path):
    folder = save_tiny_cross_encoder(tmp_path, num_labels=3)
    with pytest.raises(UserError, match=r"outputs 3 labels per pair; a reranker outputs one relevance score"):
        load_cross_encoder(str(folder))


def test_a_corrupt_cross_encoder_weights_file_is_named(cross_encoder_dir, tmp_path):
    import shutil

    folder = shutil.copytree(cross_encoder_dir, tmp_path / "ce")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=rf"{folder / 'model.safetensors'}: the weights file is corrupt or truncated"):
        load_cross_encoder(str(folder))
