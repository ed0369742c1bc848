"""Prompts at evaluation: the model's own query/document prompts (encode_query / encode_document semantics), the
prompts the user trained with winning over them, one cache entry per (prompt, text), and the model's similarity."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from datasets import Dataset

from configs.schema import EvalDatasetConfig
from core.prompts import resolve_prompts
from data.table import Table
from evaluate.measure import evaluate_model
from evaluate.sets import EvalSet

QUERIES = ["disk full on server", "my mail is not arriving", "printer paper jam"]
DOCS = ["the shop website cannot open any page", "email app says the connection is not safe",
        "the printer in the office does not print"]


def prompted_copy(tiny_model_dir, tmp_path, **settings):
    """The tiny model with config_sentence_transformers.json edited (prompts, default_prompt_name, similarity)."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "prompted"
    shutil.copytree(tiny_model_dir, folder)
    path = folder / "config_sentence_transformers.json"
    config = json.loads(path.read_text())
    config.update(settings)
    path.write_text(json.dumps(config))
    return SentenceTransformer(str(folder), device="cpu")


def record_encodes(model, monkeypatch) -> list[tuple]:
    """Every encode call as (task, prompt, texts); encode_query / encode_document go through encode with a task."""
    calls, original = [], model.encode

    def recording(inputs, prompt=None, **kwargs):
        calls.append((kwargs.get("task"), prompt, list(inputs)))
        return original(inputs, prompt=prompt, **kwargs)

    monkeypatch.setattr(model, "encode", recording)
    return calls


def retrieval_set() -> EvalSet:
    rows = Dataset.from_dict({"anchor": QUERIES, "positive": DOCS, "group": QUERIES})
    return EvalSet(EvalDatasetConfig(name="r", task="retrieval"), Table(rows=rows, kind="pairs", origin="mem"))


def sts_set() -> EvalSet:
    rows = Dataset.from_dict({"sentence1": QUERIES, "sentence2": DOCS, "score": [1.0, 0.5, 0.0], "group": QUERIES})
    return EvalSet(EvalDatasetConfig(name="s", task="sts"), Table(rows=rows, kind="scored", origin="mem"))


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


E5_PROMPTS = {"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": None}


def test_queries_get_the_query_prompt_and_documents_the_document_prompt(tiny_model_dir, tmp_path, monkeypatch):
    model = prompted_copy(tiny_model_dir, tmp_path, **E5_PROMPTS)
    expected_q = unit(model.encode(["query: " + q for q in QUERIES]))  # what the user's own encode would give
    expected_d = unit(model.encode(["passage: " + d for d in DOCS]))
    calls = record_encodes(model, monkeypatch)
    results, encoding = evaluate_model(model, [retrieval_set()], batch_size=8)
    assert sorted(calls) == sorted([("query", "query: ", QUERIES), ("document", "passage: ", DOCS)])
    emb = encoding["embeddings"]
    np.testing.assert_allclose(emb(QUERIES, "query"), expected_q, atol=1e-5)
    np.testing.assert_allclose(emb(DOCS, "document"), expected_d, atol=1e-5)
    assert not np.allclose(emb(QUERIES, "query"), unit(model.encode(QUERIES)), atol=1e-3)  # the prompt mattered
    assert encoding["prompts"]["query"] == {"prompt": "query: ", "source": "model prompts['query']",
                                            "encode": "encode_query"}
    assert encoding["prompts"]["document"]["source"] == "model prompts['document']"


def test_train_prompts_win_over_the_models_own(tiny_model_dir, tmp_path, monkeypatch):
    model = prompted_copy(tiny_model_dir, tmp_path, **E5_PROMPTS)
    calls = record_encodes(model, monkeypatch)
    _, encoding = evaluate_model(model, [retrieval_set()], 8, train_prompts={"anchor": "q: ", "positive": "d: "})
    assert sorted(calls) == sorted([("query", "q: ", QUERIES), ("document", "d: ", DOCS)])
    assert encoding["prompts"]["query"]["source"] == "train.prompts.anchor"
    assert encoding["prompts"]["document"]["source"] == "train.prompts.positive"


def test_symmetric_tasks_encode_as_encode_does_unless_train_prompts_name_the_column(tiny_model_dir, tmp_path,
                                                                                    monkeypatch):
    # default_prompt_name null: encode() uses no prompt, although the model has a query prompt.
    model = prompted_copy(tiny_model_dir, tmp_path, **E5_PROMPTS)
    calls = record_encodes(model, monkeypatch)
    evaluate_model(model, [sts_set()], 8)
    assert calls == [(None, "", QUERIES + DOCS)]  # one call: both columns share mode and prompt
    calls.clear()
    evaluate_model(model, [sts_set()], 8, train_prompts={"sentence1": "s1: "})
    assert sorted(calls) == sorted([(None, "s1: ", QUERIES), (None, "", DOCS)])


def test_default_prompt_name_reaches_symmetric_texts_but_not_queries(tiny_model_dir, tmp_path):
    model = prompted_copy(tiny_model_dir, tmp_path, prompts={"query": "query: ", "classify": "label: "},
                          default_prompt_name="classify")
    prompts = resolve_prompts(model, ["query", "document", "sentence1"])
    # encode_query: the query key wins; encode_document: the ST default 'document' key (empty) wins over the
    # default prompt; encode: the default prompt.
    assert (prompts["query"].text, prompts["document"].text, prompts["sentence1"].text) == ("query: ", "", "label: ")
    assert prompts["sentence1"].source == "model default_prompt_name 'classify'"


def test_the_same_text_with_two_prompts_is_two_encodings_and_two_cache_entries(tiny_model_dir, tmp_path):
    from core.embed_cache import cached_embed

    # Prompts of different lengths: the tiny model's vectors then differ whatever its tokenizer knows.
    model = prompted_copy(tiny_model_dir, tmp_path, prompts={"query": "q: ", "document": "a long passage: "})
    texts = {"query": ["disk full"], "document": ["disk full"]}
    emb = cached_embed(model, texts, 8, "fp-64-fp32", tmp_path / "cache", prompts=resolve_prompts(model, texts))
    assert len(emb.index) == 2
    assert not np.allclose(emb(["disk full"], "query"), emb(["disk full"], "document"))
    other = resolve_prompts(model, texts, {"anchor": "q: ", "positive": "q: "})
    again = cached_embed(model, texts, 8, "fp-64-fp32", tmp_path / "cache", prompts=other)
    assert not again.cached  # other prompts: other keys, never the vectors cached for the first ones
    # Same prompt, but encode_query vs encode_document (a Router model routes them apart): still two keys.
    np.testing.assert_allclose(again(["disk full"], "query"), again(["disk full"], "document"), atol=1e-6)
    assert cached_embed(model, texts, 8, "fp-64-fp32", tmp_path / "cache", prompts=other).cached
    assert len(list((tmp_path / "cache").rglob("*.keys.npy"))) == 2  # a chunk per encoding, of its new keys


class DotKeywords:
    """Keyword counts as vectors, with the dot product as the model's similarity."""

    similarity_fn_name = "dot"
    keywords = ("disk", "mail")

    def encode(self, sentences, **kwargs):
        return np.array([[t.split().count(k) for k in self.keywords] + [0.01] for t in sentences], dtype=np.float32)


def test_a_dot_product_model_is_scored_by_dot_product_not_cosine():
    # Query "disk": document "disk" has cosine 1.0 but dot 1; the relevant "disk disk mail" has cosine 0.89, dot 2.
    # Query "mail": its relevant "disk" ranks second either way. So MRR is 0.75 by dot product, 0.5 by cosine.
    rows = Dataset.from_dict({"anchor": ["disk", "mail"], "positive": ["disk disk mail", "disk"], "group": ["a", "b"]})
    pairs = EvalSet(EvalDatasetConfig(name="r", task="retrieval"), Table(rows=rows, kind="pairs", origin="mem"))
    dot = DotKeywords()
    results, encoding = evaluate_model(dot, [pairs], 8)
    assert encoding["similarity"] == "dot"
    assert results["r"].metrics["mrr@10"] == pytest.approx(0.75)
    np.testing.assert_allclose(encoding["embeddings"](["disk disk mail"], "document"), [[2, 1, 0.01]])  # raw
    dot.similarity_fn_name = "cosine"
    cosine_results, _ = evaluate_model(dot, [pairs], 8)
    assert cosine_results["r"].metrics["mrr@10"] == pytest.approx(0.5)
