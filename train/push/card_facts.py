"""Facts the model card states that neither report.json nor the library's card holds: the base model's license and
languages (from its own card), what kind of data trained the model, whether the held-out split is grouped, the
card's first sentence, and the dev scores of run.json for the library's Training Logs table.

Everything from the user (dataset names, group columns) passes through ``md_escape`` where it reaches Markdown.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from configs.schema import RunConfig
from evaluate.report import caveats
from evaluate.report.markdown import md_escape
from evaluate.report.wording import interval_text, num, p_words, verdict
from train.push.library_card import read_card

log = logging.getLogger(__name__)

# data kind -> what the training rows were, for the card's first sentence
KIND_WORDS = {
    "pairs": "(query, relevant text) pairs", "triplets": "(query, relevant text, non-relevant text) triplets",
    "tuples": "(query, relevant text, mined negatives) tuples", "scored": "sentence pairs with similarity scores",
    "labeled": "sentence pairs labelled similar or not", "classes": "texts labelled by class",
}


def base_model_folder(config: RunConfig, run: dict) -> Path | None:
    """The base model's folder on this machine (bundled, local, or the Hub cache), without downloading anything."""
    name = config.model.name
    if name.startswith("bundled:") or Path(name).expanduser().is_dir():
        from core.model import resolve_model  # verifies the bundled package; never downloads for these two

        return resolve_model(config.model).path
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "README.md", revision=run.get("model_revision"))
    except Exception as err:  # noqa: BLE001 - an odd id or cache: the card falls back to the user's settings
        log.warning("could not look up %s's card in the Hub cache (%s)", name, err)
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def base_card_meta(config: RunConfig, run: dict) -> dict:
    """The base model's own card metadata (``license``, ``language``, ...), or {} when its card is not here."""
    folder = base_model_folder(config, run)
    return read_card(folder)[0] if folder is not None else {}


def license_and_language(config: RunConfig, run: dict) -> dict:
    """``license`` and ``language`` for the card: push.license / push.language, else the base model's."""
    base = base_card_meta(config, run) if not (config.push.license and config.push.language) else {}
    language = list(config.push.language) or base.get("language")
    out = {"license": config.push.license or base.get("license"),
           "language": [language] if isinstance(language, str) else language}
    return {k: v for k, v in out.items() if v}


def data_meta(run_dir: Path) -> dict:
    path = run_dir / "data" / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def groups_of(path: Path) -> set[str]:
    """The group values (``group`` column) of a prepared split's rows."""
    if not path.is_file():
        return set()
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {str(row["group"]) for row in rows if row.get("group") not in (None, "")}


def held_out_design(config: RunConfig) -> str:
    """'Held out by topic: the 16 test topics never occur in training (nor in the dev split).' when the split is
    grouped and the prepared splits share no group; '' otherwise."""
    column = (config.data.test.group_column if config.data.test else None) or config.data.train.group_column
    data = Path(config.run_dir) / "data"
    test, seen = groups_of(data / "test.jsonl"), groups_of(data / "train.jsonl") | groups_of(data / "dev.jsonl")
    if not column or not test or test & seen:
        return ""
    name = md_escape(column)
    return (f"Held out by {name}: the {len(test)} {name} groups of the test split never occur in the training or "
            f"dev split, so the test measures {name}s the model never saw.")


def first_sentence(config: RunConfig, run: dict, report: dict | None) -> str:
    """What the model is, from which base, on what data, and its measured gain (or that it was not measured)."""
    kind = data_meta(Path(config.run_dir)).get("kinds", {}).get("train")
    rows = (run.get("train") or {}).get("rows")
    data = f" on {rows:,} {KIND_WORDS.get(kind, 'training rows')}" if rows else ""
    said = (f"This is a sentence-transformers embedding model fine-tuned from {md_escape(run['base_model'])}{data} "
            f"with embtune ({md_escape(config.loss.name)} loss).")
    if report is None:
        return said + " It was not evaluated against its base model."
    merge = report.get("merge")
    said += (f" It is that model's weights interpolated with its base at r = {merge['ratio']:g}, and every number "
             "here is of that interpolation.") if merge else ""
    p, kind = report["primary"], verdict(report["primary"]).kind
    outcome = {"better": "a significant gain", "worse": "a significant loss", "same": "not a significant difference",
               "undefined": "no verdict"}[kind] if "significant" in p or kind == "undefined" else "not tested"
    stats = ", ".join(x for x in (f"Δ {num(p.get('delta'), '+.4f')}", f"95% CI {interval_text(p)}" * bool(
        interval_text(p)), p_words(p)) if x)
    gain = (f" On the held-out set {md_escape(p['dataset'])}, {md_escape(p['metric'])} goes from {num(p['baseline'])} "
            f"(base model) to {num(p['tuned'])} ({stats}): {outcome}.")
    warned = " ".join(f"**{line}**" for line in caveats.reference_caveats(report, md_escape))
    return (said + gain + (f" {warned}" if warned else "")).strip()


def library_description(body_intro: str) -> str:
    """The library's intro without its first sentence ('This is a sentence-transformers model trained.'), which the
    card's own first sentence replaces; what remains says what the model maps text to."""
    return re.sub(r"\AThis is a .*?\.\s+(?=[A-Z])", "", body_intro.strip(), flags=re.S)  # '. ' then a capital: a
    # sentence's end, not the '.' of a link such as (https://www.SBERT.net)
