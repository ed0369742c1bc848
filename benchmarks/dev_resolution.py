"""Can the dev split choose between checkpoints? Dev nDCG@10 of the base model and of each given model folder, in
three views: the dev queries ranking their own documents (how the dev evaluator ranks), truncated and chunked, and
truncated with, per query, the K corpus documents stemmed BM25 ranks highest added as distractors (no judgement is
read to pick them). A dev split decides only differences larger than what its queries resolve.

    .venv/bin/python benchmarks/dev_resolution.py RUN_DIR [MODEL_DIR ...] [--distractors 10]

RUN_DIR holds ``data/`` as ``python -m data`` wrote it (a BEIR source, so its corpus is known); MODEL_DIR are
checkpoint or final/ folders (copy checkpoints before the run ends: a finished run deletes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("models", nargs="*", help="model folders to compare with the base model")
    parser.add_argument("--distractors", type=int, default=10, help="BM25 documents added per dev query")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from configs.load import load_config
    from configs.schema import EvaluateConfig
    from core.embed import embed
    from core.keyword import available
    from core.model import load_model, load_model_folder
    from core.prompts import resolve_prompts
    from data.prepare import load_prepared
    from evaluate.retrieval.keyword import bm25_run
    from evaluate.retrieval.qrels import retrieval_sets
    from evaluate.tasks.retrieval import RETRIEVAL

    config = load_config(args.run_dir)
    dev = load_prepared(Path(args.run_dir)).dev
    queries, own, _ = retrieval_sets(dev, full_corpus=False)
    found = bm25_run(queries, dev.corpus, k=args.distractors, bm25=available("english"))
    keep = set(own) | {d for docs in found.values() for d in docs}
    harder = dataclasses.replace(dev, corpus={d: t for d, t in dev.corpus.items() if d in keep})
    print(f"dev: {len(queries)} queries, {len(own)} own documents, {len(keep)} with {args.distractors} BM25 "
          "distractors each", flush=True)

    def ndcg(model, table, mode: str, full_corpus: bool) -> float:
        table, _ = RETRIEVAL.prepare(table, model, EvaluateConfig(chunking={"mode": mode}))
        texts = RETRIEVAL.texts(table, full_corpus=full_corpus)
        emb = embed(model, texts, 32, prompts=resolve_prompts(model, texts))
        result = RETRIEVAL.run(table, emb, full_corpus=full_corpus, ignore_identical_ids=False)
        return round(result.metrics["ndcg@10"], 4)

    models = [("base", load_model(config.model)[0])] + [(m, load_model_folder(Path(m), "model")) for m in args.models]
    rows = []
    for name, model in models:
        row = {"model": name, "own truncated": ndcg(model, dev, "never", False),
               "own chunked": ndcg(model, dev, "always", False),
               "with distractors": ndcg(model, harder, "never", True)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | own documents, truncated | own documents, chunked | with BM25 distractors |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {row['own truncated']} | {row['own chunked']} | {row['with distractors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
