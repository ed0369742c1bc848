"""Which prompt each evaluated text gets: the prompts the user trained with, else the model's own.

A text's *role* says what it is in its task; the role decides its prompt and how the library encodes it:

| role      | texts                          | train.prompts column (first present)        | else the model's own   |
|-----------|--------------------------------|---------------------------------------------|------------------------|
| query     | retrieval queries              | anchor, sentence1                           | like ``encode_query``  |
| document  | retrieval corpus               | positive, negative, negative_1, sentence2   | like ``encode_document``|
| sentence1 | sts / pair_classification left | sentence1                                   | like ``encode``        |
| sentence2 | sts / pair_classification right| sentence2                                   | like ``encode``        |
| text      | classification, clustering     | text                                        | like ``encode``        |

The model's own prompts follow sentence-transformers 6.2 (``SentenceTransformer.encode_query`` /
``encode_document`` / ``BaseModel._resolve_prompt``): a query takes ``prompts["query"]`` when the model has that key,
a document the first of ``prompts["document" | "passage" | "corpus"]``; anything else (and a role with no such key)
takes ``prompts[default_prompt_name]`` when that is set, else no prompt. sentence-transformers models always carry
``query`` and ``document`` keys (empty unless configured), so an unconfigured model encodes without prompts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)
_SAID: set[str] = set()

# role -> how the library encodes it: 'query' and 'document' go through encode_query / encode_document (which also
# route a Router model), 'text' through encode.
ROLE_MODES = {"query": "query", "document": "document", "sentence1": "text", "sentence2": "text", "text": "text"}
ROLE_COLUMNS = {"query": ("anchor", "sentence1"), "document": ("positive", "negative", "negative_1", "sentence2"),
                "sentence1": ("sentence1",), "sentence2": ("sentence2",), "text": ("text",)}
MODE_PROMPT_NAMES = {"query": ("query",), "document": ("document", "passage", "corpus"), "text": ()}
ROLE_METHODS = {"query": "encode_query", "document": "encode_document", "text": "encode"}


@dataclass(frozen=True)
class Prompt:
    """The prompt one role is encoded with."""

    mode: str  # 'query', 'document' or 'text': which encode method of the model
    text: str  # prepended by the model's preprocess; '' for none
    source: str  # where it came from, e.g. 'train.prompts.anchor' or "model prompts['query']"

    def as_dict(self) -> dict[str, str]:
        return {"prompt": self.text, "source": self.source, "encode": ROLE_METHODS[self.mode]}


def model_prompt(model, mode: str) -> tuple[str, str]:
    """(prompt, source) the model itself would use for ``mode``, as the library resolves it."""
    prompts = dict(getattr(model, "prompts", None) or {})
    name = next((n for n in MODE_PROMPT_NAMES[mode] if n in prompts), None)
    if name is not None:
        return prompts[name] or "", f"model prompts['{name}']"
    default = getattr(model, "default_prompt_name", None)
    if default is not None and prompts.get(default) is not None:
        return prompts[default], f"model default_prompt_name '{default}'"
    return "", "none"


def role_prompt(model, role: str, train_prompts: dict[str, str]) -> Prompt:
    """The prompt for ``role``: the first of its columns named in ``train.prompts``, else the model's own."""
    mode = ROLE_MODES[role]
    for column in ROLE_COLUMNS[role]:
        if column in train_prompts:
            return Prompt(mode, train_prompts[column], f"train.prompts.{column}")
    text, source = model_prompt(model, mode)
    return Prompt(mode, text, source)


def resolve_prompts(model, roles, train_prompts: dict[str, str] | None = None) -> dict[str, Prompt]:
    """role -> Prompt for every role evaluated; logs when train.prompts leaves an evaluated role to the model."""
    train_prompts = dict(train_prompts or {})
    resolved = {role: role_prompt(model, role, train_prompts) for role in dict.fromkeys(roles)}
    for role, prompt in resolved.items():
        message = (f"train.prompts names none of {', '.join(ROLE_COLUMNS[role])}: {role} texts use the model's own "
                   f"prompt ({prompt.source}).")
        if train_prompts and not prompt.source.startswith("train.") and message not in _SAID:
            _SAID.add(message)  # once per process: the dev evaluator resolves prompts at every evaluation
            log.info(message)
    return resolved


def prompts_record(prompts: dict[str, Prompt]) -> dict[str, dict[str, str]]:
    """JSON-ready {role: {prompt, source, encode}} for report.json."""
    return {role: prompt.as_dict() for role, prompt in prompts.items()}
