"""``push.merge_ratio``: publish the base/tuned weight interpolation that ``python -m evaluate merge`` measured.

The interpolation at ratio r, ``(1 - r) * base + r * tuned``, is a model of its own, so everything a publish says is
about it: the gate and the card read the merged model's row of ``RUN_DIR/eval/merge.json`` (each set paired with the
base, delta, 95% CI, p), not the tuned model's ``report.json``. That row must be an evaluation of this run: of its
``final/`` (``evaluate.interpolate.evaluated_ratio``) and of the base model it was trained from. The weights are
written by
``evaluate.interpolate.merged_folder`` (with ``embtune_merge.json`` naming the ratio, method and both fingerprints).
"""

from __future__ import annotations

import json
from pathlib import Path

from configs.errors import UserError
from configs.schema import RunConfig
from evaluate.interpolate import evaluated_ratio
from evaluate.pairing import primary
from evaluate.report.markdown import md_escape

MERGE_FILES = ("merge.json", "merge.md", "merge.svg")  # the whole frontier, published as eval_merge.*


def merged_report(config: RunConfig, report: dict | None, run_info: dict) -> dict:
    """``report`` as it would read for the merged model at ``push.merge_ratio``: its sets, primary and identity
    from the ratio's row of merge.json; what is about the training data (leakage) stays. Refuses a ratio never
    evaluated, or evaluated for another final/ or another base."""
    ratio, run_dir = config.push.merge_ratio, Path(config.run_dir)
    if report is None:
        raise UserError(f"push.merge_ratio={ratio:g} publishes an interpolation measured against the base, but "
                        f"{run_dir} was never evaluated: run 'python -m evaluate {run_dir}' and then 'python -m "
                        f"evaluate merge {run_dir}' first.")
    row = evaluated_ratio(run_dir, ratio)
    record = json.loads((run_dir / "eval" / "merge.json").read_text(encoding="utf-8"))
    if run_info.get("base_fingerprint") and record.get("base_fingerprint") != run_info["base_fingerprint"]:
        raise UserError(f"{run_dir}/eval/merge.json interpolated another base model than the one this run trained "
                        f"from. Run 'python -m evaluate merge {run_dir}' again.")
    datasets = row["datasets"]
    merge = {"ratio": ratio, "method": record["method"], "fingerprint": row["fingerprint"],
             "base_fingerprint": record["base_fingerprint"], "tuned_fingerprint": record["tuned_fingerprint"]}
    kept = {k: v for k, v in report.items() if k not in ("truncated", "tuned_fingerprint")}
    chosen = {**primary(config, datasets), "model": f"merged model (r = {ratio:g})"}
    return {**kept, "datasets": datasets, "primary": chosen, "merge": merge, "encoding": {},
            "tuned_model": f"{report.get('tuned_model', 'final')} merged with its base at r={ratio:g}"}


def merge_card_lines(report: dict | None) -> list[str]:
    """The card's account of a merged publish (nothing for a tuned model published as trained)."""
    merge = (report or {}).get("merge")
    if not merge:
        return []
    r = merge["ratio"]
    return ["## Merged with its base", "",
            f"This model is not the fine-tuned model itself but an interpolation of the weights: "
            f"(1 − r) × base + r × fine-tuned with **r = {r:g}** ({md_escape(merge['method'])}), chosen with "
            "`python -m evaluate merge` to keep most of the domain gain at less general-quality loss. Every number "
            f"in this card is of the merged model. `eval_merge.md` holds the whole frontier (every ratio evaluated), "
            "`embtune_merge.json` the ratio and the fingerprints of both models merged.", "",
            f"- Interpolation identity: `{merge['fingerprint']}`",
            f"- Base model fingerprint: `{merge['base_fingerprint']}`",
            f"- Fine-tuned model (the run's final/) fingerprint: `{merge['tuned_fingerprint']}`", ""]


def merge_reports(eval_dir: Path) -> dict[str, str]:
    """name -> text of the frontier files to publish beside the reports (numbers and dataset names only)."""
    return {f"eval_{name}": (eval_dir / name).read_text(encoding="utf-8") for name in MERGE_FILES
            if (eval_dir / name).is_file()}
