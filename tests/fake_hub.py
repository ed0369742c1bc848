"""In-process fake of the small part of the Hugging Face Hub HTTP API used to push a folder.

Covers what ``huggingface_hub`` 1.33 sends for ``HfApi.create_repo``, ``HfApi.create_branch`` and
``HfApi.upload_folder`` (both the xet "pipelined" path and the legacy ``create_commit`` path), plus
``whoami`` and ``model_info``/``repo_info``. Every file is declared "regular" at preupload, so
contents travel base64-encoded inside the NDJSON commit payload and no LFS/xet transfer happens.
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


class _HubError(Exception):
    """An HTTP error answer: status, message, optional ``X-Error-Code`` header and extra JSON fields."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def _git_blob_sha1(data: bytes) -> str:
    """Git object id of a blob, as the Hub reports it for regular files (``oid`` at preupload)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Threaded local HTTP server recording repos, branches, files, commits and auth headers."""

    def __init__(self, username: str = "fake-user") -> None:
        self.username = username
        self.endpoint = ""
        self.repos: dict[str, dict[str, Any]] = {}  # repo_id -> {"private": bool, "branches": set[str]}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo_id, revision) -> {path: bytes}
        self.commits: list[dict[str, str]] = []  # {"repo_id", "revision", "message"}
        self.auth_headers: list[str] = []  # every Authorization header value received
        self.requests: list[tuple[str, str]] = []  # (method, raw path) of every request, for debugging
        self._heads: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hub._serve(self, "GET")

            def do_POST(self) -> None:
                hub._serve(self, "POST")

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

    def _serve(self, req: BaseHTTPRequestHandler, method: str) -> None:
        """Authenticate, route and answer one request (always JSON, always with Content-Length)."""
        status, headers = 200, {}
        auth = req.headers.get("Authorization")
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))  # drain it even when rejecting
        with self._lock:
            self.requests.append((method, req.path))
            if auth is not None:
                self.auth_headers.append(auth)
        try:
            if not auth or not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
                raise _HubError(401, "FakeHub: missing Bearer token")
            url = urlsplit(req.path)
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

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        """Dispatch to the endpoint handlers; caller holds the lock."""
        if (method, path) == ("GET", "/api/whoami-v2"):
            token = {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}}
            return {"type": "user", "name": self.username, "fullname": self.username, "orgs": [], "auth": token}
        if (method, path) == ("POST", "/api/validate-yaml"):  # sent when the folder has a root README.md
            return {"errors": [], "warnings": []}
        if (method, path) == ("POST", "/api/repos/create"):
            return self._create_repo(json.loads(body or b"{}"))
        if method == "GET" and (m := _INFO_RE.match(path)):
            return self._repo_info(m["type"], m["repo"], unquote(m["rev"] or "main"))
        m = _ACTION_RE.match(path)
        if method != "POST" or m is None:
            raise _HubError(404, f"FakeHub: no route for {method} {path}")
        repo_id, rev = m["repo"], unquote(m["rev"])
        if repo_id not in self.repos:
            raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        if m["action"] == "branch":
            return self._create_branch(repo_id, rev, json.loads(body or b"{}").get("startingPoint") or "main")
        if rev not in self.repos[repo_id]["branches"]:
            raise _HubError(404, f"Revision {rev} not found in {repo_id}", "RevisionNotFound")
        if "create_pr" in query:
            raise _HubError(400, "FakeHub does not support create_pr")
        if m["action"] == "preupload":  # "regular" for all; "oid" lets the client skip unchanged files
            oids = {p: _git_blob_sha1(c) for p, c in self.files[(repo_id, rev)].items()}
            paths = [f["path"] for f in json.loads(body)["files"]]
            files = [{"path": p, "uploadMode": "regular", "shouldIgnore": False, "oid": oids.get(p)} for p in paths]
            return {"files": files}
        return self._commit(m["type"], repo_id, rev, body)

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        """Web URL of a repo, as the Hub returns it (``RepoUrl``/``CommitInfo`` parse it)."""
        prefix = "" if repo_type in ("model", "models") else f"{repo_type.removesuffix('s')}s/"
        return f"{self.endpoint}/{prefix}{repo_id}"

    def _create_repo(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/repos/create`` with ``{"name", "organization", "visibility"?, "type"?}``."""
        repo_id = f"{payload.get('organization') or self.username}/{payload['name']}"
        url = self._repo_url(payload.get("type") or "model", repo_id)
        if repo_id in self.repos:  # exist_ok=True swallows the 409 but still reads "url" from its body
            raise _HubError(409, "You already created this repo", url=url)
        private = payload.get("visibility") == "private" or payload.get("private") is True
        self.repos[repo_id] = {"private": private, "branches": {"main"}}
        self.files[(repo_id, "main")] = {}
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
        if (repo_id, starting_point) in self._heads:
            self._heads[(repo_id, branch)] = self._heads[(repo_id, starting_point)]
        return {}

    def _commit(self, repo_type: str, repo_id: str, rev: str, body: bytes) -> dict[str, Any]:
        """``POST /api/{type}s/{repo_id}/commit/{rev}`` with an NDJSON body of header + operations."""
        files, message = dict(self.files[(repo_id, rev)]), ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            op = json.loads(line)
            key, value = op["key"], op["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:  # lfsFile (needs an LFS/xet upload) or unknown operation
                raise _HubError(400, f"FakeHub does not support commit operation {key!r}")
        oid = hashlib.sha1(f"{repo_id}@{rev}#{len(self.commits)}".encode()).hexdigest()
        self.files[(repo_id, rev)] = files
        self._heads[(repo_id, rev)] = oid
        self.commits.append({"repo_id": repo_id, "revision": rev, "message": message})
        return {"success": True, "commitOid": oid, "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{oid}"}

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> dict[str, Any]:
        """``GET /api/{type}s/{repo_id}[/revision/{rev}]``: minimal ModelInfo/DatasetInfo payload."""
        if repo_id not in self.repos:
            raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        if rev not in self.repos[repo_id]["branches"]:
            raise _HubError(404, f"Revision {rev} not found", "RevisionNotFound")
        siblings = [{"rfilename": p, "size": len(c)} for p, c in sorted(self.files[(repo_id, rev)].items())]
        sha = self._heads.get((repo_id, rev), "0" * 40)
        return {"id": repo_id, "private": self.repos[repo_id]["private"], "sha": sha, "siblings": siblings}
