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
from . import degradations


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


# --- Waveform transforms of real recording conditions: data/degradations.py underneath -----------------------------
# Each draws its parameters from numpy's global generator (seeded per clip by the feature cache) and is skipped
# without drawing at p = 0, so a chain that does not use it gives the same variants as one without it.


class RecordingTransform(WaveformTransform):
    """A transform of `data/degradations.py`, applied with probability `p` by `__call__(samples, sampling_rate)`."""

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if self.p == 0.0 or np.random.random() >= self.p:
            return samples
        return self.apply(samples, sampling_rate, np.random.default_rng(np.random.randint(2**31)))

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class _SnrRange(RecordingTransform):
    def __init__(self, p: float, min_snr_db: float, max_snr_db: float) -> None:
        super().__init__(p)
        self.min_snr_db = self._check("min_snr_db", min_snr_db, -20 <= min_snr_db <= 60, "in [-20, 60] dB")
        self.max_snr_db = self._check(
            "max_snr_db", max_snr_db, min_snr_db <= max_snr_db <= 60, f"in [min_snr_db ({min_snr_db}), 60] dB"
        )


class BackgroundNoise(_SnrRange):
    """Mixes in a random stretch of a recorded background (an ambient clip of the training folds) at an SNR drawn
    from `[min_snr_db, max_snr_db]`. The clips come from `with_backgrounds`; the feature cache's key names them.

    Args:
        p (`float`, *optional*, defaults to 0.5): probability of applying it.
        min_snr_db (`float`, *optional*, defaults to 0.0): lowest signal-to-noise ratio.
        max_snr_db (`float`, *optional*, defaults to 20.0): highest signal-to-noise ratio.
    """

    def __init__(self, p: float = 0.5, min_snr_db: float = 0.0, max_snr_db: float = 20.0) -> None:
        super().__init__(p, min_snr_db, max_snr_db)
        self._backgrounds: list[np.ndarray] = []
        self.background_clips: list[str] = []

    def with_backgrounds(self, clips: list[np.ndarray], names: list[str]) -> "BackgroundNoise":
        """Sets the background recordings (float32 mono at the clips' rate) and their names (for the cache key)."""
        self._backgrounds, self.background_clips = clips, list(names)
        return self

    def parameters(self) -> dict[str, Any]:
        return {"transform": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def __repr__(self) -> str:
        return (f"BackgroundNoise(p={self.p}, min_snr_db={self.min_snr_db}, max_snr_db={self.max_snr_db}, "
                f"{len(self.background_clips)} background clips)")  # fmt: skip

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        if not self._backgrounds:
            raise ValueError("BackgroundNoise has no background clips: call with_backgrounds first")
        background = self._backgrounds[rng.integers(len(self._backgrounds))]
        background = np.roll(background, rng.integers(background.size))  # a random stretch, looped
        return degradations.mix_at_snr(samples, background, rng.uniform(self.min_snr_db, self.max_snr_db))


class ColouredNoise(_SnrRange):
    """Adds noise whose power falls as 1/f**e, e drawn from `[0, max_exponent]` (0 white, 1 pink, 2 brown), at an
    SNR drawn from `[min_snr_db, max_snr_db]`.

    Args:
        p (`float`, *optional*, defaults to 0.3): probability of applying it.
        min_snr_db (`float`, *optional*, defaults to 0.0): lowest signal-to-noise ratio.
        max_snr_db (`float`, *optional*, defaults to 30.0): highest signal-to-noise ratio.
        max_exponent (`float`, *optional*, defaults to 2.0): steepest spectral slope, in [0, 3].
    """

    def __init__(
        self, p: float = 0.3, min_snr_db: float = 0.0, max_snr_db: float = 30.0, max_exponent: float = 2.0
    ) -> None:
        super().__init__(p, min_snr_db, max_snr_db)
        self.max_exponent = self._check("max_exponent", max_exponent, 0 <= max_exponent <= 3, "in [0, 3]")

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        noise = degradations.coloured_noise(samples.size, rng.uniform(0.0, self.max_exponent), rng)
        return degradations.mix_at_snr(samples, noise, rng.uniform(self.min_snr_db, self.max_snr_db))


class Reverberation(RecordingTransform):
    """Convolves with a synthetic room impulse response of reverberation time (RT60) drawn from
    `[min_rt60, max_rt60]` seconds.

    Args:
        p (`float`, *optional*, defaults to 0.3): probability of applying it.
        min_rt60 (`float`, *optional*, defaults to 0.2): shortest reverberation time, in [0.05, 5] s.
        max_rt60 (`float`, *optional*, defaults to 1.5): longest reverberation time, in [min_rt60, 5] s.
    """

    def __init__(self, p: float = 0.3, min_rt60: float = 0.2, max_rt60: float = 1.5) -> None:
        super().__init__(p)
        self.min_rt60 = self._check("min_rt60", min_rt60, 0.05 <= min_rt60 <= 5, "in [0.05, 5] s")
        self.max_rt60 = self._check("max_rt60", max_rt60, min_rt60 <= max_rt60 <= 5, f"in [min_rt60 ({min_rt60}), 5] s")

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        response = degradations.room_impulse_response(rng.uniform(self.min_rt60, self.max_rt60), sampling_rate, rng)
        return degradations.reverberate(samples, response)


class CodecRoundTrip(RecordingTransform):
    """Encodes and decodes with a lossy codec drawn from `codecs`, at a bit rate drawn from the codec's range in
    `degradations.CODEC_BIT_RATES` (MP3, AAC and Opus at low to medium rates, GSM telephone).

    Args:
        p (`float`, *optional*, defaults to 0.3): probability of applying it.
        codecs (`tuple[str]`, *optional*, defaults to all of `degradations.CODECS`): the codecs to draw from.
    """

    def __init__(self, p: float = 0.3, codecs: tuple[str, ...] = tuple(degradations.CODECS)) -> None:
        super().__init__(p)
        unknown = sorted(set(codecs) - set(degradations.CODECS))
        self.codecs = list(self._check("codecs", codecs, bool(codecs) and not unknown,
                                       f"one or more of {', '.join(degradations.CODECS)}"))  # fmt: skip

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        codec = self.codecs[rng.integers(len(self.codecs))]
        low, high = degradations.CODEC_BIT_RATES[codec]
        return degradations.codec_round_trip(samples, sampling_rate, codec, int(rng.integers(low, high + 1)))


class TelephoneBand(RecordingTransform):
    """Keeps only what a narrow-band telephone line passes (300-3400 Hz, through 8 kHz).

    Args:
        p (`float`, *optional*, defaults to 0.1): probability of applying it.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__(p)

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        return degradations.telephone_band(samples, sampling_rate)


class LevelAndClipping(RecordingTransform):
    """Changes the level by a gain drawn from `[min_gain_db, max_gain_db]` and clips at full scale (a quiet or an
    overdriven recorder).

    Args:
        p (`float`, *optional*, defaults to 0.2): probability of applying it.
        min_gain_db (`float`, *optional*, defaults to -30.0): the quietest change, in [-60, max_gain_db].
        max_gain_db (`float`, *optional*, defaults to 20.0): the loudest change, in [min_gain_db, 40].
    """

    def __init__(self, p: float = 0.2, min_gain_db: float = -30.0, max_gain_db: float = 20.0) -> None:
        super().__init__(p)
        self.min_gain_db = self._check("min_gain_db", min_gain_db, -60 <= min_gain_db <= 40, "in [-60, 40] dB")
        self.max_gain_db = self._check(
            "max_gain_db", max_gain_db, min_gain_db <= max_gain_db <= 40, f"in [min_gain_db ({min_gain_db}), 40] dB"
        )

    def apply(self, samples: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
        return degradations.change_level(samples, rng.uniform(self.min_gain_db, self.max_gain_db))


class WaveformAugmentations:
    """The waveform transforms in order, as one audiomentations `Compose`: `augment(samples, sampling_rate)`.

    Transforms of recording conditions at p = 0 are left out, so they change neither the variants nor the cache key.
    """

    def __init__(self, *transforms: WaveformTransform) -> None:
        self.transforms = [t for t in transforms if not (isinstance(t, RecordingTransform) and t.p == 0.0)]
        self._compose = None

    def parameters(self) -> list[dict[str, Any]]:
        """Everything that decides the cached variants (with their count and seed): the feature-cache key."""
        return [transform.parameters() for transform in self.transforms]

    def background_noise(self) -> BackgroundNoise | None:
        """The chain's `BackgroundNoise`, which needs its clips (`with_backgrounds`) before use; None without one."""
        return next((t for t in self.transforms if isinstance(t, BackgroundNoise)), None)

    def __call__(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        if self._compose is None:
            from audiomentations import Compose

            # Compose calls each step as step(samples, sample_rate): the recording transforms take that too.
            self._compose = Compose(
                [t if isinstance(t, RecordingTransform) else t.to_audiomentations() for t in self.transforms]
            )
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
