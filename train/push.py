"""``python -m train.push CONFIG_OR_RUN_DIR [key=value ...]``: publish a trained run.

The published folder holds the model (``final/``), a model card (README.md) with the baseline-vs-tuned table, the
evaluation report, the resolved config and ``embtune_manifest.json`` (every published file's sha256).
``push.local_dir`` writes it atomically to a folder; ``push.repo_id`` uploads it to the Hugging Face Hub in one commit
(on ``push.revision`` when given). The token comes from HF_TOKEN or the credential store (``hf auth login``) and is
never printed or written.

Nothing is published that cannot be trusted: ``final/`` must hold weights and be the model training wrote
(``run.json``'s ``final_fingerprint``), and the evaluation must be of that model (``report.json``'s
``tuned_fingerprint`` and ``run_id``). A local folder holding files the user added is never replaced.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from configs.cli import parse, run
from configs.errors import UserError
from configs.load import RESOLVED_NAME
from configs.runs import atomic_dir, load_run, sha256_file
from configs.schema import RunConfig
from train.card import model_card
from train.model import model_fingerprint, weight_files

log = logging.getLogger("train.push")

MANIFEST = "embtune_manifest.json"


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


def assemble(config: RunConfig, out: Path) -> None:
    """Fill ``out`` with the model, card, report, resolved config and manifest of the run, after the checks."""
    run_dir = Path(config.run_dir)
    run_info, fingerprint = checked_final(run_dir)
    report = checked_report(run_dir, run_info, fingerprint)
    shutil.copytree(run_dir / "final", out, dirs_exist_ok=True)
    for name in ("report.json", "report.md", "report.html"):
        if report is not None and (run_dir / "eval" / name).is_file():
            shutil.copy2(run_dir / "eval" / name, out / f"eval_{name}")
    shutil.copy2(run_dir / RESOLVED_NAME, out / "embtune_config.yaml")
    (out / "README.md").write_text(model_card(config, run_info, report, fingerprint), encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps({"files": file_hashes(out)}, indent=2) + "\n", encoding="utf-8")


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


def push_local(config: RunConfig, target: Path) -> None:
    """Replace ``target`` atomically; refuse a file, a folder that is not an earlier publish, or one holding files
    that the earlier publish did not write."""
    target = target.expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise UserError(f"push.local_dir {target} is a file, not a folder. Choose a folder path (new or empty).")
    if target.exists() and any(target.iterdir()) and not (target / "embtune_config.yaml").is_file():
        raise UserError(f"push.local_dir {target} exists and is not an earlier embtune publish: it would be replaced. "
                        "Choose a new or empty folder.")
    with atomic_dir(target) as tmp:
        assemble(config, tmp)
        changes = user_changes(target, tmp) if target.is_dir() else []
        if changes:
            shown = ", ".join(changes[:10]) + (f" and {len(changes) - 10} more" if len(changes) > 10 else "")
            raise UserError(f"push.local_dir {target} is an earlier publish holding files it did not write: {shown}. "
                            "Replacing it would delete them: move them out, or publish to another folder.")
    log.info("published to %s", target)


def hub_token() -> str:
    """HF_TOKEN, or the token saved by ``hf auth login``; an error saying how to provide one."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("No Hugging Face token: set HF_TOKEN in the environment or run 'hf auth login'.")
    return token


def push_hub(config: RunConfig) -> str:
    """Create the repo (and branch) if needed and upload everything as one commit. Returns the commit URL."""
    from huggingface_hub import HfApi

    push = config.push
    api = HfApi(token=hub_token())
    with tempfile.TemporaryDirectory() as tmp:
        assemble(config, Path(tmp))
        try:
            api.create_repo(push.repo_id, private=push.private, exist_ok=True)
            if push.revision:
                api.create_branch(push.repo_id, branch=push.revision, exist_ok=True)
            commit = api.upload_folder(repo_id=push.repo_id, folder_path=tmp, revision=push.revision,
                                       commit_message=push.commit_message)
        except Exception as err:  # noqa: BLE001 - network, auth and permission errors all need the same advice
            raise UserError(f"Push to the Hub repo '{push.repo_id}' failed: {type(err).__name__}: "
                            f"{str(err)[:300]}. Check the network, the token's write access and the repo id.") from None
    log.info("pushed to %s (revision %s)", push.repo_id, push.revision or "main")
    return str(commit)


def hub_retry_command(config: RunConfig) -> str:
    """The command that redoes only the Hub part of a push (the local folder is already published)."""
    push = config.push
    args = [config.run_dir, "push.local_dir=null", f"push.repo_id={push.repo_id}",
            f"push.private={str(push.private).lower()}"]
    if push.revision:
        args.append(f"push.revision={push.revision}")
    return "python -m train.push " + shlex.join(args)


def main(argv: list[str] | None = None) -> int:
    # 1. The run's resolved config (push settings may be given as overrides); a missing token stops us before work.
    args, _ = parse(argv, "python -m train.push", "Publish a trained run to a folder and/or the Hub.")
    config = load_run(args.config, args.overrides)
    if not config.push.local_dir and not config.push.repo_id:
        raise UserError("Nothing to push to: set push.local_dir=FOLDER and/or push.repo_id=ORG/NAME.")
    if config.push.repo_id:
        hub_token()
    # 2. Local folder, then the Hub; a Hub failure leaves the local publish in place and says how to redo the rest.
    if config.push.local_dir:
        push_local(config, Path(config.push.local_dir))
    if config.push.repo_id:
        try:
            push_hub(config)
        except UserError as err:
            if not config.push.local_dir:
                raise
            raise UserError(f"The local publish in {Path(config.push.local_dir).expanduser().resolve()} is complete. "
                            f"The Hub part failed: {err} Retry only the Hub part with:\n  {hub_retry_command(config)}"
                            ) from None
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
