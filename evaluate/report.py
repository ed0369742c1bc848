"""Report writers: ``report.json`` for machines, ``report.md`` for people and diffs. Maths lives elsewhere."""

from __future__ import annotations

from pathlib import Path

from configs.runs import atomic_write_json, atomic_write_text
from evaluate.html_report import html_report
from evaluate.leakage import leakage_lines


def markdown_table(datasets: dict) -> str:
    """One row per dataset and metric: baseline, tuned, delta with its 95% CI, p-value and verdict."""
    lines = ["| dataset | task | metric | baseline | tuned | delta | 95% CI | p | significant |",
             "|---|---|---|---:|---:|---:|---|---:|---|"]
    for name, info in datasets.items():
        for metric, v in info["metrics"].items():
            bold = "**" if metric == info["main_metric"] else ""
            ci = f"[{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" if "ci_low" in v else ""
            p = f"{v['p_value']:.2g}" if v.get("p_value") is not None else "—"
            verdict = ("yes" if v["significant"] else "no") if "significant" in v else ""
            lines.append(f"| {name} | {info['task']} | {bold}{metric}{bold} | {v['baseline']:.4f} | "
                         f"{v['tuned']:.4f} | {v['delta']:+.4f} | {ci} | {p} | {verdict} |")
    return "\n".join(lines)


def verdict(primary: dict) -> str:
    """One sentence a reviewer can quote."""
    change = f"{primary['baseline']:.4f} → {primary['tuned']:.4f} ({primary['delta']:+.4f})"
    where = f"on {primary['dataset']} {primary['metric']}: {change}"
    p = f"p={primary['p_value']:.2g}" if primary.get("p_value") is not None else "bootstrap interval"
    if primary.get("significant") and primary["improved"]:
        return f"**The tuned model is better than the baseline** {where}, significant ({p})."
    if primary.get("significant"):
        return f"**The tuned model is WORSE than the baseline** {where}, significant ({p})."
    if "significant" in primary:
        return f"**No significant difference from the baseline** {where}; {p}, the 95% interval includes 0."
    return f"**The tuned model is {'better' if primary['improved'] else 'NOT better'} than the baseline** {where}."


def report_markdown(report: dict) -> str:
    enc = report["encoding"]
    timing = ", ".join(f"{model} {info['seconds']:.1f} s for {info['texts']} texts ({info.get('precision', 'fp32')})"
                       + (" (cached)" if info["cached"] else "") for model, info in enc.items())
    return "\n".join([
        f"# Evaluation of {report['run_dir']}",
        "",
        f"Base model: `{report['base_model']}` (revision `{report['model_revision']}`). "
        f"Tuned: `{report['tuned_model']}`.",
        "",
        *[f"> {line}" for line in leakage_lines(report.get("leakage", {}))],
        "",
        verdict(report["primary"]),
        "",
        markdown_table(report["datasets"]),
        "",
        "Intervals: paired bootstrap over queries (retrieval), pairs (sts, pair classification) or texts "
        "(classification, clustering); p: paired randomization test. Significant: p < 0.05 and the interval excludes "
        "0; clustering has no p (cluster ids of two models cannot be swapped) and is judged by its interval.",
        "",
        f"Encoding: {timing}.",
        "",
    ])


def write_report(report: dict, details: dict, out_dir: Path) -> None:
    """report.json (numbers), details.json (what the pictures show), report.md and the self-contained
    report.html, each written atomically."""
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_json(out_dir / "details.json", details)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
    atomic_write_text(out_dir / "report.html", html_report(report, details))
