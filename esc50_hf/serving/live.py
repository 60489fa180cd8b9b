"""The app's live mode: the microphone streamed to the server, a rolling window classified about once a second.

The browser sends what it recorded since its last send (`gr.Audio(streaming=True)`; Gradio's recorder sends every
~0.1 s while the server keeps up), as a short WAV upload. Each chunk is decoded by the one input path
(`esc50_hf.model.audio_io.stream_audio`: checked, mono, at the model's rate), deleted from the upload folder, and
pushed into the stream's buffer of the last clip (5 s). Once `LIVE_UPDATE_SECONDS` of new audio have arrived, that
window is classified by `SoundClassifier.window_scores` (the same features, network and batching as every
other request: the windows of all live streams and uploads share forward passes) and answered as an upload is
(`Prediction`, the unknown answer below the model's threshold). A short history (`LIVE_HISTORY_SECONDS`) keeps the
windows' probabilities; the page shows it smoothed over `LIVE_SMOOTHING_UPDATES` updates, as runs of one label.

What one stream may cost is bounded, whatever the client sends (`LiveStreams`):
- its state is a clip of samples at the model's rate and `history_updates` probability rows, never more;
- at most `max_streams` streams at once; one more is refused with `LIVE_FULL_MESSAGE`;
- a stream that sends nothing for `LIVE_IDLE_SECONDS` (a closed tab, a lost network) is dropped and its slot freed;
  Gradio ends every stream after `LIVE_TIME_LIMIT_SECONDS`;
- silence is classified like any sound (the unknown answer, with a model that has a threshold); an empty chunk
  changes nothing; a chunk of a few ms is taken like any other (the shortest-input limit is for clips); a chunk
  that is not audio ends that stream with the decoder's message, and the server goes on.
"""

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from ..inference.classifier import SoundClassifier
from ..model.audio_io import AudioInputError, stream_audio
from ..model.prediction import Prediction, unknown_score
from ..model.windows import window_power

LIVE_UPDATE_SECONDS = 1.0  # one update per this much new audio, however often the browser sends (~0.1 s)
LIVE_HISTORY_SECONDS = 30.0  # the history strip covers this much
LIVE_SMOOTHING_UPDATES = 3  # the history's label: the mean of this many updates' probabilities
LIVE_IDLE_SECONDS = 10.0  # a stream silent (no chunk) this long is dropped
LIVE_TIME_LIMIT_SECONDS = 600  # Gradio ends a stream after this long; press Record again to go on
DEFAULT_MAX_LIVE_STREAMS = 8  # streams at once (--max-live-streams); see bench/LOAD.md for what this machine holds
LIVE_RECENT_SECONDS = 3.0  # LiveClassifier's recent_seconds in the app (bench/live_window_choice.md)
UNKNOWN_RUN = "unknown"  # the history's name for a stretch that is none of the known sounds

LIVE_FULL_MESSAGE = (
    "The live mode is full: {count} live streams are running, the most this server takes (--max-live-streams). "
    "Try again in a minute, or record a clip or upload a file on the Clip tab."
)
MICROPHONE_HELP = (
    "Allow the microphone when the browser asks. If it was denied, allow it in the site settings (the icon left of "
    "the address) and reload the page. Browsers give the microphone only to pages on https:// or on localhost: "
    "on a plain http:// address of another machine there is no microphone."
)


class LiveStreamsFull(Exception):
    """No slot for one more live stream; the message says what to do."""


@dataclass
class LiveStream:
    """One microphone's state: the last clip of samples (a buffer of fixed size, shifted as samples arrive) and the
    recent updates.

    Args:
        clip_samples (`int`): Samples in the window (5 s at the model's rate); the buffer never holds more.
        history_updates (`int`): Probability rows kept; older ones are dropped.
    """

    clip_samples: int
    history_updates: int
    buffer: np.ndarray = field(init=False)
    filled: int = 0  # samples of the buffer holding audio (the newest at its end)
    heard: int = 0  # samples received since the stream started
    unclassified: int = 0  # samples received since the window was last classified
    history: deque = field(init=False)  # (samples the update added, probabilities, atypicality or None)
    last_seen: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.buffer = np.zeros(self.clip_samples, np.float32)
        self.history = deque(maxlen=self.history_updates)

    def push(self, samples: np.ndarray) -> None:
        """Appends samples; only the newest `clip_samples` stay."""
        self.heard += len(samples)
        self.unclassified += len(samples)
        samples = samples[-self.clip_samples :]
        count = len(samples)
        if count:
            self.buffer[:-count] = self.buffer[count:]  # shift in place: no allocation that grows
            self.buffer[-count:] = samples
            self.filled = min(self.clip_samples, self.filled + count)

    def window(self) -> np.ndarray:
        """The samples heard in the last clip (shorter at the start: the feature extractor pads it, as for a short
        upload)."""
        return self.buffer[self.clip_samples - self.filled :]


class LiveStreams:
    """The live streams of one server: at most `max_streams`, each dropped after `idle_seconds` without a chunk.

    Thread-safe: Gradio runs the stream events in worker threads.

    Args:
        clip_samples (`int`): The model's window in samples.
        history_updates (`int`): History rows per stream.
        max_streams (`int`): Most streams at once.
        idle_seconds (`float`, *optional*): Seconds without a chunk after which a stream is dropped.
        clock (`Callable[[], float]`, *optional*): Monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        clip_samples: int,
        history_updates: int,
        max_streams: int,
        idle_seconds: float = LIVE_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clip_samples, self.history_updates = clip_samples, history_updates
        self.max_streams, self.idle_seconds, self.clock = max_streams, idle_seconds, clock
        self._streams: dict[str, LiveStream] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._drop_idle()
            return len(self._streams)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            self._drop_idle()
            return key in self._streams

    def get(self, key: str) -> LiveStream:
        """The stream `key` (a page's session), marked as seen now; a new one if there is none (never opened, or
        dropped as idle). Raises `LiveStreamsFull` when a new one is needed and `max_streams` are running."""
        with self._lock:
            self._drop_idle()
            stream = self._streams.get(key)
            if stream is None:
                if len(self._streams) >= self.max_streams:
                    raise LiveStreamsFull(LIVE_FULL_MESSAGE.format(count=len(self._streams)))
                stream = self._streams[key] = LiveStream(self.clip_samples, self.history_updates)
            stream.last_seen = self.clock()
            return stream

    def close(self, key: str | None) -> None:
        """Frees the stream `key` (the user pressed Stop); unknown keys are ignored."""
        with self._lock:
            self._streams.pop(key or "", None)

    def _drop_idle(self) -> None:
        now = self.clock()
        for key in [key for key, stream in self._streams.items() if now - stream.last_seen > self.idle_seconds]:
            del self._streams[key]


@dataclass(frozen=True)
class LiveUpdate:
    """What one chunk gives: the current window's prediction and the smoothed history as runs of one label."""

    prediction: Prediction
    runs: list[tuple[str, float]]  # (label or UNKNOWN_RUN, seconds), oldest first


class LiveClassifier:
    """Chunks in, `LiveUpdate`s out, for the streams of one server (see the module's docstring).

    Args:
        classifier (`SoundClassifier`): What classifies; its `limits` bound each chunk.
        max_streams (`int`, *optional*): Live streams at once.
        unknown_threshold (`float`, *optional*): Below it, the answer is "not one of the known sounds".
        idle_seconds (`float`, *optional*): See `LiveStreams`.
        top_k (`int`, *optional*, defaults to 5): Labels in each prediction.
        recent_seconds (`float` or `"auto"`, *optional*, defaults to `"auto"`): Also classify the newest
            `recent_seconds` of the window (same forward pass); its answer is shown instead of the whole window's
            when it names another label with a higher top score, so a new sound shows before the old one has left
            the window. `"auto"`: `LIVE_RECENT_SECONDS` for a model whose clip is longer, else none; `None`: the
            whole window only.
        recent_min_score (`float`, *optional*): The newest seconds' answer is also shown when it names another
            label with a top score of at least this (a calibrated probability), however sure the whole window is.
            `None`: only when surer than the whole window.
    """

    def __init__(
        self,
        classifier: SoundClassifier,
        max_streams: int = DEFAULT_MAX_LIVE_STREAMS,
        unknown_threshold: float | None = None,
        idle_seconds: float = LIVE_IDLE_SECONDS,
        top_k: int = 5,
        recent_seconds: float | str | None = "auto",
        recent_min_score: float | None = None,
    ) -> None:
        self.classifier, self.unknown_threshold, self.top_k = classifier, unknown_threshold, top_k
        rate, clip = classifier.sampling_rate, classifier.clip_samples
        if recent_seconds == "auto":
            recent_seconds = LIVE_RECENT_SECONDS if round(LIVE_RECENT_SECONDS * rate) < clip else None
        self.recent_samples = None if recent_seconds is None else round(recent_seconds * rate)
        if self.recent_samples is not None and not 0 < self.recent_samples < clip:
            raise ValueError(
                f"recent_seconds must be positive and shorter than the model's clip ({clip / rate:g} s), "
                f"got {recent_seconds}"
            )
        if recent_min_score is not None and not 0 < recent_min_score <= 1:
            raise ValueError(f"recent_min_score must be a probability in (0, 1], got {recent_min_score}")
        self.recent_min_score = recent_min_score
        history_updates = round(LIVE_HISTORY_SECONDS / LIVE_UPDATE_SECONDS)
        # Browsers send what they recorded every ~0.1 s (Gradio's audio recorder), whatever `stream_every` says:
        # the window is classified once `LIVE_UPDATE_SECONDS` of new audio have arrived, the first chunk at once.
        self.update_samples = round(LIVE_UPDATE_SECONDS * classifier.sampling_rate)
        # A chunk is a piece of a stream, not a clip: the shortest-input limit is for clips; every other one holds.
        self.chunk_limits = replace(classifier.limits, min_seconds=0.0)
        self.streams = LiveStreams(classifier.clip_samples, history_updates, max_streams, idle_seconds)

    def update(self, key: str, chunk: str | None) -> LiveUpdate | None:
        """Takes one chunk (a file path, deleted once read) of the stream `key` (the page's session).

        Returns:
            `LiveUpdate` or `None`: the stream's update; `None` when nothing
            changed: the chunk held no audio, or less than `LIVE_UPDATE_SECONDS` of audio arrived since the last
            update (the samples are kept in the window all the same).

        Raises:
            `LiveStreamsFull`: a new stream (or one dropped as idle) and no slot.
            `AudioInputError`: the chunk is not audio, or is outside the limits.
        """
        try:
            stream = self.streams.get(key)
        except LiveStreamsFull:
            if chunk:  # refused: its upload must not wait for the janitor, counted against the upload budget
                with contextlib.suppress(OSError):
                    os.unlink(chunk)
            raise
        samples = self._read(chunk) if chunk else np.zeros(0, np.float32)
        stream.push(samples)
        if not stream.unclassified or (stream.history and stream.unclassified < self.update_samples):
            return None  # nothing new, or less than an update's worth since the last one
        window = stream.window()
        if self.recent_samples is None or len(window) <= self.recent_samples:
            rows, atypical = self.classifier.window_scores([window])
        else:
            rows, atypical = self.classifier.window_scores([window, window[-self.recent_samples :]])
            surer = rows[1].max() > rows[0].max()
            sure = self.recent_min_score is not None and rows[1].max() >= self.recent_min_score
            if rows[1].argmax() != rows[0].argmax() and (surer or sure):
                rows, atypical, window = (
                    rows[1:],
                    None if atypical is None else atypical[1:],
                    window[-self.recent_samples :],
                )
        probabilities, atypicality = rows[0], None if atypical is None else float(atypical[0])
        stream.history.append((stream.unclassified, probabilities, atypicality))
        stream.unclassified = 0
        pool = self.classifier.window_pool()
        start = stream.heard - len(window)
        one = None if atypicality is None else [atypicality]
        pool.add([(start, len(window))], probabilities[None], [window_power(window)], one)  # one window: weight moot
        prediction = pool.prediction(self.top_k)
        if self.unknown_threshold is not None:
            prediction = prediction.with_unknown(self.unknown_threshold)
        return LiveUpdate(prediction, self._runs(stream))

    def _read(self, chunk: str) -> np.ndarray:
        """The chunk's samples at the model's rate (at most the last clip of them); the file is deleted."""
        path = Path(chunk)
        try:
            tail = np.zeros(0, np.float32)
            for block in stream_audio(path, self.classifier.sampling_rate, self.chunk_limits):
                tail = np.concatenate([tail, block])[-self.classifier.clip_samples :]  # a long chunk: its end only
            return tail
        except AudioInputError:
            if not path.exists() or _no_frames(path):  # an empty chunk; or two identical chunks shared one upload
                return np.zeros(0, np.float32)  # file and the other one deleted it
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _runs(self, stream: LiveStream) -> list[tuple[str, float]]:
        """The history smoothed (mean of the last `LIVE_SMOOTHING_UPDATES` rows) as `(label, seconds)` runs, the
        last `LIVE_HISTORY_SECONDS` only (updates of more than a second each, from a lagging client, are cut)."""
        rows = list(stream.history)
        budget, spans = LIVE_HISTORY_SECONDS, []
        for added, _, _ in reversed(rows):
            spans.append(min(added / self.classifier.sampling_rate, budget))
            budget -= spans[-1]
        runs: list[tuple[str, float]] = []
        for index, seconds in enumerate(reversed(spans)):
            if not seconds:
                continue
            recent = rows[max(0, index - LIVE_SMOOTHING_UPDATES + 1) : index + 1]
            mean = np.mean([row for _, row, _ in recent], axis=0)
            best = int(mean.argmax())
            atypical = [value for _, _, value in recent]
            atypicality = None if None in atypical else float(np.mean(atypical))
            score = unknown_score(mean[best], atypicality, self.classifier.unknown_quantiles)
            unknown = self.unknown_threshold is not None and score < self.unknown_threshold
            label = UNKNOWN_RUN if unknown else self.classifier.labels[best]
            if runs and runs[-1][0] == label:
                runs[-1] = (label, runs[-1][1] + seconds)
            else:
                runs.append((label, seconds))
        return runs


def leave_no_timer_per_chunk() -> None:
    """Makes this process's Gradio queue leave nothing behind for each chunk of a streaming event. Idempotent.

    Between two chunks of a stream, Gradio's queue (`Queue.wait_for_event_or_timeout`, gradio 6.31) waits for the
    next chunk or for the rest of the event's time limit as two tasks, and never cancels the one that lost: every
    chunk left a task asleep until the stream's `LIVE_TIME_LIMIT_SECONDS` were up. Browsers send a chunk about every
    0.1 s, so a server's memory grew all through each 10-min stream (bench/live_rss.json). The same wait as one
    `asyncio.wait_for`, which cancels its timer when the chunk comes, or its wait when the time is up.
    """
    import gradio.queueing  # here: the serving modules set Gradio's environment before it is first imported

    async def wait_for_event_or_timeout(event, timeout: float) -> str:
        try:
            await asyncio.wait_for(event.signal.wait(), timeout)
            outcome = "signal"
        except TimeoutError:
            outcome = "timeout"
        event.signal.clear()
        return outcome

    gradio.queueing.Queue.wait_for_event_or_timeout = staticmethod(wait_for_event_or_timeout)


def _no_frames(path: Path) -> bool:
    """Whether `path` is a sound file that holds no samples (a chunk sent before the microphone gave any)."""
    try:
        return sf.info(str(path)).frames == 0
    except Exception:  # not a file libsndfile reads: not an empty chunk
        return False


__all__ = [
    "DEFAULT_MAX_LIVE_STREAMS",
    "LIVE_FULL_MESSAGE",
    "LIVE_TIME_LIMIT_SECONDS",
    "LIVE_UPDATE_SECONDS",
    "LiveClassifier",
    "LiveStream",
    "LiveStreams",
    "LiveStreamsFull",
    "LiveUpdate",
    "MICROPHONE_HELP",
    "leave_no_timer_per_chunk",
]
