"""Upload hardening for a public server: uploads in a private folder, bounded in age (a sweep) and in size (at the
door: an upload that would pass the cap is refused before it is read), and URL inputs refused before Gradio downloads
them."""

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

import anyio.to_thread  # noqa: E402
import gradio as gr  # noqa: E402
import gradio.processing_utils  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

logger = logging.getLogger(__name__)

URL_INPUT_MESSAGE = (
    "This server does not download audio from URLs: send the file itself (the page uploads it; with "
    "gradio_client, handle_file(<local path>); with curl, POST it to /gradio_api/upload first)."
)


UPLOAD_FOLDER_FULL_MESSAGE = (
    "The server's upload space is full for now (--max-upload-mb): try again in a few minutes, or send a smaller file."
)
LENGTH_REQUIRED_MESSAGE = "An upload must say its size: send the Content-Length header."


def _files_in(folder: Path) -> list[Path]:
    """The files under `folder`, listed before anything is deleted; folders that vanish meanwhile are skipped."""
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


class UploadBudget:
    """The hard disk cap on uploads: a request is let in only if the bytes it declares (`Content-Length`) fit,
    with those already in the folder and those of the uploads in progress, within `max_bytes`.

    The folder is listed at most once every `refresh` seconds, not on every upload (a burst of uploads into a folder
    of thousands of files would list it each time). In between, an upload that has ended counts as stored with its
    declared size, so the count errs on the safe side: a file deleted meanwhile (`UploadJanitor`) or an upload that
    stored nothing frees its bytes only at the next listing.

    Args:
        folder (`Path`): The upload folder (`private_upload_folder()`).
        max_bytes (`int`): Most bytes all uploads together may use (`--max-upload-mb`).
        keep (`Callable[[], set[str]]`, *optional*): Paths that are not uploads (the example clips' copies); they
            do not count.
        refresh (`float`, *optional*, defaults to 1.0): Seconds a listing of the folder is used for.
    """

    def __init__(
        self, folder: Path, max_bytes: int, keep: Callable[[], set[str]] | None = None, refresh: float = 1.0
    ) -> None:
        self.folder, self.max_bytes, self.keep, self.refresh = Path(folder), max_bytes, keep or set, refresh
        self.reserved = 0  # bytes declared by the uploads in progress
        self.in_progress = 0
        self._listed = 0  # bytes the folder held at its last listing
        self._listed_at: float | None = None  # time.monotonic() of that listing
        self._ended = 0  # bytes declared by the uploads that have ended since
        self._lock = threading.Lock()

    def used(self) -> int:
        """Bytes the folder holds, kept files aside (uploads in progress included, as far as written): its last
        listing, if younger than `refresh` seconds, and the uploads that have ended since."""
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at >= self.refresh:
            self._ended = 0  # before listing: an upload ending meanwhile is counted twice rather than not at all
            self._listed, self._listed_at = self._list(), now
        return self._listed + self._ended

    def _list(self) -> int:
        keep, total = self.keep(), 0
        for path in _files_in(self.folder):
            with contextlib.suppress(OSError):  # deleted meanwhile
                if str(path) not in keep:
                    total += path.stat().st_size
        return total

    def reserve(self, size: int) -> bool:
        """Counts an upload of `size` bytes in progress if it fits; `False` (nothing counted) if it does not."""
        with self._lock:
            if self.used() + self.reserved + size > self.max_bytes:
                return False
            self.reserved += size
            self.in_progress += 1
            return True

    def release(self, size: int) -> None:
        """The upload `reserve(size)` let in has ended (stored, refused or broken off): counted as stored until the
        folder is next listed."""
        with self._lock:
            self.reserved -= size
            self.in_progress -= 1
            self._ended += size


class CapUploads:
    """ASGI middleware: `POST .../gradio_api/upload` is let in only within `budget` (else HTTP 413 and
    `UPLOAD_FOLDER_FULL_MESSAGE`, before any byte is read), and only with a `Content-Length` (else HTTP 411).

    Args:
        app (`ASGIApp`): The application it wraps (Gradio's).
        budget (`UploadBudget`): The cap and the uploads in progress.
    """

    def __init__(self, app: ASGIApp, budget: UploadBudget) -> None:
        self.app, self.budget = app, budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/gradio_api/upload"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if not declared.isdigit():
            await JSONResponse({"detail": LENGTH_REQUIRED_MESSAGE}, status_code=411)(scope, receive, send)
            return
        size = int(declared)
        if not await anyio.to_thread.run_sync(self.budget.reserve, size):  # it reads the folder: off the loop
            await JSONResponse({"detail": UPLOAD_FOLDER_FULL_MESSAGE}, status_code=413)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.budget.release(size)


class UploadJanitor:
    """Bounds Gradio's upload folder in time: every `interval` seconds, deletes the files older than `max_age`
    seconds. Its size is bounded at the door (`CapUploads`).

    Uploads need no prediction call, so without this anyone could fill the disk. Gradio's own scheduled
    `delete_cache` sweep is not used for it: it iterates the set of uploads while concurrent uploads add to
    it, and its background task dies at the first "Set changed size during iteration" (seen under load in
    `bench/load.py`). Gradio still deletes everything left when the server stops. Files a component keeps
    in the cache on purpose (`keep`, e.g. the examples) are left alone, and so are the files an upload in
    progress is writing (Gradio writes them at the top of the folder, then moves each into a folder of its own):
    those go only while no upload is in progress.

    Args:
        folder (`Path`): Gradio's upload folder (`gradio.utils.get_upload_folder()`).
        max_age (`float`): Seconds a file may stay.
        interval (`float`, *optional*, defaults to 2.0): Seconds between sweeps.
        keep (`Callable[[], set[str]]`, *optional*): The paths not to delete.
        uploading (`Callable[[], bool]`, *optional*): Whether an upload is in progress (`UploadBudget.in_progress`).
        remembered (`set[str]`, *optional*): Where Gradio remembers every upload's path (`Blocks.upload_file_set`),
            which it never empties: each sweep forgets the paths no longer on disk (swept here, or deleted by whoever
            read them, as the live mode does with its chunks), so the set does not grow with every request.
    """

    def __init__(
        self,
        folder: Path,
        max_age: float,
        interval: float = 2.0,
        keep: Callable[[], set[str]] | None = None,
        uploading: Callable[[], bool] | None = None,
        remembered: set[str] | None = None,
    ) -> None:
        self.folder, self.max_age, self.interval = Path(folder), max_age, interval
        self.remembered = remembered if remembered is not None else set()
        self.keep = keep or set
        self.uploading = uploading or (lambda: False)
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name="esc50-upload-janitor", daemon=True).start()

    def sweep(self) -> int:
        """One pass: deletes what is too old; returns how many files went."""
        keep, now, deleted = self.keep(), time.time(), 0
        being_written = self.uploading()  # read before the listing: an upload that starts later writes newer files
        for path in _files_in(self.folder):
            try:
                if str(path) in keep or (being_written and path.parent == self.folder):
                    continue
                if now - path.stat().st_mtime <= self.max_age:  # written when uploaded
                    continue
                path.unlink()
            except OSError:  # deleted meanwhile
                continue
            with contextlib.suppress(OSError):  # Gradio keeps each upload in a folder of its own
                path.parent.rmdir()
            deleted += 1
        for path in [path for path in list(self.remembered) if not os.path.exists(path)]:  # a copy: uploads add to it
            self.remembered.discard(path)
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


__all__ = [
    "LENGTH_REQUIRED_MESSAGE",
    "UPLOAD_FOLDER_FULL_MESSAGE",
    "URL_INPUT_MESSAGE",
    "CapUploads",
    "UploadBudget",
    "UploadJanitor",
    "private_upload_folder",
    "refuse_url_downloads",
]
