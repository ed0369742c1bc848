"""``python -m evaluate CONFIG_OR_RUN_DIR [key=value ...]``: the untuned baseline against the tuned model.

Reads the run's resolved config and prepared splits, reports leakage, runs the same evaluators on both models, and
writes ``RUN_DIR/eval/``: ``report.json``, ``report.md``, ``report.html`` and ``details.json``; prints the table.
``python -m evaluate compare RUN_DIR ...`` prints a leaderboard of runs evaluated on the same data.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from configs.cli import parse, run
from configs.errors import UserError
from configs.runs import load_run
from data.prepare import load_prepared
from evaluate.compare import eval_sets, evaluate_model, pair_up, primary
from evaluate.details import build_details
from evaluate.embed import resolve_precision
from evaluate.leaderboard import compare_main
from evaluate.leakage import leakage, leakage_lines
from evaluate.report import report_markdown, write_report
from train.model import load_model, model_fingerprint

log = logging.getLogger("evaluate")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    # 1. The run's own resolved config and prepared splits: the held-out data the model never saw.
    args, _ = parse(argv, "python -m evaluate", "Compare the tuned model with its untuned baseline "
                    "(or: python -m evaluate compare RUN_DIR ... for a leaderboard of runs).")
    config = load_run(args.config, args.overrides)
    run_dir = Path(config.run_dir)
    final = run_dir / "final"
    if not final.is_dir():
        raise UserError(f"{final} does not exist: train first with 'python -m train {args.config}'.")
    prepared = load_prepared(run_dir)
    sets = eval_sets(config, prepared)
    leaks = leakage(prepared.train, {s.config.name: s.table for s in sets})
    for line in leakage_lines(leaks):  # said before any number, so nobody reads a leaked score unwarned
        log.warning(line)
    # 2. The same evaluators on the baseline and on the tuned model.
    #    Each model encodes each distinct text once; embeddings are cached by weights hash and texts.
    cache = Path(config.evaluate.cache_dir) if config.evaluate.cache_dir else None
    baseline_model, resolved = load_model(config.model)
    fingerprint = f"{resolved.fingerprint}-{baseline_model.max_seq_length}"
    precision = resolve_precision(config.evaluate.precision, baseline_model)
    baseline, baseline_enc = evaluate_model(baseline_model, sets, config.evaluate.batch_size, fingerprint, cache,
                                            precision)
    tuned_model, _ = load_model(config.model, path=final)
    tuned_fingerprint = model_fingerprint(final)
    fingerprint = f"{tuned_fingerprint}-{tuned_model.max_seq_length}"
    tuned, tuned_enc = evaluate_model(tuned_model, sets, config.evaluate.batch_size, fingerprint, cache, precision)
    # 3. Pair up with confidence intervals and p-values, decide, write, show.
    datasets = pair_up(sets, baseline, tuned, seed=config.evaluate.seed)
    details = build_details(sets, baseline, tuned, baseline_enc.pop("embeddings"), tuned_enc.pop("embeddings"),
                            seed=config.evaluate.seed)
    report = {
        "run_dir": str(run_dir), "base_model": resolved.base_model, "model_revision": resolved.revision,
        "base_fingerprint": resolved.fingerprint, "tuned_fingerprint": tuned_fingerprint,
        "tuned_model": str(final), "datasets": datasets, "primary": primary(config, datasets),
        "encoding": {"baseline": baseline_enc, "tuned": tuned_enc}, "leakage": leaks,
    }
    write_report(report, details, run_dir / "eval")
    print(report_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
