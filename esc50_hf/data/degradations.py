"""What real recordings do to a clean clip: noise, rooms, codecs, telephone bands, levels, placement.

Plain functions of a mono float32 waveform, deterministic given their arguments (randomness only through a
`numpy.random.Generator` passed in). They are the one implementation behind both the training transforms that
model these conditions (`data/augmentation.py`: `BackgroundNoise`, `ColouredNoise`, `Reverberation`,
`CodecRoundTrip`, `TelephoneBand`, `LevelAndClipping`) and the corruption benchmark (`bench/robustness.py`), so
the recipe is trained on exactly what it is measured on, at other strengths.
"""

import numpy as np
import torch

# Codecs a round trip can use, by name: (container format, the rate the codec runs at or None for the clip's own).
# Opus runs at 48 kHz (its native rate); GSM full rate is a telephone codec, 8 kHz at 13 kbit/s.
CODECS: dict[str, tuple[str, int | None]] = {
    "mp3": ("mp3", None),
    "aac": ("adts", None),
    "opus": ("opus", 48000),
    "gsm": ("gsm", 8000),
}
# The bit rates (bit/s) a training round trip draws from, per codec.
CODEC_BIT_RATES: dict[str, tuple[int, int]] = {
    "mp3": (32000, 128000),
    "aac": (24000, 96000),
    "opus": (8000, 32000),
    "gsm": (13000, 13000),
}
# Recorded backgrounds: the ESC-50 classes that are mostly steady ambience. Training mixes in clips of these
# classes from its training folds; the corruption benchmark mixes in clips of them from the tested fold.
AMBIENT_CLASSES = (
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "wind", "engine", "train", "airplane",
    "vacuum_cleaner",
)  # fmt: skip
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000
_MAX_CODEC_DELAY = 4096  # samples at the clip's rate: longer than any encoder's priming here (AAC's is 1024)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def fit_length(samples: np.ndarray, num_samples: int) -> np.ndarray:
    """`samples` repeated (if shorter) and cut to exactly `num_samples`."""
    if samples.size == 0:
        raise ValueError("cannot fit an empty waveform to a length")
    repeats = -(-num_samples // samples.size)
    return np.tile(samples, repeats)[:num_samples]


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`signal` plus `noise` (looped or cut to its length) scaled so the signal-to-noise ratio is `snr_db`.

    A silent signal gets the noise at the level of a -40 dBFS RMS signal, so the mixture is never all-silent.
    """
    noise = fit_length(noise.astype(np.float32, copy=False), signal.size)
    signal_rms, noise_rms = max(rms(signal), 0.01), rms(noise)
    if noise_rms == 0.0:
        return signal.astype(np.float32, copy=True)
    scale = signal_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (signal + scale * noise).astype(np.float32)


def coloured_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**exponent: 0 white, 1 pink, 2 brown."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.arange(spectrum.size, dtype=np.float64)
    frequencies[0] = 1.0  # the DC bin keeps its white-noise level
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2.0), n=num_samples)
    return (noise / max(rms(noise), 1e-12)).astype(np.float32)


def room_impulse_response(rt60: float, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, sparse early reflections and a diffuse tail decaying by 60 dB in `rt60` s.

    The tail is exponentially decaying Gaussian noise whose high frequencies die faster (a cross-fade from the noise
    to a low-passed copy of it along the tail), as in real rooms where air and walls absorb the highs first.
    """
    from scipy.signal import butter, sosfilt

    if not 0.05 <= rt60 <= 5.0:
        raise ValueError(f"rt60 must be in [0.05, 5] s, got {rt60}")
    length = int(rt60 * sampling_rate)
    time = np.arange(length) / sampling_rate
    noise = rng.standard_normal(length)
    dull = sosfilt(butter(2, 2000.0, fs=sampling_rate, output="sos"), noise)
    fade = np.clip(time / rt60, 0.0, 1.0)
    filtered = ((1.0 - fade) * noise + fade * dull) * np.exp(-6.9078 * time / rt60)  # ln(1000): -60 dB at rt60
    # The reverberant energy grows with the room's decay time (direct path 1.0: 0.27 at 0.3 s, 0.61 at 1.5 s).
    response = 0.5 * np.sqrt(rt60) * filtered / max(float(np.sqrt(np.sum(filtered**2))), 1e-12)
    for _ in range(6):  # early reflections in the first 50 ms
        response[int(rng.uniform(0.002, 0.05) * sampling_rate)] += rng.uniform(0.1, 0.5) * rng.choice([-1.0, 1.0])
    response[0] = 1.0
    return response.astype(np.float32)


def reverberate(samples: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """`samples` convolved with a room's impulse response, cut to its length and brought back to its RMS level."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(samples, impulse_response)[: samples.size]
    return (wet * (rms(samples) / max(rms(wet), 1e-12))).astype(np.float32)


def codec_round_trip(samples: np.ndarray, sampling_rate: int, codec: str, bit_rate: int) -> np.ndarray:
    """`samples` encoded with `codec` (a name in `CODECS`) at `bit_rate` bit/s and decoded back, time-aligned.

    FFmpeg does both (torchcodec's encoder and decoder), at the codec's own rate where it has one; the encoder's
    start-up delay is found by cross-correlation and removed, so the result lines up with the input sample for
    sample and has its length.
    """
    from torchcodec.decoders import AudioDecoder
    from torchcodec.encoders import AudioEncoder

    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    container, codec_rate = CODECS[codec]
    encoded = AudioEncoder(torch.from_numpy(np.ascontiguousarray(samples, np.float32))[None], sample_rate=sampling_rate)
    data = encoded.to_tensor(container, bit_rate=bit_rate, sample_rate=codec_rate)
    decoded = AudioDecoder(data, sample_rate=sampling_rate, num_channels=1).get_all_samples().data[0].numpy()
    return _aligned(decoded, samples)


def _aligned(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """`decoded` shifted by the delay (0 to `_MAX_CODEC_DELAY` samples) that best matches `original`, padded or cut."""
    span = min(original.size, decoded.size)
    if span > _MAX_CODEC_DELAY and rms(original) > 0:
        size = 1 << int(np.ceil(np.log2(2 * span)))
        spectra = np.fft.rfft(decoded[:span], size) * np.conj(np.fft.rfft(original[:span], size))
        correlation = np.fft.irfft(spectra, size)
        delay = int(np.argmax(correlation[: _MAX_CODEC_DELAY + 1]))
        decoded = decoded[delay:]
    out = np.zeros(original.size, np.float32)
    out[: min(original.size, decoded.size)] = decoded[: original.size]
    return out


def telephone_band(samples: np.ndarray, sampling_rate: int) -> np.ndarray:
    """What a narrow-band telephone line passes: 300-3400 Hz at 8 kHz, back at `sampling_rate`."""
    from scipy.signal import butter, resample_poly, sosfiltfilt

    narrow = resample_poly(samples, TELEPHONE_RATE, sampling_rate)
    sos = butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    wide = resample_poly(sosfiltfilt(sos, narrow), sampling_rate, TELEPHONE_RATE)
    out = np.zeros(samples.size, np.float32)
    out[: min(samples.size, wide.size)] = wide[: samples.size]
    return out


def change_level(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """`samples` amplified by `gain_db` and clipped to full scale [-1, 1], as an overdriven recorder does."""
    return np.clip(samples * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def place_in_ambience(
    samples: np.ndarray, ambience: np.ndarray, num_samples: int, offset: int, snr_db: float
) -> np.ndarray:
    """`samples` starting `offset` samples into `num_samples` of `ambience` (looped), the ambience `snr_db` below it."""
    if not 0 <= offset <= num_samples - samples.size:
        raise ValueError(f"offset {offset} does not fit a {samples.size}-sample clip into {num_samples} samples")
    signal_rms = max(rms(samples), 0.01)
    bed = fit_length(ambience.astype(np.float32, copy=False), num_samples)
    bed = bed * (signal_rms / (max(rms(bed), 1e-12) * 10.0 ** (snr_db / 20.0)))
    bed[offset : offset + samples.size] += samples
    return bed.astype(np.float32)
