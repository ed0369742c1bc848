"""Report writers: ``report.json`` for machines, ``report.md`` for people and diffs. Maths lives elsewhere.

Every user-supplied string (dataset names, paths, texts, prompts) goes through ``md_escape`` before it reaches
Markdown, so a name such as ``<img src=x onerror=...>`` is shown, never rendered. JSON is written with
``allow_nan=False``: an undefined number is ``null`` (with its reason beside it), never a bare NaN.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from pathlib import Path

from configs.runs import atomic_write_text
from evaluate.html_report import html_report
from evaluate.leakage import leakage_lines

log = logging.getLogger(__name__)

# Markdown punctuation that can start emphasis, code, links/images, tables or strikethrough; '#' only at the start.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")

STATISTICS_LEGEND = (
    "Intervals: paired bootstrap over queries (retrieval), pairs (sts, pair classification) or texts "
    "(classification, clustering); p: paired randomization test. Significant: p < 0.05 and the interval excludes "
    "0; clustering has no p (cluster ids of two models cannot be swapped) and is judged by its interval.")


def md_escape(text: object) -> str:
    """``text`` as inert Markdown on one line: HTML is entity-escaped (&, <, >) and Markdown syntax characters are
    backslash-escaped, so the text renders literally, also inside a table cell.

    Args:
        text: any value; it is converted with ``str``.

    Returns:
        The escaped string, with line breaks turned into spaces.
    """
    text = re.sub(r"[\r\n]+", " ", str(text))
    text = _MD_PUNCTUATION.sub(r"\\\1", html.escape(text, quote=False))
    return "\\" + text if text.startswith(("#", "+", "-", ">", "=")) else text


def num(value: float | None, spec: str = ".4f") -> str:
    """A number for a table; '—' for an undefined (null) one."""
    return "—" if value is None else format(value, spec)


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


def metric_line(name: str, info: dict, metric: str, v: dict, first: str = "") -> str:
    bold = "**" if metric == info["main_metric"] else ""
    ci = f"[{num(v.get('ci_low'), '+.4f')}, {num(v.get('ci_high'), '+.4f')}]" if v.get("ci_low") is not None else ""
    p = num(v.get("p_value"), ".2g")
    verdict = ("yes" if v["significant"] else "no") if "significant" in v else ""
    return (f"| {first}{md_escape(name)} | {info['task']} | {bold}{metric}{bold} | {num(v['baseline'])} | "
            f"{num(v['tuned'])} | {num(v['delta'], '+.4f')} | {ci} | {p} | {verdict} |")


def markdown_table(datasets: dict, names: tuple[str, str] = ("baseline", "tuned"),
                   levels: dict[str, dict] | None = None) -> str:
    """One row per dataset and metric: the two models' values, delta (second - first) with its 95% CI, p-value and
    verdict. With ``levels`` ({dimension label: datasets}), a leading 'dim' column and a row block per level."""
    first, second = names
    dim_head, dim_rule = ("| dim ", "|---") if levels else ("", "")
    lines = [f"{dim_head}| dataset | task | metric | {first} | {second} | delta | 95% CI | p | significant |",
             f"{dim_rule}|---|---|---|---:|---:|---:|---|---:|---|"]
    for level, sets in (levels or {"": datasets}).items():
        prefix = f"{md_escape(level)} | " if levels else ""
        lines += [metric_line(name, info, metric, v, prefix) for name, info in sets.items()
                  for metric, v in info["metrics"].items()]
    undefined = [f"{md_escape(name)} {metric}: {md_escape(v['undefined'])}" for sets in (levels or {"": datasets})
                 .values() for name, info in sets.items() for metric, v in info["metrics"].items() if "undefined" in v]
    return "\n".join(lines + ([""] + [f"Undefined (—): {u}" for u in undefined] if undefined else []))


def verdict(primary: dict) -> str:
    """One sentence a reviewer can quote."""
    change = f"{num(primary['baseline'])} → {num(primary['tuned'])} ({num(primary['delta'], '+.4f')})"
    where = f"on {md_escape(primary['dataset'])} {primary['metric']}: {change}"
    if primary.get("undefined"):
        return f"**No verdict**: {where}; {md_escape(primary['undefined'])}."
    p = f"p={primary['p_value']:.2g}" if primary.get("p_value") is not None else "bootstrap interval"
    if primary.get("significant") and primary["improved"]:
        return f"**The tuned model is better than the baseline** {where}, significant ({p})."
    if primary.get("significant"):
        return f"**The tuned model is WORSE than the baseline** {where}, significant ({p})."
    if "significant" in primary:
        return f"**No significant difference from the baseline** {where}; {p}, the 95% interval includes 0."
    return f"**The tuned model is {'better' if primary['improved'] else 'NOT better'} than the baseline** {where}."


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


def similarity_line(similarity: dict) -> str:
    names = similarity or {"baseline": "cosine", "tuned": "cosine"}
    if set(names.values()) == {"cosine"}:
        return "Similarity: cosine (the models' own similarity_fn_name)."
    shown = ", ".join(f"{m} {n}" for m, n in names.items())
    return (f"Similarity: {shown}. Metrics use the model's own similarity, not the cosine: the '_cosine' metric "
            "names then score that similarity, and embeddings are not L2-normalised.")


def identity_lines(report: dict) -> list[str]:
    keys = ("run_id", "config_hash", "base_fingerprint", "tuned_fingerprint")
    shown = [f"{md_escape(k)} {md_escape(report[k])}" for k in keys if report.get(k)]
    return ["Identity: " + "; ".join(shown) + ".", ""] if shown else []


def report_markdown(report: dict) -> str:
    enc = report["encoding"]
    timing = ", ".join(f"{model} {info['seconds']:.1f} s for {info['texts']} texts ({info.get('precision', 'fp32')})"
                       + (" (cached)" if info["cached"] else "") for model, info in enc.items())
    truncated = report.get("truncated") or {}
    return "\n".join([
        f"# Evaluation of {md_escape(report['run_dir'])}",
        "",
        f"Base model: {md_escape(report['base_model'])} (revision {md_escape(report['model_revision'])}). "
        f"Tuned: {md_escape(report['tuned_model'])}.",
        "",
        *identity_lines(report),
        *[f"> {md_escape(line)}" for line in leakage_lines(report.get("leakage", {}))],
        "",
        verdict(report["primary"]),
        "",
        markdown_table(report["datasets"]),
        "",
        *([f"Truncated embeddings (first n of {report.get('embedding_dim', '?')} dimensions, re-normalised for "
           "cosine; the baseline truncated the same way):", "",
           markdown_table({}, levels={str(d): sets for d, sets in truncated.items()}), ""] if truncated else []),
        STATISTICS_LEGEND,
        "",
        similarity_line(report.get("similarity") or {}),
        "",
        *prompts_markdown(report.get("prompts") or {}),
        f"Encoding: {timing}.",
        "",
    ])


def write_report(report: dict, details: dict, out_dir: Path, units: dict | None = None) -> None:
    """report.json (numbers), details.json (what the pictures show), units.json (per-unit scores for comparing
    runs), report.md and the self-contained report.html, each written atomically."""
    write_json(out_dir / "report.json", report)
    write_json(out_dir / "details.json", details)
    if units is not None:
        write_json(out_dir / "units.json", units)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
    atomic_write_text(out_dir / "report.html", html_report(report, details))
