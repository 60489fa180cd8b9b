"""The Gradio web demo and its REST API: `build_demo(classifier)` and the `app.py` entry point `main`.

One endpoint does the work, `/predict`: audio file in; the clip-level top-5 (a `gr.Label`)
and the per-window timeline (a table) out. The UI also draws the input's log-mel
spectrogram (a second, undocumented event run after a successful prediction). Every input
goes through `esc50_hf.audio_io.load_audio`, and each `AudioInputError` becomes a
`gr.Error` with its message: the request fails, the server goes on serving.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

import argparse  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .audio_io import AudioInputError, AudioLimits  # noqa: E402
from .backends import BACKENDS  # noqa: E402
from .inference import DEFAULT_MODEL_DIR, REPO_ROOT, Prediction, SoundClassifier  # noqa: E402

T = TypeVar("T")
TOP_K = 5
TIMELINE_COLUMNS = ["start_s", "end_s", "label", "score"]
NO_AUDIO_MESSAGE = "No audio given: upload a file or record one with the microphone."


def build_demo(classifier: SoundClassifier, examples: list[Path] | None = None) -> gr.Blocks:
    """The demo page; call `.queue(...)` and `.launch(...)` on the result (see `main`)."""
    with gr.Blocks(title="ESC-50 sound classifier") as demo:
        gr.Markdown(
            "# ESC-50 environmental-sound classifier\n"
            f"Upload or record a sound (up to {_duration_text(classifier.limits.max_seconds)}). Clips longer than "
            f"{classifier.extractor.clip_seconds:g} s are classified in overlapping windows; "
            "the scores are their average. 50 classes: animals, nature, people, household, urban noise."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Sound")
                button = gr.Button("Classify", variant="primary")
                if examples:
                    gr.Examples(examples=[[str(path)] for path in examples], inputs=[audio], label="Synthetic examples")
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
        event.success(
            fn=draw,
            inputs=[audio],
            outputs=[spectrogram],
            api_name="spectrogram",
            api_visibility="undocumented",
        )
    return demo


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


def _run(function: Callable[[str], T], path: str | None) -> T:
    """Calls `function(path)`, turning missing or bad input into a message for the user."""
    if not path:
        raise gr.Error(NO_AUDIO_MESSAGE, print_exception=False)
    try:
        return function(path)
    except AudioInputError as error:
        raise gr.Error(str(error), print_exception=False) from error


def _duration_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def write_example_clips(folder: Path, sampling_rate: int) -> list[Path]:
    """Synthetic clips (no dataset audio in the repository): a tone, noise bursts, and a 12-s sweep."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    time = np.arange(5 * sampling_rate) / sampling_rate
    long_time = np.arange(12 * sampling_rate) / sampling_rate
    clips = {
        "tone_880hz_5s.wav": 0.3 * np.sin(2 * np.pi * 880 * time),
        "noise_bursts_5s.wav": 0.3 * rng.standard_normal(time.size) * (np.sin(2 * np.pi * 2 * time) > 0.5),
        "sweep_12s.wav": 0.3 * np.sin(2 * np.pi * (100 * long_time + 400 * long_time**2 / 12)),
    }
    paths = []
    for name, samples in clips.items():
        paths.append(folder / name)
        sf.write(paths[-1], samples.astype(np.float32), sampling_rate, subtype="PCM_16")
    return paths


def build_parser(default_model: Path = DEFAULT_MODEL_DIR) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve the ESC-50 classifier as a Gradio web demo and REST API.")
    parser.add_argument("--model", default=None, help=f"model folder or Hub id (default: {default_model})")
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: local only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--concurrency", type=int, default=2, help="requests computed at once (default: 2)")
    parser.add_argument("--max-queue", type=int, default=32, help="requests waiting at most; more get HTTP 503")
    parser.add_argument("--max-seconds", type=float, default=AudioLimits.max_seconds, help="longest input, seconds")
    parser.add_argument("--max-mb", type=float, default=AudioLimits.max_bytes / 2**20, help="largest upload, MiB")
    parser.add_argument("--no-examples", action="store_true", help="do not generate the synthetic example clips")
    return parser


def resolve_model(model: str | None, default_model: Path = DEFAULT_MODEL_DIR) -> str:
    """The model to load; exits with a message when the default folder is missing."""
    if model is not None:
        return model
    if not (default_model / "config.json").is_file():
        sys.exit(
            f"No trained model at {default_model}. Train one (see README: Train) or pass "
            "--model <model folder or Hub id>, e.g. --model outputs/esc50-mel-cnn"
        )
    return str(default_model)


def main(argv: list[str] | None = None, default_model: Path = DEFAULT_MODEL_DIR) -> int:
    args = build_parser(default_model).parse_args(argv)
    model = resolve_model(args.model, default_model)
    limits = AudioLimits(max_seconds=args.max_seconds, max_bytes=int(args.max_mb * 2**20))
    try:
        classifier = SoundClassifier(model, args.backend, limits=limits)
    except (OSError, ValueError, ImportError) as error:
        sys.exit(f"Cannot load the model {model!r} with the {args.backend} backend: {error}")
    examples = None
    if not args.no_examples:
        examples = write_example_clips(Path(tempfile.mkdtemp(prefix="esc50-demo-examples-")), classifier.sampling_rate)
    demo = build_demo(classifier, examples)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=limits.max_bytes, show_error=False)
    return 0


@contextmanager
def app_subprocess(
    app_args: list[str], log_path: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Runs the real `python app.py <app_args>` on a free local port until the block exits; yields `(url, process)`.

    For the tests and the load benchmark: the server under test is the entry point users start.
    `env` adds to this process's environment.
    """
    with socket.socket() as sock:  # a free port; the tiny race until the server binds it is acceptable here
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, str(REPO_ROOT / "app.py"), *app_args, "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
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
        except OSError:  # not listening yet
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer within {timeout:g} s:\n{log_path.read_text()}")


__all__ = [
    "app_subprocess",
    "build_demo",
    "build_parser",
    "classify",
    "main",
    "spectrogram_figure",
    "write_example_clips",
]
