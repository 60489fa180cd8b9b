"""The real `python app.py` on a free local port, for the tests and the load benchmark."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from esc50_hf.paths import REPO_ROOT


@contextmanager
def app_subprocess(
    app_args: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    app_path: Path = REPO_ROOT / "app.py",
    host: str | None = "127.0.0.1",
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Runs the real `python app.py <app_args>` on a free local port until the block exits; yields `(url, process)`.

    For the tests and the load benchmark: the server under test is the entry point users start.
    `env` adds to this process's environment; `host=None` leaves the address to the environment
    (`GRADIO_SERVER_NAME` in `env`), which the yielded URL then uses.
    """
    with socket.socket() as sock:  # a free port; the tiny race until the server binds it is acceptable here
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **(env or {})}
    command = [sys.executable, str(app_path), *app_args, "--port", str(port)]
    if host is not None:
        command += ["--host", host]
    url = f"http://{host or env.get('GRADIO_SERVER_NAME', '127.0.0.1')}:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=app_path.parent)
        try:
            _wait_until_serving(url, process, log_path, timeout)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with status {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError:  # it answers, but wants a login (--auth)
            return
        except OSError:  # not listening yet
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer within {timeout:g} s:\n{log_path.read_text()}")
