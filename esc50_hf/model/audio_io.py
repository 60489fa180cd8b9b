"""One path from any user input to the model's waveform: mono float32 at `SAMPLING_RATE`.

The web demo, its REST API, the CLI, `SoundClassifier` and the pipeline all call
`load_audio` (or `stream_audio`, its block-by-block form), so every entry point accepts the
same inputs and rejects bad ones with the same `AudioInputError`:

* a file path or the file's bytes: WAV, FLAC, OGG, MP3, AIFF... through libsndfile, then
  anything FFmpeg reads (M4A/AAC, Opus/WebM, ...) through torchcodec, both in-process;
* a `(rate, array)` tuple as Gradio's `gr.Audio(type="numpy")` gives it, or a
  `{"array"|"raw": array, "sampling_rate": rate}` dict as `transformers` pipelines take it.
  Integer PCM (int8/uint8/int16/int32) is scaled to [-1, 1); floats are taken as they are.
  2-D arrays may be channels-first `(channels, samples)` or channels-last `(samples, channels)`:
  the channel axis is the short one (at most `MAX_CHANNELS`), the other must be longer.
  Channels are averaged to mono.

Memory is bounded by the output, not by the input. A file's header (channels, rate, length)
is read first and anything over the limits is refused before a sample is decoded; then the
file is decoded in blocks of at most `BLOCK_BYTES`, each block mixed to mono and resampled
as it arrives (`StreamingResampler` gives the same samples as resampling the whole signal at
once). A header that understates the length cannot get past the limit either: the decoded
length is counted as it grows. So a 27-KB file that claims 16 channels at 96 kHz costs what
its 22.05 kHz mono output costs, never channels x rate x duration.

What is rejected, and why (the limits are `AudioLimits` fields):

* empty input, undecodable bytes (corrupt, truncated, an image or text renamed .wav), 0 samples;
* NaN or infinite samples (they would turn every log-mel value into NaN);
* float samples with a peak above `max_float_peak` (integer PCM passed as float: the
  loudness would be ~90 dB off and the prediction meaningless);
* a sample rate outside 8-96 kHz (below 8 kHz the model's mel bands up to 11 kHz are empty;
  above 96 kHz is unusual enough to be a unit mistake, e.g. samples passed as the rate);
* more than `MAX_CHANNELS` (32) channels;
* shorter than `min_seconds` (0.1 s: too little for a single analysis frame to mean anything;
  shorter clips are otherwise padded with silence to 5 s, like ESC-50's own short clips);
* longer than `max_seconds` (10 min) or larger than `max_bytes` (128 MiB), so that one
  request cannot take the server's memory or CPU. `max_seconds=None` lifts the length limit
  (local files classified block by block, see `stream_audio`).
"""

import functools
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms

from .labels import SAMPLING_RATE

MAX_CHANNELS = 32
# Decoded samples held at once per request (all channels, float32, at the file's own rate).
BLOCK_BYTES = 8 * 2**20


class AudioInputError(ValueError):
    """The input cannot be turned into a waveform for the model; the message says why, for end users."""


@dataclass(frozen=True)
class AudioLimits:
    """What one input may be; every check raises `AudioInputError`.

    Args:
        max_seconds (`float` or `None`, *optional*, defaults to 600.0): Longest input; `None` for no limit.
        max_bytes (`int`, *optional*, defaults to 128 MiB): Largest encoded file.
        min_seconds (`float`, *optional*, defaults to 0.1): Shortest input.
        min_rate (`int`, *optional*, defaults to 8000): Lowest sampling rate, Hz.
        max_rate (`int`, *optional*, defaults to 96000): Highest sampling rate, Hz.
        max_float_peak (`float`, *optional*, defaults to 16.0): Largest float sample magnitude.
    """

    max_seconds: float | None = 600.0
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
    if isinstance(source, tuple | dict):
        rate, samples = _unpack_pair(source) if isinstance(source, tuple) else _unpack_dict(source)
        return to_model_waveform(samples, rate, sampling_rate, limits)
    blocks = list(stream_audio(source, sampling_rate, limits))
    waveform = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    _check_duration(waveform.size / sampling_rate, limits)
    return waveform


def stream_audio(
    source: str | os.PathLike | bytes | bytearray | memoryview,
    sampling_rate: int = SAMPLING_RATE,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> Iterator[np.ndarray]:
    """A file path or encoded bytes -> consecutive mono float32 blocks at `sampling_rate`.

    The header is checked when the first block is asked for; NaN/inf samples and a length past
    `limits.max_seconds` raise `AudioInputError` as soon as a block shows them; a stream whose header gives no
    length is checked against `limits.min_seconds` at the end. Together the blocks equal `load_audio(source)`.
    """
    reader = open_audio(source, limits, sampling_rate)
    resampler = StreamingResampler(reader.output_rate, sampling_rate)
    mix = np.full(reader.output_channels, 1 / reader.output_channels, np.float32)  # the channels' mean, as BLAS
    decoded = 0
    produced = False
    for block in reader.blocks():  # (frames, channels) float32
        decoded += block.shape[0]
        if limits.max_seconds is not None and decoded / reader.output_rate > limits.max_seconds:
            stated = f"its header says {_format_seconds(reader.duration)}" if reader.duration else "no length"
            raise AudioInputError(
                f"The audio is too long: more than {_format_seconds(limits.max_seconds)} were decoded although "
                f"{stated}; the limit is {_format_seconds(limits.max_seconds)}."
            )
        # NaN and inf survive the mix, so the checks below see them
        mono = to_float32(block[:, 0] if reader.output_channels == 1 else block @ mix, limits)
        if not np.isfinite(mono).all():
            raise AudioInputError("The audio contains NaN or infinite sample values.")
        out = resampler.push(mono)
        if out.size:
            produced = True
            yield out
    tail = resampler.flush()
    if decoded == 0:
        raise AudioInputError("The audio is empty (0 samples).")
    if not reader.duration:  # the header gave no length: the decoded one is checked
        _check_duration(decoded / reader.output_rate, limits)
    if tail.size or not produced:
        yield tail


def audio_blocks(
    source: Any, sampling_rate: int = SAMPLING_RATE, limits: AudioLimits = DEFAULT_LIMITS
) -> Iterator[np.ndarray]:
    """Any input -> mono float32 blocks at `sampling_rate`, for every entry point (`SoundClassifier`, the pipeline).

    File paths and bytes stream block by block (`stream_audio`); in-memory audio comes as one block, checked and
    resampled: a `(rate, array)` tuple, an `{"array"|"raw", "sampling_rate"}` dict (numpy or torch), a bare 1-D
    array or tensor (taken to be at `sampling_rate`), or a torchcodec `AudioDecoder` (what a `datasets` Audio
    column holds; its stated length is checked first and it is decoded no further than the limit allows).
    """
    if isinstance(source, str | os.PathLike | bytes | bytearray | memoryview):
        yield from stream_audio(source, sampling_rate, limits)
        return
    if hasattr(source, "get_samples_played_in_range"):
        metadata = source.metadata
        _check_rate(metadata.sample_rate, limits)
        if metadata.duration_seconds_from_header:
            _check_duration(metadata.duration_seconds_from_header, limits)
        stop = None if limits.max_seconds is None else limits.max_seconds + 1.0
        decoded = source.get_samples_played_in_range(0.0, stop)
        source = {"array": decoded.data.numpy(), "sampling_rate": decoded.sample_rate}
    elif isinstance(source, np.ndarray | torch.Tensor):
        source = {"array": source, "sampling_rate": sampling_rate}
    yield load_audio(source, sampling_rate, limits)


def to_model_waveform(samples: Any, rate: int, sampling_rate: int, limits: AudioLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Validates an in-memory array, mixes it to mono and resamples it."""
    rate = _check_rate(rate, limits)
    mono = to_mono(to_float32(samples, limits))
    _check_duration(mono.size / rate, limits)
    if not np.isfinite(mono).all():
        raise AudioInputError("The audio contains NaN or infinite sample values.")
    if rate != sampling_rate:
        mono = resampler(rate, sampling_rate)(torch.from_numpy(mono)).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


@functools.cache
def resampler(orig_freq: int, new_freq: int) -> torchaudio.transforms.Resample:
    """torchaudio's resampler with its sinc kernel computed once per pair of rates (stateless, thread-safe)."""
    return torchaudio.transforms.Resample(orig_freq, new_freq)


class StreamingResampler:
    """torchaudio's resampler fed block by block, with the same output as one call on the whole signal.

    torchaudio's resampler reduces the rates by their gcd to `orig : new` and computes each
    group of `new` output samples from the input around one group of `orig` input samples
    (a sinc kernel reaching `width` samples either side). So whole groups whose input has
    fully arrived can be computed from a segment that starts a few groups earlier (at a
    group boundary, so that the phases line up) and cut out of its output: exactly what the
    single call would give, up to float rounding.

    Args:
        orig_freq (`int`): Rate of the input blocks, Hz.
        new_freq (`int`): Rate of the output, Hz.
    """

    LOWPASS_FILTER_WIDTH = 6  # torchaudio's defaults, which `resampler` uses too
    ROLLOFF = 0.99

    def __init__(self, orig_freq: int, new_freq: int) -> None:
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        gcd = math.gcd(self.orig_freq, self.new_freq)
        self.group_in, self.group_out = self.orig_freq // gcd, self.new_freq // gcd
        base = min(self.group_in, self.group_out) * self.ROLLOFF
        width = math.ceil(self.LOWPASS_FILTER_WIDTH * self.group_in / base)
        self.reach = width + self.group_in  # input samples a group needs past its own start
        self.context_groups = math.ceil(width / self.group_in) + 1  # groups of history kept before the next one
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # input index of _buffer[0], a group boundary
        self._groups_done = 0
        self._received = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Takes the next input block; returns the output samples that are now final."""
        if self.orig_freq == self.new_freq:
            return samples.astype(np.float32, copy=False)
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        self._received += samples.size
        ready = max(0, (self._received - self.reach) // self.group_in + 1)
        return self._emit(ready * self.group_out, ready)

    def flush(self) -> np.ndarray:
        """The rest of the output, once the input has ended."""
        if self.orig_freq == self.new_freq:
            return np.zeros(0, np.float32)
        total = math.ceil(self.group_out * self._received / self.group_in)
        return self._emit(total, math.ceil(total / self.group_out))

    def _emit(self, stop: int, groups: int) -> np.ndarray:
        start = self._groups_done * self.group_out
        if stop <= start:
            return np.zeros(0, np.float32)
        first_group = max(0, self._groups_done - self.context_groups)
        offset = first_group * self.group_in - self._buffer_start
        segment = torch.from_numpy(self._buffer[offset:])
        with torch.inference_mode():
            out = resampler(self.orig_freq, self.new_freq)(segment).numpy()
        shift = first_group * self.group_out
        result = np.ascontiguousarray(out[start - shift : stop - shift])
        self._groups_done = groups
        keep_from = max(0, self._groups_done - self.context_groups) * self.group_in
        self._buffer = self._buffer[keep_from - self._buffer_start :]
        self._buffer_start = keep_from
        return result


class AudioReader:
    """An opened, header-checked audio file: `sample_rate`, `num_channels`, `duration` (header; may be None)
    and `blocks()`, which yields `(frames, channels)` float32 arrays of at most `BLOCK_BYTES`."""

    sample_rate: int
    num_channels: int
    duration: float | None
    output_rate: int  # of the blocks: the file's own rate and channels, unless the decoder converts them
    output_channels: int

    def blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _check_header(self, limits: AudioLimits) -> None:
        _check_rate(self.sample_rate, limits)
        if not 1 <= self.num_channels <= MAX_CHANNELS:
            raise AudioInputError(
                f"The audio has {self.num_channels} channels; at most {MAX_CHANNELS} are supported (they are mixed "
                "to mono)."
            )
        if self.duration:  # 0 or unknown: the decoded length is checked instead
            _check_duration(self.duration, limits)

    @property
    def block_frames(self) -> int:
        return max(1024, BLOCK_BYTES // (4 * self.output_channels))


# libsndfile's frame count of a stream that never stated its length (SF_COUNT_MAX: a FLAC written to a pipe)
SF_UNKNOWN_FRAMES = 2**63 - 1


class _LengthUnderstated(Exception):
    """An MP3 whose header states fewer samples than its frames hold (libsndfile would stop where the header says),
    or a stream that states no length at all (libsndfile fails before its end): FFmpeg reads it instead."""


class _SoundfileReader(AudioReader):
    """libsndfile: exact and fast for WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF; frames known from the header.

    libsndfile reads an MP3 only as far as its header (Xing/Info, or an estimate from the first frame) says, so an
    MP3 whose frames hold more than that (a file of 20 min that claims 10 s) would be classified on its start: its
    frames are counted (`_mpeg_seconds`) and such a file raises `_LengthUnderstated`, for FFmpeg, which decodes
    every frame, to read instead.
    """

    def __init__(self, source: str | Path | io.BytesIO, limits: AudioLimits) -> None:
        self._sound = sf.SoundFile(source)
        self.sample_rate, self.num_channels = self._sound.samplerate, self._sound.channels
        if self._sound.frames == SF_UNKNOWN_FRAMES:  # libsndfile cannot seek through it to the end: FFmpeg can
            self._sound.close()
            raise _LengthUnderstated("the header gives no length")
        self.duration = self._sound.frames / self.sample_rate if self.sample_rate else None
        if self._sound.format == "MP3":
            if isinstance(source, io.BytesIO):  # libsndfile reads from it too: a view of its own
                held = _mpeg_seconds(io.BytesIO(source.getbuffer()))
            else:
                with open(source, "rb") as handle:
                    held = _mpeg_seconds(handle)
            if held is not None and held > (self.duration or 0.0) + MP3_LENGTH_TOLERANCE_S:
                self._sound.close()
                raise _LengthUnderstated(f"the header says {self.duration} s, the frames hold {held} s")
        self._check_header(limits)
        self.output_rate, self.output_channels = self.sample_rate, self.num_channels

    def blocks(self) -> Iterator[np.ndarray]:
        with self._sound:
            while True:
                try:
                    block = self._sound.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as error:  # a header that opens, data that does not
                    raise AudioInputError(
                        "The audio could not be decoded to the end: corrupt or truncated data "
                        f"({_short_reason(error)})."
                    ) from error
                if not len(block):
                    return
                yield block


class _FfmpegReader(AudioReader):
    """FFmpeg through torchcodec, in-process: M4A/AAC, Opus/WebM, WMA, Matroska and the rest.

    FFmpeg mixes to mono and resamples to the model's rate as it decodes, frame by frame, so
    what is held is the mono output, never all channels at the file's own rate. The length the
    container states (or FFmpeg estimates) is checked first; as that can understate the truth
    (a raw AAC stream's estimate comes from its first bitrate), decoding stops one second past
    `max_seconds` whatever the file claims, so memory stays within the limit's mono size and the
    decoded length, counted in `stream_audio`, refuses the rest. With `max_seconds=None` (local
    files on the command line) the whole file is decoded at once: hours of an FFmpeg-only format
    cost their 22.05 kHz mono size. (torchcodec's time ranges are not used for blocks: with some
    codecs a range drops the part of a frame that crosses its start.)
    """

    def __init__(self, source: str | bytes, limits: AudioLimits, sampling_rate: int) -> None:
        from torchcodec.decoders import AudioDecoder

        self._source, self._sampling_rate, self._limits = source, sampling_rate, limits
        metadata = AudioDecoder(source).metadata
        self.sample_rate, self.num_channels = int(metadata.sample_rate or 0), int(metadata.num_channels or 0)
        lengths = [seconds for seconds in (metadata.duration_seconds, metadata.duration_seconds_from_header) if seconds]
        self.duration = max(lengths) if lengths else None
        self._check_header(limits)
        self.output_rate, self.output_channels = sampling_rate, 1

    def blocks(self) -> Iterator[np.ndarray]:
        from torchcodec.decoders import AudioDecoder

        decoder = AudioDecoder(self._source, sample_rate=self._sampling_rate, num_channels=1)
        stop = None if self._limits.max_seconds is None else self._limits.max_seconds + 1.0
        try:
            mono = decoder.get_samples_played_in_range(0.0, stop).data[0].numpy()
        except RuntimeError as error:
            raise AudioInputError(
                f"The audio could not be decoded to the end: corrupt or truncated data ({_short_reason(error)})."
            ) from error
        step = self.block_frames
        for first in range(0, len(mono), step):
            yield mono[first : first + step, None]


# MPEG audio frame headers: bit rates (kbit/s) by (MPEG-1?, layer) and index, sample rates by version bits and index.
_MPEG_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # MPEG-1, 2, 2.5
# More than this past the header's length (an Xing frame, encoder delay and padding are a few hundredths): decoded
# by FFmpeg, in full.
MP3_LENGTH_TOLERANCE_S = 0.5


def _mpeg_seconds(handle: Any) -> float | None:
    """The seconds of audio an MPEG audio file's frames hold, counted frame header by frame header from the start
    (ID3v2 tags skipped) up to the first thing that is not a frame (end, ID3v1/APE tags, damage); `None` if no frame
    is found there or a frame has a free-format bit rate (no length in its header)."""
    handle.seek(0)
    head = handle.read(10)
    position = 0
    while head[:3] == b"ID3" and len(head) == 10:  # size: 4 bytes of 7 bits; a footer adds 10
        position += 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]) + (10 if head[5] & 0x10 else 0)
        handle.seek(position)
        head = handle.read(10)
    seconds, frames = 0.0, 0
    while len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version, layer = (head[1] >> 3) & 3, 4 - ((head[1] >> 1) & 3)  # layer bits 3, 2, 1: layers I, II, III
        bitrate_index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 3, (head[2] >> 1) & 1
        if version == 1 or layer == 4 or bitrate_index == 15 or rate_index == 3:  # reserved values: not a frame
            break
        if bitrate_index == 0:  # free format
            return None
        mpeg1 = version == 3
        bitrate, rate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000, _MPEG_RATES[version][rate_index]
        if layer == 1:
            size, samples = (12 * bitrate // rate + padding) * 4, 384
        else:
            per_frame = 1152 if layer == 2 or mpeg1 else 576
            size, samples = per_frame // 8 * bitrate // rate + padding, per_frame
        seconds += samples / rate
        frames += 1
        position += size
        handle.seek(position)
        head = handle.read(4)
    return seconds if frames else None


def open_audio(
    source: str | os.PathLike | bytes | bytearray | memoryview,
    limits: AudioLimits = DEFAULT_LIMITS,
    sampling_rate: int = SAMPLING_RATE,
) -> AudioReader:
    """Opens a file path or encoded bytes and checks its header against `limits` (nothing decoded yet).

    `sampling_rate` is the rate the caller wants in the end; decoders that can convert as they go do.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise AudioInputError(f"No such audio file: {path}")
        name, size = path.name, path.stat().st_size
    elif isinstance(source, bytes | bytearray | memoryview):
        path, source = None, bytes(source)
        name, size = "The input", len(source)
    else:
        raise AudioInputError(
            f"Unsupported audio input of type {type(source).__name__}: pass a file path, the file's bytes, "
            "a (sampling_rate, array) tuple or a {'array': ..., 'sampling_rate': ...} dict."
        )
    _check_size(size, limits, what=name if path is None else f"The file {name}")
    try:
        return _SoundfileReader(str(path) if path else io.BytesIO(source), limits)
    except AudioInputError:
        raise
    except Exception:  # not libsndfile's format: FFmpeg's turn
        pass
    try:
        return _FfmpegReader(str(path) if path else source, limits, sampling_rate)
    except AudioInputError:
        raise
    except Exception:  # the library's own reason (often a bug-report URL) means nothing to the user
        pass
    with path.open("rb") if path else io.BytesIO(source) as handle:
        what = _sniff_non_audio(handle.read(16))
    raise AudioInputError(
        f"{'The input' if path is None else f'The file {name}'} could not be decoded as audio: "
        + (f"it looks like {what}, not a sound. " if what else "")
        + "Give a sound file (WAV, FLAC, OGG, MP3, M4A, ...); this one is in no supported audio format "
        f"or is corrupt or truncated ({size} bytes)."
    )


# Leading bytes of common files people upload by mistake.
_NON_AUDIO_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Office document)",
    b"\x1f\x8b": "a gzip archive",
}


def _sniff_non_audio(head: bytes) -> str | None:
    for signature, what in _NON_AUDIO_SIGNATURES.items():
        if head.startswith(signature):
            return what
    if head.lstrip().startswith((b"<", b"{", b"[")):
        return "a text document (HTML, XML or JSON)"
    if head.startswith(b"MThd"):
        return "a MIDI file (notes to play, not a recording)"
    text = _utf8_prefix(head)
    if text and all(character.isprintable() or character in "\t\r\n" for character in text):
        return "plain text"
    return None


def _utf8_prefix(head: bytes) -> str:
    """`head` as UTF-8 text, allowing a multi-byte character cut at its end; "" when it is not text."""
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""


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
    array = array.astype(np.float32, copy=False)
    peak = float(np.max(np.abs(array), initial=0.0, where=np.isfinite(array)))
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
    if columns == 1 or (columns <= MAX_CHANNELS and rows > columns):
        return samples.mean(axis=1, dtype=np.float32)  # (samples, channels): soundfile, Gradio
    if rows == 1 or (rows <= MAX_CHANNELS and columns > rows):
        return samples.mean(axis=0, dtype=np.float32)  # (channels, samples): torchaudio, torchcodec, librosa
    if min(rows, columns) > MAX_CHANNELS and max(rows, columns) > 1000:
        raise AudioInputError(
            f"The audio array of shape {samples.shape} has {min(rows, columns)} channels; at most {MAX_CHANNELS} "
            "are supported (they are mixed to mono)."
        )
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
    if isinstance(samples, torch.Tensor):  # what a `datasets` Audio column gives with the torch format
        samples = samples.detach().cpu().numpy()
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
    if limits.max_seconds is not None and seconds > limits.max_seconds:
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


def _short_reason(error: Exception) -> str:
    """The decoder's own reason, without the C++ source location it prefixes."""
    lines = str(error).strip().splitlines()
    return (lines[-1].rsplit(", ", 1)[-1] if lines else type(error).__name__)[:200]


def _format_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds, 1), 60)  # rounded first: 359999.97 s is 6000 min 0.0 s, not 5999 min 60.0 s
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_LIMITS",
    "MAX_CHANNELS",
    "AudioInputError",
    "AudioLimits",
    "AudioReader",
    "StreamingResampler",
    "audio_blocks",
    "load_audio",
    "open_audio",
    "stream_audio",
    "to_float32",
    "to_mono",
    "to_model_waveform",
]
