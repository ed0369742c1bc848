"""The model card: what the model is, what it was trained on and how, and how much better than its base it is."""

from __future__ import annotations

import yaml

from configs.schema import RunConfig
from evaluate.report import markdown_table


def model_card(config: RunConfig, run: dict, report: dict | None) -> str:
    """README.md for the published folder. Never includes secrets: it is built from the config and reports only."""
    meta = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "base_model": run["base_model"],
        "tags": ["sentence-transformers", "sentence-similarity", "embtune", f"loss:{config.loss.name}"],
    }
    train_source = config.data.train
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
        f"# Fine-tuned {run['base_model']}", "",
        f"Fine-tuned with embtune from `{run['base_model']}` "
        f"(revision `{run['model_revision']}`, weights sha256 `{run['weights_sha256']}`).", "",
        "## Training", "",
        f"- Data: `{train_source.path}`" + (f" (split `{train_source.split}`)" if train_source.split else "")
        + f", {run['train']['rows']} training rows; data sha256 {run['data_sha256'].get('train', '')[:16]}…",
        f"- Loss: `{config.loss.name}` {config.loss.model_dump(exclude={'name'}) or ''}",
        "- Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in config.train.model_dump().items()),
        f"- Seed: {config.seed}; libraries: "
        + ", ".join(f"{k} {v}" for k, v in run["versions"].items()),
        "",
        "## Baseline vs tuned (held-out data)", "",
    ]
    if report is None:
        lines.append("Not evaluated yet: run `python -m evaluate` before pushing to include the comparison.")
    else:
        p = report["primary"]
        lines += [f"Primary metric {p['dataset']} {p['metric']}: {p['baseline']:.4f} → {p['tuned']:.4f} "
                  f"({p['delta']:+.4f}).", "", markdown_table(report["datasets"])]
    lines += ["", "## Usage", "", "```python", "from sentence_transformers import SentenceTransformer", "",
              'model = SentenceTransformer("PATH_OR_REPO_ID")', 'embeddings = model.encode(["a sentence"])', "```", ""]
    return "\n".join(lines)
