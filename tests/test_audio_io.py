"""`esc50_hf.model.audio_io.load_audio`: every input kind gives the same waveform; every bad input its own message."""

import io
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from esc50_hf import SAMPLING_RATE
from esc50_hf.model.audio_io import AudioInputError, AudioLimits, load_audio
from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

from .conftest import synthetic_clip

RATE = 44100


@pytest.fixture(scope="module")
def stereo_int16() -> np.ndarray:
    """2 s of 16-bit stereo at 44.1 kHz, channels-last, with different left and right channels."""
    left = synthetic_clip(target=10, seed=1, rate=RATE, seconds=2.0)
    right = synthetic_clip(target=30, seed=2, rate=RATE, seconds=2.0)
    return np.round(np.stack([left, right], axis=1) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def reference(stereo_int16) -> np.ndarray:
    return load_audio((RATE, stereo_int16))


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory, stereo_int16) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("audio-io")
    files = {}
    for extension, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")):
        files[extension] = folder / f"clip.{extension}"
        sf.write(files[extension], stereo_int16, RATE, subtype=subtype)
    files["m4a"] = folder / "clip.m4a"  # not libsndfile's: the FFmpeg (torchcodec) fallback
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(files["wav"]), "-c:a", "aac", str(files["m4a"])],
        check=True,
    )
    return files


def test_output_contract(reference):
    assert reference.dtype == np.float32 and reference.ndim == 1
    assert reference.size == 2 * SAMPLING_RATE
    assert 0.1 < np.abs(reference).max() <= 1.0


def test_both_stereo_layouts_give_the_same_mono(stereo_int16, reference):
    channels_first = load_audio((RATE, np.ascontiguousarray(stereo_int16.T)))
    np.testing.assert_array_equal(channels_first, reference)


def test_stereo_is_the_mean_of_the_channels(stereo_int16, reference):
    left, right = (load_audio((RATE, stereo_int16[:, channel])) for channel in (0, 1))
    np.testing.assert_allclose(reference, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_sample_formats_agree_with_int16(stereo_int16, reference, dtype):
    scale = {"int32": 65536, "float32": 1 / 32768, "float64": 1 / 32768}[dtype]
    converted = (stereo_int16.astype(np.float64) * scale).astype(dtype)
    np.testing.assert_allclose(load_audio((RATE, converted)), reference, atol=1e-6)


def test_dict_input_like_the_pipeline(stereo_int16, reference):
    samples = stereo_int16.astype(np.float32) / 32768
    np.testing.assert_allclose(load_audio({"array": samples, "sampling_rate": RATE}), reference, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000, 96000])
def test_any_rate_is_resampled_to_the_model_rate(rate):
    waveform = load_audio((rate, synthetic_clip(target=5, seed=3, rate=rate, seconds=1.5)))
    assert waveform.size == pytest.approx(1.5 * SAMPLING_RATE, abs=1)


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_files_and_bytes_of_every_format(audio_files, reference, extension):
    from_path = load_audio(audio_files[extension])
    from_bytes = load_audio(audio_files[extension].read_bytes())
    np.testing.assert_array_equal(from_path, from_bytes)
    # Lossy codecs add encoder delay/padding and change the waveform and its level (libsndfile's MP3
    # encoder, joint stereo, loses ~20 % RMS here): compare length and spectral content instead.
    assert abs(from_path.size - reference.size) < 0.1 * SAMPLING_RATE
    if extension in ("wav", "flac"):  # lossless: the very same samples
        np.testing.assert_allclose(from_path, reference, atol=1e-6)
    else:
        assert _spectral_similarity(from_path, reference) > 0.9  # unrelated sounds: < 0.3
        assert 0.5 < np.sqrt(np.mean(from_path**2)) / np.sqrt(np.mean(reference**2)) < 1.5


def _spectral_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine similarity of the time-averaged mel power profiles: 1.0 for the same sound, ~0 for unrelated ones.

    Mel bands, not FFT bins, so that a codec's small frequency smearing does not count as a difference.
    """
    extractor = Esc50FeatureExtractor(num_mel_bins=64)
    profiles = [
        (10 ** (extractor.log_mel(torch.from_numpy(signal)[None])[0] / 10)).mean(dim=1).numpy()
        for signal in (first, second)
    ]
    return float(profiles[0] @ profiles[1] / (np.linalg.norm(profiles[0]) * np.linalg.norm(profiles[1])))


def _wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


BAD_INPUTS = {
    "empty bytes": (lambda: b"", "empty (0 bytes)"),
    "random bytes": (lambda: np.random.default_rng(0).bytes(4096), "could not be decoded as audio"),
    "text as audio": (lambda: b"just some text, not a sound\n" * 20, "could not be decoded as audio"),
    "truncated header": (lambda: _wav_bytes(np.zeros(RATE, np.float32))[:30], "could not be decoded as audio"),
    "wav with no samples": (lambda: _wav_bytes(np.zeros(0, np.float32)), "empty (0 samples)"),
    "empty array": (lambda: (RATE, np.zeros(0, np.int16)), "empty (0 samples)"),
    "nan samples": (lambda: (RATE, np.full(RATE, np.nan, np.float32)), "NaN or infinite"),
    "inf sample": (lambda: (RATE, np.r_[np.zeros(RATE - 1), np.inf].astype(np.float32)), "NaN or infinite"),
    "int pcm as float": (lambda: (RATE, np.full(RATE, 12000.0, np.float32)), "scaled to [-1, 1]"),
    "rate too low": (lambda: (4000, np.zeros(4000, np.int16)), "Unsupported sampling rate 4000 Hz"),
    "rate too high": (lambda: (192000, np.zeros(192000, np.int16)), "Unsupported sampling rate 192000 Hz"),
    "array and rate swapped": (lambda: (np.zeros(RATE, np.int16), RATE), "expected (sampling_rate, array)"),
    "fractional rate": (lambda: (44100.5, np.zeros(RATE, np.int16)), "whole number of Hz"),
    "too short": (lambda: (RATE, np.zeros(RATE // 20, np.int16)), "too short: 0.050 s"),
    "too many channels": (lambda: (RATE, np.zeros((RATE, 40), np.int16)), "has 40 channels; at most 32"),
    "ambiguous layout": (lambda: (RATE, np.zeros((40, 45), np.int16)), "Cannot tell channels from samples"),
    "3-D array": (lambda: (RATE, np.zeros((2, 2, RATE), np.int16)), "1-D (mono) or 2-D"),
    "strings": (lambda: (RATE, np.array(["a"] * RATE)), "must be integers or floats"),
    "unsupported type": (lambda: 12345, "Unsupported audio input of type int"),
    "missing file": (lambda: "/nonexistent/clip.wav", "No such audio file"),
    "png image": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(3000), "it looks like a PNG image, not a sound"),
    "html page": (lambda: b"<!DOCTYPE html><html><body>hi</body></html>" * 50, "looks like a text document"),
    "plain text": (lambda: "Liste des sons à enregistrer: chien, pluie\n".encode() * 80, "it looks like plain text"),
    "midi": (lambda: b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00\x60MTrk" + bytes(2000), "a MIDI file"),
}


def test_durations_read_as_minutes_and_seconds_without_a_60th_second():
    from esc50_hf.model.audio_io import _format_seconds

    assert _format_seconds(359999.97) == "6000 min 0.0 s"
    assert _format_seconds(59.97) == "1 min 0.0 s" and _format_seconds(12.34) == "12.3 s"


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_rejected_with_its_reason(kind):
    make, message = BAD_INPUTS[kind]
    with pytest.raises(AudioInputError, match=_literal(message)):
        load_audio(make())


def test_too_long_is_rejected_from_the_header_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(3 * RATE, np.int16), RATE)
    limits = AudioLimits(max_seconds=2.0)
    with pytest.raises(AudioInputError, match=r"too long: 3\.0 s; the limit is 2\.0 s"):
        load_audio(path, limits=limits)
    with pytest.raises(AudioInputError, match="too long"):
        load_audio((RATE, np.zeros(3 * RATE, np.int16)), limits=limits)


def test_too_large_is_rejected_before_reading(tmp_path):
    path = tmp_path / "large.wav"
    sf.write(path, np.zeros(RATE, np.int16), RATE)
    with pytest.raises(AudioInputError, match=r"too large: 0\.1 MiB; the limit is 0 MiB"):
        load_audio(path, limits=AudioLimits(max_bytes=1000))


def test_error_is_a_value_error():
    assert issubclass(AudioInputError, ValueError)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_sixteen_channels_are_mixed_to_mono(tmp_path):
    """Up to 32 channels: the mean of the channels, from a file and from an array alike."""
    rng = np.random.default_rng(5)
    channels = (rng.standard_normal((RATE, 16)) * 0.1).astype(np.float32)
    path = tmp_path / "sixteen.wav"
    sf.write(path, channels, RATE, subtype="FLOAT")
    expected = load_audio((RATE, channels.mean(axis=1)))
    np.testing.assert_allclose(load_audio(path), expected, atol=1e-6)
    np.testing.assert_allclose(load_audio((RATE, channels)), expected, atol=1e-6)


def test_too_many_channels_in_a_header_are_refused_before_decoding(tmp_path):
    path = tmp_path / "forty.wav"
    sf.write(path, np.zeros((100, 40), np.int16), RATE)
    with pytest.raises(AudioInputError, match="has 40 channels; at most 32 are supported"):
        load_audio(path)


@pytest.mark.parametrize(("orig", "new"), [(44100, 22050), (96000, 22050), (8000, 22050), (48000, 16000)])
def test_streaming_resampler_equals_one_call_on_the_whole_signal(orig, new):
    from esc50_hf.model.audio_io import StreamingResampler, resampler

    signal = np.random.default_rng(orig).standard_normal(2 * orig + 77).astype(np.float32)
    whole = resampler(orig, new)(torch.from_numpy(signal)).numpy()
    stream, pieces, first = StreamingResampler(orig, new), [], 0
    for size in [1, 3, 640, 10_000, 5, 50_000, 10**6]:  # awkward block sizes, down to single samples
        pieces.append(stream.push(signal[first : first + size]))
        first += size
    pieces.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)


def test_blocks_equal_the_whole_decode(tmp_path, monkeypatch):
    """Decoding in small blocks (many block boundaries) gives the samples of one big block."""
    import esc50_hf.model.audio_io as audio_io

    path = tmp_path / "stereo48k.flac"
    samples = synthetic_clip(target=12, seed=9, rate=48000, seconds=3.0)
    sf.write(path, np.stack([samples, samples[::-1]], axis=1), 48000, subtype="PCM_24")
    whole = load_audio(path)
    monkeypatch.setattr(audio_io, "BLOCK_BYTES", 4096)  # 512 stereo frames per block
    blocks = list(audio_io.stream_audio(path))
    assert len(blocks) > 100
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


def test_header_that_understates_the_length_is_caught_while_decoding(tmp_path):
    """An Ogg stream whose header says nothing of its length (a live stream): the decoded length is counted."""
    path = tmp_path / "long.ogg"
    sf.write(path, np.zeros(8000 * 30, np.int16), 8000, subtype="VORBIS")
    with pytest.raises(AudioInputError, match="too long"):
        load_audio(path, limits=AudioLimits(max_seconds=10.0))


def test_a_flac_written_to_a_pipe_has_no_stated_length_and_is_measured_as_decoded():
    """FLAC streamed to a pipe never writes its length: libsndfile reads "2**63 - 1 frames" (it was refused as
    millions of minutes) and cannot seek to its end, so FFmpeg decodes it; the decoded length meets both limits."""
    from esc50_hf.model.audio_io import audio_blocks

    def piped_flac(seconds: float) -> bytes:
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                   f"sine=frequency=440:duration={seconds}", "-ar", "22050", "-f", "flac", "pipe:1"]  # fmt: skip
        return subprocess.run(command, check=True, capture_output=True).stdout

    three = piped_flac(3.0)
    assert sf.info(io.BytesIO(three)).frames == 2**63 - 1  # what libsndfile says of its length
    assert load_audio(three).size == 3 * SAMPLING_RATE
    with pytest.raises(AudioInputError, match=r"more than 2\.0 s were decoded although no length"):
        load_audio(three, limits=AudioLimits(max_seconds=2.0))
    with pytest.raises(AudioInputError, match="too short: 0.050 s"):
        list(audio_blocks(piped_flac(0.05)))  # the streaming path of the pipeline and SoundClassifier


def test_an_ffmpeg_stream_whose_length_is_understated_is_stopped_at_the_limit(tmp_path):
    """A raw AAC stream: FFmpeg estimates its length from the first bitrate (3 s of noise, then 2 min of
    silence: "6.4 s"); decoding stops one second past the limit and the file is refused, whatever it claims."""
    path = tmp_path / "understated.aac"
    graph = "[1]atrim=0:120[silence];[0][silence]concat=n=2:v=0:a=1"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=3:a=0.3", "-f", "lavfi",
         "-i", "anullsrc=r=22050:cl=mono", "-filter_complex", graph, "-ar", "22050", "-ac", "1", "-c:a", "aac",
         str(path)],
        check=True,
    )  # fmt: skip
    with pytest.raises(AudioInputError, match=r"more than 20\.0 s were decoded although its header says"):
        load_audio(path, limits=AudioLimits(max_seconds=20.0))
    assert load_audio(path, limits=AudioLimits(max_seconds=200.0)).size > 120 * SAMPLING_RATE


def test_an_mp3_whose_header_understates_its_frames_is_decoded_in_full(tmp_path):
    """An MP3 of 30 s whose Xing/Info header says 10 s: libsndfile stops at 10 s, so its frames are counted and
    FFmpeg decodes them all; past a limit it is refused. An honest MP3 stays with libsndfile (block by block)."""
    import struct

    from esc50_hf.model.audio_io import open_audio

    honest, lying = tmp_path / "honest.mp3", tmp_path / "lying.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=30",
         "-ar", "22050", "-ac", "1", "-b:a", "64k", str(honest)],
        check=True,
    )  # fmt: skip
    data = bytearray(honest.read_bytes())
    tag = max(data.find(b"Xing"), data.find(b"Info"))
    assert tag > 0 and struct.unpack(">I", data[tag + 4 : tag + 8])[0] & 1  # the frame count is there
    frames = struct.unpack(">I", data[tag + 8 : tag + 12])[0]
    data[tag + 8 : tag + 12] = struct.pack(">I", frames // 3)
    lying.write_bytes(bytes(data))
    assert sf.info(str(lying)).duration < 10.5  # what libsndfile alone would classify
    assert type(open_audio(honest)).__name__ == "_SoundfileReader"
    assert load_audio(lying).size / SAMPLING_RATE == pytest.approx(30.0, abs=0.1)
    assert load_audio(bytes(data)).size / SAMPLING_RATE == pytest.approx(30.0, abs=0.1)
    with pytest.raises(AudioInputError, match=r"more than 20\.0 s were decoded although its header says"):
        load_audio(lying, limits=AudioLimits(max_seconds=20.0))


def test_a_file_that_breaks_after_its_header_is_an_audio_error(tmp_path, stereo_int16):
    """The header opens, the data stops (an interrupted upload): the user's error, not a decoder traceback."""
    path = tmp_path / "cut.flac"
    sf.write(path, np.tile(stereo_int16, (10, 1)), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + np.random.default_rng(3).bytes(len(data) // 2))
    with pytest.raises(AudioInputError, match="could not be decoded to the end: corrupt or truncated"):
        load_audio(path)
