"""What the BM25 reference row costs: bm25s indexing and scoring against dense encoding of the same SciFact texts.

One run, one machine: BM25 (``evaluate.keyword``) indexes the full 5,183-document corpus and ranks the 300 test
queries; the bundled all-MiniLM-L6-v2 encodes the same corpus and queries in fp32 and in the precision ``auto``
picks on this machine (bf16 only with native bf16 support), then ranks by cosine. nDCG@10 is printed beside the times
so the cost reads against what it buys. Encoding uses no embedding cache: every figure is a real encode. Wall time
and process CPU time (all threads) are both shown: on a shared machine the CPU time is the steadier figure.

    nice .venv/bin/python benchmarks/bm25_cost.py [--data ../shared/data] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_scifact(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """(test queries, full corpus as title + text, graded test qrels) of a BEIR folder."""
    from data.beir import doc_text, read_jsonl_by_id, read_qrels

    corpus = {d: doc_text(doc) for d, doc in read_jsonl_by_id(folder / "corpus.jsonl").items()}
    texts = read_jsonl_by_id(folder / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    for _, q, d, level in read_qrels(folder / "qrels" / "test.tsv"):
        qrels.setdefault(q, {})[d] = level
    return {q: texts[q]["text"] for q in qrels}, corpus, qrels


def ndcg10(run, qrels) -> float:
    from evaluate.retrieval.metrics import evaluate_run

    return evaluate_run(run, qrels, k_values=(10,), missing_queries="zero")["mean"]["ndcg@10"]


def clock() -> tuple[float, float]:
    """(wall, process CPU) seconds now."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def bm25_row(queries, corpus, qrels) -> dict:
    from core.keyword import build_index
    from evaluate.retrieval.keyword import search_index

    start = clock()
    retriever = build_index(corpus)
    corpus_s, start = since(start), clock()
    run = search_index(retriever, list(corpus), queries, k=100)
    return {"system": "BM25 (bm25s)", "corpus": corpus_s, "queries": since(start), "ndcg@10": ndcg10(run, qrels)}


def dense_row(model, precision: str, queries, corpus, qrels, batch_size: int) -> dict:
    from core.embed import embed
    from evaluate.retrieval.metrics import run_from_scores

    start = clock()
    docs = embed(model, {"document": list(corpus.values())}, batch_size, precision=precision)
    corpus_s, start = since(start), clock()
    q = embed(model, {"query": list(queries.values())}, batch_size, precision=precision)
    scores = q.scores(q(queries.values(), "query"), docs(corpus.values(), "document"))  # (n_queries, n_docs)
    run = run_from_scores(list(queries), list(corpus), scores, k=100)
    return {"system": f"all-MiniLM-L6-v2 {precision}", "corpus": corpus_s, "queries": since(start),
            "ndcg@10": ndcg10(run, qrels)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    from configs.schema import ModelConfig
    from core.embed import resolve_precision
    from core.model import load_model

    # 1. The same texts for every system.
    queries, corpus, qrels = load_scifact(Path(args.data) / "scifact")
    # 2. BM25: index the corpus, then rank every query.
    rows = [bm25_row(queries, corpus, qrels)]
    # 3. Dense: encode corpus and queries in fp32 and in the machine's default precision, then rank by cosine.
    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    for precision in dict.fromkeys(("fp32", resolve_precision("auto", model))):
        rows.append(dense_row(model, precision, queries, corpus, qrels, args.batch_size))
    # 4. The table.
    print(f"SciFact test: {len(queries)} queries, {len(corpus):,} documents; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, batch {args.batch_size}\n")
    print("| system | index / encode corpus: wall s (CPU s) | rank queries: wall s (CPU s) | per query wall ms "
          "| nDCG@10 |\n|---|---:|---:|---:|---:|")
    for row in rows:
        (corpus_wall, corpus_cpu), (q_wall, q_cpu) = row["corpus"], row["queries"]
        print(f"| {row['system']} | {corpus_wall:.2f} ({corpus_cpu:.2f}) | {q_wall:.2f} ({q_cpu:.2f}) | "
              f"{1000 * q_wall / len(queries):.1f} | {row['ndcg@10']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
