"""``python -m train.push`` against the local fake Hub: one verified commit, deletes of what a push no longer has, pull
requests, visibility, someone else's repo, failed and corrupted commits, permissions of the staging folder, and the
token in no output, log, card or file on any of these paths (checked after every test)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from configs.cli import run
from conftest import trained_incidents_run
from fake_hub import GITATTRIBUTES, FakeHub

TOKEN = "hf_plantedSECRET0123456789abcdefXYZ"
OUTPUTS: list[str] = []  # everything push printed, for the token check


@pytest.fixture(scope="module")
def passing_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A trained and evaluated tiny run whose report says the tuned model won significantly (so the gate lets it
    through: these tests are about the Hub, tests/test_gate.py about the gate)."""
    from evaluate.__main__ import main as evaluate_main

    run_dir = trained_incidents_run(tmp_path_factory.mktemp("hub_run"), tiny_model_dir)
    assert run(lambda: evaluate_main([str(run_dir)])) == 0
    path = run_dir / "eval" / "report.json"
    report = json.loads(path.read_text())
    report["primary"].update(delta=0.2, ci_low=0.1, ci_high=0.3, p_value=0.001, significant=True, improved=True)
    path.write_text(json.dumps(report))
    return run_dir


@pytest.fixture
def run_dir(passing_run, tmp_path) -> Path:
    return Path(shutil.copytree(passing_run, tmp_path / "run"))


@pytest.fixture
def hub(monkeypatch, tmp_path, caplog):
    """A fake Hub with LFS for weights (legacy transfer), our token planted in HF_TOKEN; afterwards, the token must
    appear in no output, log line, file under tmp_path or file on the Hub."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    caplog.set_level(logging.DEBUG)
    OUTPUTS.clear()
    with FakeHub(lfs_suffixes=(".safetensors",)) as fake:
        monkeypatch.setattr(constants, "ENDPOINT", fake.endpoint)
        yield fake
    assert set(fake.auth_headers) <= {f"Bearer {TOKEN}"}  # the token travels only in the Authorization header
    assert not [text for text in [*OUTPUTS, caplog.text] if TOKEN in text]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not [path for files in fake.files.values() for path, data in files.items() if TOKEN.encode() in data]


def push(run_dir: Path, *overrides: str) -> tuple[int, str]:
    """Run ``python -m train.push`` in process; (exit code, what it printed)."""
    from train.push.publish import main as push_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(lambda: push_main([str(run_dir), *overrides]))
    OUTPUTS.append(out.getvalue() + err.getvalue())
    return code, out.getvalue() + err.getvalue()


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------- commits
def test_a_push_is_one_commit_equal_to_the_local_publish_and_the_next_deletes_what_it_no_longer_has(
        hub, run_dir, tmp_path, caplog):
    pub = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={pub}", "push.repo_id=acme/tiny")[0] == 0
    assert hub.files[("acme/tiny", "main")] == {".gitattributes": GITATTRIBUTES, **local_files(pub)}
    assert "verified on the Hub" in caplog.text
    assert ("POST", "/acme/tiny.git/info/lfs/objects/batch") in hub.requests  # the weights went by LFS
    commits = len(hub.commits)
    shutil.rmtree(run_dir / "eval")  # the next publish has no evaluation reports
    assert push(run_dir, f"push.local_dir={pub}", "push.repo_id=acme/tiny", "push.allow_regression=true")[0] == 0
    assert len(hub.commits) == commits + 1
    remote = hub.files[("acme/tiny", "main")]
    assert remote == {".gitattributes": GITATTRIBUTES, **local_files(pub)}
    assert not [name for name in remote if name.startswith("eval_")]
    # eval_report.{html,json,md} and retrieval.json: what the earlier publish had and this one (no eval/) has not
    assert re.search(r"deleting \d file\(s\) of an earlier push that this one does not have: eval_report.html",
                     caplog.text)


def test_create_pr_opens_a_pull_request_and_leaves_main_alone(hub, run_dir, caplog):
    assert push(run_dir, "push.repo_id=acme/tiny")[0] == 0
    main_before = dict(hub.files[("acme/tiny", "main")])
    shutil.rmtree(run_dir / "eval")
    code, _ = push(run_dir, "push.repo_id=acme/tiny", "push.create_pr=true", "push.allow_regression=true")
    assert code == 0
    assert hub.files[("acme/tiny", "main")] == main_before
    assert hub.pulls == [{"repo_id": "acme/tiny", "ref": "refs/pr/1", "url": f"{hub.endpoint}/acme/tiny/discussions/1"}]
    assert "eval_report.json" not in hub.files[("acme/tiny", "refs/pr/1")]
    assert f"opened pull request {hub.endpoint}/acme/tiny/discussions/1" in caplog.text


def test_create_pr_with_a_revision_is_refused_before_any_work(hub, run_dir, tmp_path):
    code, out = push(run_dir, f"push.local_dir={tmp_path / 'pub'}", "push.repo_id=acme/tiny", "push.create_pr=true",
                     "push.revision=v1")
    assert code == 2 and "push.create_pr opens a pull request against main, so it cannot be combined with " \
                          "push.revision=v1. Drop one of them." in out
    assert not (tmp_path / "pub").exists() and hub.repos == {}


def test_a_branch_push_creates_the_branch_and_verifies_it(hub, run_dir, tmp_path):
    assert push(run_dir, "push.repo_id=fake-user/tiny", "push.revision=v1")[0] == 0
    assert hub.files[("fake-user/tiny", "main")] == {".gitattributes": GITATTRIBUTES}
    assert "model.safetensors" in hub.files[("fake-user/tiny", "v1")]


# ------------------------------------------------------------------------------------------- visibility, ownership
def test_an_existing_public_repo_is_pushed_with_a_warning_that_it_stays_public(hub, run_dir, caplog):
    hub.add_repo("acme/open", private=False)
    assert push(run_dir, "push.repo_id=acme/open", "push.private=true")[0] == 0
    assert "The Hub repo acme/open already exists and is PUBLIC: push.private=true does not change an existing " \
           "repo, so this model will be public." in caplog.text
    assert hub.repos["acme/open"]["private"] is False and "README.md" in hub.files[("acme/open", "main")]


def test_someone_elses_repo_is_refused_and_nothing_is_sent(hub, run_dir, tmp_path):
    hub.add_repo("bob/model", private=False, files={"README.md": b"bob's card"})
    before, commits = dict(hub.files[("bob/model", "main")]), len(hub.commits)
    code, out = push(run_dir, f"push.local_dir={tmp_path / 'pub'}", "push.repo_id=bob/model")
    assert code == 2 and not (tmp_path / "pub").exists()  # refused before the local publish too
    assert "The Hub repo 'bob/model' belongs to 'bob', which is neither you ('fake-user') nor one of your " \
           "organisations (acme): nothing was pushed. Push to a repo of your own, e.g. " \
           "push.repo_id=fake-user/model." in out
    assert hub.files[("bob/model", "main")] == before and len(hub.commits) == commits
    assert not [m for m, path in hub.requests if m in ("POST", "PUT") and "bob" in path]


def test_a_repo_holding_files_no_embtune_push_wrote_is_not_replaced(hub, run_dir, tmp_path):
    hub.add_repo("acme/handmade", files={"README.md": b"my notes", "weights.bin": b"\0"})
    code, out = push(run_dir, f"push.local_dir={tmp_path / 'pub'}", "push.repo_id=acme/handmade")
    assert code == 2 and not (tmp_path / "pub").exists()
    assert "The Hub repo 'acme/handmade' (main) holds files no embtune push wrote (it has no " \
           "embtune_manifest.json): README.md, weights.bin. This push would replace them" in out
    assert hub.files[("acme/handmade", "main")]["README.md"] == b"my notes"


# ------------------------------------------------------------------------------------------- failures
def test_a_failed_commit_leaves_the_remote_as_it_was_and_says_how_to_retry(hub, run_dir, tmp_path):
    pub = tmp_path / "pub"
    assert push(run_dir, f"push.local_dir={pub}", "push.repo_id=acme/tiny")[0] == 0
    before, commits = dict(hub.files[("acme/tiny", "main")]), len(hub.commits)
    shutil.rmtree(run_dir / "eval")
    hub.fail_next_commit = (500, "storage backend unavailable")
    code, out = push(run_dir, f"push.local_dir={pub}", "push.repo_id=acme/tiny", "push.allow_regression=true")
    assert code == 2 and "storage backend unavailable" in out
    assert f"The local publish in {pub} is complete. The Hub part failed" in out
    assert "push.local_dir=null push.repo_id=acme/tiny push.private=true push.allow_regression=true" in out
    assert hub.files[("acme/tiny", "main")] == before and len(hub.commits) == commits


def test_a_hub_that_stored_other_bytes_is_an_error(hub, run_dir):
    hub.corrupt = {"model.safetensors": b"not the weights"}
    code, out = push(run_dir, "push.repo_id=acme/tiny")
    assert code == 2
    assert "does not hold what was sent: model.safetensors differs (sha256 " in out
    assert "Do not use that revision; push again." in out


# ------------------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_the_hub_staging_folder_has_the_users_normal_permissions(hub, run_dir, monkeypatch, umask):
    import train.push.publish

    seen = {}

    def record(push_config, folder):
        seen.update({p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]})
        return real(push_config, folder)

    real = train.push.publish.push_hub
    monkeypatch.setattr(train.push.publish, "push_hub", record)
    old = os.umask(umask)
    try:
        assert push(run_dir, "push.repo_id=acme/tiny")[0] == 0
    finally:
        os.umask(old)
    folder = {(0o777 & ~umask)}
    assert {mode for rel, mode in seen.items() if rel in (".", "1_Pooling")} == folder
    assert {mode for rel, mode in seen.items() if rel not in (".", "1_Pooling")} == {0o666 & ~umask}
