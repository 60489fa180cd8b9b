"""The Gradio web demo and its REST API: `build_demo(classifier)` (the `app.py` entry point, `main`, is in
`serving/server.py`).

One endpoint is public, `/predict`: audio file in; the clip-level top-5 (a `gr.Label`) and
the per-window timeline (a table) out. When the model has a fitted unknown threshold
(`config.unknown_threshold`, see `esc50_hf.evaluation.calibration`), a recording whose unknown score
(`prediction.unknown_score`) is below it is answered "Not one of the known sounds — best guess: X (29 %)":
the label's headline (its `label` field in the API), with the best guesses' scores below it as always. The page also
draws the input's log-mel spectrogram and loads example clips (a click classifies the clip),
through events that are private: the UI calls them, the API does not list or accept them. Every
input goes through `esc50_hf.model.audio_io` (header checked, then decoded block by block), and
each `AudioInputError` becomes a `gr.Error` with its message: the request fails, the server goes
on serving.

What a public deployment gets (see docs/serving.md):
- requests wait in Gradio's queue (`--max-queue`, default 1000; HTTP 503 only past it),
  `--concurrency` of them are decoded at once, and their windows share forward passes of the
  network (`SoundClassifier(dynamic_batching=True)`); on 2 cores the network's compute is the
  limit, so this keeps the request rate steady under load (`bench/LOAD.md`) rather than raising it;
- uploads land in a folder of this server's own (`private_upload_folder`, inside Gradio's), are
  deleted `--keep-uploads` seconds after they arrive, whether or not they were classified
  (`UploadJanitor`), and one that would take that folder past `--max-upload-mb` is refused before it
  is read (`CapUploads`, HTTP 413), so no burst of uploads can fill the disk and no other app's files are
  touched; Gradio deletes the rest when the server stops; the copies of the example clips in that folder are
  kept while the server runs;
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

import csv  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import gradio as gr  # noqa: E402
import gradio.processing_utils  # noqa: E402
import pandas as pd  # noqa: E402
from gradio_client.utils import is_http_url_like  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..inference.classifier import SoundClassifier  # noqa: E402
from ..model.audio_io import AudioInputError  # noqa: E402
from ..model.prediction import Prediction, WindowPrediction  # noqa: E402
from .live import (  # noqa: E402
    DEFAULT_MAX_LIVE_STREAMS,
    LIVE_HISTORY_SECONDS,
    LIVE_SMOOTHING_UPDATES,
    LIVE_TIME_LIMIT_SECONDS,
    LIVE_UPDATE_SECONDS,
    MICROPHONE_HELP,
    UNKNOWN_RUN,
    LiveClassifier,
    LiveStreamsFull,
    leave_no_timer_per_chunk,
)
from .memory import return_freed_memory  # noqa: E402
from .uploads import URL_INPUT_MESSAGE  # noqa: E402

T = TypeVar("T")
logger = logging.getLogger(__name__)

TOP_K = 5
TIMELINE_COLUMNS = [key for key in WindowPrediction.row_keys() if key != "labels"]  # start_s, end_s, label, score
TIMELINE_SCORE_DIGITS = 4  # the page's table shows scores to 4 decimals
NO_AUDIO_MESSAGE = "No audio given: upload a file or record one with the microphone."
UNKNOWN_HEADLINE = "Not one of the known sounds — best guess: {label} ({score:.0%})"


def answer_label(**kwargs) -> gr.Label:
    """A `gr.Label` whose headline may be other than the top class: it also takes `(headline, {label: score})`, for
    the "none of these" answer. Its `postprocess` is wrapped on the instance, not in a subclass: Gradio writes a
    `.pyi` beside the module of every `Component` subclass."""
    label = gr.Label(**kwargs)
    plain = label.postprocess

    def postprocess(value):
        if isinstance(value, tuple):
            headline, confidences = value
            data = plain(confidences)
            data.label = headline
            return data
        return plain(value)

    label.postprocess = postprocess
    return label


DEFAULT_KEEP_UPLOADS = 300.0
API_EXAMPLE_FILE = "sound.wav"  # the "Use via API" snippet's file when the page has no example clips


def build_demo(
    classifier: SoundClassifier,
    examples_dir: Path | None = None,
    keep_uploads: float = DEFAULT_KEEP_UPLOADS,
    unknown_answer: bool = True,
    max_live_streams: int = DEFAULT_MAX_LIVE_STREAMS,
) -> gr.Blocks:
    """The demo page; call `.queue(...)` and `.launch(...)` on the result (see `server.main`).

    Args:
        classifier (`SoundClassifier`): What classifies; its `limits` are the server's.
        examples_dir (`Path`, *optional*): A folder with example clips and their `attribution.csv`.
        keep_uploads (`float`, *optional*, defaults to 300): Seconds an upload is kept (`UploadJanitor` deletes
            it then; Gradio deletes all that is left when the server stops).
        unknown_answer (`bool`, *optional*, defaults to `True`): Say "not one of the known sounds" when the
            unknown score (`prediction.unknown_score`) is below the model's fitted `unknown_threshold` (a model
            without one never says it).
        max_live_streams (`int`, *optional*, defaults to `DEFAULT_MAX_LIVE_STREAMS`): Live microphone streams at
            once (the Live tab, `esc50_hf.serving.live`); 0: no Live tab.
    """
    threshold = getattr(classifier.config, "unknown_threshold", None) if unknown_answer else None
    # delete_cache: Gradio deletes what is left when the server stops. Its periodic sweep (the first number)
    # is pushed out of reach because it breaks under load; `UploadJanitor` does that work (see `server.main`).
    name = Path(classifier.model.rstrip("/")).name or classifier.model
    labels = classifier.labels
    with gr.Blocks(title=f"{name}: sound classifier", delete_cache=(10**9, max(1, int(keep_uploads)))) as demo:
        limit = classifier.limits.max_seconds
        gr.Markdown(
            f"# {name}: sound classifier\n"
            f"Upload or record a sound{f' (up to {_duration_text(limit)})' if limit else ''}. Clips longer than "
            f"{classifier.extractor.clip_seconds:g} s are classified in overlapping windows; "
            f"the scores are their average. {_labels_text(labels)}"
        )
        with gr.Tab("Clip"):
            with gr.Row():
                with gr.Column():
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Sound")
                    button = gr.Button("Classify", variant="primary")
                    # Only clips of classes this model knows: a model of other classes gets none.
                    examples = (
                        [row for row in read_examples(examples_dir) if row["category"] in labels]
                        if examples_dir
                        else []
                    )
                    example_clips = None
                    if examples:
                        example_clips = gr.Examples(
                            examples=[[str(example["path"])] for example in examples],
                            inputs=[audio],
                            example_labels=[example["category"] for example in examples],
                            label="Example clips",
                            api_visibility="private",
                        )
                        _keep_example_copies(audio, examples)
                        gr.Markdown(_attribution_markdown(examples))
                    _show_a_working_api_example(audio, examples)
                with gr.Column():
                    label = answer_label(num_top_classes=TOP_K, label="Top classes")
            spectrogram = gr.Plot(label="Log-mel spectrogram (the model's features, in dB)")
            timeline = gr.Dataframe(
                headers=TIMELINE_COLUMNS,
                label=f"Timeline: best class per {classifier.extractor.clip_seconds:g}-s window",
                interactive=False,
            )

            def predict(audio_file: str | None) -> tuple[dict[str, float] | tuple[str, dict[str, float]], pd.DataFrame]:
                return classify(classifier, audio_file, threshold)

            def draw(audio_file: str | None) -> Figure:
                return spectrogram_figure(classifier, audio_file)

            event = gr.on(
                triggers=[button.click, audio.upload, audio.stop_recording],
                fn=predict,
                inputs=[audio],
                outputs=[label, timeline],
                api_name="predict",
                api_description=f"Top-{TOP_K} classes of an audio file (among the model's {len(labels)}), and the best "
                f"class of each {classifier.extractor.clip_seconds:g}-s window.",
            )
            event.success(fn=draw, inputs=[audio], outputs=[spectrogram], api_visibility="private")
            if example_clips is not None:  # a click on an example classifies it, as an upload or a recording is
                example_event = example_clips.load_input_event.then(
                    fn=predict, inputs=[audio], outputs=[label, timeline], api_visibility="private"
                )
                example_event.success(fn=draw, inputs=[audio], outputs=[spectrogram], api_visibility="private")
        if max_live_streams > 0:
            with gr.Tab("Live microphone", elem_id="live-mode"):
                _live_mode(classifier, threshold, max_live_streams)
    _only_predict_in_the_api(demo)
    return demo


def _live_mode(classifier: SoundClassifier, threshold: float | None, max_streams: int) -> None:
    """The Live tab: the microphone streamed (`gr.Audio(streaming=True)`), the last clip classified about every
    `LIVE_UPDATE_SECONDS` (`LiveClassifier`), the current answer and the smoothed history of the last
    `LIVE_HISTORY_SECONDS`. Its events are page-only, like the spectrogram's."""
    leave_no_timer_per_chunk()
    live = LiveClassifier(classifier, max_streams, threshold, top_k=3)
    clip, recent = classifier.extractor.clip_seconds, live.recent_samples
    newest = (
        ""
        if recent is None
        else f" (and the last {recent / classifier.sampling_rate:g} s on their own, when surer of another sound)"
    )
    gr.Markdown(
        f"Press **Record**: the last {clip:g} s of sound{newest} are classified about every "
        f"{LIVE_UPDATE_SECONDS:g} s as you go. Listening stops after {LIVE_TIME_LIMIT_SECONDS / 60:g} min "
        "(press Record again to go on). "
        f"{MICROPHONE_HELP}"
    )
    with gr.Row():
        microphone = gr.Audio(sources=["microphone"], streaming=True, type="filepath", label="Microphone (live)")
        now = answer_label(num_top_classes=3, label="Now")
    history = gr.HighlightedText(
        label=f"The last {LIVE_HISTORY_SECONDS:g} s, oldest first (each label smoothed over "
        f"{LIVE_SMOOTHING_UPDATES * LIVE_UPDATE_SECONDS:g} s)",
        show_inline_category=False,
    )
    # A page's stream is its session's (no gr.State: that would hold a heartbeat connection open on every page).

    def listen(chunk: str | None, request: gr.Request) -> tuple:
        try:
            update = live.update(request.session_hash, chunk)
        except (LiveStreamsFull, AudioInputError) as error:
            raise gr.Error(str(error), print_exception=False) from error
        except Exception as error:  # a bug: logged, the server goes on
            logger.exception("Failed on a live chunk")
            raise gr.Error(
                "The server failed on this stream; the error is in its log.", print_exception=False
            ) from error
        if update is None:  # nothing new to show
            return gr.skip(), gr.skip()
        return_freed_memory()  # the chunk's decoding and the window's features, as after an upload
        # Postprocessed here (the event has postprocess=False): after a gr.skip() Gradio answers with a fresh copy of
        # each output component, which would not have answer_label's headline.
        return _json(now.postprocess(answer(update.prediction))), _json(history.postprocess(history_runs(update.runs)))

    def end(request: gr.Request) -> None:  # Record or Stop: the previous stream's slot is freed now, not when idle
        live.streams.close(request.session_hash)

    microphone.stream(
        listen,
        inputs=[microphone],
        outputs=[now, history],
        stream_every=LIVE_UPDATE_SECONDS,
        time_limit=LIVE_TIME_LIMIT_SECONDS,
        concurrency_limit=None,  # not Gradio's queue: `LiveStreams` caps the streams, and says so when full
        show_progress="hidden",
        api_visibility="private",
        postprocess=False,
    )
    for trigger in (microphone.start_recording, microphone.stop_recording):
        trigger(end, inputs=None, outputs=None, queue=False, api_visibility="private")


def _json(value):
    return value.model_dump() if hasattr(value, "model_dump") else value


def history_runs(runs: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """The live history as `gr.HighlightedText` takes it: one `("dog 12 s", "dog")` piece per run of one label."""
    return [
        (f"{'not known' if label == UNKNOWN_RUN else label.replace('_', ' ')} {seconds:.0f} s ", label)
        for label, seconds in runs
    ]


def _keep_example_copies(audio: gr.Audio, examples: list[dict]) -> None:
    """Marks the copies of the example clips that Gradio made in the upload folder as kept in its cache.

    Gradio serves an example from a copy in the upload folder (`move_resource_to_block_cache`, the call that
    `gr.Examples` makes for each clip), but does not mark that copy as kept: `UploadJanitor` would delete it
    `--keep-uploads` seconds after the server started, and every example click after that would load nothing.
    Asking the component again gives the same copy (its folder is named after the file's hash).
    """
    for example in examples:
        copy = audio.move_resource_to_block_cache(example["path"])
        if copy:
            audio.keep_in_cache.add(copy)


def _show_a_working_api_example(audio: gr.Audio, examples: list[dict]) -> None:
    """Makes the page's "Use via API" snippet send a local file: Gradio's own example for `gr.Audio` is a URL, which
    this server refuses (`refuse_url_downloads`). With example clips, the snippet names the first one as the
    checkout and a Space folder hold it (`examples/<file>`, relative to the folder the app runs from)."""
    name = f"{Path(examples[0]['path']).parent.name}/{examples[0]['file']}" if examples else API_EXAMPLE_FILE
    audio.example_payload = lambda: {"path": name, "meta": {"_type": "gradio.FileData"}}  # handle_file(name)
    audio.example_value = lambda: name


def _only_predict_in_the_api(demo: gr.Blocks) -> None:
    """Unnames every event but `/predict` (the spectrogram, the examples' loaders): the page still calls
    them by index, but `/gradio_api/call/<name>` and `gradio_client` find only `predict`."""
    for function in demo.fns.values():
        if function.api_name != "predict":
            function.api_name = None
            function.api_visibility = "private"


def classify(
    classifier: SoundClassifier, path: str | None, unknown_threshold: float | None = None
) -> tuple[dict[str, float] | tuple[str, dict[str, float]], pd.DataFrame]:
    """The `/predict` endpoint: `({label: score}, timeline table)`, or `((headline, {label: score}), table)` when
    the unknown score is below `unknown_threshold` (the headline says it is none of the known sounds, with the best
    guess); bad input -> `gr.Error`."""
    prediction = _run(classifier.predict, path)
    if unknown_threshold is not None:
        prediction = prediction.with_unknown(unknown_threshold)
    return answer(prediction), timeline_table(prediction)


def answer(prediction: Prediction) -> dict[str, float] | tuple[str, dict[str, float]]:
    """What `answer_label` shows: `{label: score}`, or `(headline, {label: score})` when the prediction is `unknown`
    (the headline says it is none of the known sounds, with the best guess)."""
    if prediction.unknown:
        guess = prediction.best_guess
        headline = UNKNOWN_HEADLINE.format(label=guess.label.replace("_", " "), score=guess.score)
        return headline, prediction.confidences()
    return prediction.confidences()


def timeline_table(prediction: Prediction) -> pd.DataFrame:
    """The windows' rows (`WindowPrediction.to_row`), scores to `TIMELINE_SCORE_DIGITS`, as a table."""
    rows = [window.to_row(TIMELINE_SCORE_DIGITS) for window in prediction.windows]
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
    """Calls `function(path)`, turning missing or bad input into a message for the user; then returns the memory
    the request freed to the system (`return_freed_memory`), or a long upload's decoding would stay in the server."""
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
    finally:
        return_freed_memory()


def _labels_text(labels: tuple[str, ...], shown: int = 12) -> str:
    """The model's classes in a sentence: all of them when few, else the first `shown` and how many more."""
    names = ", ".join(name.replace("_", " ") for name in labels[:shown])
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return f"{len(labels)} classes: {names}{more}."


def _duration_text(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


__all__ = ["answer", "build_demo", "classify", "history_runs", "read_examples", "spectrogram_figure", "timeline_table"]
