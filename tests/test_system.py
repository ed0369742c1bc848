"""Publishing the retrieval system that measured best (train/push/system.py): retrieval.json, the card's section,
and its snippet, which is RUN here on the tiny model and must rank as the evaluation's own runs (scores compared with
a tolerance, never the order of ties)."""

from __future__ import annotations

import re

import pytest

from configs.load import validate
from configs.schema import EvaluateConfig
from conftest import INCIDENT_ROWS, tiny_config
from train.push.system import candidates, retrieval_record, system_card_section


def incident_table(long: bool):
    """The incident pairs as a retrieval table; with ``long`` every other document is nine times longer than the
    62 tokens the tiny model reads."""
    from datasets import Dataset

    from data.table import Table

    plain = [" ".join([p] * 9) if long and n % 2 else p for n, (_, _, p) in enumerate(INCIDENT_ROWS)]
    rows = Dataset.from_dict({"anchor": [j for _, j, _ in INCIDENT_ROWS], "positive": plain})
    return Table(rows, "pairs", "incidents.csv")


def evaluated(model, table, settings: EvaluateConfig, weight_from_dev: float | None = None):
    """(report entry of the set as python -m evaluate writes it, name -> the run each system ranked with)."""
    from core.embed import embed
    from core.prompts import resolve_prompts
    from evaluate.retrieval.reference_rows import RetrievalSet, Tuned, reference_rows
    from evaluate.tasks.retrieval import RETRIEVAL

    table, note = RETRIEVAL.prepare(table, model, settings)
    texts = RETRIEVAL.texts(table, full_corpus=False)
    emb = embed(model, texts, 8, prompts=resolve_prompts(model, texts))
    tuned = RETRIEVAL.run(table, emb, full_corpus=False, ignore_identical_ids=False)
    truncated = None
    if "truncated" in tuned.extra_runs:
        from evaluate.retrieval.reference_rows import Truncated

        truncated = Truncated(tuned.extra_runs["truncated"])
    rows = reference_rows(RetrievalSet(*tuned.retrieval), Tuned(tuned.run, tuned.query_ids, tuned.per_query),
                          keyword=settings.keyword, truncated=truncated)
    info = {"task": "retrieval", "main_metric": "ndcg@10",
            "metrics": {m: {"baseline": 0.0, "tuned": v, "delta": v, "ci_low": 0.0, "ci_high": v, "p_value": 0.01,
                            "significant": True} for m, v in tuned.metrics.items()},
            "about": {"long_documents": note}, "reference": {n: r.as_report() for n, r in rows.items()}}
    runs = {"chunked" if note["chunked"] else "model": tuned.run, **{n: r.run for n, r in rows.items()}}
    return info, runs, tuned.retrieval


def report_with(info: dict, best: str) -> dict:
    """A report whose primary retrieval set has ``best`` measure highest (the systems' settings stay real)."""
    for name, entry in info["reference"].items():
        if "metrics" in entry:
            entry["metrics"]["ndcg@10"] = 0.9 if name == best else 0.1
    if best in ("model", "chunked") and "truncated" not in info["reference"]:
        info["metrics"]["ndcg@10"]["tuned"] = 0.95
    elif best == "chunked":
        info["metrics"]["ndcg@10"]["tuned"] = 0.95
    else:
        info["metrics"]["ndcg@10"]["tuned"] = 0.2
    return {"primary": {"dataset": "incidents", "metric": "ndcg@10"}, "datasets": {"incidents": info},
            "prompts": {"tuned": {"query": {"prompt": ""}, "document": {"prompt": ""}}},
            "similarity": {"tuned": "cosine"}}


def config(tmp_path, model_dir, **push):
    raw = tiny_config(tmp_path, model_dir, {"train": {"path": "x.csv"}}, {"name": "mnrl"},
                      push={"local_dir": str(model_dir), **push})
    return validate(raw)


def run_card_snippet(lines: list[str], cwd, monkeypatch) -> dict:
    """Execute the card's python block exactly as printed (from the folder its model reference names)."""
    text = "\n".join(lines)
    code = re.search(r"```python\n(.*?)\n```", text, re.S).group(1)
    monkeypatch.chdir(cwd)
    namespace: dict = {"__name__": "card_snippet"}
    exec(compile(code, "card_snippet", "exec"), namespace)  # noqa: S102 - the point: the card's code must run
    return namespace


def assert_same_ranking(ours: dict, theirs: dict) -> None:
    """The same documents with the same scores per query (tolerance: a float32 encode vs another)."""
    assert set(ours) == set(theirs)
    for q_id, docs in theirs.items():
        assert set(ours[q_id]) == set(docs), q_id
        assert [ours[q_id][d] for d in docs] == pytest.approx(list(docs.values()), abs=1e-5), q_id


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir), device="cpu")


@pytest.mark.parametrize(("long", "best", "max_tokens"), [
    (False, "hybrid_convex", 20), (True, "hybrid_rrf", 20), (True, "chunked", 20), (False, "model", 20),
    (True, "chunked", None),  # windows as long as the model reads: the first is the whole (truncated) document
])
def test_the_card_snippet_reproduces_the_system_the_evaluation_ranked(model, tiny_model_dir, tmp_path, monkeypatch,
                                                                      long, best, max_tokens):
    settings = EvaluateConfig(chunking={"mode": "auto", "max_tokens": max_tokens, "overlap": 4})
    info, runs, (queries, corpus, _) = evaluated(model, incident_table(long), settings)
    assert bool(info["about"]["long_documents"]["chunked"]) == long
    if long:
        assert info["about"]["long_documents"]["chunked"]["first_whole"] == (max_tokens is None)
    report = report_with(info, best)
    cfg = config(tmp_path, tiny_model_dir)
    record = retrieval_record(cfg, report)
    assert record["measured_best"] == best == record["published"]
    namespace = run_card_snippet(system_card_section(cfg, report), tiny_model_dir.parent, monkeypatch)
    assert_same_ranking(namespace["search"](queries, corpus), runs[best])


def test_retrieval_json_records_the_hybrid_settings_and_every_candidate(model, tiny_model_dir, tmp_path):
    settings = EvaluateConfig(chunking={"mode": "auto", "max_tokens": 20, "overlap": 4})
    info, _, _ = evaluated(model, incident_table(True), settings)
    report = report_with(info, "hybrid_convex")
    record = retrieval_record(config(tmp_path, tiny_model_dir), report)
    assert set(record["candidates"]) == {"chunked", "model", "bm25", "hybrid_rrf", "hybrid_convex"}
    assert not record["candidates"]["bm25"]["publishable"] and record["candidates"]["hybrid_convex"]["publishable"]
    system = record["settings"]
    assert system["dense"]["chunking"] == {"max_tokens": 20, "overlap": 4, "first_whole": False}
    assert system["fusion"]["method"] == "convex" and system["fusion"]["weight"] == 0.5
    assert system["bm25"]["stemmer"] == "english" and system["bm25"]["k1"] == 1.5
    assert record["metrics"]["ndcg@10"] == 0.9 and record["interval"]["against"] == "tuned"


def test_push_system_model_describes_the_model_alone_and_still_records_what_measured_best(
        model, tiny_model_dir, tmp_path, monkeypatch):
    settings = EvaluateConfig(chunking={"mode": "never"})
    info, runs, (queries, corpus, _) = evaluated(model, incident_table(False), settings)
    report = report_with(info, "hybrid_rrf")
    cfg = config(tmp_path, tiny_model_dir, system="model")
    record = retrieval_record(cfg, report)
    assert (record["measured_best"], record["published"]) == ("hybrid_rrf", "model")
    lines = system_card_section(cfg, report)
    assert any("This card describes the model alone" in line for line in lines)
    assert "bm25s" not in "\n".join(lines).split("```python", 1)[1]
    namespace = run_card_snippet(lines, tiny_model_dir.parent, monkeypatch)
    assert_same_ranking(namespace["search"](queries, corpus), runs["model"])


def test_a_folded_hybrid_is_no_candidate():
    info = {"main_metric": "ndcg@10", "metrics": {"ndcg@10": {"tuned": 0.5}},
            "reference": {"hybrid_convex": {"description": "x", "folded_into": "tuned", "details": {"weight": 1.0}},
                          "bm25": {"metrics": {"ndcg@10": 0.4}, "vs": {}}}}
    assert set(candidates(info)) == {"model", "bm25"}


def test_no_retrieval_set_no_section(tmp_path, tiny_model_dir):
    report = {"primary": {"dataset": "sts", "metric": "spearman"}, "datasets": {"sts": {"task": "sts"}}}
    assert system_card_section(config(tmp_path, tiny_model_dir), report) == []
    assert retrieval_record(config(tmp_path, tiny_model_dir), None) is None
