"""Report writers: ``report.json`` for machines, ``report.md`` for people and diffs. Maths lives elsewhere; the
words (verdicts, legends, leakage, what a set is) come from :mod:`evaluate.report.wording`, shared with ``report.html``.

Every user-supplied string (dataset names, paths, texts, prompts) goes through ``md_escape`` before it reaches
Markdown, so a name such as ``<img src=x onerror=...>`` is shown, never rendered. JSON is written with
``allow_nan=False``: an undefined number is ``null`` (with its reason beside it), never a bare NaN.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from configs.runs import atomic_write_text
from evaluate.report import caveats, legends, run_summary, wording
from evaluate.report.html import html_report, same_tuned_model
from evaluate.report.markdown import markdown_table, md_escape
from evaluate.report.set_summary import about_from_details, about_lines
from evaluate.report.wording import STATISTICS_LEGEND as STATISTICS_LEGEND  # re-exported: the card and compare print it
from evaluate.report.wording import num, uninformative

log = logging.getLogger(__name__)

def finite_json(data: object, where: str = "") -> object:
    """``data`` with every non-finite float replaced by None (and logged): JSON has no NaN or Infinity."""
    if isinstance(data, float) and not math.isfinite(data):
        log.warning("%s is not a finite number; written as null.", where or "a value")
        return None
    if isinstance(data, dict):
        return {k: finite_json(v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_json(v, f"{where}[{i}]") for i, v in enumerate(data)]
    return data


def write_json(path: Path, data: object) -> None:
    """Strict JSON (no NaN/Infinity), written atomically."""
    atomic_write_text(path, json.dumps(finite_json(data, path.name), indent=2, allow_nan=False) + "\n")


def verdict(primary: dict) -> str:
    """One sentence a reviewer can quote (the same words as report.html's verdict)."""
    said = wording.verdict(primary, md_escape)
    return f"**{said.headline}** {said.detail}"


def verdict_lines(report: dict) -> list[str]:
    """The verdict, then any reference row that beats the tuned model on the primary set (said as plainly)."""
    warned = [f"**{line}**" for line in caveats.reference_caveats(report, md_escape)]
    return [verdict(report["primary"]), "", *[line for w in warned for line in (w, "")]]


def prompts_markdown(prompts: dict) -> list[str]:
    """The prompt each role was encoded with, per model, and where it came from."""
    base, tuned = (prompts.get(m) or {} for m in ("baseline", "tuned"))
    if not base and not tuned:
        return []
    lines = ["Prompts (the same for both models unless shown otherwise):", "",
             "| texts | encoded with | baseline prompt | tuned prompt | from |", "|---|---|---|---|---|"]
    for role in dict.fromkeys([*base, *tuned]):
        b, t = base.get(role, {}), tuned.get(role, {})
        source = b.get("source") if b.get("source") == t.get("source") else f"{b.get('source')} / {t.get('source')}"
        lines.append(f"| {role} | {md_escape((b or t).get('encode', ''))} | {md_escape(repr(b.get('prompt', '')))} | "
                     f"{md_escape(repr(t.get('prompt', '')))} | {md_escape(source)} |")
    return [*lines, ""]


def identity_lines(report: dict) -> list[str]:
    keys = ("run_id", "config_hash", "base_fingerprint", "tuned_fingerprint")
    shown = [f"{md_escape(k)} {md_escape(report[k])}" for k in keys if report.get(k)]
    return ["Identity: " + "; ".join(shown) + ".", ""] if shown else []


def reference_markdown(info: dict) -> list[str]:
    """Reference rows (BM25, hybrid, ...) of a retrieval set beside the baseline and tuned model, and in words which
    wins, with the paired statistics of each row against the model it is compared with."""
    rows, main, metrics = info.get("reference") or {}, info["main_metric"], list(info["metrics"])
    if not rows:
        return []
    values = {model: {m: v.get(model) for m, v in info["metrics"].items()} for model in ("baseline", "tuned")}
    values.update({name: row.get("metrics", {}) for name, row in rows.items()})
    table = [f"| row | {' | '.join(metrics)} |", "|---|" + "---:|" * len(metrics),
             *[f"| {md_escape(name)} | " + " | ".join(num(got.get(m)) for m in metrics) + " |"
               for name, got in values.items()]]
    compared = [(n, wording.reference_stats(r, main)) for n, r in rows.items()]
    words = [wording.ranking_sentence({n: got.get(main) for n, got in values.items()}, main, md_escape),
             *[wording.comparison_sentence(n, *c, main, md_escape) for n, c in compared if c]]
    return ["", *table, "", " ".join(words)]


def datasets_markdown(report: dict) -> list[str]:
    """Per dataset: what the set is, its flags, its reference rows and its task's legend."""
    lines = ["## Datasets", ""]
    for name, info in report["datasets"].items():
        about = about_from_details(info, None)
        flags = [uninformative(m, about.get("corpus")) for m in info["metrics"]]
        said = [*about_lines(about, md_escape, info["task"]), *[f for f in flags if f],
                legends.task_meanings(info["task"], list(info["metrics"])), legends.task_legend(info["task"])]
        source = md_escape(wording.source_name(info.get("source", ""), report.get("run_dir", "")))
        lines += [f"**{md_escape(name)}** ({info['task']}, {info.get('rows', '?')} rows from {source}): "
                  + " ".join(s for s in said if s), *reference_markdown(info), ""]
    return lines


def training_markdown(run: dict | None) -> list[str]:
    return ["## Training", "", f"{run_summary.plan_text(run)} {run_summary.final_text(run)}".strip(), ""] if run else []


def leakage_markdown(report: dict) -> list[str]:
    said = wording.leakage_statements(report.get("leakage") or {}, list(report["datasets"]),
                                      report.get("leakage_checked"), md_escape, report.get("leakage_comparison"))
    return [line for leak, label, text in said for line in (f"> {label}: {text}" if leak else f"{label}: {text}", "")]


def report_markdown(report: dict, run: dict | None = None) -> str:
    enc = report["encoding"]
    timing = ", ".join(f"{model} {info['seconds']:.1f} s for {info['texts']} texts ({info.get('precision', 'fp32')})"
                       + (" (cached)" if info["cached"] else "") for model, info in enc.items())
    truncated = report.get("truncated") or {}
    corpus = {name: about_from_details(info, None).get("corpus") for name, info in report["datasets"].items()}
    return "\n".join([
        f"# Evaluation of {md_escape(wording.run_name(report['run_dir']))}",
        "",
        f"Base model: {md_escape(wording.model_name(report['base_model']))} (revision "
        f"{md_escape(report['model_revision'])}). Tuned: {md_escape(wording.model_name(report['tuned_model']))}.",
        "",
        *verdict_lines(report),
        *leakage_markdown(report),
        markdown_table(report["datasets"], corpus=corpus),
        "",
        *([f"Truncated embeddings (first n of {report.get('embedding_dim', '?')} dimensions, re-normalised for "
           "cosine; the baseline truncated the same way):", "",
           markdown_table({}, levels={str(d): sets for d, sets in truncated.items()}, corpus=corpus), ""]
          if truncated else []),
        legends.table_legend([info["task"] for info in report["datasets"].values()])
        + (" †: an uninformative metric (see its dataset)." if any(corpus.values()) else ""),
        "",
        *datasets_markdown(report),
        *training_markdown(run),
        wording.similarity_sentence(report.get("similarity") or {}, md_escape),
        "",
        *prompts_markdown(report.get("prompts") or {}),
        f"Encoding: {timing}. {caveats.precision_sentence(report)}".rstrip(),
        "",
        *identity_lines(report),
    ])


def write_report(report: dict, details: dict, out_dir: Path, units: dict | None = None,
                 run: dict | None = None) -> None:
    """report.json (numbers), details.json (what the pictures show), units.json (per-unit scores for comparing
    runs), report.md and the self-contained report.html, each written atomically. ``run`` is the run's run.json
    (its plan and training curves go into both reports)."""
    write_json(out_dir / "report.json", report)
    write_json(out_dir / "details.json", details)
    if units is not None:
        write_json(out_dir / "units.json", units)
    atomic_write_text(out_dir / "report.md", report_markdown(report, run))
    merge = read_json(out_dir / "merge.json")  # the frontier, if merged before; a stale one is left out
    atomic_write_text(out_dir / "report.html", html_report(report, details, run, merge))


def read_json(path: Path) -> dict | None:
    """A record an earlier command wrote (report.json, details.json, run.json, merge.json), or None if absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def refresh_html(run_dir: Path, merge: dict, out_dir: Path | None = None) -> str | None:
    """Render ``out_dir/report.html`` (default ``run_dir/eval``) again from its report.json and details.json and the
    run's run.json, now with the merge frontier ``merge``, if that report evaluated the tuned model the frontier
    interpolated. ``out_dir``: the eval/ being assembled, before it is swapped in (evaluate.eval_folder).

    Returns:
        None once written; otherwise why report.html was left as it was (no report yet, or another final/'s).
    """
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "eval"
    report = read_json(out_dir / "report.json")
    again = f"'python -m evaluate {run_dir}' writes it with the frontier"
    if report is None:
        return f"{out_dir / 'report.json'} does not exist yet; {again}"
    if not same_tuned_model(merge, report):
        return (f"{out_dir / 'report.json'} evaluated other models than the merge interpolated (tuned fingerprint "
                f"{str(report.get('tuned_fingerprint'))[:12]}, the merge's {str(merge.get('tuned_fingerprint'))[:12]}"
                f"); {again}")
    details, run = read_json(out_dir / "details.json") or {}, read_json(Path(run_dir) / "run.json")
    atomic_write_text(out_dir / "report.html", html_report(report, details, run, merge))
    return None
