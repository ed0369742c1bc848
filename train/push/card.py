"""The model card: the card sentence-transformers wrote at save time, headed by what embtune knows and it does not.

Order: the metadata block (the library's, with ``model-index`` from OUR held-out evaluation: the tuned model's value
of every metric on every evaluated set), a warning when the model did not beat its base (published with
``push.allow_regression=true``), the verdict and the baseline-vs-tuned table with 95% intervals and p-values, the
forgetting check, the leakage check, the usage snippet naming the real repository or folder (with the prompts the
model needs), provenance, the recipe and the data fingerprints, then the library's own sections (model details,
dataset statistics, hyperparameters, training logs, framework versions, citations) without training text.

Everything that comes from the user (data paths, dataset names, loss options, prompts) or from a model folder goes
through ``evaluate.report.writers.md_escape`` (the reports' own escaping, one function for both): a dataset named
``<img src=x onerror=...>`` must show as text on the Hub. ``markdown_table`` escapes the dataset names itself.
Training text appears only with ``push.card_examples=true``.
"""

from __future__ import annotations

import html
from pathlib import Path

import yaml
from huggingface_hub.repocard_data import EvalResult, eval_results_to_model_index

from configs.schema import RunConfig
from evaluate.evaluators import EVALUATORS
from evaluate.forgetting import forgetting_sets
from evaluate.report import caveats, legends
from evaluate.report.markdown import markdown_table, md_escape
from evaluate.report.writers import num, verdict_lines
from train.push.card_facts import first_sentence, held_out_design, library_description, license_and_language
from train.push.card_usage import example_texts, model_ref, usage_lines
from train.push.gate import change
from train.push.interpolated import merge_card_lines
from train.push.library_card import library_body, library_intro, library_metadata, with_dev_scores
from train.push.privacy import without_texts
from train.push.system import system_card_section


def hub_task(task: str) -> str:
    """The model-index task type of ``task``: its spec's ``hub_task_type`` (sentence-transformers' names)."""
    spec = EVALUATORS.get(task)
    return getattr(spec, "hub_task_type", "") or task.replace("_", "-")


def model_index(report: dict, name: str) -> list[dict]:
    """The Hub's ``model-index``: the tuned model's value of every defined metric on every evaluated set, under the
    task types sentence-transformers' own cards use. Names from the user are HTML-escaped: the Hub shows them."""
    results = [EvalResult(task_type=hub_task(info["task"]), task_name=hub_task(info["task"]).replace("-", " ").title(),
                          dataset_type=html.escape(dataset),
                          dataset_name=html.escape(dataset), metric_type=metric, metric_name=metric,
                          metric_value=values["tuned"])
               for dataset, info in report["datasets"].items() for metric, values in info["metrics"].items()
               if values.get("tuned") is not None]
    return eval_results_to_model_index(html.escape(name), results) if results else []


def metadata(config: RunConfig, run: dict, report: dict | None, library: dict, name: str) -> dict:
    """The library's metadata, with the license and languages (push.license / push.language, else the base
    model's), our tags (the loss once), the base model when it is a Hub id, and our model-index."""
    meta = {"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity",
            **library_metadata(library, config.push.card_examples), **license_and_language(config, run)}
    tags = list(meta.get("tags", ["sentence-transformers", "sentence-similarity"]))
    has_loss = any(str(t).startswith("loss:") for t in tags)  # the library names the loss class once already
    meta["tags"] = list(dict.fromkeys([*tags, "embtune", *([] if has_loss else [f"loss:{config.loss.name}"])]))
    if run.get("model_revision"):  # a Hub id; a local folder's path is no valid base_model on the Hub
        meta["base_model"] = run["base_model"]
    if report is not None:
        meta["metrics"] = sorted({m for info in report["datasets"].values() for m in info["metrics"]})
        meta["model-index"] = model_index(report, name)
    return meta


def warning_lines(findings: list[str] | tuple[str, ...], evaluated: bool) -> list[str]:
    """The card's first lines when push.allow_regression published a model that did not beat its base."""
    if not findings:
        return []
    what = "did not beat its base model" if evaluated else "was never evaluated against its base model"
    return [f"> **Warning: this model {what}.** It was published with `push.allow_regression=true`:",
            *[f"> - {md_escape(line)}" for line in findings], ""]


def _provenance(run: dict, fingerprint: str | None) -> list[str]:
    """Identities a reader can check: the base model's revision and fingerprints, the run id, this model's own."""
    revision = f"revision {md_escape(run['model_revision'])}" if run.get("model_revision") else "a local folder"
    lines = [f"- Base model: {md_escape(run['base_model'])}, {revision}",
             f"- Base weights sha256: `{run['weights_sha256']}`"]
    if run.get("base_fingerprint"):
        lines.append(f"- Base model fingerprint (weights, tokenizer, pooling, configs): `{run['base_fingerprint']}`")
    if fingerprint:
        lines.append(f"- This model's fingerprint: `{fingerprint}`")
    if fingerprint and run.get("final_fingerprint") and run["final_fingerprint"] != fingerprint:
        lines.append(f"- Fingerprint of the run's final/ before merging: `{run['final_fingerprint']}`")
    if run.get("run_id"):
        lines.append(f"- embtune run: {md_escape(run['run_id'])}"
                     + (f", config hash `{md_escape(run['config_hash'])}`" if run.get("config_hash") else ""))
    return lines


def _training(config: RunConfig, run: dict, listed: bool = False) -> list[str]:
    """The recipe; the hyperparameters only when the library's card does not list them (``listed``)."""
    source = config.data.train
    split = f" (split {md_escape(source.split)})" if source.split else ""
    options = config.loss.model_dump(exclude={"name"})
    return [
        f"- Data: {md_escape(source.path)}{split}, {run['train']['rows']} training rows",
        f"- Loss: {md_escape(config.loss.name)} {md_escape(options) if options else ''}".rstrip(),
        *([] if listed else ["- Hyperparameters: " + md_escape(", ".join(
            f"{k}={v}" for k, v in config.train.model_dump().items()))]),
        f"- Seed: {config.seed}; libraries: " + md_escape(", ".join(f"{k} {v}" for k, v in run["versions"].items())),
        *_recipe(config, run),
    ]


def _recipe(config: RunConfig, run: dict) -> list[str]:
    """What went beyond the plain loop: custom code, an adapter, mined negatives, prompts, the dev checkpoint."""
    lines = [*_model_lines(config, run)]
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


def _model_lines(config: RunConfig, run: dict) -> list[str]:
    """Custom model code, the LoRA adapter and how it was published, and the trainable share of the parameters."""
    lines = []
    if run.get("trust_remote_code"):
        lines.append("- Custom model code: the base model runs its repository's own code (`trust_remote_code=True`)")
    adapter = run.get("adapter")
    if adapter:
        shown = md_escape(", ".join(f"{k}={v}" for k, v in adapter.items() if k != "kind"))
        form = ("merged into the base weights" if config.push.merge_adapter or config.push.merge_ratio is not None
                else "published as the adapter alone; it loads onto its base with peft")
        lines.append(f"- LoRA adapter (peft): {shown}; {form}")
    counts = run.get("parameters")
    if counts and counts.get("total"):
        share = 100 * counts["trainable"] / counts["total"]
        lines.append(f"- Trainable parameters: {counts['trainable']:,} of {counts['total']:,} ({share:.3g}%)")
    return lines


def _fingerprints(run: dict, report: dict | None) -> list[str]:
    """sha256 of the prepared splits (run.json) and of every evaluated set's rows and corpus (report.json)."""
    lines = [f"- {md_escape(split)} split (prepared file): `{md_escape(digest)}`"
             for split, digest in (run.get("data_sha256") or {}).items()]
    for name, info in ((report or {}).get("datasets") or {}).items():
        if info.get("fingerprint"):
            lines.append(f"- evaluation set {md_escape(name)} ({md_escape(info.get('task', ''))}, "
                         f"{info.get('rows', '?')} rows): `{md_escape(info['fingerprint'])}`")
    return lines


def _comparison(report: dict | None) -> list[str]:
    if report is None:
        return ["This model was not evaluated against its base model."]
    tasks = [info["task"] for info in report["datasets"].values()]
    return [*verdict_lines(report), markdown_table(report["datasets"]), "", legends.table_legend(tasks)]


def _forgetting(config: RunConfig, report: dict | None) -> list[str]:
    """Did the model keep its general skills? One line per general (forgetting) set."""
    names = forgetting_sets(config, report) if report is not None else []
    if not names:
        return ["Forgetting was not measured: no general-domain set (such as STSb) was evaluated beside the "
                "domain data, so this card cannot say whether general skills were kept."]
    lines = []
    for name in names:
        info = report["datasets"][name]
        values = info["metrics"][info["main_metric"]]
        lost = values.get("significant") and (values.get("delta") or 0) < 0
        kept = "**lost significantly**" if lost else "no significant loss"
        lines.append(f"- {md_escape(name)} ({md_escape(info.get('source', ''))}) {md_escape(info['main_metric'])}: "
                     f"{change(values)}: {kept}")  # change(): numbers only
    return lines


def _limitations(config: RunConfig, report: dict | None) -> list[str]:
    """What to know before trusting the numbers, in the report's own words (what each set is, uninformative
    metrics, leakage and how texts were compared, precision, a reference row that beats the model) after the
    held-out design. Leaked texts are quoted only with push.card_examples."""
    if report is None:
        return []
    design, shown = held_out_design(config), report if config.push.card_examples else without_texts(report)
    items = [*([design] if design else []), *caveats.evaluation_notes(shown, md_escape)]
    return ["## Evaluation and limitations", "", *[f"- {item}" for item in items], ""]


def _adapter_alone(config: RunConfig, run: dict) -> bool:
    """Whether the published folder is a LoRA adapter (not merged into its base by either merge key)."""
    return bool(run.get("adapter")) and not config.push.merge_adapter and config.push.merge_ratio is None


def model_card(config: RunConfig, run: dict, report: dict | None, fingerprint: str | None = None, *,
               findings: list[str] | tuple[str, ...] = (), library: tuple[dict, str] = ({}, "")) -> str:
    """README.md for the published folder. Never includes secrets: it is built from the config and reports only.

    Args:
        config: the run's resolved config. run: its run.json. report: eval/report.json, or None when not evaluated.
        fingerprint: ``model_fingerprint`` of the published model, recorded so a reader can check the files.
        findings: the gate's reasons the model did not beat its base (published with push.allow_regression).
        library: (metadata, body) of the card sentence-transformers wrote into final/README.md."""
    ref, examples = model_ref(config), config.push.card_examples
    title = config.push.repo_id or Path(ref).name
    meta = metadata(config, run, report, library[0], title)
    body = with_dev_scores(library_body(library[1], examples), run)
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
        *warning_lines(findings, report is not None),
        f"# {md_escape(title)}", "", first_sentence(config, run, report), "",
        library_description(library_intro(library[1])), "",
        "## Baseline vs tuned (held-out data)", "", *_comparison(report), "",
        "### Forgetting check", "", *_forgetting(config, report), "",
        *_limitations(config, report),
        *merge_card_lines(report),
        "## Usage", "", *usage_lines(ref, report, remote_code=bool(run.get("trust_remote_code")),
                                     adapter=_adapter_alone(config, run),
                                     texts=example_texts(Path(config.run_dir), examples)), "",
        *system_card_section(config, report), "",
        "## Provenance", "", *_provenance(run, fingerprint), "",
        "## Training recipe", "", *_training(config, run, "### Training Hyperparameters" in body), "",
        "### Data fingerprints (sha256)", "", *_fingerprints(run, report), "",
        body, "",
    ]
    return "\n".join(lines)
