"""`SoundClassifier`: new audio of any length -> clip-level top-k labels and a per-window timeline.

The model sees 5-s clips. Shorter input is padded by the feature extractor (as ESC-50's own
short clips are). Longer input is cut into 5-s windows every `hop_seconds`, the last one
aligned to the end of the recording (never padded), each window is classified, and the
clip-level scores are the mean of the windows' probabilities, each window weighted by its
share of real, unpadded samples times its mean power (`model/windows.py`): the loudest stretch
of a recording carries the answer, not the quiet ambience around it, and a few extra samples at
the end (an encoder's priming, a recording stopped a moment late) do not add a window of silence.

Files are decoded block by block (`esc50_hf.model.audio_io.stream_audio`) and classified window by
window, so memory stays flat whatever the length; with `AudioLimits(max_seconds=None)` a
local recording of hours goes through in constant memory.

One instance serves many threads: it holds only read-only state (the backend's weights, the
feature extractor's parameters), and each call works on its own arrays. With
`dynamic_batching=True` the windows of concurrent calls share forward passes (see
`WindowBatcher`), which is what the web demo uses under load.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Esc50HfError
from ..model.audio_io import DEFAULT_LIMITS, AudioInputError, AudioLimits, AudioSource, audio_blocks, load_audio
from ..model.labels import model_labels
from ..model.prediction import LabelScore, Prediction, WindowPrediction
from ..model.windows import WindowPool, hop_samples, iter_windows, softmax, window_power, window_starts
from ..paths import DEFAULT_MODEL_DIR
from ..publish import is_hub_id
from .backends import load_backend
from .onnx_backend import TEMPERATURE_METADATA_KEY

DEFAULT_MAX_BATCH_SIZE = 64  # windows per shared forward pass with dynamic batching


@dataclass(frozen=True)
class _Waveform:
    """A mono float waveform already at the model's rate (what `predict_waveform` takes)."""

    samples: np.ndarray


class ModelLoadError(Esc50HfError, RuntimeError):
    """The model cannot be found or loaded; the message is one line that says what to do."""


def resolve_model(model: str | Path | None, default: str | Path | None = None) -> str:
    """The model to load: `model` if given, else `default` (else the checkout's `models/esc50-mel-cnn`).

    A default folder that does not hold a model raises `ModelLoadError` saying how to get one;
    a model named explicitly (a folder or a Hub id) is left for the loader to judge.
    """
    if model is not None:
        return str(model)
    default = DEFAULT_MODEL_DIR if default is None else default
    if isinstance(default, Path) and not (default / "config.json").is_file():
        raise ModelLoadError(
            f"No trained model at {default}. Train one (see README: Train) or pass "
            "--model <model folder or Hub id>, e.g. --model outputs/esc50-mel-cnn"
        )
    return str(default)


@contextmanager
def explain_load_failure(model: str | Path, backend: str = "torch") -> Iterator[None]:
    """Around the code that loads `model`: a missing folder, an unknown Hub id, damaged or truncated weights or a
    missing `model.onnx` become one `ModelLoadError` line that names the model, instead of a loader's traceback.

    Args:
        model (`str` or `Path`): Model folder or Hub id, as the user gave it.
        backend (`str`, *optional*, defaults to `"torch"`): The backend named in the message.

    Raises:
        `ModelLoadError`: `model` is neither a folder nor a Hub id (before the block runs), or the block failed.
    """
    name = str(model)
    if not Path(name).is_dir() and not is_hub_id(name):
        raise ModelLoadError(
            f"No model folder at {name}: pass a folder written by train.py or a Hub model id (OWNER/NAME)."
        )
    try:
        yield
    except Exception as error:  # loaders raise OSError, ValueError, safetensors' and onnxruntime's own errors
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ModelLoadError(f"Cannot load the model {name!r} with the {backend} backend: {reason[:300]}") from error


class SoundClassifier:
    """A saved model (folder or Hub id) behind any backend, for audio of any length; it answers with the labels of
    the model's own `config.json` (`self.labels`), whatever their number and order.

    Args:
        model (`str` or `Path`): Model folder or Hub id, with `preprocessor_config.json` (and `model.onnx` for onnx).
        backend (`str`, *optional*, defaults to `"torch"`): `"torch"` or `"onnx"`, see `esc50_hf.inference.backends`.
        hop_seconds (`float`, *optional*): Step between windows of long input (default: half a clip, 2.5 s).
        batch_size (`int`, *optional*, defaults to 16): Windows per forward pass; bounds memory for long input.
        limits (`AudioLimits`, *optional*): Input validation limits, see `esc50_hf.model.audio_io.AudioLimits`.
        dynamic_batching (`bool`, *optional*, defaults to `False`): Let concurrent calls share forward passes
            (up to `max_batch_size` windows each), for servers.
        max_batch_size (`int`, *optional*, defaults to 64): Largest shared forward pass with `dynamic_batching`.
        backend_kwargs: Passed to the backend (e.g. `num_threads`).
    """

    def __init__(
        self,
        model: str | Path,
        backend: str = "torch",
        *,
        hop_seconds: float | None = None,
        batch_size: int = 16,
        limits: AudioLimits = DEFAULT_LIMITS,
        dynamic_batching: bool = False,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        **backend_kwargs: Any,
    ) -> None:
        from transformers import AutoConfig, AutoFeatureExtractor

        import esc50_hf  # noqa: F401  (registers the feature extractor with the Auto classes)

        self.model = str(model)
        self.backend_name = backend
        self.extractor = AutoFeatureExtractor.from_pretrained(self.model)
        self.config = AutoConfig.from_pretrained(self.model)  # its labels, calibration and fitted thresholds
        self.labels = model_labels(self.config)  # every backend answers with these
        self.backend = load_backend(self.model, backend, **backend_kwargs)
        # The unknown score needs each window's atypicality when the model has the quantiles to read it against.
        self.unknown_quantiles = getattr(self.config, "unknown_quantiles", None)
        if self.unknown_quantiles is not None and not getattr(self.backend, "gives_atypicality", True):
            raise ModelLoadError(
                f"{getattr(self.backend, 'path', backend)} gives no atypicality (it was exported before the network "
                "had one), which this model's unknown answer reads: export it again with "
                f"`esc50-hf export-onnx --model {self.model}`"
            )
        exported = getattr(self.backend, "metadata", {}).get(TEMPERATURE_METADATA_KEY)
        if exported is not None and float(exported) != float(self.config.calibration_temperature):
            raise ModelLoadError(
                f"{self.backend.path} was exported with calibration temperature {float(exported):g}, but "
                f"{self.model}'s config.json now has {self.config.calibration_temperature:g} (recalibrated since): "
                f"export it again with `esc50-hf export-onnx --model {self.model}`"
            )
        self.clip_samples = self.extractor.clip_samples
        self.hop_samples = hop_samples(hop_seconds, self.clip_samples, self.sampling_rate)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.limits = limits
        self.extractor.mel_filters()  # built now, so that threads never race to build the lazy cache
        self._batcher = WindowBatcher(self._network, max_batch_size) if dynamic_batching else None

    @classmethod
    def load_or_explain(cls, model: str | Path, backend: str = "torch", **kwargs: Any) -> "SoundClassifier":
        """`SoundClassifier(model, backend, **kwargs)`, with any failure to load turned into one `ModelLoadError`
        line (see `explain_load_failure`) instead of a traceback.

        Args:
            model (`str` or `Path`): Model folder or Hub id.
            backend (`str`, *optional*, defaults to `"torch"`): `"torch"`, `"onnx"` or `"int8"`.
            **kwargs: The other arguments of `SoundClassifier`.

        Raises:
            `ModelLoadError`: naming the model and why it cannot be loaded.
        """
        with explain_load_failure(model, backend):
            return cls(model, backend, **kwargs)

    @property
    def sampling_rate(self) -> int:
        return self.extractor.sampling_rate

    def load(self, audio: AudioSource) -> np.ndarray:
        """Any supported input -> the model's mono waveform.

        Args:
            audio (`AudioSource`): As `predict` takes it.

        Raises:
            `AudioInputError`: the input cannot be read or is outside the limits.
        """
        return load_audio(audio, self.sampling_rate, self.limits)

    def predict(self, audio: AudioSource, top_k: int = 5) -> Prediction:
        """Classifies a file path, file bytes, `(rate, array)` tuple or `{"array", "sampling_rate"}` dict.

        Files and bytes are decoded and classified block by block; arrays are checked and resampled first.

        Args:
            audio (`AudioSource`): The input (see `esc50_hf.model.audio_io`).
            top_k (`int`, *optional*, defaults to 5): Labels in the clip-level answer.

        Raises:
            `AudioInputError`: the input cannot be read or is outside the limits.
        """
        result = next(self.predict_many([audio], top_k=top_k))
        if isinstance(result, AudioInputError):
            raise result
        return result

    def predict_waveform(self, waveform: np.ndarray, top_k: int = 5) -> Prediction:
        """Classifies a mono float waveform already at `sampling_rate`.

        Args:
            waveform (`np.ndarray`): 1-D float samples at the model's `sampling_rate`.
            top_k (`int`, *optional*, defaults to 5): Labels in the clip-level answer.
        """
        return self.predict(_Waveform(waveform), top_k=top_k)

    def predict_many(
        self,
        sources: Iterable[AudioSource],
        top_k: int = 5,
        on_audio: Callable[[float], None] | None = None,
        window_top_k: int = 0,
    ) -> Iterator[Prediction | AudioInputError]:
        """Classifies many inputs with shared forward passes: windows of consecutive inputs fill the same
        batches of `batch_size`. Yields, in input order, each input's `Prediction`, or the `AudioInputError`
        that stopped it (the others go on). Holds at most a batch of windows and one input's decoding block.

        Args:
            sources (`Iterable`): Inputs as `predict` takes them.
            top_k (`int`, *optional*, defaults to 5): Labels per prediction.
            on_audio (`Callable[[float], None]`, *optional*): Called with the seconds of audio each window adds
                (a progress bar in audio time).
            window_top_k (`int`, *optional*, defaults to 0): Labels in each window's `labels` (`WindowPrediction`);
                0 leaves them out (each window has its best label all the same).
        """
        pending: list[tuple[int, int, np.ndarray]] = []  # (input, start, samples)
        pools: dict[int, WindowPool | AudioInputError] = {}
        done: set[int] = set()  # inputs whose windows have all been read
        next_out = 0

        def flush() -> None:
            if pending:
                probabilities, atypicality = self.window_scores([samples for _, _, samples in pending])
                for index, ((item, start, samples), row) in enumerate(zip(pending, probabilities)):
                    atypical = None if atypicality is None else atypicality[index : index + 1]
                    pools[item].add([(start, len(samples))], row[None], [window_power(samples)], atypical)
                pending.clear()

        def ready(item: int) -> bool:
            return item in done and all(owner != item for owner, _, _ in pending)

        for item, source in enumerate(sources):
            pool = pools[item] = self.window_pool()
            covered = 0
            try:
                for start, samples in iter_windows(self._blocks(source), self.clip_samples, self.hop_samples):
                    pending.append((item, start, samples))
                    if on_audio is not None:
                        on_audio((start + len(samples) - covered) / self.sampling_rate)
                        covered = start + len(samples)
                    if len(pending) >= self.batch_size:
                        flush()
                if not pool.windows and not any(owner == item for owner, _, _ in pending):
                    raise AudioInputError("The audio is empty (0 samples).")
            except AudioInputError as error:
                pending[:] = [entry for entry in pending if entry[0] != item]
                pools[item] = error
            done.add(item)
            while next_out <= item and ready(next_out):
                yield self._result(pools.pop(next_out), top_k, window_top_k)
                next_out += 1
        flush()
        while next_out in pools:
            yield self._result(pools.pop(next_out), top_k, window_top_k)
            next_out += 1

    @staticmethod
    def _result(pool: "WindowPool | AudioInputError", top_k: int, window_top_k: int) -> Prediction | AudioInputError:
        return pool if isinstance(pool, AudioInputError) else pool.prediction(top_k, window_top_k)

    def _blocks(self, source: Any) -> Iterable[np.ndarray]:
        if isinstance(source, _Waveform):
            return [source.samples]
        return audio_blocks(source, self.sampling_rate, self.limits)  # the pipeline's input path too

    def window_pool(self) -> WindowPool:
        """An empty `WindowPool` for one input of this classifier (its labels, and its unknown score's quantiles)."""
        return WindowPool(self.sampling_rate, self.clip_samples, self.labels, self.unknown_quantiles)

    def window_probabilities(self, windows: list[np.ndarray]) -> np.ndarray:
        """`(num_windows, num_labels)` softmax probabilities, computed `batch_size` windows at a time.

        Args:
            windows (`list[np.ndarray]`): Mono waveforms at `sampling_rate`, at most a clip long each.
        """
        return self.window_scores(windows)[0]

    def window_scores(self, windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """`window_probabilities`, and each window's atypicality from the same passes (`None` unless the model has
        `unknown_quantiles` and the backend gives one).

        Args:
            windows (`list[np.ndarray]`): Mono waveforms at `sampling_rate`, at most a clip long each.
        """
        batches, atypical = [], []
        for first in range(0, len(windows), self.batch_size):
            features = self.extractor(windows[first : first + self.batch_size], sampling_rate=self.sampling_rate)
            run = self._batcher if self._batcher is not None else self._network
            logits, atypicality = run(features["input_values"])
            logits = np.asarray(logits, dtype=np.float64)
            if logits.shape[-1] != len(self.labels):
                raise ModelLoadError(
                    f"The model {self.model!r} returned {logits.shape[-1]} scores but its config.json names "
                    f"{len(self.labels)} labels: the weights and the config do not belong together"
                )
            batches.append(softmax(logits))
            atypical.append(atypicality)
        together = None if any(part is None for part in atypical) else np.concatenate(atypical).astype(np.float64)
        return np.concatenate(batches), together

    def _network(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The backend on one feature batch: its logits, and the atypicality when the unknown score needs it."""
        if self.unknown_quantiles is None:
            return self.backend(input_values), None
        scorer = getattr(self.backend, "with_atypicality", None)
        if scorer is None:  # the top score alone would be read against a threshold fitted on another scale
            raise TypeError(
                f"The backend {type(self.backend).__name__} has no with_atypicality(), which the unknown score of "
                f"{self.model} reads: give it one (esc50_hf.inference.AtypicalityBackend)"
            )
        return scorer(input_values)

    def log_mel(self, waveform: np.ndarray, chunk_seconds: float = 60.0) -> np.ndarray:
        """`(num_mel_bins, frames)` log-mel in dB of the whole waveform, as the model's extractor computes it.

        Computed `chunk_seconds` at a time (whole hops), so a 10-minute input never needs its full
        spectrogram's intermediate STFT at once.

        Args:
            waveform (`np.ndarray`): 1-D float samples at `sampling_rate`.
            chunk_seconds (`float`, *optional*, defaults to 60.0): Audio featurised at once.
        """
        import torch

        hop = self.extractor.hop_length
        chunk = max(1, int(chunk_seconds * self.sampling_rate) // hop) * hop
        pieces = []
        for first in range(0, len(waveform), chunk):
            part = torch.from_numpy(np.ascontiguousarray(waveform[first : first + chunk]))[None]
            mel = self.extractor.log_mel(part)[0].numpy()
            pieces.append(mel if first + chunk >= len(waveform) else mel[:, : chunk // hop])
        return np.concatenate(pieces, axis=1)


class WindowBatcher:
    """Dynamic batching: feature batches from many threads share one forward pass of the backend.

    Callers block in `__call__` while one worker thread takes everything queued (up to
    `max_batch_size` windows), runs the backend once and hands each caller its rows. Nothing
    waits for a batch to fill: under light load a batch is one request, under heavy load the
    requests that queued during the previous pass go together, so throughput rises with load.

    Args:
        backend (`Callable`): Features -> `(logits, atypicality or None)` (`SoundClassifier._network`).
        max_batch_size (`int`, *optional*, defaults to 64): Most windows per forward pass.
    """

    def __init__(
        self,
        backend: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self._queue: queue.SimpleQueue[tuple[np.ndarray, Future]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="esc50-window-batcher", daemon=True).start()

    def __call__(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        future: Future = Future()
        self._queue.put((np.asarray(input_values), future))
        return future.result()

    def _serve(self) -> None:
        carried: tuple[np.ndarray, Future] | None = None
        while True:
            batch = [carried or self._queue.get()]
            carried = None
            size = len(batch[0][0])
            while size < self.max_batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if size + len(item[0]) > self.max_batch_size:
                    carried = item
                    break
                batch.append(item)
                size += len(item[0])
            try:
                logits, atypicality = self.backend(np.concatenate([values for values, _ in batch]))
                logits = np.asarray(logits, dtype=np.float64)
            except Exception as error:  # every caller of this pass gets the error, the worker goes on
                for _, future in batch:
                    future.set_exception(error)
                continue
            first = 0
            for values, future in batch:
                rows = slice(first, first + len(values))
                future.set_result((logits[rows], None if atypicality is None else atypicality[rows]))
                first += len(values)


__all__ = [
    "DEFAULT_MODEL_DIR",
    "LabelScore",
    "ModelLoadError",
    "Prediction",
    "SoundClassifier",
    "WindowBatcher",
    "WindowPrediction",
    "iter_windows",
    "resolve_model",
    "softmax",
    "window_starts",
]
