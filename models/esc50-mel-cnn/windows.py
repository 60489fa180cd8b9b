"""Analysis windows over audio of any length, and how their scores become one answer.

Shared by `SoundClassifier` (the app, the CLI, the Python API) and the `transformers`
pipeline (`pipeline_esc50.py`), so every entry point cuts and weighs windows the same way:

* input up to a clip long is one window (the feature extractor pads it);
* longer input gets a window every hop while the window ends before the input does, and a
  last one that ends exactly at the end of the input: never a window of padding;
* the clip-level scores are the mean of the windows' probabilities, each weighted by its
  share of real samples times its mean power (`WindowPool`), so the loudest stretch of a long
  recording carries its answer rather than the ambience around it (bench/robust_recipe_choice.md:
  a clip inside 20 s of ambience, 0.31 -> 0.69 on fold 4); this gives a `Prediction` (the
  schema of `prediction.py`). Input up to a clip long is one window: its scores are the window's.

Copied next to the model code when a model is saved: standard library and numpy only.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .prediction import LabelScore, Prediction, WindowPrediction, events_from_windows, unknown_score

WINDOW_POWER_FLOOR = 1e-12  # -120 dB: below any real recording's power, so only all-silent windows rest on it


@dataclass
class WindowPool:
    """Accumulates window probabilities into the clip-level mean (weighted by real samples times power) and the
    timeline.

    Args:
        sampling_rate (`int`): The model's rate, to turn samples into seconds.
        clip_samples (`int`): Samples in a full window (a window shorter than this weighs less).
        labels (`Sequence[str]`): The name of each probability column: the model's own (`labels.model_labels`).
        unknown_quantiles (`Mapping`, *optional*): The model's `config.unknown_quantiles`; with the windows'
            atypicality, the prediction's `unknown_score` comes from them (`prediction.unknown_score`).
    """

    sampling_rate: int
    clip_samples: int
    labels: Sequence[str]
    unknown_quantiles: Mapping[str, Sequence[float]] | None = None
    weighted_sum: np.ndarray = field(init=False)
    weighted_atypicality: float | None = None  # None until a window comes with its atypicality
    total_weight: float = 0.0
    duration_samples: int = 0
    windows: list[WindowPrediction] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)  # each window's, for its top-k

    def __post_init__(self) -> None:
        self.weighted_sum = np.zeros(len(self.labels))

    def add(
        self,
        windows: list[tuple[int, int]],
        probabilities: np.ndarray,
        powers: Sequence[float],
        atypicality: Sequence[float] | None = None,
    ) -> None:
        """Adds windows given as `(start, num_samples)` with their `(num_windows, num_labels)` probabilities and
        their mean powers (`window_power` of each window's samples), and the model's `atypicality` of each when
        it gave one (pooled with the same weights as the probabilities).

        Raises:
            `ValueError`: the probabilities have another number of columns than there are labels.
        """
        if probabilities.shape[-1] != len(self.labels):
            raise ValueError(
                f"The model returned {probabilities.shape[-1]} scores per window but its config names "
                f"{len(self.labels)} labels: its config.json and weights do not belong together"
            )
        atypical = [None] * len(windows) if atypicality is None else list(atypicality)
        for (start, num_samples), row, power, value in zip(windows, probabilities, powers, atypical):
            # Its share of real samples (< 1 only when padded) times its power; the floor keeps an all-silent
            # input a plain mean.
            weight = num_samples / self.clip_samples * (power + WINDOW_POWER_FLOOR)
            self.weighted_sum += weight * row
            if value is not None:
                self.weighted_atypicality = (self.weighted_atypicality or 0.0) + weight * float(value)
            self.total_weight += weight
            self.duration_samples = max(self.duration_samples, start + num_samples)
            self.probabilities.append(np.array(row, dtype=np.float64))  # a copy: not a view of the batch
            self.windows.append(
                WindowPrediction(
                    start_s=round(start / self.sampling_rate, 3),
                    end_s=round((start + num_samples) / self.sampling_rate, 3),
                    label=self.labels[int(row.argmax())],
                    score=float(row.max()),
                )
            )

    def prediction(self, top_k: int, window_top_k: int = 0) -> Prediction:
        """The clip's top-k and the windows, each with its own top-k (`WindowPrediction.labels`) if asked for.

        Args:
            top_k (`int`): Labels in the clip-level answer (at least 1, at most all).
            window_top_k (`int`, *optional*, defaults to 0): Labels in each window's `labels`; 0 leaves them out.
        """
        windows = self.windows
        if window_top_k > 0:
            windows = [
                replace(window, labels=self._top(row, window_top_k))
                for window, row in zip(self.windows, self.probabilities)
            ]
        labels = self._top(self.weighted_sum / self.total_weight, top_k)
        atypicality = None if self.weighted_atypicality is None else self.weighted_atypicality / self.total_weight
        return Prediction(
            labels=labels,
            windows=windows,
            duration_s=round(self.duration_samples / self.sampling_rate, 3),
            unknown_score=unknown_score(labels[0].score, atypicality, self.unknown_quantiles),
        )

    def _top(self, scores: np.ndarray, k: int) -> list[LabelScore]:
        """The `k` best labels of `scores`, best first (ties in label order)."""
        top = np.argsort(-scores, kind="stable")[: max(1, min(k, len(self.labels)))]
        return [LabelScore(self.labels[int(index)], float(scores[index])) for index in top]


def window_power(samples: np.ndarray) -> float:
    """The mean power (mean square, full scale 1.0) of a window's samples: its weight in the clip-level answer."""
    return float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0


def hop_samples(hop_seconds: float | None, clip_samples: int, sampling_rate: int) -> int:
    """The step between windows in samples (default: half a clip); `ValueError` unless 1 <= step <= a clip."""
    samples = clip_samples // 2 if hop_seconds is None else int(round(hop_seconds * sampling_rate))
    if not 1 <= samples <= clip_samples:
        raise ValueError(
            f"hop_seconds must be in [1 / {sampling_rate}, {clip_samples / sampling_rate:g}] s, got {hop_seconds}"
        )
    return samples


def window_starts(num_samples: int, clip_samples: int, hop_samples: int) -> list[int]:
    """Start offsets of the windows covering `num_samples` (what `iter_windows` yields, as a list).

    One window for input up to a clip long; else one every hop while the window ends before the
    input does, and a last one that ends exactly at the end of the input.
    """
    if num_samples <= clip_samples:
        return [0]
    return [*range(0, num_samples - clip_samples, hop_samples), num_samples - clip_samples]


def iter_windows(blocks: Iterable[np.ndarray], clip_samples: int, hop_samples: int) -> Iterator[tuple[int, np.ndarray]]:
    """`(start, samples)` of each analysis window of a signal that arrives in consecutive blocks.

    The windows are those of `window_starts` over the whole signal, produced as soon as their
    samples have arrived, holding at most a clip and a block in memory. A window is shorter
    than a clip only when the whole input is.
    """
    buffer = np.zeros(0, np.float32)
    buffer_start = next_start = total = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block]) if buffer.size else np.asarray(block, np.float32)
        total += len(block)
        while next_start + clip_samples < total:
            offset = next_start - buffer_start
            yield next_start, buffer[offset : offset + clip_samples]
            next_start += hop_samples
        keep_from = max(buffer_start, min(next_start, total - clip_samples))
        buffer = buffer[keep_from - buffer_start :]
        buffer_start = keep_from
    if total:
        start = max(0, total - clip_samples)
        yield start, buffer[start - buffer_start :]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


__all__ = [
    "LabelScore",
    "events_from_windows",  # defined in prediction.py, importable from here as before
    "hop_samples",
    "Prediction",
    "WindowPool",
    "window_power",
    "WindowPrediction",
    "iter_windows",
    "softmax",
    "window_starts",
]
