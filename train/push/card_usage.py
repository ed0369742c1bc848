"""The card's usage snippet: load the model by its real repo id (or folder) and encode the way it was evaluated.

The prompts come from ``report.json`` (``prompts.tuned``: per role, the encode method, the prompt and where it came
from). A prompt the model carries (``model prompts['query']``, ``default_prompt_name``) is applied by
``encode_query`` / ``encode_document`` / ``encode`` on their own; a prompt from ``train.prompts`` is not saved in
the model, so the snippet passes it with ``prompt=``. The example texts are generic unless ``push.card_examples``
allows evaluation text: then they are a pair of the held-out test split (a query and its relevant text, or a
scored sentence pair) and one unrelated text of it, so the printed scores show the pair scoring above the other.
"""

from __future__ import annotations

import json
from pathlib import Path

from configs.schema import RunConfig

# encode method -> (variable holding the texts, variable holding their embeddings, generic example texts)
EXAMPLES = {
    "encode_query": ("queries", "query_embeddings", ("How do I reset my password?",)),
    "encode_document": ("documents", "document_embeddings", ("Open Settings, choose Account, then Reset password.",
                                                             "The office is closed on public holidays.")),
    "encode": ("sentences", "embeddings", ("The weather is lovely today.", "It's so sunny outside!",
                                           "He drove to the stadium.")),
}


def model_ref(config: RunConfig) -> str:
    """What a reader passes to ``SentenceTransformer(...)``: the Hub repo id, else the published folder's absolute
    path (a folder's bare name loads only from its parent folder, and a run's name never loads)."""
    if config.push.repo_id:
        return config.push.repo_id
    return str(Path(config.push.local_dir).expanduser().resolve()) if config.push.local_dir else "PATH_TO_THIS_FOLDER"


def py_literal(text: str) -> str:
    """A Python string literal that cannot end the Markdown code block it sits in (no backtick, no newline)."""
    return repr(text).replace("`", "\\x60")


def encode_call(method: str, prompt: dict | None) -> str:
    """``query_embeddings = model.encode_query(queries, prompt='query: ')  # ...`` for one encode method."""
    variable, target, _ = EXAMPLES[method]
    text = (prompt or {}).get("prompt") or ""
    if text and (prompt or {}).get("source", "").startswith("train."):
        return f"{target} = model.{method}({variable}, prompt={py_literal(text)})  # the prompt it was trained with"
    note = f"  # adds the model's own prompt {py_literal(text)}" if text else ""
    return f"{target} = model.{method}({variable}){note}"


def methods(report: dict | None) -> dict[str, dict | None]:
    """encode method -> the first evaluated role's prompt record that uses it (retrieval first, then sentences)."""
    tuned = ((report or {}).get("prompts") or {}).get("tuned") or {}
    found: dict[str, dict | None] = {}
    for record in tuned.values():
        found.setdefault(record.get("encode", "encode"), record)
    ordered = {m: found[m] for m in EXAMPLES if m in found}
    return ordered or {"encode": None}


def example_texts(run_dir: Path, allowed: bool) -> dict[str, tuple[str, ...]]:
    """encode method -> in-domain example texts from the run's test split when ``allowed`` (push.card_examples):
    the first row's pair and the next row's second text as the unrelated one; {} otherwise or without two rows."""
    path = run_dir / "data" / "test.jsonl"
    if not allowed or not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:50] if line.strip()]
    for first, second in (("anchor", "positive"), ("sentence1", "sentence2")):
        usable = [r for r in rows if r.get(first) and r.get(second)]
        other = next((r[second] for r in usable[1:] if r[second] != usable[0][second]), None) if usable else None
        if other is None:
            continue
        pair = usable[0]
        return {"encode_query": (pair[first],), "encode_document": (pair[second], other),
                "encode": (pair[first], pair[second], other)}
    return {}


def usage_lines(model_ref: str, report: dict | None, *, remote_code: bool = False, adapter: bool = False,
                texts: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """The Markdown of the usage section: install, load by ``model_ref``, encode with the right prompts, compare.

    ``remote_code``: the model runs its repository's own code (``trust_remote_code=True`` to load it). ``adapter``:
    the folder is a LoRA adapter (loading it needs ``peft``). ``texts``: encode method -> example texts in place of
    the generic ones (``example_texts``)."""
    chosen, texts = methods(report), texts or {}
    trust = ", trust_remote_code=True" if remote_code else ""
    lines = ["```python", "from sentence_transformers import SentenceTransformer", "",
             f"model = SentenceTransformer({py_literal(model_ref)}{trust})"]
    for method, prompt in chosen.items():
        variable, _, generic = EXAMPLES[method]
        shown = texts.get(method, generic)
        lines += [f"{variable} = [{', '.join(py_literal(t) for t in shown)}]", encode_call(method, prompt)]
    if "encode_query" in chosen and "encode_document" in chosen:
        lines.append("print(model.similarity(query_embeddings, document_embeddings))")
    if "encode" in chosen:
        lines.append("print(model.similarity(embeddings, embeddings))")
    packages = "sentence-transformers peft" if adapter else "sentence-transformers"
    notes = ["", "`trust_remote_code=True` runs the code in the base model's repository: read it before you load."]
    return [f"Install `pip install -U {packages}`, then:", "", *lines, "```", *(notes if remote_code else [])]
