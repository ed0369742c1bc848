"""``python -m train.push CONFIG_OR_RUN_DIR [key=value ...]``: publish a trained run.

The published folder holds the model (``final/``), a model card (README.md: the library's card with our held-out
baseline-vs-tuned evaluation, see ``train.push.card``), the evaluation reports, the resolved config and
``embtune_manifest.json`` (every published file's sha256). ``push.local_dir`` writes it atomically to a folder with
the user's normal permissions; ``push.repo_id`` uploads the same files to the Hugging Face Hub as one verified commit
or pull request (``train.push.hub``). The token comes from HF_TOKEN or the credential store (``hf auth login``) and is
never printed or written.

Nothing is published that cannot be trusted: ``final/`` must hold weights and be the model training wrote
(``run.json``'s ``final_fingerprint``), the evaluation must be of that model (``report.json``'s
``tuned_fingerprint`` and ``run_id``), and the model must have beaten its base without forgetting (``train.push.gate``;
``push.allow_regression=true`` overrides it and the card says so). A local folder holding files the user added is
never replaced; no training text is published unless ``push.card_examples=true`` (``train.push.privacy``).

``retrieval.json`` records which retrieval system the report measured best on the primary retrieval set (the model
alone, chunked MaxP, or a BM25 hybrid) with its settings and every candidate's main metric; ``push.system`` says
whether the card describes that system or the model alone (``train.push.system``).

``push.merge_ratio`` publishes the base/tuned interpolation ``python -m evaluate merge`` measured at that ratio
instead of the tuned model; the gate and the card then read its numbers (``train.push.interpolated``).

``push.export`` adds ONNX / OpenVINO exports to the published folder, each checked against its PyTorch weights
(``train.push.export_parity``: an fp32 export that does not reproduce them stops the publish), with their table in
the card and
``eval_exports.json``. ``push.mlflow`` then logs the published folder in MLflow and registers it as a new model
version (``train.push.mlflow_registry``); an unreachable tracking server is refused before anything is published.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from configs.cli import parse, run
from configs.errors import UserError
from configs.load import RESOLVED_NAME
from configs.runs import atomic_dir, load_run, normal_permissions, sha256_file
from configs.schema import RunConfig
from core.adapters import is_adapter_folder
from core.export import check_exportable
from core.model import model_fingerprint, weight_files
from evaluate.interpolate import merged_folder
from train.push.card import model_card
from train.push.card_usage import model_ref
from train.push.export_card import exports_markdown
from train.push.export_parity import export_all
from train.push.gate import check_gate
from train.push.hub import MANIFEST, check_settings, hub_token, precheck, push_hub
from train.push.interpolated import merge_reports, merged_report
from train.push.library_card import read_card
from train.push.merged_adapter import merged_model_folder
from train.push.mlflow_registry import check_mlflow, register, shown_uri, tracking_uri
from train.push.privacy import check_no_training_text, public_reports
from train.push.system import write_retrieval_json

log = logging.getLogger("train.push")


def checked_final(run_dir: Path) -> tuple[dict, str]:
    """run.json and the fingerprint of ``final/``, after checking the folder holds the weights training wrote."""
    final = run_dir / "final"
    if not (run_dir / "run.json").is_file() or not final.is_dir():
        raise UserError(f"{run_dir} has no trained model (final/ and run.json). Run 'python -m train' first.")
    if not weight_files(final):
        raise UserError(f"{final} holds no weights (model.safetensors, pytorch_model.bin or shards with their "
                        f"index): nothing to publish. Train again with 'python -m train {run_dir}'.")
    run_info = json.loads((run_dir / "run.json").read_text())
    fingerprint = model_fingerprint(final)
    if run_info.get("final_fingerprint") not in (None, fingerprint):
        raise UserError(f"{final} was changed after training: its fingerprint {fingerprint[:16]}... differs from "
                        f"the {run_info['final_fingerprint'][:16]}... recorded in run.json. Publish only what "
                        f"training wrote: train again with 'python -m train {run_dir}'.")
    return run_info, fingerprint


def checked_report(run_dir: Path, run_info: dict, fingerprint: str) -> dict | None:
    """eval/report.json when it is an evaluation of exactly this ``final/`` of exactly this run; None if absent."""
    path = run_dir / "eval" / "report.json"
    if not path.is_file():
        log.warning("no evaluation report in %s: the card will say it was not evaluated", path.parent)
        return None
    report = json.loads(path.read_text())
    if "tuned_fingerprint" not in report:
        why = "the report records no tuned_fingerprint (written by an older embtune)"
    elif report["tuned_fingerprint"] != fingerprint:
        why = f"it evaluated fingerprint {report['tuned_fingerprint'][:16]}..., final/ is {fingerprint[:16]}..."
    elif run_info.get("run_id") and report.get("run_id") != run_info["run_id"]:
        why = f"it is of run {report.get('run_id') or '(none recorded)'}, final/ is of run {run_info['run_id']}"
    else:
        return report
    raise UserError(f"The evaluation in {path.parent} is of another model ({why}); run 'python -m evaluate "
                    f"{run_dir}' again before pushing.")


@dataclass(frozen=True)
class Checked:
    """What the checks established about a run: its record, the model's fingerprint, its evaluation (if any) and the
    gate's findings (empty when the model beat its base)."""

    run_info: dict
    fingerprint: str
    report: dict | None
    findings: list[str]


def checked_run(config: RunConfig) -> Checked:
    """Every check before publishing: the weights are training's, the evaluation is of them, the gate passes."""
    run_dir = Path(config.run_dir)
    run_info, fingerprint = checked_final(run_dir)
    report = checked_report(run_dir, run_info, fingerprint)
    if config.push.merge_ratio is not None:  # the interpolation is what gets published: its numbers decide
        report = merged_report(config, report, run_info)
    return Checked(run_info, fingerprint, report, check_gate(config, report))


def assemble(config: RunConfig, checked: Checked, out: Path) -> None:
    """Fill ``out`` with the model, its exports (``push.export``, each checked against the model), card, evaluation
    reports, resolved config and manifest of the checked run."""
    run_dir = Path(config.run_dir)
    copy_model(config, run_dir / "final", out)
    published = model_fingerprint(out)  # final/'s own, unless the adapter or an interpolation was merged
    rows = export_all(out, config)  # writes eval_exports.json; a failed fp32 parity check stops the publish here
    card = model_card(config, checked.run_info, checked.report, published, findings=checked.findings,
                      library=read_card(run_dir / "final"))
    card += exports_markdown(rows, out, model_ref(config), is_repo=bool(config.push.repo_id))
    texts = {"README.md": card}
    if checked.report is not None:  # a merged publish's reports are rebuilt from its own numbers
        merged = config.push.merge_ratio is not None
        reports = public_reports(run_dir / "eval", checked.report, config.push.card_examples and not merged)
        texts.update({f"eval_{name}": text for name, text in reports.items()})
        texts.update(merge_reports(run_dir / "eval") if merged else {})
    if not config.push.card_examples:
        check_no_training_text(texts, run_dir / "data")
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    write_retrieval_json(config, checked.report, out)  # the system the card describes, machine-readable
    shutil.copy2(run_dir / RESOLVED_NAME, out / "embtune_config.yaml")
    (out / MANIFEST).write_text(json.dumps({"files": file_hashes(out)}, indent=2) + "\n", encoding="utf-8")


def copy_model(config: RunConfig, final: Path, out: Path) -> None:
    """``final/`` into ``out``: as trained; with ``push.merge_ratio`` the base/tuned interpolation at that ratio;
    for a LoRA run with ``push.merge_adapter`` the base with the adapter merged in. The last two are plain folders
    that load without peft. A full model with ``merge_adapter`` is an error."""
    push = config.push
    if push.merge_ratio is None and not push.merge_adapter:
        shutil.copytree(final, out, dirs_exist_ok=True)
        return
    with tempfile.TemporaryDirectory(prefix=".merge-", dir=out.parent) as tmp:
        if push.merge_ratio is not None:
            merged = merged_folder(config, push.merge_ratio, Path(tmp) / "merged")
        else:
            merged = merged_model_folder(final, Path(tmp) / "merged", config.model)
        shutil.copytree(merged, out, dirs_exist_ok=True)


def file_hashes(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` except the manifest itself."""
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST}


def user_changes(target: Path, new: Path) -> list[str]:
    """Files in an earlier publish ``target`` that the publish did not write (added or edited since).

    The earlier publish's manifest says what it wrote; a publish older than manifests owns what ``new`` holds."""
    manifest = target / MANIFEST
    if manifest.is_file():
        owned = json.loads(manifest.read_text()).get("files", {})
    else:
        owned = {rel: None for rel in file_hashes(new)}
    changes = []
    for rel, digest in file_hashes(target).items():
        if rel not in owned:
            changes.append(f"{rel} (added)")
        elif owned[rel] is not None and owned[rel] != digest:
            changes.append(f"{rel} (edited)")
    return changes


def push_local(config: RunConfig, checked: Checked, target: Path) -> None:
    """Replace ``target`` atomically; refuse a file, a folder that is not an earlier publish, or one holding files
    that the earlier publish did not write."""
    target = target.expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise UserError(f"push.local_dir {target} is a file, not a folder. Choose a folder path (new or empty).")
    if target.exists() and any(target.iterdir()) and not (target / "embtune_config.yaml").is_file():
        raise UserError(f"push.local_dir {target} exists and is not an earlier embtune publish: it would be replaced. "
                        "Choose a new or empty folder.")
    with atomic_dir(target) as tmp:  # the folder gets the user's normal permissions back before the rename
        assemble(config, checked, tmp)
        changes = user_changes(target, tmp) if target.is_dir() else []
        if changes:
            shown = ", ".join(changes[:10]) + (f" and {len(changes) - 10} more" if len(changes) > 10 else "")
            raise UserError(f"push.local_dir {target} is an earlier publish holding files it did not write: {shown}. "
                            "Replacing it would delete them: move them out, or publish to another folder.")
    log.info("published to %s", target)


def push_staged(config: RunConfig, checked: Checked) -> str:
    """Assemble into a temporary folder (with the user's normal permissions, like a local publish), push it, and
    register exactly that folder in MLflow (``push.mlflow``) before it is removed."""
    with tempfile.TemporaryDirectory(prefix="embtune-push-") as tmp:
        staging = Path(tmp) / "model"
        staging.mkdir()
        assemble(config, checked, staging)
        normal_permissions(staging)
        url = push_hub(config.push, staging)
        register_published(config, checked, staging, where=f"the Hub repository {config.push.repo_id}")
        return url


def register_published(config: RunConfig, checked: Checked, folder: Path, where: str) -> None:
    """``push.mlflow``: log the published ``folder`` and register it as a new model version (nothing without it).
    The publish is complete by then: a registry failure says so rather than leaving the user to guess."""
    settings = config.push.mlflow
    if settings is None:
        return
    uri = shown_uri(tracking_uri(config))
    try:
        version = register(config, folder, checked.report)
    except Exception as err:  # noqa: BLE001 - store, network and artifact errors: the publish itself stands
        raise UserError(f"The publish to {where} is complete, but registering it in MLflow at {uri} failed "
                        f"({type(err).__name__}: {' '.join(str(err).split())[:300]}). Fix the MLflow server and "
                        "push again to register it.") from None
    log.info("registered %s version %s in MLflow at %s (experiment %s)", settings.registered_model_name, version,
             uri, settings.experiment)


def hub_part(config: RunConfig, checked: Checked) -> str:
    """Upload the local publish (or, without one, a staging copy). A Hub failure after a local publish leaves that
    publish in place and says how to redo only the Hub part."""
    if not config.push.local_dir:
        return push_staged(config, checked)
    folder = Path(config.push.local_dir).expanduser().resolve()
    try:
        return push_hub(config.push, folder)
    except UserError as err:
        raise UserError(f"The local publish in {folder} is complete. The Hub part failed: {err} Retry only the Hub "
                        f"part with:\n  {hub_retry_command(config)}") from None


def hub_retry_command(config: RunConfig) -> str:
    """The command that redoes only the Hub part of a push (the local folder is already published)."""
    push = config.push
    args = [config.run_dir, "push.local_dir=null", f"push.repo_id={push.repo_id}",
            f"push.private={str(push.private).lower()}"]
    flags = ("create_pr", "allow_regression", "card_examples", "merge_adapter")
    args += [f"push.{key}=true" for key in flags if getattr(push, key)]
    if push.merge_ratio is not None:
        args.append(f"push.merge_ratio={push.merge_ratio:g}")
    if push.revision:
        args.append(f"push.revision={push.revision}")
    if push.export:
        args.append(f"push.export=[{','.join(push.export)}]")
    if push.mlflow:  # the registry step comes after the Hub's, so it did not run either
        args += [f"push.mlflow.{key}={value}" for key, value in push.mlflow.model_dump(exclude_none=True).items()]
    return "python -m train.push " + shlex.join(args)


def main(argv: list[str] | None = None) -> int:
    # 1. The run's resolved config (push settings may be given as overrides); a missing token stops us before work.
    args, _ = parse(argv, "python -m train.push", "Publish a trained run to a folder and/or the Hub.")
    config = load_run(args.config, args.overrides)
    push = config.push
    if not push.local_dir and not push.repo_id:
        raise UserError("Nothing to push to: set push.local_dir=FOLDER and/or push.repo_id=ORG/NAME.")
    if push.repo_id:
        check_settings(push)
        hub_token()
    if push.mlflow:
        check_mlflow(config)  # an unreachable tracking server is refused before anything is published
    # 2. The checks: the weights are training's, the evaluation is of them, the model beat its base (the gate), the
    #    exporter can handle the model, and the Hub repo is the user's and holds nothing embtune did not write.
    checked = checked_run(config)
    if push.merge_adapter and not is_adapter_folder(Path(config.run_dir) / "final"):
        raise UserError(f"push.merge_adapter=true, but {config.run_dir}/final holds a full model, not a LoRA adapter; "
                        "drop push.merge_adapter.")
    if push.export:
        merged = push.merge_adapter or push.merge_ratio is not None
        check_exportable(Path(config.run_dir) / "final", push.export, merged=merged)
    if push.repo_id:
        precheck(push)
    # 3. The local folder, assembled once (exports and their parity check included) and written atomically; then the
    #    Hub, from that same folder (or a staging copy), verified; then MLflow registers the published folder.
    if push.local_dir:
        push_local(config, checked, Path(push.local_dir))
    if push.repo_id:
        hub_part(config, checked)
    if push.local_dir:
        register_published(config, checked, Path(push.local_dir).expanduser().resolve(), where=push.local_dir)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
