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


NOT_SCORES = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch", "step")


def dev_columns(run: dict) -> dict[int, dict[str, str]]:
    """step -> {column: value} of run.json's dev evaluations ('dev ndcg@10': '0.7322', 'Validation Loss': ...)."""
    out: dict[int, dict[str, str]] = {}
    for entry in run.get("dev_history", []):
        for key, value in entry.items():
            if not key.startswith("eval_") or key in NOT_SCORES or not isinstance(value, (int, float)):
                continue
            column = "Validation Loss" if key == "eval_loss" else key.removeprefix("eval_").replace("_", " ", 1)
            out.setdefault(int(entry["step"]), {})[column] = f"{value:.4f}"
    return out


def table_rows(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a Markdown table's lines (the rule line dropped)."""
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], [row for row in cells[2:] if len(row) == len(cells[0])]


def with_dev_scores(body: str, run: dict) -> str:
    """The library's Training Logs table with the dev scores run.json holds (the library logs only losses, so its
    dev columns read '-'): one column per dev metric, filled at the steps it was evaluated; a column that is '-'
    everywhere is dropped. The checkpoint row the library bolds stays bold."""
    dev, lines = dev_columns(run), body.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("### Training Logs")), None)
    if not dev or start is None:
        return body
    first = next((i for i in range(start, len(lines)) if lines[i].startswith("|")), None)
    if first is None:
        return body
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    header, rows = table_rows(lines[first:end])
    columns = [*header, *[c for c in dict.fromkeys(c for v in dev.values() for c in v) if c not in header]]
    filled = []
    for row in rows:
        bold = row[header.index("Step")].startswith("**")
        step = int(float(row[header.index("Step")].strip("*")))
        values = {**dict(zip(header, (c.strip("*") for c in row))), **dev.get(step, {})}
        filled.append([f"**{values.get(c, '-')}**" if bold else values.get(c, "-") for c in columns])
    kept = [i for i, c in enumerate(columns) if any(r[i].strip("*") != "-" for r in filled)]
    table = ["| " + " | ".join(columns[i] for i in kept) + " |", "|" + ":---:|" * len(kept),
             *["| " + " | ".join(r[i] for i in kept) + " |" for r in filled]]
    return "\n".join([*lines[:first], *table, *lines[end:]])
