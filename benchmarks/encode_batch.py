"""Encoding speed by batch size: the plain library's ``SentenceTransformer.encode`` on the same texts at each size.

What mining (``data.hard_negatives.batch_size``) and evaluation (``evaluate.batch_size``) encode with is a pure speed
choice: the texts are sorted by length and each batch is padded to its longest text, so the vectors are the same
(up to float rounding) at any size. Which size is fastest depends on the device and on text length: a GPU wants
large batches to stay busy, while on a 2-core AVX2 CPU smaller batches of long documents measured faster (the
likely reason, not measured here: their attention tensors fit the CPU's caches). This measures it on the machine at
hand.

The bundled all-MiniLM-L6-v2 in fp32 encodes ``--texts`` documents drawn at random (seed 0) from a BEIR corpus
(title + text, as retrieval reads them). Per repeat every batch size encodes the same texts one after the other,
the order reversed on every other repeat, so a machine that slows down or speeds up mid-run slows every size alike.
The table gives each size's median seconds and texts per second, and its speed against the largest size given,
per repeat (median, min-max), which is the figure to trust on a noisy machine.

    .venv/bin/python benchmarks/encode_batch.py --corpus ../shared/data/scifact [--sizes 8,16,32,64]
        [--texts 384] [--repeats 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from configs.errors import UserError  # noqa: E402
from configs.schema import ModelConfig  # noqa: E402
from core.model import load_model  # noqa: E402
from data.beir import doc_text, read_jsonl_by_id  # noqa: E402


def batch_sizes(value: str) -> list[int]:
    """'8,16,32' -> [8, 16, 32]: positive integers, at least two, in increasing order."""
    try:
        sizes = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected batch sizes like 8,16,32, got {value!r}") from None
    if len(sizes) < 2 or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"expected at least two positive batch sizes like 8,16,32, got {value!r}")
    return sizes


def positive(value: str) -> int:
    """A count that must be at least 1 (--texts, --repeats)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def sample_texts(corpus: Path, n: int) -> list[str]:
    docs = read_jsonl_by_id(corpus / "corpus.jsonl", role="corpus")
    texts = [doc_text(doc) for doc in docs.values()]
    random.Random(0).shuffle(texts)
    return texts[:n]


def measure(model, texts: list[str], sizes: list[int], repeats: int) -> dict[int, list[float]]:
    """Seconds per repeat for each size, the sizes interleaved (reversed every other repeat)."""
    model.encode(texts[: sizes[-1]], batch_size=sizes[-1])  # warm-up: first-call allocations are not speed
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for repeat in range(repeats):
        for size in sizes if repeat % 2 == 0 else sizes[::-1]:
            start = time.perf_counter()
            model.encode(texts, batch_size=size)
            seconds[size].append(time.perf_counter() - start)
        print(f"repeat {repeat + 1}/{repeats}: " + ", ".join(f"batch {s} {seconds[s][-1]:.1f} s" for s in sizes),
              flush=True)
    return seconds


def table(seconds: dict[int, list[float]], n_texts: int) -> list[str]:
    largest = max(seconds)
    lines = [f"| batch | seconds per repeat (median) | texts/s | speed vs batch {largest}: median (min-max) |",
             "|---:|---:|---:|---|"]
    for size, times in seconds.items():
        ratios = [ref / t for ref, t in zip(seconds[largest], times)]
        lines.append(f"| {size} | {statistics.median(times):.1f} | {n_texts / statistics.median(times):.1f} | "
                     f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a BEIR folder (corpus.jsonl)")
    parser.add_argument("--sizes", type=batch_sizes, default=[8, 16, 32, 64], help="batch sizes, e.g. 8,16,32,64")
    parser.add_argument("--texts", type=positive, default=384)
    parser.add_argument("--repeats", type=positive, default=6)
    parser.add_argument("--json", type=Path, help="also write the seconds per repeat here")
    args = parser.parse_args(argv)
    try:
        texts = sample_texts(args.corpus, args.texts)
    except UserError as err:
        parser.error(str(err))
    import torch

    model, _ = load_model(ModelConfig(name="bundled:all-MiniLM-L6-v2"))
    model = model.float().eval()
    print(f"{len(texts)} documents from {args.corpus}, fp32, {torch.get_num_threads()} threads, device {model.device}")
    seconds = measure(model, texts, args.sizes, args.repeats)
    print("\n" + "\n".join(table(seconds, len(texts))))
    if args.json:
        args.json.write_text(json.dumps({"texts": len(texts), "seconds": seconds}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
