"""``python -m train.push CONFIG_OR_RUN_DIR [key=value ...]``: publish a trained run.

The published folder holds the model (``final/``), a model card (README.md) with the baseline-vs-tuned table, the
evaluation report and the resolved config. ``push.local_dir`` writes it atomically to a folder; ``push.repo_id``
uploads it to the Hugging Face Hub in one commit (on ``push.revision`` when given). The token comes from HF_TOKEN or
the credential store (``hf auth login``) and is never printed or written.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from configs.cli import parse, run
from configs.errors import UserError
from configs.load import RESOLVED_NAME
from configs.runs import atomic_dir, load_run
from configs.schema import RunConfig
from train.card import model_card

log = logging.getLogger("train.push")


def assemble(config: RunConfig, out: Path) -> None:
    """Fill ``out`` with the model, card, report and resolved config of the run."""
    run_dir = Path(config.run_dir)
    final = run_dir / "final"
    if not (run_dir / "run.json").is_file() or not final.is_dir():
        raise UserError(f"{run_dir} has no trained model (final/ and run.json). Run 'python -m train' first.")
    shutil.copytree(final, out, dirs_exist_ok=True)
    report_path = run_dir / "eval" / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    if report is None:
        log.warning("no evaluation report in %s: the card will say it was not evaluated", run_dir / "eval")
    for name in ("report.json", "report.md", "report.html"):
        if (run_dir / "eval" / name).is_file():
            shutil.copy2(run_dir / "eval" / name, out / f"eval_{name}")
    shutil.copy2(run_dir / RESOLVED_NAME, out / "embtune_config.yaml")
    run_info = json.loads((run_dir / "run.json").read_text())
    (out / "README.md").write_text(model_card(config, run_info, report), encoding="utf-8")


def push_local(config: RunConfig, target: Path) -> None:
    """Replace ``target`` atomically; refuse to replace a folder that is not an earlier publish."""
    target = target.expanduser().resolve()
    if target.exists() and any(target.iterdir()) and not (target / "embtune_config.yaml").is_file():
        raise UserError(f"push.local_dir {target} exists and is not an earlier embtune publish: it would be replaced. "
                        "Choose a new or empty folder.")
    with atomic_dir(target) as tmp:
        assemble(config, tmp)
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


def main(argv: list[str] | None = None) -> int:
    # 1. The run's resolved config (push settings may be given as overrides).
    args, _ = parse(argv, "python -m train.push", "Publish a trained run to a folder and/or the Hub.")
    config = load_run(args.config, args.overrides)
    if not config.push.local_dir and not config.push.repo_id:
        raise UserError("Nothing to push to: set push.local_dir=FOLDER and/or push.repo_id=ORG/NAME.")
    # 2. Local folder, then the Hub.
    if config.push.local_dir:
        push_local(config, Path(config.push.local_dir))
    if config.push.repo_id:
        push_hub(config)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
