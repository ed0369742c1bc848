"""In-process fake of the part of the Hugging Face Hub HTTP API that ``python -m train.push`` uses.

Covers what ``huggingface_hub`` 1.33 sends for ``whoami``, ``create_repo``, ``repo_info``/``model_info``,
``create_branch``, ``list_repo_tree`` (and so ``list_repo_files`` and ``verify_repo_checksums``), ``create_commit``
and ``upload_folder`` (the xet "pipelined" path and the legacy ``create_commit`` path, for regular files), with:

- ownership: the user writes to repos under its own name and its organisations (``orgs``); another namespace's repo
  (seeded with ``add_repo``) answers 403 to writes, and 404 to reads when private, as the Hub does;
- pull requests: ``create_pr=1`` on a commit opens ``refs/pr/N`` from ``main`` and answers ``pullRequestUrl``;
- LFS: files whose name ends with one of ``lfs_suffixes`` are "lfs" at preupload and travel through the LFS batch
  API and a PUT (the legacy path: set ``HF_HUB_DISABLE_XET``); the tree reports their sha256 like the Hub;
- history: every commit's files stay readable at its commit id; ``parentCommit`` that is not the head answers 412;
- faults: ``fail_next_commit`` (the commit answers an error and changes nothing) and ``corrupt`` (stored bytes
  differ from what was sent, for checks that compare after the upload).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_REPO = r"(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+|[^/]+)"
_ACTION_RE = re.compile(rf"^/api/{_REPO}/(?P<action>preupload|commit|branch)/(?P<rev>[^/]+)$")
_INFO_RE = re.compile(rf"^/api/{_REPO}(?:/revision/(?P<rev>[^/]+))?$")
_TREE_RE = re.compile(rf"^/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$")
_LFS_BATCH_RE = re.compile(r"^/(?:(?:datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_LFS_PUT_RE = re.compile(r"^/fake-lfs/(?P<oid>[0-9a-f]{64})$")
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


class _HubError(Exception):
    """An HTTP error answer: status, message, optional ``X-Error-Code`` header and extra JSON fields."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def _git_blob_sha1(data: bytes) -> str:
    """Git object id of a blob, as the Hub reports it for regular files (``oid`` at preupload and in the tree)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _read_body(req: BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with Content-Length or chunked (the LFS PUT streams a file object)."""
    if req.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return req.rfile.read(int(req.headers.get("Content-Length") or 0))
    parts = []
    while size := int(req.rfile.readline().split(b";")[0].strip() or b"0", 16):
        parts.append(req.rfile.read(size))
        req.rfile.readline()  # the CRLF after each chunk
    req.rfile.readline()  # the CRLF after the last (empty) chunk
    return b"".join(parts)


class FakeHub:
    """Threaded local HTTP server recording repos, refs, files, commits and auth headers."""

    def __init__(self, username: str = "fake-user", orgs: tuple[str, ...] = ("acme",),
                 lfs_suffixes: tuple[str, ...] = ()) -> None:
        self.username, self.orgs, self.lfs_suffixes = username, orgs, lfs_suffixes
        self.endpoint = ""
        self.repos: dict[str, dict[str, Any]] = {}  # repo_id -> {"private": bool, "branches": set[str]}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo_id, ref) -> {path: bytes}
        self.commits: list[dict[str, str]] = []  # {"repo_id", "revision", "message", "oid"} of each commit
        self.pulls: list[dict[str, str]] = []  # {"repo_id", "ref", "url"} of each pull request
        self.auth_headers: list[str] = []  # every Authorization header value received
        self.requests: list[tuple[str, str]] = []  # (method, raw path) of every request, for debugging
        self.fail_next_commit: tuple[int, str] | None = None  # (status, message) answered by the next commit
        self.corrupt: dict[str, bytes] = {}  # path -> bytes stored instead of what a commit sent
        self._snapshots: dict[str, dict[str, bytes]] = {}  # commit id -> files
        self._heads: dict[tuple[str, str], str] = {}
        self._lfs: dict[str, bytes] = {}  # sha256 -> uploaded bytes
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and chunked request bodies, like the Hub

            def do_GET(self) -> None:
                hub._serve(self, "GET")

            def do_POST(self) -> None:
                hub._serve(self, "POST")

            def do_PUT(self) -> None:
                hub._serve(self, "PUT")

            def log_message(self, format: str, *args: object) -> None:  # silence stderr access log
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def add_repo(self, repo_id: str, private: bool = False, files: dict[str, bytes] | None = None) -> None:
        """Seed a repo (any namespace, e.g. someone else's) with one commit of ``files`` on main."""
        with self._lock:
            self._new_repo(repo_id, private)
            self._store(repo_id, "main", {**self.files[(repo_id, "main")], **(files or {})}, "seeded")

    # ------------------------------------------------------------------------------------------- HTTP
    def _serve(self, req: BaseHTTPRequestHandler, method: str) -> None:
        """Authenticate, route and answer one request (always JSON, always with Content-Length)."""
        status, headers = 200, {}
        auth = req.headers.get("Authorization")
        body = _read_body(req)  # drain it even when rejecting
        url = urlsplit(req.path)
        with self._lock:
            self.requests.append((method, req.path))
            if auth is not None:
                self.auth_headers.append(auth)
        try:
            signed = method == "PUT" and _LFS_PUT_RE.match(url.path)  # a pre-signed storage URL: no token
            if not signed and (not auth or not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip()):
                raise _HubError(401, "FakeHub: missing Bearer token")
            with self._lock:
                payload = self._route(method, url.path, parse_qs(url.query), body)
        except _HubError as e:
            status, payload = e.status, {"error": str(e), **e.extra}
            headers = {"X-Error-Code": e.code} if e.code else {}
        except Exception as e:  # noqa: BLE001 - a 400 (not 500) so the client fails fast without retrying
            status, payload = 400, {"error": f"FakeHub could not handle request: {e!r}"}
        data = json.dumps(payload).encode()
        req.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
        """Dispatch to the endpoint handlers; caller holds the lock."""
        if (method, path) == ("GET", "/api/whoami-v2"):
            token = {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}}
            orgs = [{"name": org, "roleInOrg": "write"} for org in self.orgs]
            return {"type": "user", "name": self.username, "fullname": self.username, "orgs": orgs, "auth": token}
        if (method, path) == ("POST", "/api/validate-yaml"):  # sent when the folder has a root README.md
            return {"errors": [], "warnings": []}
        if (method, path) == ("POST", "/api/repos/create"):
            return self._create_repo(json.loads(body or b"{}"))
        if method == "PUT" and (m := _LFS_PUT_RE.match(path)):
            return self._lfs_put(m["oid"], body)
        if method == "POST" and (m := _LFS_BATCH_RE.match(path)):
            return self._lfs_batch(m["repo"], json.loads(body))
        if method == "GET" and (m := _INFO_RE.match(path)):
            return self._repo_info(m["type"], m["repo"], unquote(m["rev"] or "main"))
        if method == "GET" and (m := _TREE_RE.match(path)):
            return self._tree(m["repo"], unquote(m["rev"]), unquote(m["path"] or ""), "recursive" in str(query))
        m = _ACTION_RE.match(path)
        if method != "POST" or m is None:
            raise _HubError(404, f"FakeHub: no route for {method} {path}")
        repo_id, rev = m["repo"], unquote(m["rev"])
        self._check_write(repo_id)
        if m["action"] == "branch":
            return self._create_branch(repo_id, rev, json.loads(body or b"{}").get("startingPoint") or "main")
        self._files_at(repo_id, rev)  # 404 for an unknown revision
        if m["action"] == "preupload":  # "oid" lets the client skip unchanged files
            oids = {p: _git_blob_sha1(c) for p, c in self._files_at(repo_id, rev).items()}
            paths = [f["path"] for f in json.loads(body)["files"]]
            files = [{"path": p, "uploadMode": "lfs" if self._is_lfs(p) else "regular", "shouldIgnore": False,
                      "oid": oids.get(p)} for p in paths]
            return {"files": files}
        return self._commit(m["type"], repo_id, rev, body, create_pr="create_pr" in query)

    # ------------------------------------------------------------------------------------------- repos and refs
    def _namespaces(self) -> set[str]:
        return {self.username, *self.orgs}

    def _check_read(self, repo_id: str) -> None:
        repo = self.repos.get(repo_id)
        if repo is None or (repo["private"] and repo_id.split("/")[0] not in self._namespaces()):
            raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")

    def _check_write(self, repo_id: str) -> None:
        self._check_read(repo_id)
        if repo_id.split("/")[0] not in self._namespaces():
            raise _HubError(403, f"You don't have write access to {repo_id}")

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        """Web URL of a repo, as the Hub returns it (``RepoUrl``/``CommitInfo`` parse it)."""
        prefix = "" if repo_type in ("model", "models") else f"{repo_type.removesuffix('s')}s/"
        return f"{self.endpoint}/{prefix}{repo_id}"

    def _new_repo(self, repo_id: str, private: bool) -> None:
        """A repo as the Hub creates it: main holds one commit with a .gitattributes file."""
        self.repos[repo_id] = {"private": private, "branches": {"main"}}
        self.files[(repo_id, "main")] = {}
        self._store(repo_id, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")

    def _create_repo(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/repos/create`` with ``{"name", "organization", "visibility"?, "type"?}``."""
        namespace = payload.get("organization") or self.username
        repo_id = f"{namespace}/{payload['name']}"
        url = self._repo_url(payload.get("type") or "model", repo_id)
        if namespace not in self._namespaces():
            raise _HubError(403, f"You don't have the rights to create a model under the namespace {namespace}")
        if repo_id in self.repos:  # exist_ok=True swallows the 409 but still reads "url" from its body
            raise _HubError(409, "You already created this repo", url=url)
        self._new_repo(repo_id, payload.get("visibility") == "private" or payload.get("private") is True)
        return {"url": url, "name": repo_id, "id": repo_id}

    def _create_branch(self, repo_id: str, branch: str, starting_point: str) -> dict[str, Any]:
        """``POST /api/{type}s/{repo_id}/branch/{branch}``: copy the starting branch's files."""
        branches = self.repos[repo_id]["branches"]
        if branch in branches:  # huggingface_hub swallows 409 when exist_ok=True
            raise _HubError(409, f"Reference {branch} already exists")
        if starting_point not in branches:
            raise _HubError(404, f"Revision {starting_point} not found", "RevisionNotFound")
        branches.add(branch)
        self.files[(repo_id, branch)] = dict(self.files[(repo_id, starting_point)])
        self._heads[(repo_id, branch)] = self._heads[(repo_id, starting_point)]
        return {}

    def _files_at(self, repo_id: str, rev: str) -> dict[str, bytes]:
        """Files at a branch, a PR ref or a commit id; 404 otherwise."""
        if (repo_id, rev) in self.files:
            return self.files[(repo_id, rev)]
        if rev in self._snapshots:  # commit ids are unique across repos: sha1 of repo, ref and a counter
            return self._snapshots[rev]
        raise _HubError(404, f"Revision {rev} not found in {repo_id}", "RevisionNotFound")

    # ------------------------------------------------------------------------------------------- commits
    def _store(self, repo_id: str, ref: str, files: dict[str, bytes], message: str) -> str:
        oid = hashlib.sha1(f"{repo_id}@{ref}#{len(self.commits)}".encode()).hexdigest()
        self.files[(repo_id, ref)] = files
        self._snapshots[oid] = dict(files)
        self._heads[(repo_id, ref)] = oid
        self.commits.append({"repo_id": repo_id, "revision": ref, "message": message, "oid": oid})
        return oid

    def _commit(self, repo_type: str, repo_id: str, rev: str, body: bytes, create_pr: bool) -> dict[str, Any]:
        """``POST /api/{type}s/{repo_id}/commit/{rev}`` with an NDJSON body of header + operations. All or nothing:
        a failing operation (or ``fail_next_commit``) leaves every ref as it was."""
        ops = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(op["value"] for op in ops if op["key"] == "header")
        parent = header.get("parentCommit")
        if parent and parent != self._heads.get((repo_id, rev)):
            raise _HubError(412, f"Parent commit {parent} is not the head of {rev}: someone pushed meanwhile")
        if self.fail_next_commit is not None:
            (status, message), self.fail_next_commit = self.fail_next_commit, None
            raise _HubError(status, message)
        files = self._apply(dict(self.files[(repo_id, rev)]), [op for op in ops if op["key"] != "header"])
        files.update({p: c for p, c in self.corrupt.items() if p in files})
        ref = rev
        if create_pr:
            ref = f"refs/pr/{sum(p['repo_id'] == repo_id for p in self.pulls) + 1}"
            self._heads[(repo_id, ref)] = self._heads[(repo_id, rev)]
        oid = self._store(repo_id, ref, files, header["summary"])
        answer = {"success": True, "commitOid": oid, "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{oid}"}
        if create_pr:
            answer["pullRequestUrl"] = f"{self._repo_url(repo_type, repo_id)}/discussions/{ref.rsplit('/', 1)[1]}"
            self.pulls.append({"repo_id": repo_id, "ref": ref, "url": answer["pullRequestUrl"]})
        return answer

    def _apply(self, files: dict[str, bytes], ops: list[dict[str, Any]]) -> dict[str, bytes]:
        for op in ops:
            key, value = op["key"], op["value"]
            if key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key == "lfsFile":
                if value["oid"] not in self._lfs:
                    raise _HubError(400, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = self._lfs[value["oid"]]
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise _HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:
                raise _HubError(400, f"FakeHub does not support commit operation {key!r}")
        return files

    # ------------------------------------------------------------------------------------------- LFS
    def _is_lfs(self, path: str) -> bool:
        return bool(self.lfs_suffixes) and path.endswith(self.lfs_suffixes)

    def _lfs_batch(self, repo_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The LFS batch API: an upload action (a PUT to a "pre-signed" URL) for each object not stored yet."""
        self._check_write(repo_id)
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self._lfs:
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/fake-lfs/{obj['oid']}"}}
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def _lfs_put(self, oid: str, body: bytes) -> dict[str, Any]:
        if hashlib.sha256(body).hexdigest() != oid:
            raise _HubError(400, f"LFS upload does not match its oid {oid}")
        self._lfs[oid] = body
        return {}

    # ------------------------------------------------------------------------------------------- reads
    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> dict[str, Any]:
        """``GET /api/{type}s/{repo_id}[/revision/{rev}]``: minimal ModelInfo/DatasetInfo payload."""
        self._check_read(repo_id)
        files = self._files_at(repo_id, rev)
        siblings = [{"rfilename": p, "size": len(c)} for p, c in sorted(files.items())]
        sha = self._heads.get((repo_id, rev), rev)
        return {"id": repo_id, "private": self.repos[repo_id]["private"], "sha": sha, "siblings": siblings}

    def _tree(self, repo_id: str, rev: str, under: str, recursive: bool) -> list[dict[str, Any]]:
        """``GET /api/{type}s/{repo_id}/tree/{rev}[/{path}]``: files (with ``lfs`` for LFS files) and folders."""
        self._check_read(repo_id)
        prefix = under.rstrip("/") + "/" if under else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, content in sorted(self._files_at(repo_id, rev).items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries[folder] = {"type": "directory", "oid": _git_blob_sha1(folder.encode()), "path": folder}
            if recursive or len(parts) == 1:
                entries[path] = self._file_entry(path, content)
        return list(entries.values())

    def _file_entry(self, path: str, content: bytes) -> dict[str, Any]:
        entry = {"type": "file", "oid": _git_blob_sha1(content), "size": len(content), "path": path}
        if self._is_lfs(path):
            entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
        return entry
