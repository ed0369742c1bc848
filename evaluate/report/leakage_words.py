"""The leakage check in words, for report.md, report.html and the model card: per evaluated set, whether it shares
texts (or near-duplicates) with the training split, which texts were compared and how (report.json's ``leakage``,
``leakage_checked`` and ``leakage_comparison``). Plain text; user strings pass through ``quote``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Quote = Callable[[object], str]

# What leakage.py compares when report.json does not say (leakage_comparison): the query side of each set.
COMPARED = "its queries or sentences; documents may be shared, one corpus is normal"


def comparison_note(comparison: object, name: str) -> str:
    """How texts were compared for set ``name``, from report.json's ``leakage_comparison`` (a sentence, or
    {set: sentence}, or a record with ``description``/``method`` and, for grouped splits, ``group_column`` and
    ``shared_groups``); '' when it says nothing of this set."""
    if isinstance(comparison, dict) and isinstance(comparison.get(name), (str, dict)):
        comparison = comparison[name]
    if isinstance(comparison, str):  # evaluate.leakage.COMPARISON: 'exact text after Unicode NFKC, ...'
        return f"Texts were compared as {comparison.strip().rstrip('.')}." if comparison.strip() else ""
    if not isinstance(comparison, dict):
        return ""
    said = str(comparison.get("description") or comparison.get("method") or "").strip()
    group = comparison.get("group_column") or comparison.get("grouped_by")
    if group and comparison.get("shared_groups") == 0:
        groups = f"{comparison['test_groups']} " if comparison.get("test_groups") else ""
        said += f" The split is grouped by {group}: the {groups}held-out {group} groups never occur in training."
    return said.strip()


def near_words(info: dict) -> str:
    """What the near-duplicate check found for a set without shared texts (report.json's ``near_duplicates``)."""
    near = info.get("near_duplicates")
    if isinstance(near, str):
        return f" Near-duplicates: {near}."
    if isinstance(near, dict) and not near.get("count"):
        return (f" None shares {near['threshold']:.0%} or more of its character 5-grams with a training text "
                "(no near-duplicate).")
    return ""


def near_statement(name: str, info: dict, quote: Quote) -> list[tuple[bool, str, str]]:
    """A warning for the texts of set ``name`` that nearly repeat a training text, when there are any."""
    near = info.get("near_duplicates")
    if not isinstance(near, dict) or not near.get("count"):
        return []
    shown = "; ".join(f"{str(a)[:60]!r} ~ {str(b)[:60]!r}" for a, b, *_ in near.get("examples", []))
    return [(True, "NEAR-DUPLICATES", f"{near['count']} of the {info.get('of', '?')} texts compared of {quote(name)} "
                                      f"share at least {near['threshold']:.0%} of their character 5-grams with a "
                                      f"training text" + (f"; e.g. {quote(shown)}." if shown else "."))]


def leakage_statements(leakage: dict, names: Sequence[str], checked: dict | None = None,
                       quote: Quote = str, comparison: object = None) -> list[tuple[bool, str, str]]:
    """One statement per evaluation set, leaked or not, saying which texts were compared: (is_leak, label, text).

    Args:
        leakage: report.json's ``leakage``, {set: {"shared", "of", "examples"}} for the sets that share texts.
        names: every evaluated set, in report order.
        checked: report.json's ``leakage_checked``, {set: how many of its texts were looked up}, when recorded.
        comparison: report.json's ``leakage_comparison`` (how texts were compared), when recorded.
    """
    out, checked = [], checked or {}
    for name in names:
        info, note = leakage.get(name) or {}, comparison_note(comparison, name)
        how = f" {note}" if note else ""
        if info.get("shared"):
            examples = "; ".join(repr(str(t)[:80]) for t in info.get("examples", []))
            shown = f"; e.g. {quote(examples)}." if examples else "."
            out.append((True, "LEAKAGE", f"{quote(name)} shares {info['shared']} of the {info['of']} texts compared "
                                         f"with the training split, so its scores overstate the gain{shown}{how}"))
        elif name in checked or "of" in info:
            out.append((False, "No leakage", f"none of the {checked.get(name, info.get('of'))} texts compared of "
                                             f"{quote(name)} ({COMPARED}) appears in the training split."
                                             f"{near_words(info)}{how}"))
        else:
            out.append((False, "No leakage", f"no text of {quote(name)} appears in the training split.{how}"))
        out += near_statement(name, info, quote)
    return out
