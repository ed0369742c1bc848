"""The card sentence-transformers wrote into ``final/README.md`` when training saved the model, made fit to publish.

The library's card (``SentenceTransformerModelCardData``) holds what only the trainer knew: the metadata block
(language, license, datasets, tags, base model), the dataset statistics, every hyperparameter, the training logs,
the framework versions and the loss citations. It also holds what must not be published as is:

- training text: a "Samples" table per dataset, and the ``widget`` whose sentences come from the training data
  (also shown in its usage snippet). Kept only with ``push.card_examples=true``;
- the dev evaluator's numbers (its ``model-index`` and "Evaluation" section): replaced by the held-out
  baseline-vs-tuned evaluation from ``report.json``;
- its usage snippet, which names no repository (``sentence_transformers_model_id``): replaced by ours;
- template placeholders in HTML comments.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from evaluate.report.markdown import md_escape

log = logging.getLogger(__name__)

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n", re.S)
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
_SETTING = re.compile(r"^(- `[A-Za-z0-9_]+`: )(.*)$")
REPLACED_SECTIONS = ("## Usage", "## Evaluation")  # ours take their place
EXAMPLE_KEYS = ("widget",)  # metadata built from training text


def read_card(final: Path) -> tuple[dict, str]:
    """(metadata, body) of ``final/README.md``; ({}, "") when training wrote no card or it has no front matter."""
    path = final / "README.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as err:  # the card is the library's, edited by hand perhaps: keep its body, not its YAML
        log.warning("%s: its metadata block is not valid YAML (%s); the published card starts without it", path,
                    str(err).splitlines()[0])
        meta = {}
    return (meta if isinstance(meta, dict) else {}), text[match.end():]


def h2_sections(body: str) -> list[list[str]]:
    """The body split before every level-2 heading; the first part is what precedes the first one."""
    parts: list[list[str]] = [[]]
    for line in body.splitlines():
        if line.startswith("## "):
            parts.append([])
        parts[-1].append(line)
    return parts


def without_samples(lines: list[str]) -> list[str]:
    """Drop each ``* Samples:`` item and its indented table (rows of training text)."""
    kept, skipping = [], False
    for line in lines:
        if line.startswith("* Samples:"):
            skipping = True
            continue
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = False
        kept.append(line)
    return kept


def escaped_settings(lines: list[str]) -> list[str]:
    """Hyperparameter items (``- `prompts`: {...}``) show their values as text: a prompt is the user's."""
    return [f"{m[1]}{md_escape(m[2])}" if (m := _SETTING.match(line)) else line for line in lines]


def library_body(body: str, examples: bool) -> str:
    """The library's sections from "Model Details" on, without its title, usage, dev evaluation, template comments,
    and (unless ``examples``) training samples."""
    parts = h2_sections(_COMMENT.sub("", body))[1:]
    kept = [part for part in parts if not part[0].startswith(REPLACED_SECTIONS)]
    lines = escaped_settings([line for part in kept for line in part])
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines if examples else without_samples(lines))).strip()


def library_intro(body: str) -> str:
    """The library's one-paragraph description (what the model maps inputs to), without its title."""
    first = h2_sections(_COMMENT.sub("", body))[0]
    return "\n".join(line for line in first if not line.startswith("# ")).strip()


def library_metadata(meta: dict, examples: bool) -> dict:
    """The library's metadata without the dev evaluator's results and (unless ``examples``) training text."""
    dropped = ("model-index", "metrics", *(() if examples else EXAMPLE_KEYS))
    return {key: value for key, value in meta.items() if key not in dropped}
