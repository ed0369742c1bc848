"""Retrieval scoring at scale: 1,000 queries against 1,000,000 synthetic document embeddings.

Compares embtune's chunked running top-k (``evaluate.tasks.retrieval.search_vectors``, trec_eval tie order) with the
plain library's ``sentence_transformers.util.semantic_search`` on the same vectors, in one run: wall time and peak
resident memory of each (measured in a fresh subprocess so one's peak cannot hide the other's).

    .venv/bin/python benchmarks/retrieval_scale.py [--docs 1000000] [--queries 1000] [--dim 384]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit-length float32 vectors, generated in blocks (the corpus itself is the only big allocation)."""
    out = np.empty((n, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for s in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - s), dim), dtype=np.float32)
        out[s:s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def run_one(which: str, docs: int, queries: int, dim: int) -> dict:
    """Score in this process; report seconds and peak RSS (MiB) above the corpus itself."""
    corpus, q = vectors(docs, dim, 1), vectors(queries, dim, 2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if which == "embtune":
        sys.path.insert(0, str(REPO))
        from evaluate.tasks.retrieval import CORPUS_CHUNK, search_vectors

        ids = [str(i) for i in range(docs)]
        chunks = ((ids[s:s + CORPUS_CHUNK], corpus[s:s + CORPUS_CHUNK]) for s in range(0, docs, CORPUS_CHUNK))
        run = search_vectors([str(i) for i in range(queries)], q, chunks, k=100)
        top = [next(iter(run[str(i)])) for i in range(queries)]
    else:
        import torch
        from sentence_transformers.util import semantic_search

        hits = semantic_search(torch.from_numpy(q), torch.from_numpy(corpus), top_k=100, corpus_chunk_size=50_000)
        top = [str(h[0]["corpus_id"]) for h in hits]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"which": which, "seconds": seconds, "peak_mib": peak, "extra_mib": peak - before, "top": top[:20]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--one", choices=("embtune", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.docs, args.queries, args.dim)))
        return 0
    results = {}
    for which in ("embtune", "plain"):
        out = subprocess.run([sys.executable, __file__, "--one", which, "--docs", str(args.docs), "--queries",
                              str(args.queries), "--dim", str(args.dim)], check=True, capture_output=True, text=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
    corpus_mib = args.docs * args.dim * 4 / 2**20
    print(f"{args.queries} queries x {args.docs:,} documents, dim {args.dim} (corpus alone: {corpus_mib:.0f} MiB)\n")
    print("| scorer | time | peak RSS | RSS added while scoring |\n|---|---:|---:|---:|")
    for r in results.values():
        print(f"| {r['which']} | {r['seconds']:.1f} s | {r['peak_mib']:.0f} MiB | {r['extra_mib']:.0f} MiB |")
    same = sum(a == b for a, b in zip(results["embtune"]["top"], results["plain"]["top"]))
    print(f"\ntime ratio embtune/plain: {results['embtune']['seconds'] / results['plain']['seconds']:.2f}; "
          f"top-1 agreement on the first 20 queries: {same}/20")
    return 0


if __name__ == "__main__":
    sys.exit(main())
