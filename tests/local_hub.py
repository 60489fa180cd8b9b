"""A small, real HTTP server that stands in for the Hugging Face Hub's upload API.

It implements just what `huggingface_hub` calls to authenticate, create a model or dataset repository
and commit files (sent inline, base64-encoded, in the NDJSON commit payload), and stores the committed
files on disk (`storage/<owner>/<name>` for models, `storage/datasets/<owner>/<name>` for datasets) so
tests can compare them with the local folder.
"""

import base64
import hashlib
import http.server
import json
import threading
from pathlib import Path

import yaml
from huggingface_hub import DatasetCardData, ModelCardData

TOKEN = "hf_local_test_token"
USER = "tester"


class _HubHandler(http.server.BaseHTTPRequestHandler):
    server: "LocalHub"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, payload: dict | list, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._reply(401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if self.path.startswith("/api/whoami-v2"):
            if self._authorised():
                self._reply(200, {"type": "user", "name": USER, "auth": {"accessToken": {"role": "write"}}})
        elif parts[:2] == ["api", "datasets"] and parts[4:5] in ([], ["revision"]) and self._dataset(parts[2:4]):
            self._dataset_info("/".join(parts[2:4]))
        elif parts[:2] == ["api", "datasets"] and parts[4:5] == ["tree"] and self._dataset(parts[2:4]):
            self._tree("/".join(parts[2:4]), "/".join(parts[6:]), recursive="recursive=true" in self.path)
        elif parts[0] == "datasets" and parts[3:4] == ["resolve"] and self._dataset(parts[1:3]):
            self._file("/".join(parts[1:3]), "/".join(parts[5:]), send_body=True)
        else:
            self._reply(404, {"error": f"not implemented: GET {self.path}"})

    def do_HEAD(self) -> None:
        self.server.requests.append(("HEAD", self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "datasets" and parts[3:4] == ["resolve"] and self._dataset(parts[1:3]):
            self._file("/".join(parts[1:3]), "/".join(parts[5:]), send_body=False)
        else:
            self.send_response(404)
            self.end_headers()

    # Read side, for datasets only: what `datasets.load_dataset("owner/name")` asks for.
    def _dataset(self, owner_and_name: list[str]) -> bool:
        if _stored("dataset", "/".join(owner_and_name)) in self.server.repos:
            return True
        self._reply(404, {"error": "Dataset not found"}, headers={"X-Error-Code": "RepoNotFound"})
        return False

    def _files(self, repo_id: str) -> dict[str, Path]:
        root = self.server.storage / _stored("dataset", repo_id)
        return {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*")) if path.is_file()}

    def _dataset_info(self, repo_id: str) -> None:
        self._reply(
            200,
            {
                "id": repo_id, "author": repo_id.split("/")[0], "sha": self.server.revision(repo_id),
                "private": False, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": name} for name in self._files(repo_id)],
            },
        )  # fmt: skip

    def _tree(self, repo_id: str, folder: str, recursive: bool) -> None:
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for name, path in self._files(repo_id).items():
            if not name.startswith(prefix):
                continue
            data = path.read_bytes()
            entries.append({"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()})
            parents = name.split("/")[:-1]
            folders.update("/".join(parents[: depth + 1]) for depth in range(len(parents)))
        entries += [{"type": "directory", "path": name, "size": 0, "oid": "0" * 40} for name in sorted(folders)]
        listed = [entry for entry in entries if entry["path"].startswith(prefix)]
        if not recursive:
            listed = [entry for entry in listed if "/" not in entry["path"][len(prefix) :]]
        self._reply(200, listed)

    def _file(self, repo_id: str, name: str, send_body: bool) -> None:
        path = self._files(repo_id).get(name)
        if path is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", self.server.revision(repo_id))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path))
        if not self._authorised():
            return
        body = self._body()
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["api", "validate-yaml"]:
            request = json.loads(body)
            self._validate_card(request["content"], request.get("repoType") or "model")
        elif parts[:3] == ["api", "repos", "create"]:
            request = json.loads(body)
            repo_id = f"{request.get('organization') or USER}/{request['name']}"
            self.server.repos.add(_stored(request.get("type") or "model", repo_id))
            self._reply(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})
        elif parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4] == "preupload":
            files = json.loads(body)["files"]
            self._reply(
                200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            )
        elif parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4] == "commit":
            self._commit(_stored(parts[1][:-1], "/".join(parts[2:4])), body)
        else:
            self._reply(404, {"error": f"not implemented: POST {self.path}"})

    def _validate_card(self, content: str, repo_type: str) -> None:
        """Like the Hub: the README's YAML front matter must parse (for models: a model-index the Hub can read)."""
        try:
            metadata = yaml.safe_load(content.split("---")[1])
            (DatasetCardData if repo_type == "dataset" else ModelCardData)(**metadata)
        except Exception as error:  # noqa: BLE001  (any parse failure is the client's error)
            self._reply(400, {"errors": [{"message": f"{type(error).__name__}: {error}"}]})
            return
        self._reply(200, {"errors": [], "warnings": []})

    def _commit(self, repo_id: str, body: bytes) -> None:
        if repo_id not in self.server.repos:
            self._reply(404, {"error": f"Repository {repo_id} not found"})
            return
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item.get("key") == "file":
                target = self.server.storage / repo_id / item["value"]["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(item["value"]["content"]))
        oid = hashlib.sha1(body).hexdigest()
        self.server.commits[repo_id] = oid
        self._reply(200, {"commitUrl": f"{self.server.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True})


def _stored(repo_type: str, repo_id: str) -> str:
    """Where a repository lives under the storage folder: models at `owner/name`, datasets at `datasets/owner/name`."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


class LocalHub(http.server.ThreadingHTTPServer):
    def __init__(self, storage: Path) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.storage = storage
        self.repos: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.commits: dict[str, str] = {}  # stored repository -> id of its last commit
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def revision(self, repo_id: str) -> str:
        """The commit a dataset repository is at (40 hex digits, as the Hub's `sha`)."""
        return self.commits.get(_stored("dataset", repo_id), "0" * 40)

    def __enter__(self) -> "LocalHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
