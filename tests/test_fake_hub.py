"""The fake Hub speaks the Hub API as ``huggingface_hub`` uses it: uploads (xet pipeline and legacy commit), LFS,
pull requests, deletes, history, ownership and all-or-nothing commits (no network)."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from fake_hub import GITATTRIBUTES, FakeHub

TOKEN = "hf_test_0123456789abcdef"
REPO_ID = "acme/tiny-model"  # the fake user belongs to the organisation acme
# Closed local port: any call that ignored `HfApi(endpoint=...)` and fell back to the endpoint
# cached in `huggingface_hub.constants` at import time would fail here instead of reaching the Hub.
DEAD_ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running FakeHub, with the environment (and the constants read from it at import) pinned."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads these env vars once, at import: patch the module constants as well.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as fake:
        yield fake


def _make_model_folder(root: Path) -> dict[str, bytes]:
    """Write config.json, README.md, model.safetensors (~100 KB) and a nested file; return their bytes."""
    rng = random.Random(0)
    n = 25_000
    header = json.dumps({"weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    files = {
        "config.json": json.dumps({"model_type": "tiny", "hidden_size": 8}, indent=2).encode(),
        "README.md": b"---\nlicense: mit\n---\n# Tiny model\n\nUnicode: \xc3\xa9\xe2\x9c\x93\n",
        "model.safetensors": struct.pack("<Q", len(header)) + header + rng.randbytes(4 * n),
        "extra/notes.md": b"nested file\r\nwith CRLF and a NUL \x00 byte\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.mark.parametrize("xet_pipeline", [True, False], ids=["pipelined-upload", "legacy-create-commit"])
@pytest.mark.parametrize(("private", "revision"), [(True, "v1"), (False, None)], ids=["private-v1", "public-main"])
def test_push_folder_to_fake_hub(
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    xet_pipeline: bool,
    private: bool,
    revision: str | None,
) -> None:
    # hf_xet is installed, so upload_folder takes the pipelined path unless HF_HUB_DISABLE_XET is set.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", not xet_pipeline)
    expected = _make_model_folder(tmp_path)
    assert 90_000 < len(expected["model.safetensors"]) < 110_000
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)

    repo_url = api.create_repo(REPO_ID, repo_type="model", private=private, exist_ok=True)
    assert repo_url == f"{hub.endpoint}/{REPO_ID}" and repo_url.repo_id == REPO_ID
    api.create_repo(REPO_ID, repo_type="model", private=not private, exist_ok=True)  # 409, swallowed
    if revision is not None:
        api.create_branch(REPO_ID, branch=revision, exist_ok=True)
        api.create_branch(REPO_ID, branch=revision, exist_ok=True)  # 409, swallowed

    info = api.upload_folder(
        repo_id=REPO_ID, folder_path=tmp_path, revision=revision, commit_message="Upload tiny model"
    )
    branch = revision or "main"
    assert info.commit_url == f"{hub.endpoint}/{REPO_ID}/commit/{info.oid}"
    assert hub.repos == {REPO_ID: {"private": private, "branches": {"main", branch}}}
    assert hub.files[(REPO_ID, branch)] == {".gitattributes": GITATTRIBUTES, **expected}  # byte-identical
    if revision is not None:
        assert hub.files[(REPO_ID, "main")] == {".gitattributes": GITATTRIBUTES}
    assert [(c["revision"], c["message"]) for c in hub.commits] == [("main", "initial commit"),
                                                                     (branch, "Upload tiny model")]

    # Re-uploading identical files makes no commit (preupload returns the git oid of existing files);
    # the client then reads the branch head through repo_info.
    again = api.upload_folder(repo_id=REPO_ID, folder_path=tmp_path, revision=revision, commit_message="noop")
    assert again.oid == info.oid and len(hub.commits) == 2
    assert api.model_info(REPO_ID, revision=revision).sha == info.oid

    # Every request carried exactly our token, and nothing else reached the fake without one.
    assert hub.auth_headers == [f"Bearer {TOKEN}"] * len(hub.requests)
    paths = [path for _, path in hub.requests]
    assert f"/api/models/{REPO_ID}/preupload/{branch}" in paths
    assert f"/api/models/{REPO_ID}/commit/{branch}" in paths
    assert "/api/validate-yaml" in paths  # README.md at the folder root is validated first


def _api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def test_lfs_files_travel_by_the_batch_api_and_report_their_sha256(hub, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the legacy LFS transfer the fake speaks
    hub.lfs_suffixes = (".safetensors",)
    expected = _make_model_folder(tmp_path)
    api = _api(hub)
    api.create_repo(REPO_ID)
    info = api.upload_folder(repo_id=REPO_ID, folder_path=tmp_path, commit_message="lfs")
    assert hub.files[(REPO_ID, "main")]["model.safetensors"] == expected["model.safetensors"]
    assert ("PUT", f"/fake-lfs/{hashlib.sha256(expected['model.safetensors']).hexdigest()}") in hub.requests
    tree = {f.path: f for f in api.list_repo_tree(REPO_ID, recursive=True, revision=info.oid) if f.path != "extra"}
    assert tree["model.safetensors"].lfs.sha256 == hashlib.sha256(expected["model.safetensors"]).hexdigest()
    assert tree["config.json"].lfs is None
    check = api.verify_repo_checksums(REPO_ID, revision=info.oid, local_dir=tmp_path)
    assert check.mismatches == [] and check.extra_paths == [] and check.missing_paths == [".gitattributes"]


def test_a_pull_request_leaves_main_alone_and_deletes_happen_in_the_same_commit(hub, tmp_path) -> None:
    api = _api(hub)
    api.create_repo(REPO_ID)
    ops = [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a"),
           CommitOperationAdd(path_in_repo="b.txt", path_or_fileobj=b"b")]
    first = api.create_commit(REPO_ID, ops, commit_message="first")
    ops = [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a2"), CommitOperationDelete("b.txt")]
    pr = api.create_commit(REPO_ID, ops, commit_message="change", create_pr=True, parent_commit=first.oid)
    assert pr.pr_url == f"{hub.endpoint}/{REPO_ID}/discussions/1" and pr.pr_revision == "refs/pr/1"
    assert hub.files[(REPO_ID, "main")] == {".gitattributes": GITATTRIBUTES, "a.txt": b"a", "b.txt": b"b"}
    assert sorted(api.list_repo_files(REPO_ID, revision="refs/pr/1")) == [".gitattributes", "a.txt"]
    assert sorted(api.list_repo_files(REPO_ID, revision=first.oid)) == [".gitattributes", "a.txt", "b.txt"]


def test_a_refused_commit_changes_nothing(hub) -> None:
    api = _api(hub)
    api.create_repo(REPO_ID)
    head = api.model_info(REPO_ID).sha
    api.create_commit(REPO_ID, [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a")], commit_message="x")
    before = dict(hub.files[(REPO_ID, "main")])
    with pytest.raises(HfHubHTTPError) as stale:  # computed against an older head: someone pushed meanwhile
        api.create_commit(REPO_ID, [CommitOperationDelete("a.txt")], commit_message="y", parent_commit=head)
    assert stale.value.response.status_code == 412
    hub.fail_next_commit = (500, "storage unavailable")
    with pytest.raises(HfHubHTTPError, match="storage unavailable"):
        api.create_commit(REPO_ID, [CommitOperationDelete("a.txt")], commit_message="z")
    assert hub.files[(REPO_ID, "main")] == before and len(hub.commits) == 2


def test_someone_elses_repo_refuses_writes_and_hides_when_private(hub) -> None:
    hub.add_repo("bob/public-model", private=False, files={"README.md": b"bob's"})
    hub.add_repo("bob/secret-model", private=True)
    api = _api(hub)
    assert api.whoami()["orgs"] == [{"name": "acme", "roleInOrg": "write"}]
    with pytest.raises(HfHubHTTPError) as denied:
        api.create_commit("bob/public-model", [CommitOperationDelete("README.md")], commit_message="mine now")
    assert denied.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as create:
        api.create_repo("bob/new-model")
    assert create.value.response.status_code == 403
    assert api.model_info("bob/public-model").private is False
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("bob/secret-model")
    assert hub.files[("bob/public-model", "main")]["README.md"] == b"bob's"


def test_fake_hub_rejects_missing_token(hub: FakeHub) -> None:
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.endpoint, token=False).create_repo(REPO_ID, exist_ok=True)
    assert excinfo.value.response.status_code == 401
    assert hub.repos == {} and hub.auth_headers == []
    assert HfApi(endpoint=hub.endpoint, token=TOKEN).whoami()["name"] == "fake-user"
