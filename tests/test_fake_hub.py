"""Push a small model folder with ``HfApi`` against the in-process ``FakeHub`` (no network)."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError

from fake_hub import FakeHub

TOKEN = "hf_test_0123456789abcdef"
REPO_ID = "alice/tiny-model"
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
    assert hub.files[(REPO_ID, branch)] == expected  # byte-identical, on the right branch
    if revision is not None:
        assert hub.files[(REPO_ID, "main")] == {}
    assert hub.commits == [{"repo_id": REPO_ID, "revision": branch, "message": "Upload tiny model"}]

    # Re-uploading identical files makes no commit (preupload returns the git oid of existing files);
    # the client then reads the branch head through repo_info.
    again = api.upload_folder(repo_id=REPO_ID, folder_path=tmp_path, revision=revision, commit_message="noop")
    assert again.oid == info.oid and len(hub.commits) == 1
    assert api.model_info(REPO_ID, revision=revision).sha == info.oid

    # Every request carried exactly our token, and nothing else reached the fake without one.
    assert hub.auth_headers == [f"Bearer {TOKEN}"] * len(hub.requests)
    paths = [path for _, path in hub.requests]
    assert f"/api/models/{REPO_ID}/preupload/{branch}" in paths
    assert f"/api/models/{REPO_ID}/commit/{branch}" in paths
    assert "/api/validate-yaml" in paths  # README.md at the folder root is validated first


def test_fake_hub_rejects_missing_token(hub: FakeHub) -> None:
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.endpoint, token=False).create_repo(REPO_ID, exist_ok=True)
    assert excinfo.value.response.status_code == 401
    assert hub.repos == {} and hub.auth_headers == []
    assert HfApi(endpoint=hub.endpoint, token=TOKEN).whoami()["name"] == "fake-user"
