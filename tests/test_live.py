"""The app's live mode (`esc50_hf.serving.live`): the bounded per-stream state in process, and the real page in
headless Chromium with a fake microphone that plays 10 s of the example dog clip, then 10 s of the rain clip."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.model.audio_io import AudioInputError
from esc50_hf.paths import EXAMPLES_DIR
from esc50_hf.serving.app import history_runs
from esc50_hf.serving.live import (
    LIVE_HISTORY_SECONDS,
    LIVE_TIME_LIMIT_SECONDS,
    LIVE_UPDATE_SECONDS,
    LiveClassifier,
    LiveStreams,
    LiveStreamsFull,
    leave_no_timer_per_chunk,
)

from .app_server import app_subprocess

REPO = Path(__file__).resolve().parent.parent
DOG = EXAMPLES_DIR / "dog_5-203128-A-0.flac"
RAIN = EXAMPLES_DIR / "rain_5-181766-A-10.flac"
BROWSER_RATE = 48000  # what a browser's microphone records at
RAIN_DELAY_S = 7.5  # see test_browser_live_microphone_shows_dog_then_rain


@pytest.fixture(scope="module")
def classifier(saved_model_dir) -> SoundClassifier:
    return SoundClassifier(saved_model_dir)


def _chunk(folder: Path, samples: np.ndarray, rate: int = BROWSER_RATE, name: str = "chunk") -> str:
    path = folder / f"{name}-{time.monotonic_ns()}.wav"
    sf.write(path, samples, rate, subtype="PCM_16")
    return str(path)


def test_a_stream_holds_one_clip_and_a_capped_history(classifier, tmp_path):
    """Chunks of 1 s for 40 s: the ring buffer stays one clip, the history `LIVE_HISTORY_SECONDS`, each chunk file is
    deleted once read, and a long chunk (20 s) costs no more than a clip."""
    live = LiveClassifier(classifier, max_streams=2)
    rng = np.random.default_rng(0)
    for _ in range(40):
        path = _chunk(tmp_path, 0.1 * rng.standard_normal(BROWSER_RATE))
        update = live.update("page", path)
        assert not Path(path).exists()
    stream = live.streams.get("page")
    assert stream.buffer.shape == (classifier.clip_samples,) and stream.filled == classifier.clip_samples
    assert len(stream.history) == round(LIVE_HISTORY_SECONDS / LIVE_UPDATE_SECONDS)
    assert sum(seconds for _, seconds in update.runs) == pytest.approx(LIVE_HISTORY_SECONDS, abs=0.1)
    update = live.update("page", _chunk(tmp_path, 0.1 * rng.standard_normal(20 * BROWSER_RATE)))
    assert stream.buffer.shape == (classifier.clip_samples,) and len(stream.history) == 30
    assert sum(seconds for _, seconds in update.runs) == pytest.approx(LIVE_HISTORY_SECONDS, abs=0.1)  # not 34 s
    assert update.prediction.windows[0].end_s - update.prediction.windows[0].start_s == pytest.approx(5.0, abs=1e-3)


def test_the_window_is_classified_once_per_second_of_new_audio(classifier, tmp_path):
    """Browsers send ~0.1-s chunks: the first is classified at once, then one update per `LIVE_UPDATE_SECONDS` of
    audio; the chunks in between still go into the window."""
    live = LiveClassifier(classifier, max_streams=1)
    chunk = BROWSER_RATE // 10
    rng = np.random.default_rng(1)
    updated = [live.update("page", _chunk(tmp_path, 0.1 * rng.standard_normal(chunk))) is not None for _ in range(31)]
    assert updated == [True] + ([False] * 9 + [True]) * 3
    assert live.streams.get("page").filled == 31 * classifier.clip_samples // 50  # 3.1 s


def test_silence_empty_short_and_garbage_chunks(classifier, tmp_path):
    """Silence is classified (no crash); an empty chunk changes nothing; a chunk shorter than the shortest clip
    is taken into the window; a chunk that is not audio is refused with the decoder's
    message and the stream's state is unchanged."""
    live = LiveClassifier(classifier, max_streams=2, unknown_threshold=0.99)
    update = live.update("page", _chunk(tmp_path, np.zeros(BROWSER_RATE)))
    assert update.prediction.unknown and update.runs[0][0] == "unknown"
    assert history_runs(update.runs)[0][0].startswith("not known 1 s")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), BROWSER_RATE)
    assert live.update("page", str(empty)) is None and live.update("page", None) is None
    filled = live.streams.get("page").filled
    assert live.update("page", _chunk(tmp_path, np.zeros(BROWSER_RATE // 50))) is None  # 20 ms
    assert live.streams.get("page").filled == filled + classifier.sampling_rate // 50
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(5000))
    with pytest.raises(AudioInputError, match="PNG image"):
        live.update("page", str(garbage))
    assert not garbage.exists() and len(live.streams.get("page").history) == 1


def test_a_refused_chunk_is_deleted(classifier, tmp_path):
    """A chunk of a stream refused for want of a slot is deleted at once, not left to the upload janitor."""
    live = LiveClassifier(classifier, max_streams=1)
    live.update("first", _chunk(tmp_path, np.zeros(BROWSER_RATE // 10)))
    refused = _chunk(tmp_path, np.zeros(BROWSER_RATE // 10))
    with pytest.raises(LiveStreamsFull):
        live.update("second", refused)
    assert not Path(refused).exists()


def test_streams_are_capped_and_idle_ones_dropped():
    """`max_streams` at once, then a refusal that says what to do; a stream idle past `idle_seconds` is dropped (its
    slot freed; a chunk after that starts it again); Stop frees a slot at once."""
    now = [0.0]
    streams = LiveStreams(clip_samples=100, history_updates=3, max_streams=2, idle_seconds=10, clock=lambda: now[0])
    first = streams.get("first")
    first.push(np.ones(50, np.float32))
    streams.get("second")
    with pytest.raises(LiveStreamsFull, match="2 live streams are running.*Try again in a minute"):
        streams.get("third")
    streams.close("second")
    streams.get("third")
    now[0] = 8.0
    streams.get("third")  # seen at 8 s; the first was last seen at 0 s
    now[0] = 12.0
    assert len(streams) == 1 and "first" not in streams
    streams.get("fourth")
    with pytest.raises(LiveStreamsFull):
        streams.get("first")
    streams.close("fourth")
    assert streams.get("first").filled == 0  # a new stream


def test_the_ring_buffer_keeps_the_newest_samples():
    streams = LiveStreams(clip_samples=5, history_updates=2, max_streams=1)
    stream = streams.get("page")
    stream.push(np.arange(3, dtype=np.float32))
    assert stream.window().tolist() == [0, 1, 2]
    stream.push(np.arange(3, 7, dtype=np.float32))
    assert stream.window().tolist() == [2, 3, 4, 5, 6] and stream.heard == 7
    stream.push(np.arange(10, 20, dtype=np.float32))
    assert stream.window().tolist() == [15, 16, 17, 18, 19] and stream.heard == 17


def test_the_recent_window_is_shown_only_when_surer_of_another_label(classifier, tmp_path, monkeypatch):
    """With `recent_seconds`, the newest seconds are classified beside the whole window (one call); their answer
    is shown (and spans only them) when it names another label with a higher top score, else the whole window's."""
    calls = []
    recent_rows = iter([[0.2, 0.8], [0.45, 0.55], [0.9, 0.1]])  # surer of another label; less sure; the same label

    def scores(windows):
        calls.append([len(window) for window in windows])
        rows = [[0.6, 0.4]] + [next(recent_rows) for _ in windows[1:]]
        return np.array([row + [0.0] * (len(classifier.labels) - 2) for row in rows]), None

    monkeypatch.setattr(classifier, "window_scores", scores)
    live = LiveClassifier(classifier, max_streams=1, recent_seconds=2.0)
    rate, clip = classifier.sampling_rate, classifier.clip_samples
    first = live.update("page", _chunk(tmp_path, np.zeros(rate), rate))  # 1 s heard: one window, no recent one
    assert calls == [[rate]] and first.prediction.label == classifier.labels[0]
    shown = []
    for seconds in (5, 1, 1):  # then 6, 7, 8 s heard: the whole window (one clip) and its last 2 s
        update = live.update("page", _chunk(tmp_path, np.zeros(seconds * rate), rate))
        window = update.prediction.windows[0]
        shown.append((update.prediction.label, window.end_s - window.start_s))
    assert calls[1:] == [[clip, 2 * rate]] * 3
    assert shown[0] == (classifier.labels[1], pytest.approx(2.0))
    assert shown[1][0] == shown[2][0] == classifier.labels[0] and shown[2][1] == pytest.approx(clip / rate)
    for wrong in (0.0, 1e-6, clip / rate):  # 1e-6 s rounds to no sample
        with pytest.raises(ValueError, match="recent_seconds"):
            LiveClassifier(classifier, recent_seconds=wrong)


def test_a_floor_shows_the_recent_window_when_sure_enough_whatever_the_whole_window(classifier, tmp_path, monkeypatch):
    """With `recent_min_score`, the newest seconds' answer is also shown when it names another label with at least
    that score, though the whole window is surer; below the floor (or for the same label) the whole window's."""
    whole = [0.9, 0.05, 0.05]
    recent_rows = iter([[0.3, 0.7, 0.0], [0.35, 0.45, 0.2], [0.95, 0.05, 0.0]])  # above the floor; below; same label

    def scores(windows):
        rows = [whole] + [next(recent_rows) for _ in windows[1:]]
        return np.array([row + [0.0] * (len(classifier.labels) - 3) for row in rows]), None

    monkeypatch.setattr(classifier, "window_scores", scores)
    live = LiveClassifier(classifier, max_streams=1, recent_seconds=2.0, recent_min_score=0.5)
    rate = classifier.sampling_rate
    live.update("page", _chunk(tmp_path, np.zeros(rate), rate))  # 1 s heard: one window, no recent one
    shown = [live.update("page", _chunk(tmp_path, np.zeros(s * rate), rate)).prediction.label for s in (5, 1, 1)]
    assert shown == [classifier.labels[1], classifier.labels[0], classifier.labels[0]]
    for wrong in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="recent_min_score"):
            LiveClassifier(classifier, recent_min_score=wrong)


def test_the_live_unknown_answer_reads_the_atypicality(classifier, tmp_path, monkeypatch):
    """With a model's unknown quantiles, an update and the history say unknown when the window is more atypical
    than every held-out clip, whatever its top score; known when it is less."""
    from esc50_hf.serving.live import UNKNOWN_RUN

    atypicality = iter([5.0, 5.0, -5.0, -5.0, -5.0])  # two updates far from the training clips, then three near

    def scores(windows):
        rows = np.zeros((len(windows), len(classifier.labels)))
        rows[:, 0] = 0.9  # a sure top score every time
        rows[:, 1] = 0.1
        return rows, np.array([next(atypicality)] * len(windows))

    monkeypatch.setattr(classifier, "window_scores", scores)
    monkeypatch.setattr(classifier, "unknown_quantiles", {"top_score": [0.0, 1.0], "atypicality": [-1.0, 1.0]})
    live = LiveClassifier(classifier, max_streams=1, unknown_threshold=0.1, recent_seconds=None)
    rate = classifier.sampling_rate
    updates = [live.update("page", _chunk(tmp_path, np.zeros(rate), rate)) for _ in range(5)]
    assert [update.prediction.unknown for update in updates] == [True, True, False, False, False]
    assert updates[-1].runs[0][0] == UNKNOWN_RUN and updates[-1].runs[-1][0] == classifier.labels[0]


@pytest.fixture(scope="module")
def dog_then_rain(tmp_path_factory) -> Path:
    """10 s of the example dog clip (played twice), then 10 s of the rain clip, at 48 kHz: the fake microphone."""
    classifier_rate = 22050
    parts = []
    for path in (DOG, DOG, RAIN, RAIN):
        samples, rate = sf.read(path, dtype="float32")
        assert rate == classifier_rate and len(samples) == 5 * rate, path
        parts.append(samples)
    import torch
    import torchaudio

    signal = torchaudio.functional.resample(torch.from_numpy(np.concatenate(parts)), classifier_rate, BROWSER_RATE)
    path = tmp_path_factory.mktemp("microphone") / "dog_then_rain.wav"
    sf.write(path, signal.numpy(), BROWSER_RATE, subtype="PCM_16")
    return path


# Records the time the page opens the microphone (the fake device starts its file then) and every change of the live
# answer's headline, in the page's own clock.
WATCH_SCRIPT = """
window.__events = [];
const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    window.__events.push([performance.now(), "microphone"]);
    return stream;
};
let last = null;
setInterval(() => {
    const tab = document.querySelector("#live-mode");
    const value = tab && tab.querySelector("[data-testid=label-output-value]");
    const text = value ? value.textContent.trim() : null;
    if (text !== last) { last = text; window.__events.push([performance.now(), text]); }
}, 50);
"""


@pytest.mark.slow
def test_browser_live_microphone_shows_dog_then_rain(dog_then_rain, tmp_path):
    """The real app with the shipped model; Chromium's fake microphone plays 10 s of dog, then 10 s of rain. The
    live answer says `dog` within 3 s of the microphone opening, and `rain` within `RAIN_DELAY_S` of the change.

    Not 3 s for rain (the live issue's aim; over 100 fold-5 pairs 63 % of changes show within 3 s,
    bench/LIVE_LATENCY.md): the dog clip barks until 4.75 s, so its last bark ends 9.75 s into the microphone's audio
    and stays in the 5-s window until 14.75 s. The last 3 s (`LIVE_RECENT_SECONDS`) are free of it from 12.75 s, but
    the pair shipped on 2026-12-07 stays sure of the dog while its bark is in the window, so `rain` showed 3.4 s after
    the change on the idle machine and 5.1-7.0 s with trainings beside the test (three runs of 2026-12-07); an update
    comes once per second of audio and takes a few tenths of a second to show, more on a busy machine."""
    from playwright.sync_api import sync_playwright

    from .test_app import BROWSER_ARGS

    fake_microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={dog_then_rain}",
    ]
    env = {"GRADIO_TEMP_DIR": str(tmp_path / "gradio-tmp")}
    with app_subprocess([], tmp_path / "server.log", env) as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS + fake_microphone)
        page = browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 1000}).new_page()
        page.add_init_script(WATCH_SCRIPT)
        try:
            page.goto(url)
            page.get_by_role("tab", name="Live microphone").click(timeout=60_000)
            page.locator("#live-mode").get_by_role("button", name="Record", exact=True).click()
            page.wait_for_function("window.__events.some(([, text]) => text === 'rain')", timeout=30_000)
            events = page.evaluate("window.__events")
        finally:
            page.screenshot(path=str(REPO / "test-artifacts" / "live.png"), full_page=True)
            browser.close()
    opened = next(time_ms for time_ms, text in events if text == "microphone")
    changes = [((time_ms - opened) / 1000, text) for time_ms, text in events if text and text != "microphone"]
    first_dog = next((seconds for seconds, text in changes if text == "dog"), None)
    first_rain = next((seconds for seconds, text in changes if text == "rain"), None)
    assert first_dog is not None and first_rain is not None, changes
    assert first_dog <= 3.0, changes
    assert first_rain - 10.0 <= RAIN_DELAY_S, changes


def test_a_streams_chunks_leave_no_timers_in_gradios_queue():
    """Gradio's queue waits between two chunks of a stream for the next chunk or the stream's time limit; as shipped it
    leaves a task asleep until that limit for every chunk (the server's memory grew all through a 10-min stream).
    Patched: no task is left, and both outcomes are as before."""
    import asyncio
    from types import SimpleNamespace

    from gradio.queueing import Queue

    async def chunks(count: int) -> tuple[list[str], int, bool]:
        event = SimpleNamespace(signal=asyncio.Event())
        outcomes = []
        for _ in range(count):
            event.signal.set()  # the next chunk is already there
            outcomes.append(await Queue.wait_for_event_or_timeout(event, LIVE_TIME_LIMIT_SECONDS))
        outcomes.append(await Queue.wait_for_event_or_timeout(event, 0.01))  # no chunk within the time left
        await asyncio.sleep(0)
        left = len([task for task in asyncio.all_tasks() if task is not asyncio.current_task()])
        return outcomes, left, event.signal.is_set()

    leave_no_timer_per_chunk()
    leave_no_timer_per_chunk()  # idempotent
    outcomes, left, signal_set = asyncio.run(chunks(50))
    assert outcomes == ["signal"] * 50 + ["timeout"] and left == 0 and not signal_set


def test_the_latency_bench_times_a_change_when_the_answer_holds_to_the_end():
    """bench/live_latency.py: the second sound counts once it is shown at every update after the change; a stray
    answer before the change is counted, not timed; a first sound never shown before the change counts every update
    before it as another answer."""
    from bench.live_latency import timings

    shown = [(0.1, "dog"), (1.1, "dog"), (2.1, "cat"), (3.1, "dog"), (10.1, "dog"), (11.1, "rain"), (12.1, "dog"),
             (13.1, "rain"), (19.1, "rain")]  # fmt: skip
    assert timings(shown, "dog", "rain") == {"first_shown_s": 0.1, "change_s": 3.1, "other_before_change": 0.25}
    assert timings(shown[:-1] + [(19.1, "wind")], "dog", "rain")["change_s"] is None
    never = [(0.1, "cat"), (5.1, "cat"), (11.1, "dog"), (12.1, "rain")]  # dog only after the change: never shown
    assert timings(never, "dog", "rain") == {"first_shown_s": None, "change_s": 2.1, "other_before_change": 1.0}
