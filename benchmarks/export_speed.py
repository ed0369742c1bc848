"""Exports against PyTorch: primary metric (delta, CI), min per-text cosine, encode speed, file size.

The bundled all-MiniLM-L6-v2 is exported (every export whose packages are installed) exactly as ``push.export``
does, the parity check runs embtune's own STS evaluator on the full STSb test split (Spearman, paired bootstrap CI),
then encode speed is timed on the same texts in this one process: per repeat, PyTorch fp32 and every export encode
the same texts one after the other (interleaved, so a busy machine slows all of them alike), with as many threads
as PyTorch uses. Target: an export at >= 1.5x PyTorch's speed with the metric within 1e-3 (fp32) / 5e-3 (int8).

    nice -n 10 .venv/bin/python benchmarks/export_speed.py [--repeats 3] [--texts 1000]
        [--corpus ../shared/data/scifact --texts 600]   # speed on a BEIR corpus's documents (title + text) instead

Speed depends on text length: on STSb's short sentences the exports' fixed costs are lower than PyTorch's, while on
documents that fill the model's 256 tokens nearly all the time is the same matrix arithmetic in every runtime.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from configs.load import load_config  # noqa: E402
from configs.schema import EvalDatasetConfig  # noqa: E402
from core.export import EXPORTS  # noqa: E402
from core.model import resolve_model  # noqa: E402
from core.onnx_encoder import ExportEncoder  # noqa: E402
from data.beir import doc_text, read_jsonl_by_id  # noqa: E402
from data.prepare import load_table  # noqa: E402
from evaluate.sets import EvalSet  # noqa: E402
from train.push.export_card import exports_table  # noqa: E402
from train.push.export_parity import export_all  # noqa: E402


def installed_exports() -> list[str]:
    import importlib.util

    return [name for name, spec in EXPORTS.items() if all(importlib.util.find_spec(p) for p in spec.packages)]


def timed(encode, texts: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    encode(texts, batch_size=batch_size)
    return time.perf_counter() - start


def speed_table(folder: Path, names: list[str], texts: list[str], batch_size: int, repeats: int) -> list[str]:
    """Markdown rows: each export's speed over PyTorch's, median (min-max) over interleaved repeats."""
    from sentence_transformers import SentenceTransformer

    encoders = {"pytorch": SentenceTransformer(str(folder), device="cpu").encode}
    for name in names:
        encoders[name] = ExportEncoder(folder, folder / EXPORTS[name].file, EXPORTS[name].backend).encode
    for encode in encoders.values():
        encode(texts[:64], batch_size=batch_size)  # warm-up: first-call allocations are not encode speed
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(repeats):
        for name, encode in encoders.items():
            seconds[name].append(timed(encode, texts, batch_size))
    rows = ["| encoder | seconds per repeat | speed vs PyTorch: median (min-max) |", "|---|---|---|"]
    for name, times in seconds.items():
        ratios = [p / t for p, t in zip(seconds["pytorch"], times)]
        rows.append(f"| {name} | {', '.join(f'{t:.1f}' for t in times)} | {statistics.median(ratios):.2f}x "
                    f"({min(ratios):.2f}-{max(ratios):.2f}) |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=0, help="time this many texts (0: all of the test split)")
    parser.add_argument("--corpus", type=Path, help="time on this BEIR folder's documents (corpus.jsonl, in file "
                        "order, title and text as embtune reads them) instead of the STSb sentences")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # 1. The stsb preset's model and test split, every installed export.
    names = installed_exports()
    config = load_config(REPO / "configs" / "stsb_cosine.yaml", [f"push.export=[{','.join(names)}]"])
    table = load_table(config.data.test, "data.test")
    sets = [EvalSet(EvalDatasetConfig(name="stsb-test", task="sts", split="test"), table)]
    texts = list(dict.fromkeys(list(table.rows["sentence1"]) + list(table.rows["sentence2"])))
    if args.corpus:
        documents = read_jsonl_by_id(args.corpus / "corpus.jsonl")
        texts = [doc_text(doc) for doc in documents.values()]
    texts = texts[:args.texts] if args.texts else texts
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(resolve_model(config.model).path, folder)
        # 2. Export and check parity as push does (one PyTorch run, one run per export, same process).
        rows = export_all(folder, config, sets=sets)
        # 3. Interleaved speed repeats on the same texts.
        speed = speed_table(folder, names, texts, config.evaluate.batch_size, args.repeats)
    import torch

    what = f"documents of {args.corpus}" if args.corpus else "texts"
    print(f"\n{len(table.rows)} STSb test pairs; speed on {len(texts)} {what}, batch {config.evaluate.batch_size}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(exports_table(rows) + "\n\n" + "\n".join(speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
