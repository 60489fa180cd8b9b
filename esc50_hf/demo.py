"""The Gradio web demo and its REST API: `build_demo(classifier)` and the `app.py` entry point `main`.

One endpoint is public, `/predict`: audio file in; the clip-level top-5 (a `gr.Label`) and
the per-window timeline (a table) out. The page also draws the input's log-mel spectrogram
and loads example clips, through events that are private: the UI calls them, the API does
not list or accept them. Every input goes through `esc50_hf.audio_io` (header checked, then
decoded block by block), and each `AudioInputError` becomes a `gr.Error` with its message:
the request fails, the server goes on serving.

What a public deployment gets (see docs/serving.md):
- requests wait in Gradio's queue (`--max-queue`, default 1000; HTTP 503 only past it),
  `--concurrency` of them are decoded at once, and their windows share forward passes of the
  network (`SoundClassifier(dynamic_batching=True)`); on 2 cores the network's compute is the
  limit, so this keeps the request rate steady under load (`bench/LOAD.md`) rather than raising it;
- uploads land in a folder of this server's own (`_private_upload_folder`, inside Gradio's), are
  deleted `--keep-uploads` seconds after they arrive, whether or not they were classified, and
  the oldest ones whenever that folder grows past `--max-upload-mb` (`UploadJanitor`), so no burst
  of uploads can fill the disk and no other app's files are touched; Gradio deletes the rest when
  the server stops;
- the audio must be sent to the server: a URL in place of a file (`gradio_client.handle_file(url)`)
  is refused with a message (`refuse_url_downloads`), because Gradio would fetch it whole into memory and
  onto disk, whatever its size;
- optional basic auth (`--auth USER:PASS` or `ESC50_AUTH`), and a warning when the server
  binds to a non-local address without it;
- `--host`/`--port` default to Gradio's `GRADIO_SERVER_NAME`/`GRADIO_SERVER_PORT`
  (what a Hugging Face Space sets), then to 127.0.0.1:7860.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

import argparse  # noqa: E402
import atexit  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import gradio as gr  # noqa: E402
import gradio.processing_utils  # noqa: E402
import pandas as pd  # noqa: E402
from gradio_client.utils import is_http_url_like  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .audio_io import AudioInputError, AudioLimits  # noqa: E402
from .backends import BACKENDS  # noqa: E402
from .inference import DEFAULT_MAX_BATCH_SIZE, ModelLoadError, Prediction, SoundClassifier, resolve_model  # noqa: E402
from .paths import DEFAULT_MODEL_DIR, EXAMPLES_DIR, REPO_ROOT  # noqa: E402

T = TypeVar("T")
logger = logging.getLogger(__name__)

TOP_K = 5
TIMELINE_COLUMNS = ["start_s", "end_s", "label", "score"]
NO_AUDIO_MESSAGE = "No audio given: upload a file or record one with the microphone."
AUTH_ENV = "ESC50_AUTH"  # "user:password", the same as --auth
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_QUEUE = 1000
DEFAULT_KEEP_UPLOADS = 300.0
DEFAULT_MAX_UPLOAD_MB = 2048.0
LOCAL_HOSTS = ("localhost",)
URL_INPUT_MESSAGE = (
    "This server does not download audio from URLs: send the file itself (the page uploads it; with "
    "gradio_client, handle_file(<local path>); with curl, POST it to /gradio_api/upload first)."
)


def build_demo(
    classifier: SoundClassifier, examples_dir: Path | None = None, keep_uploads: float = DEFAULT_KEEP_UPLOADS
) -> gr.Blocks:
    """The demo page; call `.queue(...)` and `.launch(...)` on the result (see `main`).

    Args:
        classifier (`SoundClassifier`): What classifies; its `limits` are the server's.
        examples_dir (`Path`, *optional*): A folder with example clips and their `attribution.csv`.
        keep_uploads (`float`, *optional*, defaults to 300): Seconds an upload is kept (`UploadJanitor` deletes
            it then; Gradio deletes all that is left when the server stops).
    """
    # delete_cache: Gradio deletes what is left when the server stops. Its periodic sweep (the first number)
    # is pushed out of reach because it breaks under load; `UploadJanitor` does that work (see `main`).
    with gr.Blocks(title="ESC-50 sound classifier", delete_cache=(10**9, max(1, int(keep_uploads)))) as demo:
        limit = classifier.limits.max_seconds
        gr.Markdown(
            "# ESC-50 environmental-sound classifier\n"
            f"Upload or record a sound{f' (up to {_duration_text(limit)})' if limit else ''}. Clips longer than "
            f"{classifier.extractor.clip_seconds:g} s are classified in overlapping windows; "
            "the scores are their average. 50 classes: animals, nature, people, household, urban noise."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Sound")
                button = gr.Button("Classify", variant="primary")
                examples = read_examples(examples_dir) if examples_dir else []
                if examples:
                    gr.Examples(
                        examples=[[str(example["path"])] for example in examples],
                        inputs=[audio],
                        example_labels=[example["category"] for example in examples],
                        label="Real ESC-50 clips (fold 5, the test fold)",
                        api_visibility="private",
                    )
                    gr.Markdown(_attribution_markdown(examples))
            with gr.Column():
                label = gr.Label(num_top_classes=TOP_K, label="Top classes")
        spectrogram = gr.Plot(label="Log-mel spectrogram (the model's features, in dB)")
        timeline = gr.Dataframe(
            headers=TIMELINE_COLUMNS,
            label=f"Timeline: best class per {classifier.extractor.clip_seconds:g}-s window",
            interactive=False,
        )

        def predict(audio_file: str | None) -> tuple[dict[str, float], pd.DataFrame]:
            return classify(classifier, audio_file)

        def draw(audio_file: str | None) -> Figure:
            return spectrogram_figure(classifier, audio_file)

        event = gr.on(
            triggers=[button.click, audio.upload, audio.stop_recording],
            fn=predict,
            inputs=[audio],
            outputs=[label, timeline],
            api_name="predict",
            api_description="Top-5 ESC-50 classes of an audio file, and the best class of each 5-s window.",
        )
        event.success(fn=draw, inputs=[audio], outputs=[spectrogram], api_visibility="private")
    _only_predict_in_the_api(demo)
    return demo


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


def _private_upload_folder() -> Path:
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


def _only_predict_in_the_api(demo: gr.Blocks) -> None:
    """Unnames every event but `/predict` (the spectrogram, the examples' loaders): the page still calls
    them by index, but `/gradio_api/call/<name>` and `gradio_client` find only `predict`."""
    for function in demo.fns.values():
        if function.api_name != "predict":
            function.api_name = None
            function.api_visibility = "private"


def classify(classifier: SoundClassifier, path: str | None) -> tuple[dict[str, float], pd.DataFrame]:
    """The `/predict` endpoint: `({label: score}, timeline table)`; bad input -> `gr.Error`."""
    prediction = _run(classifier.predict, path)
    return prediction.confidences(), timeline_table(prediction)


def timeline_table(prediction: Prediction) -> pd.DataFrame:
    rows = [[window.start, window.end, window.label, round(window.score, 4)] for window in prediction.windows]
    return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)


def spectrogram_figure(classifier: SoundClassifier, path: str | None) -> Figure:
    """The whole input's log-mel spectrogram (dB), with the time axis in seconds."""
    waveform = _run(classifier.load, path)
    log_mel = classifier.log_mel(waveform)
    duration = len(waveform) / classifier.sampling_rate
    # A Figure without pyplot: no global state shared between concurrent requests.
    figure = Figure(figsize=(10, 3), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(
        log_mel, origin="lower", aspect="auto", cmap="magma", extent=(0.0, duration, 0, log_mel.shape[0])
    )
    axes.set_xlabel("time (s)")
    axes.set_ylabel("mel band")
    figure.colorbar(image, ax=axes, label="dB")
    return figure


def read_examples(folder: Path) -> list[dict[str, str | Path]]:
    """The clips listed in `folder/attribution.csv` that exist, with their attribution fields and `path`."""
    table = folder / "attribution.csv"
    if not table.is_file():
        return []
    with table.open(newline="") as handle:
        rows = [{**row, "path": folder / row["file"]} for row in csv.DictReader(handle)]
    return [row for row in rows if row["path"].is_file()]


def _attribution_markdown(examples: list[dict]) -> str:
    credits = "; ".join(
        f"{row['category']}: [{row['source_title']}]({row['source_url']}) by {row['author']} ({row['source_license']})"
        for row in examples
    )
    return (
        "Clips from [ESC-50](https://github.com/karolpiczak/ESC-50) (K. J. Piczak, 2015), licensed "
        "[CC BY-NC 3.0](https://creativecommons.org/licenses/by-nc/3.0/), derived from Freesound recordings: "
        f"{credits}."
    )


def _run(function: Callable[[str], T], path: str | None) -> T:
    """Calls `function(path)`, turning missing or bad input into a message for the user."""
    if not path:
        raise gr.Error(NO_AUDIO_MESSAGE, print_exception=False)
    if is_http_url_like(path):  # a FileData marked is_stream reaches the event as the URL itself
        raise gr.Error(URL_INPUT_MESSAGE, print_exception=False)
    try:
        return function(path)
    except AudioInputError as error:
        raise gr.Error(str(error), print_exception=False) from error
    except Exception as error:  # a bug, not the user's input: logged here, not shown (launch shows errors)
        logger.exception("Failed on %s", path)
        raise gr.Error("The server failed on this input; the error is in its log.", print_exception=False) from error


def _duration_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def build_parser(default_model: str | Path | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve the ESC-50 classifier as a Gradio web demo and REST API.")
    parser.add_argument("--model", default=None, help=f"model folder or Hub id (default: {default_model})")
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument(
        "--host", default=None, help="interface to bind (default: $GRADIO_SERVER_NAME, else 127.0.0.1: local only)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASSWORD",
        help=f"require this login (default: ${AUTH_ENV}; none). Use it on any non-local address.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests decoded at once; their windows share forward passes (default: {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help=f"requests waiting at most; more get HTTP 503 (default: {DEFAULT_MAX_QUEUE})",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help=f"most windows per shared forward pass (default: {DEFAULT_MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--keep-uploads",
        type=float,
        default=DEFAULT_KEEP_UPLOADS,
        help=f"seconds an upload is kept before it is deleted (default: {DEFAULT_KEEP_UPLOADS:g})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"most disk all uploads together may use; the oldest go first (default: {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument("--max-seconds", type=float, default=AudioLimits.max_seconds, help="longest input, seconds")
    parser.add_argument("--max-mb", type=float, default=AudioLimits.max_bytes / 2**20, help="largest upload, MiB")
    parser.add_argument("--no-examples", action="store_true", help="do not show the example clips")
    return parser


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`"user:password"` -> `("user", "password")`; `None`/empty -> no auth; anything else exits with a message."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not (user and colon and password):
        sys.exit(f"--auth / ${AUTH_ENV} must be USER:PASSWORD with both parts non-empty.")
    return user, password


def is_local_address(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only localhost is known to be local
        return False


def main(
    argv: list[str] | None = None,
    default_model: str | Path | None = DEFAULT_MODEL_DIR,
    examples_dir: Path | None = EXAMPLES_DIR,
) -> int:
    args = build_parser(default_model).parse_args(argv)
    try:
        model = resolve_model(args.model, default_model)
    except ModelLoadError as error:
        sys.exit(str(error))
    limits = AudioLimits(max_seconds=args.max_seconds, max_bytes=int(args.max_mb * 2**20))
    try:
        classifier = SoundClassifier.load_or_explain(
            model, args.backend, limits=limits, dynamic_batching=True, max_batch_size=args.max_batch
        )
    except ModelLoadError as error:
        sys.exit(str(error))
    auth = parse_auth(args.auth if args.auth is not None else os.environ.get(AUTH_ENV))
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if auth is None and not is_local_address(host):
        logger.warning(
            "Serving on %s without a login: anyone who reaches this address can use the app. "
            "Pass --auth USER:PASSWORD (or set %s) unless that is what you want.",
            host,
            AUTH_ENV,
        )
    # SIGTERM (what `docker stop`, a Space restart or `kill` send) stops the server like Ctrl+C: Gradio closes
    # it and deletes its cache, then the process exits normally and the upload folder is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    refuse_url_downloads()
    upload_folder = _private_upload_folder()  # before the demo: its components read it
    demo = build_demo(classifier, None if args.no_examples else examples_dir, keep_uploads=args.keep_uploads)
    UploadJanitor(
        upload_folder,
        max_age=args.keep_uploads,
        max_bytes=int(args.max_upload_mb * 2**20),
        interval=min(60.0, max(1.0, args.keep_uploads / 4)),
        keep=lambda: {path for block in demo.blocks.values() for path in getattr(block, "keep_in_cache", ())},
    )
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    demo.launch(
        server_name=args.host,  # None: Gradio reads GRADIO_SERVER_NAME, else 127.0.0.1
        server_port=args.port,  # None: GRADIO_SERVER_PORT, else 7860
        auth=auth,
        max_file_size=limits.max_bytes,
        show_error=True,  # Gradio's own refusals (e.g. a path that was not uploaded) say why; ours are gr.Error
        allowed_paths=[str(examples_dir)] if examples_dir and not args.no_examples else None,
    )
    return 0


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


__all__ = [
    "app_subprocess",
    "build_demo",
    "build_parser",
    "classify",
    "main",
    "read_examples",
    "refuse_url_downloads",
    "spectrogram_figure",
    "UploadJanitor",
]
