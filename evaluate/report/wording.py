"""The words both reports print: verdicts, p-values, legends, leakage statements, model names, rank moves.

Written once and used by ``report.md`` and ``report.html``. Every function returns plain text; a user-supplied
string (a dataset name, a path, a text) passes through ``quote``, which the Markdown writer sets to ``md_escape``.
The HTML writer keeps the identity: its template autoescapes every value it prints, whole sentences included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from evaluate.report.leakage_words import COMPARED, comparison_note, leakage_statements  # noqa: F401 (re-exported)

Quote = Callable[[object], str]

# For writers that do not know which tasks they show; a report composes its legend from its tasks (table_legend).
STATISTICS_LEGEND = (
    "Each delta's 95% interval and p come from one construction, so they agree: significant = the interval excludes "
    "0 = p < 0.05. Per-unit means: paired sign-flip test and its inverted interval; whole-set statistics: paired "
    "bootstrap, p from the same resamples; clustering: interval only (cluster ids of two models cannot be swapped).")

P_FLOOR = ("A p printed as '< 0.0001' is the smallest its test can give with its number of resamples: no resample "
           "was as extreme as the observed difference.")

Meaning = tuple[str, str, str]  # (metric regex with one group for k, display name, meaning): a spec's metric_meanings


def num(value: float | None, spec: str = ".4f") -> str:
    """A number for a table; '—' for an undefined (null) one. A value that would print as '-0.0000' never does:
    a small one gets up to two more digits ('-0.00004'); one still zero at those is printed as zero, unsigned by
    its own sign (float noise of an interval's end, '+0.0000')."""
    if value is None:
        return "—"
    text = format(round(value, 12) or 0.0, spec)
    if "f" not in spec or "." not in spec or float(text) != 0:
        return text
    digits = int(spec[spec.index(".") + 1:spec.index("f")])
    for more in (digits + 1, digits + 2):
        longer = format(value, spec.replace(f".{digits}f", f".{more}f"))
        if float(longer) != 0:
            return longer
    return format(0.0, spec)


def metric_meanings(metrics: Sequence[str], meanings: Sequence[Meaning]) -> str:
    """'nDCG@10: ...; recall@k (k = 1, 10, 100): ...' for the metrics named, from a task spec's ``metric_meanings``
    (names no pattern matches are left out)."""
    found: dict[int, list[str]] = {}
    for metric in metrics:
        for i, (pattern, _, _) in enumerate(meanings):
            if match := re.fullmatch(pattern, metric):
                found.setdefault(i, []).append(match.group(1))
                break
    said = []
    for i, ks in found.items():
        _, name, text = meanings[i]
        k, which = (ks[0], "") if len(ks) == 1 else ("k", f" (k = {', '.join(ks)})")
        said.append(f"{name.format(k=k)}{which}: {text.format(k=k)}")
    return "; ".join(said) + "." if said else ""


def round_up(value: float) -> str:
    """``value`` rounded up to one significant digit, written without an exponent (1/1400 -> '0.0008')."""
    exponent = math.floor(math.log10(value))
    digit = math.ceil(round(value / 10 ** exponent, 9))
    return f"{digit * 10.0 ** exponent:.{max(0, -exponent)}f}"


def at_floor(p: float, n_resamples: int | None) -> bool:
    """True when ``p`` is 1 / (n + 1), the smallest p a test with ``n_resamples`` resamples can give."""
    return bool(n_resamples) and p <= (1 + 1e-9) / (n_resamples + 1)


def p_text(p: float | None, n_resamples: int | None = None) -> str:
    """A p-value for a table cell: '0.013', '< 0.0001' at the resampling floor, '—' when there is none."""
    if p is None:
        return "—"
    return f"< {round_up(1 / n_resamples)}" if at_floor(p, n_resamples) else format(p, ".2g")


def p_clause(v: dict) -> str:
    """'p < 0.0001 (10,000 resamples)' or 'p = 0.013', for a clause of its own; empty when the entry has no p."""
    p, n = v.get("p_value"), v.get("n_resamples")
    if p is None:
        return ""
    return f"p {p_text(p, n)} ({n:,} resamples)" if at_floor(p, n) else f"p = {p_text(p, n)}"


def p_words(v: dict) -> str:
    """'p < 0.0001 from 10,000 resamples' or 'p = 0.013 from 1,000 resamples' (the count its test really used),
    for a list inside parentheses; empty when the entry has no p."""
    p, n = v.get("p_value"), v.get("n_resamples")
    if p is None:
        return ""
    said = f"p {p_text(p, n)}" if at_floor(p, n) else f"p = {p_text(p, n)}"
    return f"{said} from {n:,} resamples" if n else said


def interval_text(v: dict) -> str:
    """'[+0.0270, +0.0625]', or '' when the entry has no interval."""
    return f"[{num(v['ci_low'], '+.4f')}, {num(v['ci_high'], '+.4f')}]" if v.get("ci_low") is not None else ""


def change_text(v: dict) -> str:
    """'0.6457 → 0.6904 (Δ +0.0447, 95% CI [+0.0270, +0.0625], p < 0.0001 from 10,000 resamples)'."""
    extra = [f"Δ {num(v.get('delta'), '+.4f')}"]
    extra += [f"95% CI {interval_text(v)}"] if interval_text(v) else []
    extra += [p_words(v)] if p_words(v) else []
    return f"{num(v.get('baseline'))} → {num(v.get('tuned'))} ({', '.join(extra)})"


def not_significant_why(v: dict) -> str:
    """Why a defined difference is not called significant, from its own interval and p."""
    excludes = v.get("ci_low") is not None and not v["ci_low"] <= 0 <= v["ci_high"]
    if v.get("p_value") is None:
        return "the 95% interval includes 0"
    if excludes:
        return "p >= 0.05 although the 95% interval excludes 0"
    return "the 95% interval includes 0" + (" although p < 0.05" if v["p_value"] < 0.05 else "")


@dataclass(frozen=True)
class Verdict:
    kind: str  # better | worse | same | undefined: the page's colour for it
    headline: str  # printed bold
    detail: str  # follows the headline


def verdict(primary: dict, quote: Quote = str) -> Verdict:
    """The primary comparison in one sentence a reviewer can quote; ``primary['model']`` names the compared model
    when it is not the tuned one (a published interpolation: 'merged model (r = 0.5)')."""
    where = f"on {quote(primary['dataset'])} {quote(primary['metric'])}: {change_text(primary)}"
    model = quote(primary.get("model") or "tuned model")
    if primary.get("undefined"):
        return Verdict("undefined", "No verdict", f"{where}; {quote(primary['undefined'])}.")
    better = primary["improved"]
    if "significant" not in primary:
        headline = f"The {model} is {'better' if better else 'NOT better'} than the baseline"
        return Verdict("better" if better else "worse", headline, f"{where}; no significance test was run.")
    if primary["significant"]:
        headline = f"The {model} is {'better' if better else 'WORSE'} than the baseline"
        return Verdict("better" if better else "worse", headline, f"{where}, a significant difference.")
    return Verdict("same", "No significant difference from the baseline", f"{where}; {not_significant_why(primary)}.")


def similarity_sentence(similarity: dict, quote: Quote = str) -> str:
    """Which similarity the metrics score, per model."""
    names = similarity or {"baseline": "cosine", "tuned": "cosine"}
    if set(names.values()) == {"cosine"}:
        return "Similarity: cosine (the models' own similarity_fn_name)."
    shown = ", ".join(f"{quote(m)} {quote(n)}" for m, n in names.items())
    return (f"Similarity: {shown}. Metrics use the model's own similarity, not the cosine: the '_cosine' metric "
            "names then score that similarity, and embeddings are not L2-normalised.")


def run_name(run_dir: object) -> str:
    """A run as published files title it: its folder's name, never the path to it."""
    return PurePath(str(run_dir)).name or str(run_dir)


def model_name(name: object) -> str:
    """A model as a published file names it: a Hub id as it is, a local folder by its own name (never a path);
    a run's ``final/`` folder by its run folder's name."""
    text = str(name)
    if text.startswith(("/", "./", "../", "~")) or "\\" in text or text.count("/") > 1:
        path = PurePath(text)
        return f"{path.parent.name}/{path.name}" if path.name == "final" and path.parent.name else path.name
    return text


def source_name(source: object, run_dir: object = "") -> str:
    """A data source without the machine's paths: a run's own split relative to the run, a Hub id or relative
    path as given, any other absolute path by its last two parts."""
    text, run = str(source), str(run_dir or "")
    if run and text.startswith(run.rstrip("/") + "/"):
        return f"{model_name(run)}/{text[len(run.rstrip('/')) + 1:]}"
    if not text.startswith(("/", "~")):
        return text
    parts = PurePath(text).parts
    return "/".join(parts[-2:])


def first_relevant_rank(result: dict) -> int | None:
    """The 1-based rank of the first relevant document: recorded by the evaluator, else found in the top shown."""
    if "first_relevant_rank" in result:
        return result["first_relevant_rank"]
    return next((k for k, doc in enumerate(result.get("top", []), start=1) if doc.get("relevant")), None)


def rank_move(query: dict) -> str:
    """Where the first relevant document moved, baseline → tuned: 'rank 7 → 2', 'rank > 5 → 1'."""
    def shown(result: dict) -> str:
        rank = first_relevant_rank(result)
        if rank is not None:
            return str(rank)
        depth = result.get("depth") or len(result.get("top", []))
        return f"> {depth}" if depth else "?"
    return f"rank {shown(query.get('baseline', {}))} → {shown(query.get('tuned', {}))}"


def win_counts(deltas: Sequence[float], tolerance: float = 1e-12) -> dict[str, int]:
    """How many units the tuned model won, tied and lost (by the sign of tuned - baseline)."""
    return {"won": sum(d > tolerance for d in deltas), "tied": sum(abs(d) <= tolerance for d in deltas),
            "lost": sum(d < -tolerance for d in deltas)}


def k_of(metric: str) -> int | None:
    """k of a recall@k metric name; None for any other metric."""
    match = re.fullmatch(r"recall@(\d+)", metric)
    return int(match.group(1)) if match else None


def uninformative(metric: str, corpus_size: int | None) -> str | None:
    """Why a recall@k tells little: k is at least half the corpus, so nearly any ranking finds the documents."""
    k = k_of(metric)
    if k is None or not corpus_size or 2 * k < corpus_size:
        return None
    return (f"{metric} is uninformative here: k = {k} is at least half of the {corpus_size}-document corpus, "
            "so almost any ranking finds the relevant documents.")


# --- reference rows (BM25, hybrid, rerank, chunked) -------------------------------------------------------------------
def reference_stats(row: dict, metric: str) -> tuple[str, dict] | None:
    """(compared-with row, the paired statistics of ``metric``) of a reference row, when it records them.
    ``vs`` holds {"against": row name, metric: {delta (= this row - against), ci_low, ci_high, p_value, ...}}."""
    vs = row.get("vs") or {}
    stats = vs.get(metric) if isinstance(vs.get(metric), dict) else vs if "delta" in vs else None
    return (str(vs.get("against", "tuned")), stats) if stats else None


def ranking_sentence(values: dict[str, float | None], metric: str, quote: Quote = str) -> str:
    """'On ndcg@10 hybrid scores highest (0.7123), then tuned (0.6904), bm25 (0.6650), baseline (0.6457).'"""
    ranked = sorted(((v, name) for name, v in values.items() if v is not None), reverse=True)
    if not ranked:
        return ""
    rest = ", ".join(f"{quote(name)} ({num(v)})" for v, name in ranked[1:])
    return (f"On {quote(metric)} {quote(ranked[0][1])} scores highest ({num(ranked[0][0])})"
            + (f", then {rest}." if rest else "."))


def comparison_sentence(name: str, against: str, stats: dict, metric: str, quote: Quote = str) -> str:
    """'bm25 vs tuned on ndcg@10: Δ -0.0254 (95% CI [...], p = 0.001): tuned is significantly better.'"""
    extra = [f"95% CI [{num(stats.get('ci_low'), '+.4f')}, {num(stats.get('ci_high'), '+.4f')}]"] \
        if stats.get("ci_low") is not None else []
    extra += [p_words(stats)] if p_words(stats) else []
    delta = stats.get("delta")
    if stats.get("significant") and delta is not None:
        winner = quote(name if delta > 0 else against)
        outcome = f"{winner} is significantly better"
    else:
        outcome = "no significant difference"
    head = f"{quote(name)} vs {quote(against)} on {quote(metric)}: Δ {num(delta, '+.4f')}"
    return f"{head} ({', '.join(extra)}): {outcome}." if extra else f"{head}: {outcome}."
