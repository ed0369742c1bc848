"""Does our evaluation reproduce MTEB's published baseline? The bundled all-MiniLM-L6-v2 on STSb test and SciFact.

MTEB publishes for all-MiniLM-L6-v2: STSb test Spearman (cosine) 82.03 and SciFact test nDCG@10 64.51. We use
MTEB's conventions: the model's own max_seq_length (256), documents as title + " " + text, the full 5,183-document
corpus, trec_eval's nDCG. ``--precision bf16`` measures what bf16 autocast encoding does to the same numbers.

    .venv/bin/python benchmarks/mteb_reproduction.py [--data ../shared/data] [--precision fp32] [--only stsb]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = {"stsb": ("spearman_cosine", 0.8203), "scifact": ("ndcg@10", 0.6451)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--only", choices=tuple(PUBLISHED))
    parser.add_argument("--cache-dir", default="~/.cache/embtune/embeddings")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from configs.schema import EvalDatasetConfig, ModelConfig, SourceConfig
    from core.model import load_model
    from data.prepare import load_table
    from evaluate.measure import evaluate_model
    from evaluate.sets import EvalSet

    data = Path(args.data)
    sources = {"stsb": (SourceConfig(path=str(data / "stsb" / "test.csv"), score_range=(0, 5)), "sts"),
               "scifact": (SourceConfig(path=str(data / "scifact"), format="beir", split="test"), "retrieval")}
    names = [args.only] if args.only else list(sources)
    sets = [EvalSet(EvalDatasetConfig(name=n, task=sources[n][1]), load_table(sources[n][0], n)) for n in names]
    model, resolved = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    fingerprint = resolved.fingerprint  # the cache adds max_seq_length, prompts, precision itself
    results, encoding = evaluate_model(model, sets, 64, fingerprint, Path(args.cache_dir).expanduser(), args.precision)
    print(f"all-MiniLM-L6-v2, max_seq_length {model.max_seq_length}, {args.precision}; encoding "
          f"{encoding['seconds']:.1f} s for {encoding['texts']} texts{' (cached)' if encoding['cached'] else ''}\n")
    print("| dataset | metric | embtune | MTEB | difference |\n|---|---|---:|---:|---:|")
    for name in names:
        metric, published = PUBLISHED[name]
        value = results[name].metrics[metric]
        print(f"| {name} | {metric} | {100 * value:.2f} | {100 * published:.2f} | {100 * (value - published):+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
