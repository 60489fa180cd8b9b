"""The log-mel feature extractor: agreement with librosa, clip length, batching, config, errors."""

import json

import librosa
import numpy as np
import pytest
import torch

from esc50_hf import SAMPLING_RATE, Esc50FeatureExtractor

from .conftest import synthetic_clip


@pytest.fixture(scope="module")
def extractor():
    return Esc50FeatureExtractor(num_mel_bins=64, f_min=20.0, f_max=10000.0)


def test_log_mel_matches_librosa(extractor):
    """Same STFT, Slaney filter bank and dB scale as librosa, within 0.01 dB where there is signal."""
    clip = synthetic_clip(target=17, seed=1, rate=SAMPLING_RATE, seconds=5.0)
    ours = extractor.log_mel(torch.from_numpy(clip)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(
        y=clip.astype(np.float64), sr=SAMPLING_RATE, n_fft=1024, hop_length=512, n_mels=64,
        fmin=20.0, fmax=10000.0, power=2.0, center=True, pad_mode="constant", htk=False, norm="slaney",
    )  # fmt: skip
    reference = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == reference.shape == (64, 216)
    audible = reference > reference.max() - 80
    assert np.abs(ours - reference)[audible].max() < 0.01
    assert np.abs(ours - reference).max() < 0.5


def test_output_is_normalised_with_saved_statistics():
    clip = synthetic_clip(target=3, seed=2, rate=SAMPLING_RATE, seconds=5.0)
    plain = Esc50FeatureExtractor()(clip, sampling_rate=SAMPLING_RATE)["input_values"]
    scaled = Esc50FeatureExtractor(mean=-30.0, std=15.0)(clip, sampling_rate=SAMPLING_RATE)["input_values"]
    np.testing.assert_allclose(scaled, (plain + 30.0) / 15.0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seconds", [0.1, 1.0, 5.0, 7.3])
def test_every_clip_becomes_five_seconds(extractor, seconds):
    clip = synthetic_clip(target=5, seed=3, rate=SAMPLING_RATE, seconds=seconds)
    features = extractor(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_values"]
    assert features.shape == (1, 64, extractor.num_frames) == (1, 64, 216)
    assert features.dtype == torch.float32


def test_long_clips_are_cut_and_short_ones_zero_padded(extractor):
    clip = synthetic_clip(target=5, seed=4, rate=SAMPLING_RATE, seconds=7.0)
    long_features = extractor(clip, sampling_rate=SAMPLING_RATE)["input_values"]
    cut_features = extractor(clip[: 5 * SAMPLING_RATE], sampling_rate=SAMPLING_RATE)["input_values"]
    np.testing.assert_array_equal(long_features, cut_features)
    short = clip[:SAMPLING_RATE]
    padded = np.concatenate([short, np.zeros(4 * SAMPLING_RATE, dtype=np.float32)])
    np.testing.assert_array_equal(
        extractor(short, sampling_rate=SAMPLING_RATE)["input_values"],
        extractor(padded, sampling_rate=SAMPLING_RATE)["input_values"],
    )


def test_batch_equals_single_clips(extractor):
    clips = [synthetic_clip(target, seed=target, rate=SAMPLING_RATE, seconds=2.0 + target) for target in range(3)]
    batch = extractor(clips, sampling_rate=SAMPLING_RATE)["input_values"]
    singles = np.concatenate([extractor(clip, sampling_rate=SAMPLING_RATE)["input_values"] for clip in clips])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    as_2d = extractor(np.stack([clip[: 2 * SAMPLING_RATE] for clip in clips]), sampling_rate=SAMPLING_RATE)
    assert as_2d["input_values"].shape[0] == 3


def test_save_and_load_round_trip(tmp_path):
    extractor = Esc50FeatureExtractor(
        num_mel_bins=40, n_fft=2048, hop_length=256, f_min=50.0, f_max=8000.0, mean=-42.5, std=17.25
    )
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    for key, value in dict(sampling_rate=22050, n_fft=2048, hop_length=256, num_mel_bins=40, f_min=50.0, f_max=8000.0,
                           clip_seconds=5.0, mean=-42.5, std=17.25).items():  # fmt: skip
        assert saved[key] == value, key
    assert "_mel_filters" not in saved
    loaded = Esc50FeatureExtractor.from_pretrained(tmp_path)
    clip = synthetic_clip(target=9, seed=5, rate=SAMPLING_RATE, seconds=5.0)
    np.testing.assert_array_equal(
        loaded(clip, sampling_rate=SAMPLING_RATE)["input_values"],
        extractor(clip, sampling_rate=SAMPLING_RATE)["input_values"],
    )


def test_folders_saved_with_the_old_n_mels_key_still_load(tmp_path):
    """Before `num_mel_bins`, preprocessor_config.json stored the mel bands as `n_mels`."""
    Esc50FeatureExtractor(num_mel_bins=40).save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    saved = json.loads(path.read_text())
    saved["n_mels"] = saved.pop("num_mel_bins")
    path.write_text(json.dumps(saved))
    loaded = Esc50FeatureExtractor.from_pretrained(tmp_path)
    assert loaded.num_mel_bins == loaded.feature_size == 40 and not hasattr(loaded, "n_mels")
    assert loaded.mel_filters().shape == (1024 // 2 + 1, 40)


def test_sampling_rate_mismatch_is_a_clear_error(extractor):
    with pytest.raises(ValueError, match="22050 Hz.*44100 Hz"):
        extractor(np.zeros(44100, dtype=np.float32), sampling_rate=44100)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN or infinite"),
        (np.array([0.0, np.inf, 0.1], dtype=np.float32), "NaN or infinite"),
        ([np.zeros((2, 1000), dtype=np.float32)], "mono"),
        ([], "empty"),
    ],
)
def test_bad_input_is_a_clear_error(extractor, audio, message):
    with pytest.raises(ValueError, match=message):
        extractor(audio, sampling_rate=SAMPLING_RATE)


def test_non_positive_std_is_refused():
    with pytest.raises(ValueError, match="std"):
        Esc50FeatureExtractor(std=0.0)
