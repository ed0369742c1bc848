"""Report writers: ``report.json`` for machines, ``report.md`` for people and diffs. Maths lives elsewhere."""

from __future__ import annotations

from pathlib import Path

from configs.runs import atomic_write_json, atomic_write_text


def markdown_table(datasets: dict) -> str:
    """One row per dataset and metric: baseline, tuned, delta."""
    lines = ["| dataset | task | metric | baseline | tuned | delta |", "|---|---|---|---:|---:|---:|"]
    for name, info in datasets.items():
        for metric, v in info["metrics"].items():
            bold = "**" if metric == info["main_metric"] else ""
            lines.append(f"| {name} | {info['task']} | {bold}{metric}{bold} | {v['baseline']:.4f} | "
                         f"{v['tuned']:.4f} | {v['delta']:+.4f} |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    p = report["primary"]
    verdict = "better than" if p["improved"] else "NOT better than"
    return "\n".join([
        f"# Evaluation of {report['run_dir']}",
        "",
        f"Base model: `{report['base_model']}` (revision `{report['model_revision']}`). "
        f"Tuned: `{report['tuned_model']}`.",
        "",
        f"**The tuned model is {verdict} the baseline** on {p['dataset']} {p['metric']}: "
        f"{p['baseline']:.4f} → {p['tuned']:.4f} ({p['delta']:+.4f}).",
        "",
        markdown_table(report["datasets"]),
        "",
        f"Encoding and scoring time: baseline {report['seconds']['baseline']:.1f} s, "
        f"tuned {report['seconds']['tuned']:.1f} s.",
        "",
    ])


def write_report(report: dict, out_dir: Path) -> None:
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
