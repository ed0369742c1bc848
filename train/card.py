"""The model card: what the model is, what it was trained on and how, and how much better than its base it is.

Everything that comes from the user (data paths, dataset names, loss options, prompts) or from a model folder goes
through ``evaluate.report.md_escape`` (the reports' own escaping, one function for both): a dataset named
``<img src=x onerror=...>`` must show as text on the Hub. ``markdown_table`` escapes the dataset names itself.
"""

from __future__ import annotations

import yaml

from configs.schema import RunConfig
from evaluate.report import markdown_table, md_escape, num


def _provenance(run: dict, fingerprint: str | None) -> list[str]:
    """Identities a reader can check: the base model's revision and fingerprints, the run id, this model's own."""
    revision = f"revision {md_escape(run['model_revision'])}" if run.get("model_revision") else "a local folder"
    lines = [f"- Base model: {md_escape(run['base_model'])}, {revision}",
             f"- Base weights sha256: `{run['weights_sha256']}`"]
    if run.get("base_fingerprint"):
        lines.append(f"- Base model fingerprint (weights, tokenizer, pooling, configs): `{run['base_fingerprint']}`")
    if fingerprint:
        lines.append(f"- This model's fingerprint: `{fingerprint}`")
    if run.get("run_id"):
        lines.append(f"- embtune run: {md_escape(run['run_id'])}"
                     + (f", config hash `{md_escape(run['config_hash'])}`" if run.get("config_hash") else ""))
    return lines


def _training(config: RunConfig, run: dict) -> list[str]:
    source = config.data.train
    split = f" (split {md_escape(source.split)})" if source.split else ""
    options = config.loss.model_dump(exclude={"name"})
    return [
        f"- Data: {md_escape(source.path)}{split}, {run['train']['rows']} training rows; "
        f"data sha256 {md_escape(run['data_sha256'].get('train', '')[:16])}…",
        f"- Loss: {md_escape(config.loss.name)} {md_escape(options) if options else ''}".rstrip(),
        "- Hyperparameters: " + md_escape(", ".join(f"{k}={v}" for k, v in config.train.model_dump().items())),
        f"- Seed: {config.seed}; libraries: " + md_escape(", ".join(f"{k} {v}" for k, v in run["versions"].items())),
        *_recipe(config, run),
    ]


def _recipe(config: RunConfig, run: dict) -> list[str]:
    """What went beyond the plain loop: mined negatives, prompts, the checkpoint chosen on dev."""
    lines = []
    if config.data.hard_negatives:
        lines.append("- Hard negatives mined from the training corpus: "
                     + md_escape(config.data.hard_negatives.model_dump(exclude_none=True)))
    if run.get("prompts"):
        lines.append(f"- Prompts: {md_escape(run['prompts'])}")
    best = run.get("best_checkpoint")
    if best:
        lines.append(f"- Best dev checkpoint: step {best['step']} of {run['train']['steps']}, "
                     f"{md_escape(best['metric'])} = {num(best['dev_score'])}")
    return lines


def _comparison(report: dict | None) -> list[str]:
    if report is None:
        return ["Not evaluated yet: run `python -m evaluate` before pushing to include the comparison."]
    p = report["primary"]
    delta = f"{p['delta']:+.4f}" if p.get("delta") is not None else "undefined"
    return [f"Primary metric {md_escape(p['dataset'])} {md_escape(p['metric'])}: {num(p['baseline'])} → "
            f"{num(p['tuned'])} ({delta}).", "", markdown_table(report["datasets"])]


def model_card(config: RunConfig, run: dict, report: dict | None, fingerprint: str | None = None) -> str:
    """README.md for the published folder. Never includes secrets: it is built from the config and reports only.

    Args:
        config: the run's resolved config. run: its run.json. report: eval/report.json, or None when not evaluated.
        fingerprint: ``model_fingerprint`` of the published model, recorded so a reader can check the files."""
    meta = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "base_model": run["base_model"],  # YAML-quoted by safe_dump; the Hub reads it as data, never as Markdown
        "tags": ["sentence-transformers", "sentence-similarity", "embtune", f"loss:{config.loss.name}"],
    }
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
        f"# Fine-tuned {md_escape(run['base_model'])}", "",
        "Fine-tuned with embtune.", "",
        "## Provenance", "", *_provenance(run, fingerprint), "",
        "## Training", "", *_training(config, run), "",
        "## Baseline vs tuned (held-out data)", "", *_comparison(report),
        "", "## Usage", "", "```python", "from sentence_transformers import SentenceTransformer", "",
        'model = SentenceTransformer("PATH_OR_REPO_ID")', 'embeddings = model.encode(["a sentence"])', "```", "",
    ]
    return "\n".join(lines)
