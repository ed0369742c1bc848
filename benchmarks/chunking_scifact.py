"""Does chunking long documents change retrieval? SciFact (full corpus), the bundled model, with and without MaxP.

Without chunking the model reads the first ``max_seq_length`` tokens of each document (MTEB's setting); with it,
each document is split into windows (``evaluate.chunking``) and scored by its best window. Both runs encode in fp32,
in one ``embed`` call: a document that fits in one window is the same text, so it is encoded once for both runs.

    nice .venv/bin/python benchmarks/chunking_scifact.py [--data ../shared/data] [--max-tokens N] [--overlap 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
K_VALUES = (10, 100)


def per_query(run, qrels, q_ids: list[str]):
    import numpy as np

    from evaluate.retrieval.metrics import evaluate_run

    scores = evaluate_run(run, qrels, k_values=K_VALUES, missing_queries="zero")["per_query"]
    return {m: np.array([scores[q][m] for q in q_ids]) for m in ("ndcg@10", "recall@100")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max-tokens", type=int, default=None, help="empty: the model's limit")
    parser.add_argument("--overlap", type=int, default=32)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bm25_cost import load_scifact

    from configs.schema import ModelConfig
    from core.embed import embed
    from core.model import load_model
    from core.windows import resolve_max_tokens, split_documents, token_limit
    from evaluate.retrieval.chunking import maxp, search_depth
    from evaluate.retrieval.metrics import run_from_scores
    from evaluate.significance import compare_means

    # 1. Data, model and windows.
    queries, corpus, qrels = load_scifact(Path(args.data) / "scifact")
    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    max_tokens = resolve_max_tokens(args.max_tokens, args.overlap, token_limit(model))
    windows = split_documents(corpus, model.tokenizer, max_tokens, args.overlap,
                              first_whole=max_tokens == token_limit(model))
    # 2. One encode: queries, whole documents, and the extra windows of chunked documents.
    start = time.perf_counter()
    emb = embed(model, {"query": list(queries.values()),
                        "document": list(corpus.values()) + list(windows.corpus.values())}, 64, precision="fp32")
    seconds = time.perf_counter() - start
    q = emb(queries.values(), "query")  # (n_queries, dim)
    # 3. Rank: whole documents (truncated by the model), and windows folded back by MaxP.
    plain = run_from_scores(list(queries), list(corpus), emb.scores(q, emb(corpus.values(), "document")), k=100)
    window_scores = emb.scores(q, emb(windows.corpus.values(), "document"))  # (n_queries, n_windows)
    window_run = run_from_scores(list(queries), list(windows.corpus), window_scores, k=search_depth(100, windows))
    chunked = maxp(window_run, windows.doc_of, k=100)
    # 4. The table, with the paired difference per metric.
    q_ids = sorted(qrels)
    without, with_ = per_query(plain, qrels, q_ids), per_query(chunked, qrels, q_ids)
    print(f"SciFact test, {len(q_ids)} queries; all-MiniLM-L6-v2 (max_seq_length {model.max_seq_length}), fp32; "
          f"windows of {max_tokens} tokens, overlap {args.overlap}; encoding {seconds:.0f} s\n"
          f"{windows.describe(len(corpus))}\n")
    print("| metric | without chunking | with chunking (MaxP) | delta [95% CI], p |\n|---|---:|---:|---|")
    for metric in without:
        stats = compare_means(without[metric], with_[metric], seed=0)
        print(f"| {metric} | {without[metric].mean():.4f} | {with_[metric].mean():.4f} | {stats.describe()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
