"""The push gate: a model is published only when it is significantly better than its base and forgot nothing.

Push refuses, showing the numbers, when

- the run was never evaluated (no ``eval/report.json``);
- the primary metric's delta is not significantly positive (``report.json`` ``primary``: ``significant`` and
  ``delta > 0``, i.e. p < 0.05 and a 95% interval above 0);
- a forgetting set lost significantly on its main metric. A forgetting set is an evaluated dataset that comes from
  its own ``source`` (a general set under ``evaluate.datasets``, e.g. STSb), not from the run's own splits;
  ``general: true|false`` on a set says so explicitly (a domain set from its own file is ``general: false``);
- BM25 alone (the ``bm25`` reference row of the primary dataset) is significantly better than the tuned model on the
  primary metric: a one-second keyword index would serve users better than the model.

``push.allow_regression=true`` publishes anyway; the findings then head the model card.
"""

from __future__ import annotations

from pathlib import Path

from configs.errors import UserError
from configs.schema import RunConfig
from evaluate.forgetting import forgetting_sets
from evaluate.report.writers import num


def change(values: dict) -> str:
    """``0.4830 → 0.4975, delta +0.0145, 95% CI [+0.0000, +0.0436], p=1`` from one metric entry of report.json."""
    ci = (f", 95% CI [{num(values.get('ci_low'), '+.4f')}, {num(values.get('ci_high'), '+.4f')}]"
          if values.get("ci_low") is not None else "")
    p = f", p={values['p_value']:.2g}" if values.get("p_value") is not None else ""
    return (f"{num(values.get('baseline'))} → {num(values.get('tuned'))}, delta {num(values.get('delta'), '+.4f')}"
            f"{ci}{p}")


def primary_finding(primary: dict) -> str | None:
    """Why the primary metric does not count as a gain, or None when it is significantly positive."""
    if primary.get("significant") and (primary.get("delta") or 0) > 0:
        return None
    where = f"the primary metric {primary['dataset']} {primary['metric']}"
    if primary.get("undefined"):
        return f"{where} is undefined ({primary['undefined']}): {change(primary)}"
    if primary.get("significant"):
        return f"{where} got significantly worse: {change(primary)}"
    return f"{where} did not improve significantly: {change(primary)}"


def forgetting_findings(config: RunConfig, report: dict) -> list[str]:
    """One line per forgetting set that lost significantly on its main metric."""
    lines = []
    for name in forgetting_sets(config, report):
        info = report["datasets"][name]
        values = info["metrics"][info["main_metric"]]
        if values.get("significant") and (values.get("delta") or 0) < 0:
            lines.append(f"the forgetting set {name} lost significantly on {info['main_metric']}: {change(values)}")
    return lines


def keyword_finding(report: dict) -> str | None:
    """Why BM25 alone beats the tuned model on the primary dataset and metric, or None when it does not
    significantly (or was not measured)."""
    where = report.get("primary") or {}
    info = report.get("datasets", {}).get(where.get("dataset"), {})
    row = (info.get("reference") or {}).get("bm25") or {}
    stats = (row.get("vs") or {}).get(where.get("metric"))
    if not isinstance(stats, dict) or not stats.get("significant") or (stats.get("delta") or 0) <= 0:
        return None
    ci = f", 95% CI [{num(stats.get('ci_low'), '+.4f')}, {num(stats.get('ci_high'), '+.4f')}]" \
        if stats.get("ci_low") is not None else ""
    p = f", p={stats['p_value']:.2g}" if stats.get("p_value") is not None else ""
    return (f"BM25 alone is significantly better than the tuned model on {where['dataset']} {where['metric']}: "
            f"{num(row.get('metrics', {}).get(where['metric']))} against "
            f"{num(info['metrics'][where['metric']].get('tuned'))}, delta {num(stats.get('delta'), '+.4f')}{ci}{p}")


def gate_findings(config: RunConfig, report: dict | None) -> list[str]:
    """Every reason the model does not count as better than its base; empty when it does."""
    if report is None:
        return [f"the run was never evaluated (no {Path(config.run_dir) / 'eval' / 'report.json'})"]
    primary, keyword = primary_finding(report["primary"]), keyword_finding(report)
    return [*([primary] if primary else []), *forgetting_findings(config, report), *([keyword] if keyword else [])]


def check_gate(config: RunConfig, report: dict | None) -> list[str]:
    """The findings (for the card) when they are none or ``push.allow_regression`` is set; else a refusal."""
    findings = gate_findings(config, report)
    if findings and not config.push.allow_regression:
        shown = "\n".join(f"  - {line}" for line in findings)
        evaluate = (f"Evaluate it with 'python -m evaluate {config.run_dir}', or publish"
                    if report is None else "Improve the fine-tune, or publish")
        head = "did not beat its base" if any(not f.startswith("BM25") for f in findings) else "lost to BM25"
        raise UserError(f"Not publishing: the tuned model {head}.\n{shown}\n{evaluate} anyway with "
                        "push.allow_regression=true (the card then says so in its first lines).")
    return findings
