"""Markdown building blocks shared by every report writer: inert escaping and the metrics table."""

from __future__ import annotations

import html
import re

from evaluate.report.wording import interval_text, num, p_text, uninformative

# Markdown punctuation that can start emphasis, code, links/images, tables or strikethrough; '#' only at the start.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")

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


def metric_line(name: str, info: dict, metric: str, v: dict, first: str = "", flagged: bool = False) -> str:
    bold = "**" if metric == info["main_metric"] else ""
    ci, n = interval_text(v), v.get("n_resamples")
    p = p_text(v.get("p_value"), n) + (f" ({n:,} resamples)" if n and v.get("p_value") is not None else "")
    verdict = ("yes" if v["significant"] else "no") if "significant" in v else ""
    shown = f"{bold}{html.escape(metric)}{bold}" + " †" * flagged  # our own names: HTML-inert is enough
    return (f"| {first}{md_escape(name)} | {info['task']} | {shown} | {num(v['baseline'])} | "
            f"{num(v['tuned'])} | {num(v['delta'], '+.4f')} | {ci} | {p} | {verdict} |")


def markdown_table(datasets: dict, names: tuple[str, str] = ("baseline", "tuned"),
                   levels: dict[str, dict] | None = None, corpus: dict[str, int | None] | None = None) -> str:
    """One row per dataset and metric: the two models' values, delta (second - first) with its 95% CI, p-value and
    verdict. With ``levels`` ({dimension label: datasets}), a leading 'dim' column and a row block per level; with
    ``corpus`` ({dataset: corpus size}), a recall@k with k at least half the corpus is marked † (uninformative)."""
    first, second = names
    dim_head, dim_rule = ("| dim ", "|---") if levels else ("", "")
    lines = [f"{dim_head}| dataset | task | metric | {first} | {second} | delta | 95% CI | p | significant |",
             f"{dim_rule}|---|---|---|---:|---:|---:|---|---:|---|"]
    corpus = corpus or {}
    for level, sets in (levels or {"": datasets}).items():
        prefix = f"{md_escape(level)} | " if levels else ""
        lines += [metric_line(name, info, metric, v, prefix, bool(uninformative(metric, corpus.get(name))))
                  for name, info in sets.items() for metric, v in info["metrics"].items()]
    undefined = [f"{md_escape(name)} {metric}: {md_escape(v['undefined'])}" for sets in (levels or {"": datasets})
                 .values() for name, info in sets.items() for metric, v in info["metrics"].items() if "undefined" in v]
    return "\n".join(lines + ([""] + [f"Undefined (—): {u}" for u in undefined] if undefined else []))
