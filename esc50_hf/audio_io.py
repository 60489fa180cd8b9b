"""One path from any user input to the model's waveform: mono float32 at `SAMPLING_RATE`.

The web demo, its REST API, the CLI and `SoundClassifier` all call `load_audio`, so every
entry point accepts the same inputs and rejects bad ones with the same `AudioInputError`:

* a file path or the file's bytes: WAV, FLAC, OGG, MP3, AIFF... through libsndfile, then
  anything FFmpeg reads (M4A/AAC, Opus/WebM, ...) through torchcodec;
* a `(rate, array)` tuple as Gradio's `gr.Audio(type="numpy")` gives it, or a
  `{"array"|"raw": array, "sampling_rate": rate}` dict as `transformers` pipelines take it.
  Integer PCM (int8/uint8/int16/int32) is scaled to [-1, 1); floats are taken as they are.
  2-D arrays may be channels-first `(channels, samples)` or channels-last `(samples, channels)`:
  the channel axis is the short one (at most `MAX_CHANNELS`), the other must be longer.
  Channels are averaged to mono.

What is rejected, and why (the limits are `AudioLimits` fields):

* empty input, undecodable bytes (corrupt, truncated, text renamed .wav), 0-sample audio;
* NaN or infinite samples (they would turn every log-mel value into NaN);
* float samples with a peak above `max_float_peak` (integer PCM passed as float: the
  loudness would be ~90 dB off and the prediction meaningless);
* a sample rate outside 8-96 kHz (below 8 kHz the model's mel bands up to 11 kHz are empty;
  above 96 kHz is unusual enough to be a unit mistake, e.g. samples passed as the rate);
* shorter than `min_seconds` (0.1 s: too little for a single analysis frame to mean anything;
  shorter clips are otherwise padded with silence to 5 s, like ESC-50's own short clips);
* longer than `max_seconds` (10 min) or larger than `max_bytes` (128 MiB), so that one
  request cannot take the server's memory or CPU: checked on the header before decoding.
"""

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

from .labels import SAMPLING_RATE

MAX_CHANNELS = 8


class AudioInputError(ValueError):
    """The input cannot be turned into a waveform for the model; the message says why, for end users."""


@dataclass(frozen=True)
class AudioLimits:
    """What one request may be; every check raises `AudioInputError`."""

    max_seconds: float = 600.0
    max_bytes: int = 128 * 2**20
    min_seconds: float = 0.1
    min_rate: int = 8_000
    max_rate: int = 96_000
    max_float_peak: float = 16.0


DEFAULT_LIMITS = AudioLimits()

AudioSource = str | os.PathLike | bytes | bytearray | tuple[int, np.ndarray] | dict[str, Any]


def load_audio(
    source: AudioSource, sampling_rate: int = SAMPLING_RATE, limits: AudioLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Any supported input -> 1-D float32 waveform at `sampling_rate` Hz; `AudioInputError` otherwise."""
    if isinstance(source, tuple):
        rate, samples = _unpack_pair(source)
    elif isinstance(source, dict):
        rate, samples = _unpack_dict(source)
    elif isinstance(source, bytes | bytearray | memoryview):
        rate, samples = decode_bytes(bytes(source), limits=limits)
    elif isinstance(source, str | os.PathLike):
        rate, samples = decode_file(source, limits=limits)
    else:
        raise AudioInputError(
            f"Unsupported audio input of type {type(source).__name__}: pass a file path, the file's bytes, "
            "a (sampling_rate, array) tuple or a {'array': ..., 'sampling_rate': ...} dict."
        )
    return to_model_waveform(samples, rate, sampling_rate, limits)


def to_model_waveform(samples: Any, rate: int, sampling_rate: int, limits: AudioLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Validates a decoded or user-supplied array, mixes it to mono and resamples it."""
    rate = _check_rate(rate, limits)
    mono = to_mono(to_float32(samples, limits))
    _check_duration(mono.size / rate, limits)
    if not np.isfinite(mono).all():
        raise AudioInputError("The audio contains NaN or infinite sample values.")
    if rate != sampling_rate:
        mono = torchaudio.functional.resample(torch.from_numpy(mono), rate, sampling_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


def decode_file(path: str | os.PathLike, limits: AudioLimits = DEFAULT_LIMITS) -> tuple[int, np.ndarray]:
    """Reads a file (size-checked first) and decodes it; returns `(rate, samples)`."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"No such audio file: {path}")
    _check_size(path.stat().st_size, limits, what=f"The file {path.name}")
    return decode_bytes(path.read_bytes(), limits=limits, name=path.name)


def decode_bytes(data: bytes, limits: AudioLimits = DEFAULT_LIMITS, name: str = "The input") -> tuple[int, np.ndarray]:
    """Encoded audio -> `(rate, samples)` with samples `(frames, channels)` float32.

    libsndfile first (exact, fast, covers WAV/FLAC/OGG/MP3/AIFF), then FFmpeg via torchcodec
    for the rest. The duration is checked from the header before decoding the samples.
    """
    _check_size(len(data), limits, what=name)
    errors = []
    for decoder in (_decode_with_soundfile, _decode_with_ffmpeg):
        try:
            return decoder(data, limits)
        except AudioInputError:
            raise
        except Exception as error:  # each decoder has its own error types; both failing is what matters
            errors.append(f"{decoder.__name__.removeprefix('_decode_with_')}: {_short_reason(error)}")
    raise AudioInputError(
        f"{name} could not be decoded as audio: not a supported audio format (WAV, FLAC, OGG, MP3, M4A, ...) "
        f"or a corrupt file ({len(data)} bytes; {'; '.join(errors)})."
    )


def _decode_with_soundfile(data: bytes, limits: AudioLimits) -> tuple[int, np.ndarray]:
    with sf.SoundFile(io.BytesIO(data)) as sound:
        if sound.frames > 0:  # 0 frames: let the empty-audio check below say so
            _check_duration(sound.frames / sound.samplerate, limits)
        samples = sound.read(dtype="float32", always_2d=True)
        return sound.samplerate, samples


def _decode_with_ffmpeg(data: bytes, limits: AudioLimits) -> tuple[int, np.ndarray]:
    from torchcodec.decoders import AudioDecoder

    decoder = AudioDecoder(data)
    duration = decoder.metadata.duration_seconds_from_header
    if duration:
        _check_duration(duration, limits)
    decoded = decoder.get_all_samples()  # (channels, samples) float32
    return decoded.sample_rate, decoded.data.numpy().T


def to_float32(samples: Any, limits: AudioLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Integer PCM -> [-1, 1) floats; float input is kept, after a sanity check of its scale."""
    array = np.asarray(samples)
    if array.size == 0:
        raise AudioInputError("The audio is empty (0 samples).")
    if array.dtype.kind == "u":  # unsigned PCM is centred on half its range (8-bit WAV)
        half = 2 ** (8 * array.dtype.itemsize - 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    if array.dtype.kind == "i":
        return (array.astype(np.float64) / 2 ** (8 * array.dtype.itemsize - 1)).astype(np.float32)
    if array.dtype.kind != "f":
        raise AudioInputError(f"Audio samples must be integers or floats, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    finite = array[np.isfinite(array)]
    peak = float(np.abs(finite).max()) if finite.size else 0.0
    if peak > limits.max_float_peak:
        raise AudioInputError(
            f"Float audio must be scaled to [-1, 1] (full scale = 1.0), but its peak is {peak:g}. "
            "It looks like integer PCM stored as floats: divide by 32768 (16-bit) or pass the integer array."
        )
    return array


def to_mono(samples: np.ndarray) -> np.ndarray:
    """1-D, `(channels, samples)` or `(samples, channels)` -> 1-D mean of the channels.

    The layout is inferred from the shape, not assumed: the channel axis is the short one
    (<= MAX_CHANNELS) and the other axis must be longer. Guessing wrong would average over
    time instead of channels and silently return a few samples of garbage.
    """
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioInputError(f"Audio must be 1-D (mono) or 2-D (multi-channel), got shape {samples.shape}.")
    rows, columns = samples.shape
    if columns <= MAX_CHANNELS and rows > columns:
        return samples.mean(axis=1)  # (samples, channels): soundfile, Gradio
    if rows <= MAX_CHANNELS and columns > rows:
        return samples.mean(axis=0)  # (channels, samples): torchaudio, torchcodec, librosa
    raise AudioInputError(
        f"Cannot tell channels from samples in an array of shape {samples.shape}: expected "
        f"(channels, samples) or (samples, channels) with at most {MAX_CHANNELS} channels "
        "and more samples than channels."
    )


def _unpack_pair(source: tuple) -> tuple[int, Any]:
    if len(source) != 2:
        raise AudioInputError("An audio tuple must be (sampling_rate, array), as gr.Audio(type='numpy') gives it.")
    rate, samples = source
    if isinstance(rate, np.ndarray) and not isinstance(samples, np.ndarray):
        raise AudioInputError("The audio tuple is (array, rate); expected (sampling_rate, array).")
    return rate, samples


def _unpack_dict(source: dict[str, Any]) -> tuple[int, Any]:
    samples = source.get("array", source.get("raw"))
    if samples is None or "sampling_rate" not in source:
        raise AudioInputError("An audio dict needs an 'array' (or 'raw') and a 'sampling_rate'.")
    return source["sampling_rate"], samples


def _check_rate(rate: Any, limits: AudioLimits) -> int:
    is_number = isinstance(rate, int | np.integer | float | np.floating) and not isinstance(rate, bool)
    if not is_number or not math.isfinite(rate) or float(rate) != int(rate):
        raise AudioInputError(f"The sampling rate must be a whole number of Hz, got {rate!r}.")
    if not limits.min_rate <= int(rate) <= limits.max_rate:
        raise AudioInputError(
            f"Unsupported sampling rate {int(rate)} Hz: expected {limits.min_rate}-{limits.max_rate} Hz."
        )
    return int(rate)


def _check_duration(seconds: float, limits: AudioLimits) -> None:
    if seconds > limits.max_seconds:
        raise AudioInputError(
            f"The audio is too long: {_format_seconds(seconds)}; the limit is {_format_seconds(limits.max_seconds)}."
        )
    if seconds < limits.min_seconds:
        raise AudioInputError(f"The audio is too short: {seconds:.3f} s; at least {limits.min_seconds:g} s is needed.")


def _check_size(num_bytes: int, limits: AudioLimits, what: str) -> None:
    if num_bytes == 0:
        raise AudioInputError(f"{what} is empty (0 bytes).")
    if num_bytes > limits.max_bytes:
        raise AudioInputError(
            f"{what} is too large: {num_bytes / 2**20:.1f} MiB; the limit is {limits.max_bytes / 2**20:.0f} MiB."
        )


def _format_seconds(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


def _short_reason(error: Exception) -> str:
    """The decoder's own reason, without the buffer repr or C++ source location it prefixes."""
    lines = str(error).strip().splitlines()
    return (lines[-1].rsplit(": ", 1)[-1] if lines else type(error).__name__)[:200]


__all__ = [
    "DEFAULT_LIMITS",
    "MAX_CHANNELS",
    "AudioInputError",
    "AudioLimits",
    "decode_bytes",
    "decode_file",
    "load_audio",
    "to_float32",
    "to_mono",
    "to_model_waveform",
]
