"""Is an export the model it came from? Each export is evaluated with embtune's own evaluator on the set that holds
the primary metric, beside the PyTorch model, and compared: metric delta with its paired CI (the task's own
statistics, as baseline vs tuned), the smallest per-text cosine between the two models' embeddings, the encode
speed ratio on the same texts in the same process, and the file size.

fp32 exports must match: |delta| <= 1e-3 and every per-text cosine >= 0.9999, else the publish stops (nothing is
written). int8 exports report their delta and CI; the target is |delta| <= 5e-3.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from configs.errors import UserError
from configs.runs import atomic_write_json
from configs.schema import RunConfig
from core.embed import Embeddings
from core.export import EXPORTS, build_exports, export_files, remove_exports, with_sources
from core.onnx_encoder import ExportEncoder
from data.prepare import load_prepared
from evaluate.measure import evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.sets import EvalSet, resolve_sets

log = logging.getLogger(__name__)

FP32_METRIC_TOLERANCE = 1e-3
FP32_MIN_COSINE = 0.9999
INT8_METRIC_TARGET = 5e-3
RESULTS_FILE = "eval_exports.json"  # 'eval_' files are publish files: they do not change the model's fingerprint


def parity_sets(config: RunConfig) -> list[EvalSet]:
    """The evaluation set that holds the primary metric (the first set when ``evaluate.primary`` is empty)."""
    sets = resolve_sets(config, load_prepared(Path(config.run_dir)))
    name = (config.evaluate.primary or "").partition("/")[0] or sets[0].config.name
    return [s for s in sets if s.config.name == name]


def min_cosine(reference: Embeddings, other: Embeddings) -> float:
    """The smallest cosine between the two models' vectors of the same (mode, prompt, text) key."""
    keys = list(reference.index)
    a = reference.vectors[[reference.index[k] for k in keys]]  # (n, dim)
    b = other.vectors[[other.index[k] for k in keys]]  # (n, dim), same keys in the same order
    cosines = (a * b).sum(1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)
    return float(cosines.min())


def measure(model, sets: list[EvalSet], config: RunConfig, backend: str) -> tuple[dict, dict]:
    """One model's results and encoding (no cache: the point is to run this encoder)."""
    return evaluate_model(model, sets, config.evaluate.batch_size, train_prompts=config.train.prompts,
                          seed=config.evaluate.seed, backend=backend)


def parity_row(name: str, folder: Path, entry: dict, cosine: float, speed: float) -> dict:
    """One export's row of the table (``entry``: the primary metric, PyTorch as 'baseline', export as 'tuned')."""
    spec = EXPORTS[name]
    delta = entry["delta"]
    if spec.quantized:
        passed = delta is not None and abs(delta) <= INT8_METRIC_TARGET
    else:
        passed = delta is not None and abs(delta) <= FP32_METRIC_TOLERANCE and cosine >= FP32_MIN_COSINE
    return {"export": name, "file": spec.file, "backend": spec.backend, "precision": "int8" if spec.quantized
            else "fp32", "metric": f"{entry['dataset']}/{entry['metric']}", "pytorch": entry["baseline"],
            "value": entry["tuned"], "delta": delta, "ci_low": entry["ci_low"], "ci_high": entry["ci_high"],
            "p_value": entry["p_value"], "n_units": entry["n_units"], "min_cosine": cosine, "speed_ratio": speed,
            "size_bytes": sum(p.stat().st_size for p in export_files(folder, name)), "within_target": passed}


def parity_rows(folder: Path, names: tuple[str, ...] | list[str], config: RunConfig,
                sets: list[EvalSet]) -> list[dict]:
    """Every export in ``folder`` against the PyTorch model in ``folder``, on ``sets``."""
    from core.model import load_model

    model, _ = load_model(config.model, path=folder)
    reference, reference_encoding = measure(model, sets, config, "torch")
    rows = []
    for name in names:
        spec = EXPORTS[name]
        encoder = ExportEncoder(folder, folder / spec.file, spec.backend, max_seq_length=config.model.max_seq_length)
        results, encoding = measure(encoder, sets, config, spec.backend)
        entry = primary(config, pair_up(sets, reference, results, seed=config.evaluate.seed))
        cosine = min_cosine(reference_encoding["embeddings"], encoding["embeddings"])
        speed = reference_encoding["seconds"] / max(encoding["seconds"], 1e-9)
        rows.append(parity_row(name, folder, entry, cosine, speed))
        log.info("%s: %s %.4f vs PyTorch %.4f (delta %+.5f), min cosine %.6f, %.2fx PyTorch's speed", name,
                 rows[-1]["metric"], entry["tuned"], entry["baseline"], entry["delta"], cosine, speed)
    return rows


def check_parity(rows: list[dict]) -> None:
    """Stop the publish when an fp32 export is not the model it came from."""
    bad = [r for r in rows if r["precision"] == "fp32" and not r["within_target"]]
    if bad:
        shown = "; ".join(f"{r['export']}: {r['metric']} {r['value']:.5f} vs PyTorch {r['pytorch']:.5f} "
                          f"(delta {r['delta']:+.5f}, allowed +-{FP32_METRIC_TOLERANCE:g}), min per-text cosine "
                          f"{r['min_cosine']:.6f} (needed >= {FP32_MIN_COSINE})" for r in bad)
        raise UserError(f"An fp32 export does not reproduce the PyTorch model, so nothing was published: {shown}. "
                        "Publish without that export (push.export) and report the model's architecture.")


def export_all(folder: Path, config: RunConfig, sets: list[EvalSet] | None = None) -> list[dict]:
    """Write the exports of ``config.push.export`` into ``folder`` (the staging folder of a publish), check each
    against the PyTorch model, and write their table to ``folder/eval_exports.json``. Returns the table's rows.

    Args:
        sets: evaluation sets for the parity check; default: the run's set holding the primary metric.
    """
    names = list(config.push.export)
    if not names:
        return []
    sets = sets if sets is not None else parity_sets(config)
    build_exports(folder, names, folder)
    remove_exports(folder, [n for n in with_sources(names) if n not in names])  # built only as a source
    rows = parity_rows(folder, names, config, sets)
    check_parity(rows)
    atomic_write_json(folder / RESULTS_FILE, {"reference": "PyTorch fp32 model in this folder", "exports": rows})
    return rows
