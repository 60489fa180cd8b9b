"""Log-mel feature extractor for the ESC-50 CNN.

One preprocessing path for everything: training (on clean and augmented waveforms), the
`transformers` pipeline, the Gradio app, the CLI and the ONNX backend all call this class.
It is copied next to the model code when a model is saved, so it only imports installed
packages and sibling files.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchaudio.functional import melscale_fbanks
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType, logging

from .labels import CLIP_SECONDS, SAMPLING_RATE

logger = logging.get_logger(__name__)

# Power floor before the log: -100 dB keeps digital silence finite.
_POWER_FLOOR = 1e-10


class Esc50FeatureExtractor(SequenceFeatureExtractor):
    r"""Turns mono waveforms into normalised log-mel spectrograms of shape `(batch, num_mel_bins, frames)`.

    Every clip is zero-padded at the end, or cut, to `clip_seconds` (ESC-50 clips are 5 s, and
    shorter recordings in the dataset are themselves padded with silence at the end). The
    spectrogram is a Hann-window STFT power spectrum projected on a Slaney mel filter bank,
    in decibels, then standardised with the training set's `mean` and `std`.

    The defaults of `__init__` are the project's feature defaults: the training configuration
    reads them from here.

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Number of mel bands (also stored as `feature_size`). Folders saved before the rename
            store it as `n_mels`, which is still read.
        sampling_rate (`int`, *optional*, defaults to 22050):
            Rate the audio must have, in Hz; other rates raise a `ValueError`.
        n_fft (`int`, *optional*, defaults to 1024):
            FFT size (and window length) in samples.
        hop_length (`int`, *optional*, defaults to 512):
            Samples between frames.
        f_min (`float`, *optional*, defaults to 0.0):
            Lowest frequency of the mel filter bank, in Hz.
        f_max (`float`, *optional*):
            Highest frequency of the mel filter bank, in Hz; `None` means the Nyquist frequency.
        clip_seconds (`float`, *optional*, defaults to 5.0):
            Length every clip is padded or cut to.
        mean (`float`, *optional*, defaults to 0.0):
            Mean of the log-mel values (dB) of the training set.
        std (`float`, *optional*, defaults to 1.0):
            Standard deviation of the log-mel values (dB) of the training set; must be positive.
        padding_value (`float`, *optional*, defaults to 0.0):
            Sample value used to pad short clips.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        num_mel_bins: int = 64,
        sampling_rate: int = SAMPLING_RATE,
        n_fft: int = 1024,
        hop_length: int = 512,
        f_min: float = 0.0,
        f_max: float | None = None,
        clip_seconds: float = CLIP_SECONDS,
        mean: float = 0.0,
        std: float = 1.0,
        padding_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        num_mel_bins = kwargs.pop("n_mels", num_mel_bins)  # the name in folders saved before the rename
        kwargs.pop("feature_size", None)  # saved for the base class, derived from num_mel_bins
        kwargs.setdefault("return_attention_mask", False)  # every clip has the same length
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.num_mel_bins = num_mel_bins
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.f_min = f_min
        self.f_max = f_max
        self.clip_seconds = clip_seconds
        self.mean = float(mean)
        self.std = float(std)

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sampling_rate))

    @property
    def num_frames(self) -> int:
        """Frames of one clip (centred STFT)."""
        return self.clip_samples // self.hop_length + 1

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_mel_filters", None)  # derived from the parameters; not part of the config
        return output

    def mel_filters(self) -> torch.Tensor:
        """The `(n_fft // 2 + 1, num_mel_bins)` Slaney filter bank, built once per instance."""
        filters = self.__dict__.get("_mel_filters")
        if filters is None:
            filters = melscale_fbanks(
                n_freqs=self.n_fft // 2 + 1,
                f_min=self.f_min,
                f_max=self.f_max if self.f_max is not None else self.sampling_rate / 2,
                n_mels=self.num_mel_bins,
                sample_rate=self.sampling_rate,
                norm="slaney",
                mel_scale="slaney",
            )
            self.__dict__["_mel_filters"] = filters
        return filters

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-mel (dB) of a `(batch, samples)` float tensor -> `(batch, num_mel_bins, frames)`.

        Also traced into the waveform ONNX graph, where the STFT is real (`..., 2`): ONNX's has no complex type.
        """
        exporting = torch.onnx.is_in_onnx_export()
        spectrum = torch.stft(
            waveforms.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=torch.hann_window(self.n_fft, device=waveforms.device),
            center=True,
            pad_mode="constant",
            return_complex=not exporting,
        )
        real, imaginary = spectrum.unbind(-1) if exporting else (spectrum.real, spectrum.imag)
        power = real.square() + imaginary.square()
        mel = torch.matmul(power.transpose(1, 2), self.mel_filters().to(power.device)).transpose(1, 2)
        return 10.0 * torch.log10(mel.clamp_min(_POWER_FLOOR))

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        return (log_mel - self.mean) / self.std

    def fix_length(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Zero-pads at the end, or cuts, a `(batch, samples)` tensor to exactly one clip (one traceable form)."""
        padded = torch.nn.functional.pad(waveforms, (0, self.clip_samples), value=self.padding_value)
        return padded[..., : self.clip_samples]

    def __call__(
        self,
        raw_audio: np.ndarray | torch.Tensor | Sequence[float] | Sequence[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Featurises one mono clip (1-D) or a batch (a list of 1-D arrays, or a 2-D array).

        Raises:
            ValueError: on a sampling-rate mismatch, empty audio, NaN/inf samples, or input
                with more than one channel.
        """
        self._check_sampling_rate(sampling_rate)
        waveforms = self._to_batch(raw_audio)
        features = self.normalize(self.log_mel(waveforms))
        return BatchFeature({"input_values": features.numpy()}, tensor_type=return_tensors)

    def _check_sampling_rate(self, sampling_rate: int | None) -> None:
        if sampling_rate is None:
            logger.warning(
                f"No sampling_rate passed to {type(self).__name__}; assuming {self.sampling_rate} Hz. "
                "Pass `sampling_rate` to catch silent errors."
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"The model expects audio sampled at {self.sampling_rate} Hz, but the input was "
                f"sampled at {sampling_rate} Hz. Resample it first (e.g. with "
                f"torchaudio.functional.resample) or pass it to the pipeline as "
                f'{{"array": audio, "sampling_rate": {sampling_rate}}}.'
            )

    def _to_batch(self, raw_audio: Any) -> torch.Tensor:
        """Validates input and returns a `(batch, clip_samples)` float32 tensor."""
        clips = _as_clip_list(raw_audio)
        if not clips:
            raise ValueError("No audio given: the batch is empty.")
        fixed = []
        for index, clip in enumerate(clips):
            name = "The audio" if len(clips) == 1 else f"Clip {index} of the batch"
            if clip.ndim != 1:
                raise ValueError(
                    f"{name} has shape {tuple(clip.shape)}; expected mono audio (a 1-D array). "
                    "Mix stereo down to mono before featurising."
                )
            if clip.numel() == 0:
                raise ValueError(f"{name} is empty (0 samples).")
            if not torch.isfinite(clip).all():
                raise ValueError(f"{name} contains NaN or infinite samples.")
            fixed.append(self.fix_length(clip.unsqueeze(0)))
        return torch.cat(fixed)


def _as_clip_list(raw_audio: Any) -> list[torch.Tensor]:
    """A single 1-D clip, a 2-D batch, or a list of clips -> a list of float32 tensors (copies)."""
    if isinstance(raw_audio, np.ndarray | torch.Tensor):
        if isinstance(raw_audio, np.ndarray):
            raw_audio = torch.tensor(np.asarray(raw_audio, dtype=np.float32))
        tensor = raw_audio.detach().to("cpu", torch.float32)
        return list(tensor) if tensor.ndim == 2 else [tensor]
    if isinstance(raw_audio, list | tuple):
        if raw_audio and all(np.isscalar(value) for value in raw_audio):
            return [torch.tensor(raw_audio, dtype=torch.float32)]
        return [torch.tensor(np.asarray(clip, dtype=np.float32)) for clip in raw_audio]
    raise TypeError(f"Expected a numpy array, a torch tensor or a list of them, got {type(raw_audio).__name__}.")


__all__ = ["Esc50FeatureExtractor"]
