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

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
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
        if self.path.startswith("/api/whoami-v2") and self._authorised():
            self._reply(200, {"type": "user", "name": USER, "auth": {"accessToken": {"role": "write"}}})
        elif not self.path.startswith("/api/whoami-v2"):
            self._reply(404, {"error": f"not implemented: GET {self.path}"})

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
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> "LocalHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
