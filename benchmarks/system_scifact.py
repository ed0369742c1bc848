"""Which retrieval system is best on SciFact, measured through the evaluation's own code path without training: the
bundled model truncated vs chunked (evaluate.chunking auto), BM25 stemmed and unstemmed, and the hybrids (their
weight chosen on the dev split: SciFact's train qrels, each query among its own judged documents, as
``evaluate.dev_runs`` scores dev). Test and dev (train qrels, full corpus) numbers; everything encodes once, in fp32.

    nice -n 10 .venv/bin/python benchmarks/system_scifact.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from configs.schema import EvaluateConfig, KeywordConfig, ModelConfig, SourceConfig
    from core.embed import embed
    from core.keyword import Bm25
    from core.model import load_model
    from data.prepare import load_table
    from evaluate.retrieval.keyword import bm25_run
    from evaluate.retrieval.metrics import evaluate_run
    from evaluate.tasks.retrieval import RETRIEVAL, chunk_like

    folder = Path(args.data) / "scifact"
    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    settings = EvaluateConfig()  # the defaults: chunking auto, keyword english
    test = load_table(SourceConfig(path=str(folder), split="test"), "data.test")
    dev = load_table(SourceConfig(path=str(folder), split="train"), "data.dev")
    # 1. The decision and the windows, as python -m evaluate prepares a set (decided on the test set's documents).
    test, note = RETRIEVAL.prepare(test, model, settings)
    dev = chunk_like(dev, model, settings, chunked=test.windows is not None)
    print(json.dumps(note, indent=1))
    # 2. One encoding of every text either split needs (both search the same full corpus).
    texts: dict[str, list[str]] = {}
    for table in (test, dev):
        for role, items in RETRIEVAL.texts(table, full_corpus=True).items():
            texts.setdefault(role, []).extend(items)
    start = time.perf_counter()
    emb = embed(model, {r: list(dict.fromkeys(t)) for r, t in texts.items()}, 64, progress=True)
    print(f"encoded {len(emb.index)} texts in {time.perf_counter() - start:.0f} s")
    out = {}
    for name, table in (("test", test), ("dev", dev)):
        result = RETRIEVAL.run(table, emb, full_corpus=True, ignore_identical_ids=False)
        queries, corpus, qrels = result.retrieval
        ndcg = {"chunked": result.metrics["ndcg@10"],
                "truncated": evaluate_run(result.extra_runs["truncated"], qrels, k_values=(10,),
                                          missing_queries="zero")["mean"]["ndcg@10"]}
        for stemmer in ("english", "none"):
            run = bm25_run(queries, corpus, bm25=Bm25(stemmer))
            scores = evaluate_run(run, qrels, k_values=(10,), missing_queries="zero")
            ndcg[f"bm25_{stemmer}"] = scores["mean"]["ndcg@10"]
        out[name] = ndcg
        if name == "test":
            test_result = result
    # 3. The reference rows exactly as python -m evaluate makes them, dev = train qrels among their own documents.
    dev_own = RETRIEVAL.run(dev, emb, full_corpus=False, ignore_identical_ids=False)
    for stemmer in ("english", "none"):
        settings = EvaluateConfig(keyword=KeywordConfig(stemmer=stemmer))
        rows = RETRIEVAL.references(test_result, settings=settings, ignore_identical_ids=False, dev=dev_own, seed=0)
        out[f"test_rows_{stemmer}"] = {n: {"ndcg@10": r.get("metrics", {}).get("ndcg@10"),
                                           "vs": {k: v for k, v in (r.get("vs", {}).get("ndcg@10") or {}).items()
                                                  if k in ("delta", "ci_low", "ci_high", "p_value")},
                                           "weight": r["details"].get("weight"), "folded": r.get("folded_into")}
                                       for n, r in rows.items()}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
