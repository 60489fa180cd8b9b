"""Training-time augmentation, one small class per transform, each validating its parameters in `__init__`.

Waveform transforms (wrapping audiomentations) cost ~20 ms per clip each on one core (pitch shift,
time stretch), so they are applied once per cached variant (see `data/features.py`), and only their
parameters enter the feature-cache key. The spectrogram ones (time roll, SpecAugment masks, mixup)
are cheap and run on every sample, so no two epochs see the same input; changing them never
rebuilds the cache.

All spectrogram randomness comes from torch's global generator, which the Trainer seeds and stores
in its checkpoints, so a resumed run draws the same samples as an uninterrupted one.
"""

from typing import Any

import numpy as np
import torch

from ..errors import Esc50HfError


class AugmentationParameterError(Esc50HfError, ValueError):
    """An invalid augmentation parameter; `parameter` names it (the CLI adds the flag that set it)."""

    def __init__(self, transform: str, parameter: str, value: Any, requirement: str) -> None:
        super().__init__(f"{transform} {parameter} must be {requirement}, got {value!r}")
        self.parameter = parameter


class Transform:
    """Base of every transform: applied with probability `p`; `parameters()` describes it."""

    def __init__(self, p: float) -> None:
        self.p = self._check("p", p, 0.0 <= p <= 1.0, "a probability in [0, 1]")

    def _check(self, parameter: str, value: Any, valid: bool, requirement: str) -> Any:
        if not valid:
            raise AugmentationParameterError(type(self).__name__, parameter, value, requirement)
        return value

    def parameters(self) -> dict[str, Any]:
        return {"transform": type(self).__name__, **vars(self)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


# --- Waveform transforms: audiomentations underneath ---------------------------------------------------------


class WaveformTransform(Transform):
    def to_audiomentations(self) -> Any:
        raise NotImplementedError


class GaussianNoise(WaveformTransform):
    """Adds white noise of an amplitude drawn from `[min_amplitude, max_amplitude]` (full scale 1.0).

    Args:
        p (`float`, *optional*, defaults to 0.3): probability of applying it.
        min_amplitude (`float`, *optional*, defaults to 0.001): smallest noise amplitude.
        max_amplitude (`float`, *optional*, defaults to 0.015): largest noise amplitude.
    """

    def __init__(self, p: float = 0.3, min_amplitude: float = 1e-3, max_amplitude: float = 1.5e-2) -> None:
        super().__init__(p)
        self.min_amplitude = self._check("min_amplitude", min_amplitude, min_amplitude >= 0, ">= 0")
        self.max_amplitude = self._check(
            "max_amplitude", max_amplitude, max_amplitude >= min_amplitude, f">= min_amplitude ({min_amplitude})"
        )

    def to_audiomentations(self) -> Any:
        from audiomentations import AddGaussianNoise

        return AddGaussianNoise(min_amplitude=self.min_amplitude, max_amplitude=self.max_amplitude, p=self.p)


class PitchShift(WaveformTransform):
    """Shifts the pitch by up to `semitones`, up or down.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
        semitones (`float`, *optional*, defaults to 2.0): largest shift, in [0, 24].
    """

    def __init__(self, p: float = 0.5, semitones: float = 2.0) -> None:
        super().__init__(p)
        self.semitones = self._check("semitones", semitones, 0 <= semitones <= 24, "in [0, 24]")

    def to_audiomentations(self) -> Any:
        from audiomentations import PitchShift as Shifter

        return Shifter(min_semitones=-self.semitones, max_semitones=self.semitones, p=self.p)


class TimeStretch(WaveformTransform):
    """Speeds up or slows down by a rate in `[1 - rate_range, 1 + rate_range]`, keeping the clip's length.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
        rate_range (`float`, *optional*, defaults to 0.15): half-width of the rate interval, in [0, 0.9].
    """

    def __init__(self, p: float = 0.5, rate_range: float = 0.15) -> None:
        super().__init__(p)
        self.rate_range = self._check("rate_range", rate_range, 0 <= rate_range <= 0.9, "in [0, 0.9]")

    def to_audiomentations(self) -> Any:
        from audiomentations import TimeStretch as Stretcher

        return Stretcher(
            min_rate=1.0 - self.rate_range, max_rate=1.0 + self.rate_range, leave_length_unchanged=True, p=self.p
        )


class TimeShift(WaveformTransform):
    """Rolls the waveform in time by up to `max_fraction` of its length, either way.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
        max_fraction (`float`, *optional*, defaults to 0.5): largest shift as a fraction of the clip, in [0, 1].
    """

    def __init__(self, p: float = 0.5, max_fraction: float = 0.5) -> None:
        super().__init__(p)
        self.max_fraction = self._check("max_fraction", max_fraction, 0 <= max_fraction <= 1, "in [0, 1]")

    def to_audiomentations(self) -> Any:
        from audiomentations import Shift

        return Shift(min_shift=-self.max_fraction, max_shift=self.max_fraction, rollover=True, p=self.p)


class Gain(WaveformTransform):
    """Changes the volume by up to `max_db` decibels, up or down.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
        max_db (`float`, *optional*, defaults to 6.0): largest change, >= 0.
    """

    def __init__(self, p: float = 0.5, max_db: float = 6.0) -> None:
        super().__init__(p)
        self.max_db = self._check("max_db", max_db, max_db >= 0, ">= 0")

    def to_audiomentations(self) -> Any:
        from audiomentations import Gain as Amplifier

        return Amplifier(min_gain_db=-self.max_db, max_gain_db=self.max_db, p=self.p)


class WaveformAugmentations:
    """The waveform transforms in order, as one audiomentations `Compose`: `augment(samples, sampling_rate)`."""

    def __init__(self, *transforms: WaveformTransform) -> None:
        self.transforms = list(transforms)
        self._compose = None

    def parameters(self) -> list[dict[str, Any]]:
        """Everything that decides the cached variants (with their count and seed): the feature-cache key."""
        return [transform.parameters() for transform in self.transforms]

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if self._compose is None:
            from audiomentations import Compose

            self._compose = Compose([transform.to_audiomentations() for transform in self.transforms])
        return self._compose(samples, sample_rate=sampling_rate)  # audiomentations' own name for it

    def __repr__(self) -> str:
        return f"WaveformAugmentations({', '.join(map(repr, self.transforms))})"


# --- Spectrogram transforms: on `(mels, frames)` normalised log-mels, torch's global generator ------------------


class TimeRoll(Transform):
    """Rolls the spectrogram circularly in time by a random number of frames.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) < self.p:
            features = torch.roll(features, shifts=int(torch.randint(features.shape[1], ())), dims=1)
        return features


class _BandMasking(Transform):
    """`num_masks` bands of random width in `[0, max_width]` set to 0, the mean of the normalised features."""

    dim = 0

    def __init__(self, num_masks: int = 2, max_width: int = 8) -> None:
        self.num_masks = self._check("num_masks", num_masks, num_masks >= 0, ">= 0")
        self.max_width = self._check("max_width", max_width, max_width >= 0, ">= 0")

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """Masks `features` in place (callers pass a copy)."""
        size = features.shape[self.dim]
        for _ in range(self.num_masks):
            width = int(torch.randint(0, min(self.max_width, size) + 1, ()))
            if width:
                start = int(torch.randint(0, size - width + 1, ()))
                features.narrow(self.dim, start, width).zero_()
        return features


class FrequencyMasking(_BandMasking):
    """SpecAugment frequency masks.

    Args:
        num_masks (`int`, *optional*, defaults to 2): masks per sample.
        max_width (`int`, *optional*, defaults to 8): widest mask, in mel bands.
    """

    dim = 0


class TimeMasking(_BandMasking):
    """SpecAugment time masks.

    Args:
        num_masks (`int`, *optional*, defaults to 2): masks per sample.
        max_width (`int`, *optional*, defaults to 24): widest mask, in frames.
    """

    dim = 1

    def __init__(self, num_masks: int = 2, max_width: int = 24) -> None:
        super().__init__(num_masks, max_width)


class SpecAugment:
    """Time roll, then frequency masks, then time masks, on a copy of one `(mels, frames)` spectrogram."""

    def __init__(self, time_roll: TimeRoll, freq_masks: FrequencyMasking, time_masks: TimeMasking) -> None:
        self.transforms = [time_roll, freq_masks, time_masks]

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        features = features.clone()
        for transform in self.transforms:
            features = transform(features)
        return features


class Mixup(Transform):
    """Blends a sample with a partner by a Beta(alpha, alpha) weight, and their one-hot targets alike.

    Args:
        p (`float`, *optional*, defaults to 0.8): probability that a sample is mixed.
        alpha (`float`, *optional*, defaults to 0.4): Beta parameter, > 0; small values keep one sample dominant.
    """

    def __init__(self, p: float = 0.8, alpha: float = 0.4) -> None:
        super().__init__(p)
        self.alpha = self._check("alpha", alpha, alpha > 0, "> 0")

    def draw(self) -> bool:
        """Whether the next sample is mixed."""
        return bool(torch.rand(()) < self.p)

    def __call__(
        self, features: torch.Tensor, other: torch.Tensor, label: int, other_label: int, num_labels: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed features and soft targets `(num_labels,)`."""
        weight = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        targets = torch.zeros(num_labels)
        targets[label] += weight
        targets[other_label] += 1.0 - weight
        return weight * features + (1.0 - weight) * other, targets
