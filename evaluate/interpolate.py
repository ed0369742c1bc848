"""``python -m evaluate merge CONFIG_OR_RUN_DIR [key=value ...]``: how much of the fine-tune to keep.

A domain fine-tune can cost general quality. Interpolating the weights, ``w(r) = (1 - r) * base + r * tuned``,
often keeps most of the domain gain at a fraction of the loss. For each ratio r in ``evaluate.merge_ratios`` this
evaluates the interpolated model on every configured set (as ``python -m evaluate`` does) and pairs it with the base
(delta, 95% CI, p), then writes the frontier, domain gain against general loss, to ``RUN_DIR/eval/``:
``merge.json`` (numbers), ``merge.md`` (tables) and ``merge.svg`` (the picture), and adds the frontier to
``report.html`` when ``report.json`` evaluated the same final/. ``merged_folder`` writes one ratio as a model folder;
``python -m train.push RUN_DIR push.merge_ratio=R`` publishes an evaluated ratio (gate and card on its numbers).

The library's ``SentenceTransformer.merge`` (method ``linear``) computes the same interpolation through mergekit,
which is not a dependency of embtune (it pins its own torch and transformers ranges); the lerp below is the whole of
that method for two models: every floating-point tensor is interpolated, integer buffers (position ids) are kept.
r = 0 and r = 1 reproduce the base and the tuned weights exactly, so those two are evaluated as the models themselves
(and their embeddings come from the cache ``python -m evaluate`` filled).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import sys
from pathlib import Path

import torch

from configs.cli import parse, run
from configs.errors import UserError
from configs.runs import atomic_dir, atomic_write_json, atomic_write_text, load_run
from configs.schema import RunConfig
from core.embed import resolve_precision
from core.model import load_model, model_fingerprint
from core.run_record import check_run_consistent
from data.prepare import load_prepared
from evaluate.eval_folder import keep_beside_merge
from evaluate.forgetting import forgetting_sets, general_names
from evaluate.measure import evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.report.frontier import frontier_svg, merge_markdown, standalone_svg, suggested
from evaluate.report.writers import refresh_html, write_json
from evaluate.sets import EvalSet, resolve_sets

log = logging.getLogger("evaluate")

METHOD = "linear: (1 - r) * base + r * tuned on every floating-point tensor; other tensors from the base"
MERGE_RECORD = "embtune_merge.json"  # in a merged folder: which ratio of which models (embtune_* is not a weight)
GENERAL_SET_EXAMPLE = ("evaluate.datasets: [..., {name: stsb, task: sts, source: {path: ../shared/data/stsb/test.csv, "
                       "score_range: [0, 5]}}]")


def check_ratios(ratios: tuple[float, ...]) -> list[float]:
    """``evaluate.merge_ratios`` sorted, each a share of the tuned model from 0 (the base) to 1 (the tuned model)."""
    bad = [r for r in ratios if not 0 <= r <= 1]
    if not ratios or bad:
        raise UserError(f"evaluate.merge_ratios must be tuned-model weights from 0 (the base) to 1 (the tuned "
                        f"model), e.g. [0, 0.25, 0.5, 0.75, 1]; got {list(ratios)}.")
    return sorted(set(ratios))


def check_general_sets(config: RunConfig) -> None:
    """The frontier weighs the domain gain against a general (forgetting) set: one must be configured."""
    if not general_names(config):
        raise UserError("python -m evaluate merge weighs the domain gain against what the model forgets, but no "
                        "general set is configured: add one with its own source under evaluate.datasets (or mark a "
                        "set general: true), e.g. "
                        f"{GENERAL_SET_EXAMPLE}")


def interpolated_state(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                       ratio: float) -> dict[str, torch.Tensor]:
    """(1 - ratio) * base + ratio * tuned for every floating-point tensor (computed in float32 at least, stored in
    the base's dtype); other tensors are the base's. Both state dicts must have the same names and shapes."""
    if base.keys() != tuned.keys() or any(base[k].shape != tuned[k].shape for k in base):
        differ = sorted(set(base) ^ set(tuned)) or [k for k in base if base[k].shape != tuned[k].shape]
        raise UserError(f"The tuned model's weights do not match its base's ({', '.join(differ[:3])}), so they cannot "
                        "be interpolated. Merge a run's final/ with the base model it was trained from.")
    out = {}
    for name, b in base.items():
        if not b.is_floating_point():
            out[name] = b.clone()
            continue
        wide = torch.promote_types(b.dtype, torch.float32)
        out[name] = ((1 - ratio) * b.to(wide) + ratio * tuned[name].to(wide)).to(b.dtype)
    return out


def merged_model(base, tuned, ratio: float):
    """A new model: the base's modules and settings with the interpolated weights (inputs are left unchanged)."""
    model = copy.deepcopy(base)
    model.load_state_dict(interpolated_state(base.state_dict(), tuned.state_dict(), ratio))
    return model.eval()


def merged_fingerprint(base_fingerprint: str, tuned_fingerprint: str, ratio: float) -> str:
    """The folder identity of an interpolated model (what ``model_fingerprint`` is for a folder): the interpolation
    is deterministic, so the two folders and the ratio identify it (and key its embeddings in the cache)."""
    payload = json.dumps({"method": METHOD, "base": base_fingerprint, "tuned": tuned_fingerprint, "ratio": ratio})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def ratio_model(ratio: float, models: tuple, fingerprints: tuple[str, str]) -> tuple[object, str]:
    """(model, folder fingerprint) at ``ratio``: the base and tuned models themselves at 0 and 1."""
    if ratio in (0, 1):
        return models[int(ratio)], fingerprints[int(ratio)]
    return merged_model(*models, ratio), merged_fingerprint(*fingerprints, ratio)


def frontier(config: RunConfig, sets: list[EvalSet], models: tuple, fingerprints: tuple[str, str],
             precision: str) -> list[dict]:
    """One entry per ratio: {ratio, fingerprint, datasets: ``pair_up`` of the base (baseline) and the merged
    model (tuned)}."""
    e = config.evaluate
    cache = Path(e.cache_dir) if e.cache_dir else None

    def results(model, fingerprint: str) -> dict:
        return evaluate_model(model, sets, e.batch_size, fingerprint, cache, precision,
                              train_prompts=config.train.prompts, seed=e.seed)[0]

    base = results(models[0], fingerprints[0])
    rows = []
    for ratio in check_ratios(e.merge_ratios):
        log.info("merge ratio %g: evaluating", ratio)
        model, fingerprint = ratio_model(ratio, models, fingerprints)
        merged = base if ratio == 0 else results(model, fingerprint)
        rows.append({"ratio": ratio, "fingerprint": fingerprint,
                     "datasets": pair_up(sets, base, merged, seed=e.seed)})
    return rows


def merge_record(config: RunConfig, rows: list[dict], identity: dict) -> dict:
    """merge.json: the models, which set is the domain (primary) and which are general, the rows, and the ratio
    with the largest domain gain that loses nothing significantly on a general set (``suggested_ratio``)."""
    first = rows[0]["datasets"]
    chosen = primary(config, first)
    general = forgetting_sets(config, {"run_dir": config.run_dir, "datasets": first, "primary": chosen})
    record = {"run_dir": config.run_dir, **identity, "method": METHOD,
              "primary": {"dataset": chosen["dataset"], "metric": chosen["metric"]},
              "domain": [name for name in first if name not in general], "general": general, "ratios": rows}
    best = suggested(record)
    return {**record, "suggested_ratio": None if best is None else best["ratio"]}


def write_merge(record: dict, out_dir: Path) -> None:
    """merge.json, merge.md and merge.svg (a standalone SVG file), each written atomically."""
    write_json(out_dir / "merge.json", record)
    atomic_write_text(out_dir / "merge.md", merge_markdown(record))
    atomic_write_text(out_dir / "merge.svg", standalone_svg(frontier_svg(record)))


def trained_run(argv: list[str]) -> tuple[RunConfig, Path]:
    """The run's resolved config (with overrides) and its final/, checked as ``python -m evaluate`` checks them."""
    args, _ = parse(argv, "python -m evaluate merge", "Interpolate the base and tuned weights at "
                    "evaluate.merge_ratios and evaluate each: domain gain against general loss.")
    config = load_run(args.config, args.overrides)
    final = Path(config.run_dir) / "final"
    if not final.is_dir():
        raise UserError(f"{final} does not exist: train first with 'python -m train {args.config}'.")
    check_run_consistent(Path(config.run_dir))
    return config, final


def main(argv: list[str] | None = None) -> int:
    # 1. The run, its sets, the ratios and a general set: all checked before any weight is loaded.
    config, final = trained_run(sys.argv[1:] if argv is None else argv)
    check_ratios(config.evaluate.merge_ratios)
    check_general_sets(config)
    sets = resolve_sets(config, load_prepared(Path(config.run_dir)))
    # 2. The base and the tuned model (a LoRA run's adapter is merged into its base by load_model).
    base, resolved = load_model(config.model)
    tuned, _ = load_model(config.model, path=final)
    fingerprints = (resolved.fingerprint, model_fingerprint(final))
    # 3. Every ratio on every set, paired with the base.
    rows = frontier(config, sets, (base, tuned), fingerprints, resolve_precision(config.evaluate.precision, base))
    # 4. The frontier as numbers, tables and a picture.
    identity = {"base_model": resolved.base_model, "base_fingerprint": fingerprints[0],
                "tuned_fingerprint": fingerprints[1]}
    record = merge_record(config, rows, identity)
    run_dir = Path(config.run_dir)
    with atomic_dir(run_dir / "eval", carry=keep_beside_merge) as out:  # eval/ is swapped in whole
        write_merge(record, out)
        # 5. report.html shows the frontier beside everything else, if report.json evaluated this same final/.
        why_not = refresh_html(run_dir, record, out)
    if why_not:
        log.info("report.html was not updated: %s", why_not)
    print(merge_markdown(record))
    return 0


def merged_folder(config: RunConfig, ratio: float, out: Path) -> Path:
    """Write the run's base/tuned interpolation at ``ratio`` to ``out`` (atomically) as a plain
    sentence-transformers folder, with ``embtune_merge.json`` recording the ratio, method and both fingerprints
    (for the card). Returns ``out``."""
    final = Path(config.run_dir) / "final"
    (ratio,) = check_ratios((ratio,))
    base, resolved = load_model(config.model)
    tuned, _ = load_model(config.model, path=final)
    with atomic_dir(Path(out)) as tmp:
        merged_model(base, tuned, ratio).save_pretrained(str(tmp))
        atomic_write_json(tmp / MERGE_RECORD, {
            "ratio": ratio, "method": METHOD, "base_model": resolved.base_model,
            "base_fingerprint": resolved.fingerprint, "tuned_fingerprint": model_fingerprint(final)})
    return Path(out)


def evaluated_ratio(run_dir: Path, ratio: float) -> dict:
    """The row of ``RUN_DIR/eval/merge.json`` for ``ratio`` (for the card and the push gate), checked to be an
    evaluation of this run's final/."""
    path = Path(run_dir) / "eval" / "merge.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"ratios": []}
    row = next((r for r in record["ratios"] if abs(r["ratio"] - ratio) < 1e-9), None)
    if row is None:
        raise UserError(f"merge ratio {ratio:g} was never evaluated ({path} has no row for it). Run 'python -m "
                        f"evaluate merge {run_dir} evaluate.merge_ratios=[0,{ratio:g},1]' first.")
    if record.get("tuned_fingerprint") != model_fingerprint(Path(run_dir) / "final"):
        raise UserError(f"{path} evaluated another final/ than the one in {run_dir}. Run 'python -m evaluate merge "
                        f"{run_dir}' again.")
    return row


if __name__ == "__main__":
    sys.exit(run(main))
