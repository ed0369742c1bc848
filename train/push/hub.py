"""Publishing to the Hugging Face Hub: one verified commit, or nothing.

1. Whose repo: its namespace must be the token's user or one of its organisations (``whoami``); someone else's repo
   is refused before anything is created or sent (``precheck`` does this before the local publish too).
2. What is there: whether the repo exists and is public (``push.private`` cannot hide an existing public repo: we
   warn), and the files on the target branch. Files no embtune push wrote (no ``embtune_manifest.json``) are never
   replaced.
3. One commit (``create_commit``): every local file, plus a delete of every remote file this push no longer has, on
   ``push.revision`` (created from main if missing) or as a pull request against main (``push.create_pr``). The
   commit names the head it was computed against (``parent_commit``): if someone pushed meanwhile the Hub refuses
   it, and a refused commit changes nothing.
4. Verify: the committed revision holds exactly the local files, LFS files with the same sha256 and the others
   with the same git blob id (``verify_repo_checksums``).

The token comes from HF_TOKEN or ``hf auth login``; it is sent only in the Authorization header and removed from
any message that could reach a user.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError
from configs.schema import PushConfig

log = logging.getLogger(__name__)

MANIFEST = "embtune_manifest.json"
GIT_FILES = (".gitattributes",)  # the Hub writes it when creating a repo; never ours to delete or compare


@dataclass(frozen=True)
class Remote:
    exists: bool
    private: bool
    ref: str  # the branch the push commits to (main for a pull request)
    files: tuple[str, ...]  # on that branch, or on main when the branch does not exist yet


def hub_token() -> str:
    """HF_TOKEN, or the token saved by ``hf auth login``; an error saying how to provide one."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("No Hugging Face token: set HF_TOKEN in the environment or run 'hf auth login'.")
    return token


def check_settings(push: PushConfig) -> None:
    """Settings the Hub cannot honour together, refused before any work."""
    if push.create_pr and push.revision:
        raise UserError(f"push.create_pr opens a pull request against main, so it cannot be combined with "
                        f"push.revision={push.revision}. Drop one of them.")


@contextlib.contextmanager
def hub_errors(repo_id: str, token: str) -> Iterator[None]:
    """Network, auth and permission errors as one user error, with the token cut out of the message."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - network, auth and permission errors all need the same advice
        message = f"{type(err).__name__}: {str(err)[:300]}".replace(token, "***")
        raise UserError(f"Push to the Hub repo '{repo_id}' failed: {message}. Check the network, the token's write "
                        "access and the repo id.") from None


def owned_repo_id(api, repo_id: str) -> str:
    """``repo_id`` with its namespace (the user's when it has none), after checking the token may write there."""
    me = api.whoami()
    orgs = [org["name"] for org in me.get("orgs", [])]
    if "/" not in repo_id:
        return f"{me['name']}/{repo_id}"
    owner = repo_id.split("/")[0]
    if owner not in (me["name"], *orgs):
        raise UserError(f"The Hub repo '{repo_id}' belongs to '{owner}', which is neither you ('{me['name']}') nor "
                        f"one of your organisations ({', '.join(orgs) or 'none'}): nothing was pushed. Push to a "
                        f"repo of your own, e.g. push.repo_id={me['name']}/{repo_id.split('/')[1]}.")
    return repo_id


def remote_state(api, repo_id: str, push: PushConfig) -> Remote:
    """What the repo holds now on the branch this push commits to."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    ref = push.revision or "main"
    try:
        info = api.repo_info(repo_id)
    except RepositoryNotFoundError:
        return Remote(exists=False, private=push.private, ref=ref, files=())
    with contextlib.suppress(RevisionNotFoundError):  # a new branch starts from main
        info = api.repo_info(repo_id, revision=ref)
    return Remote(exists=True, private=bool(info.private), ref=ref,
                  files=tuple(s.rfilename for s in info.siblings or ()))


def check_remote(repo_id: str, remote: Remote) -> None:
    """Refuse to replace files no embtune push wrote."""
    theirs = [f for f in remote.files if f not in GIT_FILES]
    if theirs and MANIFEST not in theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise UserError(f"The Hub repo '{repo_id}' ({remote.ref}) holds files no embtune push wrote (it has no "
                        f"{MANIFEST}): {shown}. This push would replace them: push to another push.repo_id, or to "
                        "a new branch with push.revision=NAME.")


def warn_visibility(repo_id: str, push: PushConfig, remote: Remote) -> None:
    if remote.exists and not remote.private and push.private:
        log.warning("The Hub repo %s already exists and is PUBLIC: push.private=true does not change an existing "
                    "repo, so this model will be public. Make the repo private in its settings first, or push to a "
                    "new push.repo_id.", repo_id)


def precheck(push: PushConfig) -> None:
    """Before any local work: refuse what the Hub part would refuse (someone else's repo, files no embtune push
    wrote). An unreachable Hub is not refused here: the local publish goes ahead and the upload step says how to
    retry."""
    from huggingface_hub import HfApi

    api = HfApi(token=hub_token())
    try:
        repo_id = owned_repo_id(api, push.repo_id)
        remote = remote_state(api, repo_id, push)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - network trouble: the upload step reports it with its retry command
        log.debug("Hub pre-check skipped: %s", type(err).__name__)
        return
    check_remote(repo_id, remote)


def operations(folder: Path, remote_files: tuple[str, ...]) -> list:
    """Add every local file; delete every remote file (but .gitattributes) that the local folder no longer has."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    local = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    stale = [path for path in remote_files if path not in local and path not in GIT_FILES]
    if stale:
        log.info("deleting %d file(s) of an earlier push that this one does not have: %s", len(stale),
                 ", ".join(stale))
    return ([CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in local]
            + [CommitOperationDelete(path_in_repo=path) for path in stale])


def commit(api, repo_id: str, push: PushConfig, folder: Path):
    """Create the repo and branch if missing, then one commit against the head the deletes were computed from."""
    api.create_repo(repo_id, private=push.private, exist_ok=True)
    if push.revision:
        api.create_branch(repo_id, branch=push.revision, exist_ok=True)
    head = api.repo_info(repo_id, revision=push.revision or "main")
    files = tuple(s.rfilename for s in head.siblings or ())
    return api.create_commit(repo_id, operations(folder, files), commit_message=push.commit_message,
                             revision=push.revision, create_pr=push.create_pr, parent_commit=head.sha)


def verify(api, repo_id: str, folder: Path, info) -> None:
    """The committed revision must hold exactly the local files with the same content."""
    result = api.verify_repo_checksums(repo_id, revision=info.oid, local_dir=folder)
    problems = [f"{path} is missing" for path in result.extra_paths]
    problems += [f"{path} was not sent" for path in result.missing_paths if path not in GIT_FILES]
    problems += [f"{m['path']} differs ({m['algorithm']} {m['expected'][:16]}... on the Hub, {m['actual'][:16]}... "
                 "sent)" for m in result.mismatches]
    if problems:
        raise UserError(f"The Hub revision {info.oid} of '{repo_id}' ({info.commit_url}) does not hold what was sent: "
                        f"{'; '.join(problems)}. Do not use that revision; push again.")
    log.info("verified on the Hub: %d files identical to the local folder (sha256 for LFS files, git blob ids for "
             "the others)", result.checked_count)


def push_hub(push: PushConfig, folder: Path) -> str:
    """Publish ``folder`` to ``push.repo_id`` as one verified commit (or pull request). Returns its URL."""
    from huggingface_hub import HfApi

    token = hub_token()
    api = HfApi(token=token)
    with hub_errors(push.repo_id, token):
        repo_id = owned_repo_id(api, push.repo_id)
        remote = remote_state(api, repo_id, push)
        check_remote(repo_id, remote)
        warn_visibility(repo_id, push, remote)
        info = commit(api, repo_id, push, folder)
        verify(api, repo_id, folder, info)
    if push.create_pr and info.pr_url:
        log.info("opened pull request %s on %s", info.pr_url, repo_id)
        return str(info.pr_url)
    if push.create_pr:  # the Hub makes no empty commit, so no pull request either
        log.info("%s main already holds exactly these files: no pull request opened", repo_id)
    log.info("pushed to %s (revision %s): %s", repo_id, push.revision or "main", info.commit_url)
    return str(info.commit_url)
