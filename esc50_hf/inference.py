"""`SoundClassifier`: new audio of any length -> clip-level top-k labels and a per-window timeline.

The model sees 5-s clips. Shorter input is padded by the feature extractor (as ESC-50's own
short clips are). Longer input is cut into 5-s windows every `hop_seconds` (the last one
padded), each window is classified, and the clip-level scores are the mean of the windows'
probabilities: a sound heard in any part of a recording still shows up, in proportion to how
much of the recording it fills.

One instance serves many threads: it holds only read-only state (the backend's weights, the
feature extractor's parameters), and each call works on its own arrays.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio_io import DEFAULT_LIMITS, AudioLimits, AudioSource, load_audio
from .backends import load_backend
from .labels import ESC50_LABELS

# Where the trained model lives in a checkout; the app and the CLI default to it.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "esc50-mel-cnn"


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


@dataclass(frozen=True)
class WindowPrediction:
    """One analysis window: where it is in the input (seconds) and its best label."""

    start: float
    end: float
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """The clip-level top-k (mean of window probabilities) and the per-window timeline."""

    labels: list[LabelScore]
    windows: list[WindowPrediction]
    duration: float

    @property
    def label(self) -> str:
        return self.labels[0].label

    def confidences(self) -> dict[str, float]:
        """`{label: score}` for the top-k, the format `gr.Label` takes."""
        return {item.label: item.score for item in self.labels}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SoundClassifier:
    """A saved ESC-50 model (folder or Hub id) behind any backend, for audio of any length.

    Args:
        model: Model folder or Hub id, with `preprocessor_config.json` (and `model.onnx` for onnx).
        backend: `"torch"` or `"onnx"`, see `esc50_hf.backends.load_backend`.
        hop_seconds: Step between windows of long input (default: half a clip, 2.5 s).
        batch_size: Windows per forward pass; bounds memory for 10-minute input.
        limits: Input validation limits, see `esc50_hf.audio_io.AudioLimits`.
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
        **backend_kwargs: Any,
    ) -> None:
        from transformers import AutoFeatureExtractor

        import esc50_hf  # noqa: F401  (registers the feature extractor with the Auto classes)

        self.model = str(model)
        self.backend_name = backend
        self.extractor = AutoFeatureExtractor.from_pretrained(self.model)
        self.backend = load_backend(self.model, backend, **backend_kwargs)
        self.clip_samples = self.extractor.clip_samples
        hop_seconds = self.extractor.clip_seconds / 2 if hop_seconds is None else hop_seconds
        self.hop_samples = int(round(hop_seconds * self.sampling_rate))
        if not 0 < self.hop_samples <= self.clip_samples:
            raise ValueError(f"hop_seconds must be in (0, {self.extractor.clip_seconds}], got {hop_seconds}")
        self.batch_size = batch_size
        self.limits = limits
        self.extractor.mel_filters()  # built now, so that threads never race to build the lazy cache

    @property
    def sampling_rate(self) -> int:
        return self.extractor.sampling_rate

    def load(self, audio: AudioSource) -> np.ndarray:
        """Any supported input -> the model's mono waveform (raises `AudioInputError`)."""
        return load_audio(audio, self.sampling_rate, self.limits)

    def predict(self, audio: AudioSource, top_k: int = 5) -> Prediction:
        """Classifies a file path, file bytes, `(rate, array)` tuple or `{"array", "sampling_rate"}` dict."""
        return self.predict_waveform(self.load(audio), top_k=top_k)

    def predict_waveform(self, waveform: np.ndarray, top_k: int = 5) -> Prediction:
        """Classifies a mono float waveform already at `sampling_rate`."""
        starts = window_starts(len(waveform), self.clip_samples, self.hop_samples)
        probabilities = self.window_probabilities([waveform[start : start + self.clip_samples] for start in starts])
        clip = probabilities.mean(axis=0)
        top = np.argsort(-clip, kind="stable")[: max(1, min(top_k, len(ESC50_LABELS)))]
        windows = [
            WindowPrediction(
                start=round(start / self.sampling_rate, 3),
                end=round(min(start + self.clip_samples, len(waveform)) / self.sampling_rate, 3),
                label=ESC50_LABELS[int(row.argmax())],
                score=float(row.max()),
            )
            for start, row in zip(starts, probabilities)
        ]
        return Prediction(
            labels=[LabelScore(ESC50_LABELS[int(index)], float(clip[index])) for index in top],
            windows=windows,
            duration=round(len(waveform) / self.sampling_rate, 3),
        )

    def window_probabilities(self, windows: list[np.ndarray]) -> np.ndarray:
        """`(num_windows, num_labels)` softmax probabilities, computed `batch_size` windows at a time."""
        batches = []
        for first in range(0, len(windows), self.batch_size):
            features = self.extractor(windows[first : first + self.batch_size], sampling_rate=self.sampling_rate)
            logits = np.asarray(self.backend(features["input_values"]), dtype=np.float64)
            if logits.shape[-1] != len(ESC50_LABELS):
                raise ValueError(f"The model returned {logits.shape[-1]} scores; expected {len(ESC50_LABELS)}.")
            batches.append(softmax(logits))
        return np.concatenate(batches)

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """`(n_mels, frames)` log-mel in dB of the whole waveform, as the model's extractor computes it."""
        import torch

        return self.extractor.log_mel(torch.from_numpy(np.ascontiguousarray(waveform))[None])[0].numpy()


def window_starts(num_samples: int, clip_samples: int, hop_samples: int) -> list[int]:
    """Start offsets of the windows covering `num_samples`: one for short input, else every hop until the end."""
    starts = [0]
    while starts[-1] + clip_samples < num_samples:
        starts.append(starts[-1] + hop_samples)
    return starts


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


__all__ = [
    "DEFAULT_MODEL_DIR",
    "LabelScore",
    "Prediction",
    "SoundClassifier",
    "WindowPrediction",
    "softmax",
    "window_starts",
]
