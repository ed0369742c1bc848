"""run.json, the record that makes a run finished, and the check every later stage makes against it.

``run.json`` ties the folder together by hash: the config hash of ``config.resolved.yaml``, the data fingerprints
of ``data/meta.json`` and the fingerprint of ``final/``. ``python -m evaluate`` and ``python -m train.push`` call
``check_run_consistent`` first, so an evaluation or a card can never describe another model or other data.
"""

from __future__ import annotations

import json
from pathlib import Path

from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config
from configs.runs import config_hash, library_versions
from configs.schema import RunConfig
from core.adapters import is_adapter_folder, parameter_counts
from core.model import model_fingerprint, resolve_model


def run_record(config: RunConfig, trainer, result, resolved, run_id: str, data_sha: dict, stats: dict,
               facts: dict | None = None) -> dict:
    """run.json: what was trained, from what, how, and which weights came out (by fingerprint).

    Args:
        facts: what only the entry point knows: ``resumed_at`` (the step training resumed from, 0 for a fresh
            start), ``precision`` (as trained and as encoded, with the reason), ``seconds`` (per phase) and
            ``data_prepared_by`` (which command prepared the data/ trained on).
    """
    facts = facts or {}
    state = trainer.state
    best = None
    if state.best_model_checkpoint:
        best = {"step": int(state.best_model_checkpoint.rsplit("-", 1)[-1]),
                "metric": trainer.args.metric_for_best_model, "dev_score": state.best_metric}
    resumed_at = facts.get("resumed_at", 0)
    loss = whole_run_loss(state.log_history, resumed_at, result.metrics.get("train_loss"), result.global_step)
    return {
        "run_id": run_id,
        "config_hash": config_hash(config),
        "final_fingerprint": model_fingerprint(Path(config.run_dir) / "final"),
        "seed": config.seed,
        "base_model": resolved.base_model,
        "model_revision": resolved.revision,
        "weights_sha256": resolved.weights_sha256,
        "base_fingerprint": resolved.fingerprint,
        "trust_remote_code": config.model.trust_remote_code,
        "parameters": parameter_counts(trainer.model),  # trainable: the adapter only in a LoRA run
        "adapter": _adapter_record(config, trainer.model),
        "data_sha256": data_sha,
        "versions": library_versions(),
        "prompts": dict(config.train.prompts),
        "precision": facts.get("precision"),
        "data_prepared_by": facts.get("data_prepared_by"),
        "best_checkpoint": best,
        "train": {**result.metrics, "train_loss": loss, "rows": stats["splits"]["train"]["rows"],
                  "steps": result.global_step, "resumed_at_step": resumed_at},
        "seconds": facts.get("seconds"),
        "dev_history": [e for e in state.log_history if any(k.startswith("eval_") for k in e)],
        "loss_history": [{"step": e["step"], "loss": e["loss"]} for e in state.log_history if "loss" in e],
    }


def whole_run_loss(log_history: list[dict], resumed_at: int, segment_loss: float | None, final_step: int):
    """The mean training loss over every step of the run, also after a resume.

    The trainer's ``train_loss`` averages only the steps its own process ran (``resumed_at`` .. ``final_step``);
    the steps before come from the checkpoint's log history, where each logged loss is the mean over the steps
    since the previous log. Steps between the last log and the checkpoint were never logged and cannot count.
    Returns None when the trainer gave no loss."""
    if segment_loss is None:
        return None
    before, logged = 0.0, 0  # sum of the per-step losses, and the last logged step, up to the resume
    for entry in log_history:
        if "loss" in entry and logged < entry["step"] <= resumed_at:
            before += entry["loss"] * (entry["step"] - logged)
            logged = entry["step"]
    steps_now = final_step - resumed_at
    return (before + segment_loss * steps_now) / max(logged + steps_now, 1)


def _adapter_record(config: RunConfig, model) -> dict | None:
    """The LoRA settings as trained (target_modules resolved: peft's default when the config left it empty)."""
    adapter = config.model.adapter
    if adapter is None:
        return None
    targets = sorted(model[0].model.peft_config["default"].target_modules)
    return {**adapter.model_dump(mode="json"), "target_modules": targets}


def check_run_consistent(run_dir: Path) -> dict:
    """run.json of a finished run whose final/, config.resolved.yaml and data/ are still the ones it recorded."""
    info, final = run_dir / "run.json", run_dir / "final"
    if not info.is_file() or not final.is_dir():
        raise UserError(f"{run_dir} holds no finished run (final/ and run.json). Run 'python -m train' first; an "
                        "interrupted run resumes where it stopped.")
    record = json.loads(info.read_text(encoding="utf-8"))
    if "run_id" not in record:
        raise UserError(f"{info} was written by an older embtune without run identity; train the run again.")
    problems = []
    if model_fingerprint(final) != record["final_fingerprint"]:
        problems.append(f"final/ is not the model this run trained (fingerprint {model_fingerprint(final)[:12]}, "
                        f"run.json says {record['final_fingerprint'][:12]})")
    if config_hash(load_config(run_dir / RESOLVED_NAME)) != record["config_hash"]:
        problems.append(f"{RESOLVED_NAME} was rewritten with other training settings after this run trained")
    meta = run_dir / "data" / "meta.json"
    if not meta.is_file() or json.loads(meta.read_text())["sha256"] != record["data_sha256"]:
        problems.append("data/ was rewritten after this run trained")
    problems += _base_problems(run_dir, final, record)
    if problems:
        raise UserError(f"{run_dir} no longer describes one run: " + "; ".join(problems) + ". Train again "
                        "('python -m train CONFIG') so the model, its data and its config belong together.")
    return record


def _base_problems(run_dir: Path, final: Path, record: dict) -> list[str]:
    """A LoRA run's final/ holds only the adapter: the base it loads onto must still be the one it trained on."""
    if not is_adapter_folder(final):
        return []
    base = resolve_model(load_config(run_dir / RESOLVED_NAME).model)
    if base.fingerprint == record["base_fingerprint"]:
        return []
    return [f"final/ is a LoRA adapter and its base {base.base_model} changed since training (fingerprint "
            f"{base.fingerprint[:12]}, run.json says {record['base_fingerprint'][:12]})"]
