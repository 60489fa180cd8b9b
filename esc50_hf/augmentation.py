"""Training-time augmentation: waveform transforms (audiomentations) and spectrogram ones (SpecAugment, mixup).

Waveform transforms cost ~20 ms per clip each on one core (pitch shift, time stretch), so they are
applied once per cached variant (see `feature_cache`); the spectrogram ones are cheap and run on
every sample, so no two epochs see the same input.
"""

import torch
from audiomentations import AddGaussianNoise, Compose, Gain, PitchShift, Shift, TimeStretch

from .train_config import TrainConfig


def build_waveform_augmenter(config: TrainConfig) -> Compose:
    """The audiomentations chain, each transform with its probability from the config."""
    return Compose(
        [
            AddGaussianNoise(min_amplitude=1e-3, max_amplitude=1.5e-2, p=config.gaussian_noise_p),
            PitchShift(
                min_semitones=-config.pitch_shift_semitones,
                max_semitones=config.pitch_shift_semitones,
                p=config.pitch_shift_p,
            ),
            TimeStretch(
                min_rate=1.0 - config.time_stretch_range,
                max_rate=1.0 + config.time_stretch_range,
                leave_length_unchanged=True,
                p=config.time_stretch_p,
            ),
            Shift(min_shift=-0.5, max_shift=0.5, rollover=True, p=config.time_shift_p),
            Gain(min_gain_db=-config.gain_db, max_gain_db=config.gain_db, p=config.gain_p),
        ]
    )


def spec_augment(features: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Random circular time roll plus SpecAugment masks on one `(mels, frames)` spectrogram.

    Masks are filled with 0, the mean of the normalised features.
    """
    features = features.clone()
    num_mels, num_frames = features.shape
    if torch.rand(()) < config.time_roll_p:
        features = torch.roll(features, shifts=int(torch.randint(num_frames, ())), dims=1)
    for _ in range(config.freq_masks):
        _mask_band(features, dim=0, size=num_mels, max_width=config.freq_mask_width)
    for _ in range(config.time_masks):
        _mask_band(features, dim=1, size=num_frames, max_width=config.time_mask_width)
    return features


def _mask_band(features: torch.Tensor, dim: int, size: int, max_width: int) -> None:
    width = int(torch.randint(0, max(1, min(max_width, size)) + 1, ()))
    if width == 0:
        return
    start = int(torch.randint(0, size - width + 1, ()))
    features.narrow(dim, start, width).zero_()


def mixup(
    features: torch.Tensor, other: torch.Tensor, label: int, other_label: int, num_labels: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blends two samples with a Beta(alpha, alpha) weight; returns features and soft targets."""
    weight = float(torch.distributions.Beta(alpha, alpha).sample())
    targets = torch.zeros(num_labels)
    targets[label] += weight
    targets[other_label] += 1.0 - weight
    return weight * features + (1.0 - weight) * other, targets
