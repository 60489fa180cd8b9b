"""Upload hardening for a public server: uploads in a private folder, bounded in age and size, and URL inputs
refused before Gradio downloads them."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

import atexit  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import gradio.processing_utils  # noqa: E402

logger = logging.getLogger(__name__)

URL_INPUT_MESSAGE = (
    "This server does not download audio from URLs: send the file itself (the page uploads it; with "
    "gradio_client, handle_file(<local path>); with curl, POST it to /gradio_api/upload first)."
)


class UploadJanitor:
    """Bounds Gradio's upload folder in time and size: every `interval` seconds, deletes the files older than
    `max_age` seconds, then the oldest ones while the folder holds more than `max_bytes`.

    Uploads need no prediction call, so without this anyone could fill the disk. Gradio's own scheduled
    `delete_cache` sweep is not used for it: it iterates the set of uploads while concurrent uploads add to
    it, and its background task dies at the first "Set changed size during iteration" (seen under load in
    `bench/load.py`). Gradio still deletes everything left when the server stops. Files a component keeps
    in the cache on purpose (`keep`, e.g. the examples) are left alone.

    Args:
        folder (`Path`): Gradio's upload folder (`gradio.utils.get_upload_folder()`).
        max_age (`float`): Seconds a file may stay.
        max_bytes (`int`): Most bytes the folder may hold.
        interval (`float`, *optional*, defaults to 2.0): Seconds between sweeps.
        keep (`Callable[[], set[str]]`, *optional*): The paths not to delete.
    """

    def __init__(
        self,
        folder: Path,
        max_age: float,
        max_bytes: int,
        interval: float = 2.0,
        keep: Callable[[], set[str]] | None = None,
    ) -> None:
        self.folder, self.max_age, self.max_bytes, self.interval = Path(folder), max_age, max_bytes, interval
        self.keep = keep or set
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name="esc50-upload-janitor", daemon=True).start()

    def sweep(self) -> int:
        """One pass: deletes what is too old, then the oldest past the size budget; returns how many files went."""
        keep, now, files = self.keep(), time.time(), []
        for path in self.folder.rglob("*"):
            try:
                if path.is_file() and str(path) not in keep:
                    stat = path.stat()
                    files.append((stat.st_mtime, stat.st_size, path))  # written when uploaded
            except OSError:  # deleted meanwhile
                continue
        files.sort()
        total = sum(size for _, size, _ in files)
        deleted = 0
        for changed, size, path in files:
            if now - changed <= self.max_age and total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # Gradio keeps each upload in a folder of its own
                path.parent.rmdir()
            total -= size
            deleted += 1
        return deleted

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception:  # never let one bad pass end the sweeping
                logger.exception("Upload clean-up failed; retrying in %g s", self.interval)

    def stop(self) -> None:
        self._stop.set()


def refuse_url_downloads() -> None:
    """Makes this process's Gradio refuse to download a URL given in place of a file, before anything is fetched.

    Gradio downloads such a URL (`{"path": "https://..."}`, what `gradio_client.handle_file(url)` sends) before
    the event runs, reading the whole body into memory and then onto disk with no size limit: one request
    could exhaust either. Replaced here at the source (`gradio.processing_utils`, which every component calls
    through the module when it meets a URL), the request fails with `URL_INPUT_MESSAGE`. Not on the
    component: an example click replaces a session's component with a fresh one, and Gradio writes a `.pyi`
    file beside the module of any `Component` subclass. Uploads, recordings and the example clips (files on
    the server) are unaffected. Idempotent.
    """

    def refuse(*args, **kwargs):
        raise gr.Error(URL_INPUT_MESSAGE, print_exception=False)

    async def refuse_async(*args, **kwargs):
        refuse()

    gradio.processing_utils.async_ssrf_protected_download = refuse_async
    gradio.processing_utils.ssrf_protected_download = refuse
    gradio.processing_utils.save_url_to_cache = refuse


def private_upload_folder() -> Path:
    """Makes a folder of this server's own inside Gradio's upload folder and points Gradio at it.

    Gradio's upload folder (`$GRADIO_TEMP_DIR`, else `/tmp/gradio`) is shared by every Gradio app on the
    machine, and `UploadJanitor` deletes what it finds in its folder: in the shared one it would delete
    other apps' files. Call this before the demo is built (components read the folder when they are
    made); the folder (mode 0700) is removed when the process exits.
    """
    shared = Path(gr.utils.get_upload_folder())
    shared.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="esc50-hf-", dir=shared))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


__all__ = ["URL_INPUT_MESSAGE", "UploadJanitor", "private_upload_folder", "refuse_url_downloads"]
