"""``python -m evaluate CONFIG_OR_RUN_DIR [key=value ...]``: the untuned baseline against the tuned model.

Reads the run's resolved config and prepared splits, reports leakage, runs the same evaluators on both models, and
writes ``RUN_DIR/eval/`` as one set (a new folder swapped in whole): ``report.json``, ``report.md``,
``report.html``, ``details.json`` and ``units.json`` (per-unit scores); prints the verdict, where the report is and
the push command. ``python -m evaluate compare RUN_A RUN_B`` prints the paired difference B - A
of two runs evaluated on the same data (and a leaderboard; three or more runs: the leaderboard).
``python -m evaluate merge RUN`` evaluates base/tuned weight interpolations at ``evaluate.merge_ratios`` on the domain
and general (forgetting) sets and writes the frontier to ``eval/merge.{json,md,svg}``.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

from configs.cli import parse, run
from configs.errors import UserError
from configs.runs import atomic_dir, load_run
from configs.schema import RunConfig
from core.export import encoder_for
from core.model import load_model, model_fingerprint
from core.run_record import check_run_consistent
from data.prepare import load_prepared
from evaluate.compare import compare_main
from evaluate.details import build_details
from evaluate.dev_runs import reference_entries
from evaluate.eval_folder import keep_beside_report
from evaluate.evaluators import EVALUATORS
from evaluate.interpolate import main as merge_main
from evaluate.leakage import COMPARISON, leakage, leakage_lines
from evaluate.measure import check_dims, evaluate_dims, evaluate_model
from evaluate.pairing import pair_up, primary
from evaluate.report.set_summary import about_sets
from evaluate.report.wording import verdict
from evaluate.report.writers import write_report
from evaluate.sets import EvalSet, resolve_sets
from evaluate.units import FULL, units_record

log = logging.getLogger("evaluate")


def measure(model, folder_fingerprint: str, sets: list[EvalSet], config: RunConfig,
            precision: str) -> tuple[dict, dict]:
    """({"full" or str(dim): {dataset: TaskResult}}, encoding info) for one model: encode once (with train.prompts,
    else the model's own prompts), then score at full size and at each evaluate.truncate_dims size.

    ``folder_fingerprint``: ``model_fingerprint`` of the model's folder; the embedding cache keys on the encoder
    fingerprint built from it (core.identity)."""
    cache, seed = Path(config.evaluate.cache_dir) if config.evaluate.cache_dir else None, config.evaluate.seed
    results, encoding = evaluate_model(model, sets, config.evaluate.batch_size, folder_fingerprint, cache, precision,
                                       train_prompts=config.train.prompts, seed=seed, backend=config.evaluate.backend)
    truncated = evaluate_dims(sets, encoding["embeddings"], config.evaluate.truncate_dims, seed)
    return {FULL: results, **{str(dim): r for dim, r in truncated.items()}}, encoding


def run_identity(run_dir: Path) -> dict:
    """run_id and config_hash from run.json (written by train), so push can check the report is this run's."""
    path = run_dir / "run.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {key: info[key] for key in ("run_id", "config_hash") if key in info}


def encoding_record(encodings: dict[str, dict]) -> dict:
    """The report's prompts, similarity and embedding size per model, how each model's encoding went, and what
    identifies each encoder (``encoder``: its fingerprint and the settings it hashes, see core.identity)."""
    return {"encoder": {m: {"fingerprint": e.pop("fingerprint"), **e.pop("settings")} for m, e in encodings.items()},
            "prompts": {m: e.pop("prompts") for m, e in encodings.items()},
            "similarity": {m: e.pop("similarity") for m, e in encodings.items()},
            "embedding_dim": [e.pop("dim") for e in encodings.values()][-1], "encoding": encodings}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    # 1. The run's own resolved config and prepared splits: the held-out data the model never saw.
    args, _ = parse(argv, "python -m evaluate", "Compare the tuned model with its untuned baseline "
                    "(or: python -m evaluate compare RUN_A RUN_B ... to compare runs; see its --help).")
    config = load_run(args.config, args.overrides)
    run_dir = Path(config.run_dir)
    final = run_dir / "final"
    if not final.is_dir():
        raise UserError(f"{final} does not exist: train first with 'python -m train {args.config}'.")
    record = check_run_consistent(run_dir)  # final/, data/ and the config are the ones run.json recorded
    prepared = load_prepared(run_dir)
    sets = resolve_sets(config, prepared)
    leaks = leakage(prepared.train, {s.config.name: s.table for s in sets})
    for line in leakage_lines(leaks):  # said before any number, so nobody reads a leaked score unwarned
        log.warning(line)
    # 2. The same evaluators, prompts and truncations on the baseline and on the tuned model (sizes checked first).
    #    Each model encodes each distinct (prompt, text) once; embeddings are cached by encoder fingerprint and texts.
    baseline_model, resolved = load_model(config.model)
    tuned_model, _ = load_model(config.model, path=final)
    # torch at evaluate.precision, or (evaluate.backend) each model's ONNX / OpenVINO export in fp32, as mining encodes
    baseline_model, precision, _ = encoder_for(baseline_model, resolved.path, config.evaluate, run_dir)
    tuned_model, _, _ = encoder_for(tuned_model, final, config.evaluate, run_dir)
    for model in (baseline_model, tuned_model):
        check_dims(config.evaluate.truncate_dims, model)
    notes = {}  # each task prepares its table for these models (retrieval: long documents counted or chunked)
    for s in sets:
        s.table, notes[s.config.name] = EVALUATORS[s.config.task].prepare(s.table, baseline_model, config.evaluate)
    log.info("baseline (%s): encoding the evaluation texts", resolved.base_model)  # says whose progress follows
    baseline, base_enc = measure(baseline_model, resolved.fingerprint, sets, config, precision)
    tuned_fingerprint = model_fingerprint(final)  # the folder's, as run.json's final_fingerprint (push checks it)
    log.info("tuned (%s): encoding the evaluation texts", final)
    tuned, tuned_enc = measure(tuned_model, tuned_fingerprint, sets, config, precision)
    # 3. Pair up with confidence intervals and p-values (at every size), decide, write, show.
    seed = config.evaluate.seed
    details = build_details(sets, baseline[FULL], tuned[FULL], base_enc.pop("embeddings"),
                            tuned_enc.pop("embeddings"), seed=seed)
    datasets = pair_up(sets, baseline[FULL], tuned[FULL], seed=seed)
    for name, about in about_sets({s.config.name: s.table for s in sets}, baseline[FULL],
                                  {s.config.name: s.config.task for s in sets}).items():
        datasets[name]["about"] = {**about, **({"long_documents": notes[name]} if notes[name] else {})}
    for name, rows in reference_entries(sets, tuned[FULL], config, prepared, tuned_model, precision,
                                        baseline=baseline[FULL]).items():
        datasets[name]["reference"] = rows  # BM25, hybrids, rerankers beside the tuned model, paired per query
    report = {
        "run_dir": str(run_dir), **run_identity(run_dir), "base_model": resolved.base_model,
        "model_revision": resolved.revision, "base_fingerprint": resolved.fingerprint,
        "tuned_fingerprint": tuned_fingerprint, "tuned_model": str(final), "datasets": datasets,
        "primary": primary(config, datasets),
        "truncated": {level: pair_up(sets, baseline[level], tuned[level], seed=seed) for level in baseline
                      if level != FULL},
        **encoding_record({"baseline": base_enc, "tuned": tuned_enc}), "leakage": leaks,
        "leakage_comparison": COMPARISON,
    }
    units = units_record({s.config.name: s.config.task for s in sets}, tuned, seed)
    with atomic_dir(run_dir / "eval", carry=keep_beside_report(run_dir / "eval", report)) as out:
        write_report(report, details, out, units, run=record)  # eval/ is swapped in whole: old or new, never both
    print(summary(report, run_dir, config))
    return 0


def summary(report: dict, run_dir: Path, config: RunConfig) -> str:
    """Three lines for the terminal (the full report is in the files): the verdict, where the report is, and what
    to run next."""
    said = verdict(report["primary"])
    target = (f"push.repo_id={config.push.repo_id}" if config.push.repo_id else
              f"push.local_dir={config.push.local_dir}" if config.push.local_dir else
              "push.repo_id=ORG/NAME (or push.local_dir=FOLDER)")
    return "\n".join([f"{said.headline}: {said.detail}",
                      f"Report: {run_dir / 'eval' / 'report.html'} (Markdown: {run_dir / 'eval' / 'report.md'})",
                      f"Next: python -m train.push {shlex.quote(str(run_dir))} {target}"])


if __name__ == "__main__":
    sys.exit(run(main))
