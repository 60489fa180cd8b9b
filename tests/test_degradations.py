"""Real recording conditions: the degradation functions (data/degradations.py), the training transforms built on
them, the recipe's background pool (training folds only) and the corruption benchmark (bench/robustness.py)."""

import json
import shutil

import numpy as np
import pytest

from esc50_hf.data import degradations as deg
from esc50_hf.data.augmentation import (
    BackgroundNoise,
    CodecRoundTrip,
    LevelAndClipping,
    Reverberation,
    WaveformAugmentations,
)
from esc50_hf.training.arguments import AugmentationArguments

RATE = 22050


def _clip(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * RATE)) / RATE
    bursts = 0.3 * np.sin(2 * np.pi * 440 * time) * (time % 0.5 < 0.2) + 0.2 * np.sin(2 * np.pi * 1500 * time)
    return (bursts + 0.01 * rng.standard_normal(time.size)).astype(np.float32)


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 20 * np.log10(deg.rms(clean) / deg.rms(noisy - clean))


@pytest.mark.parametrize("snr", [20.0, 0.0, -5.0])
def test_noise_is_mixed_at_the_asked_snr(snr):
    clip, rng = _clip(), np.random.default_rng(1)
    for exponent in (0.0, 1.0, 2.0):
        noisy = deg.mix_at_snr(clip, deg.coloured_noise(clip.size // 3, exponent, rng), snr)  # looped to length
        assert noisy.shape == clip.shape and noisy.dtype == np.float32
        assert _snr(clip, noisy) == pytest.approx(snr, abs=0.01)


def test_pink_noise_falls_3_db_per_octave():
    noise = deg.coloured_noise(2**18, 1.0, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(noise)) ** 2
    octave = lambda low: power[low : 2 * low].sum()  # noqa: E731
    assert 10 * np.log10(octave(1000) / octave(2000)) == pytest.approx(0.0, abs=0.5)  # equal power per octave
    assert deg.rms(noise) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("codec,bit_rate", [("mp3", 32000), ("aac", 32000), ("opus", 12000), ("gsm", 13000)])
def test_a_codec_round_trip_is_aligned_lossy_and_of_the_same_length(codec, bit_rate):
    clip = _clip()
    decoded = deg.codec_round_trip(clip, RATE, codec, bit_rate)
    assert decoded.shape == clip.shape and decoded.dtype == np.float32
    assert np.corrcoef(clip, decoded)[0, 1] > 0.8  # aligned: a shift of even one 1500-Hz period would ruin this
    assert not np.allclose(clip, decoded, atol=1e-3)  # and it did lose something


def test_unknown_codec_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown codec 'amr'.*mp3, aac, opus, gsm"):
        deg.codec_round_trip(_clip(), RATE, "amr", 12200)


def test_telephone_band_removes_lows_and_highs():
    time = np.arange(RATE) / RATE
    low, mid, high = (np.sin(2 * np.pi * f * time).astype(np.float32) for f in (100.0, 1000.0, 6000.0))
    assert deg.rms(deg.telephone_band(low, RATE)) < 0.1 * deg.rms(low)
    assert deg.rms(deg.telephone_band(mid, RATE)) > 0.8 * deg.rms(mid)
    assert deg.rms(deg.telephone_band(high, RATE)) < 0.01 * deg.rms(high)


def test_longer_rooms_ring_longer():
    click = np.zeros(RATE * 3, np.float32)
    click[0] = 1.0
    tails = []
    for rt60 in (0.3, 1.5):
        wet = deg.reverberate(click, deg.room_impulse_response(rt60, RATE, np.random.default_rng(0)))
        tails.append(deg.rms(wet[int(0.5 * RATE) :]) / deg.rms(wet))
    assert tails[1] > 10 * tails[0]
    with pytest.raises(ValueError, match="rt60"):
        deg.room_impulse_response(9.0, RATE, np.random.default_rng(0))


def test_levels_clip_at_full_scale_and_placement_keeps_the_clip_where_asked():
    clip = _clip()
    assert np.abs(deg.change_level(clip, 20.0)).max() == pytest.approx(1.0)
    assert deg.rms(deg.change_level(clip, -20.0)) == pytest.approx(0.1 * deg.rms(clip), rel=1e-4)
    placed = deg.place_in_ambience(clip, _clip(1.0, seed=3), RATE * 10, RATE * 4, snr_db=30.0)
    assert placed.size == RATE * 10
    inside = placed[RATE * 4 : RATE * 4 + clip.size]
    assert np.corrcoef(inside, clip)[0, 1] > 0.99 and deg.rms(placed[: RATE * 4]) < 0.05 * deg.rms(clip)
    with pytest.raises(ValueError, match="does not fit"):
        deg.place_in_ambience(clip, clip, RATE * 3, RATE * 2, 10.0)


def test_transforms_validate_their_parameters_and_name_the_flag():
    with pytest.raises(ValueError, match="max_rt60 must be in"):
        Reverberation(max_rt60=0.1)
    with pytest.raises(ValueError, match="codecs must be one or more of mp3, aac, opus, gsm"):
        CodecRoundTrip(codecs=("mp3", "wma"))
    with pytest.raises(ValueError, match="--level_max_db: LevelAndClipping max_gain_db"):
        AugmentationArguments(level_p=0.5, level_max_db=-40.0)
    with pytest.raises(ValueError, match="no background clips"):
        BackgroundNoise(p=1.0)(_clip(), RATE)


def test_recording_transforms_at_p_0_leave_the_shipped_chain_and_its_cache_key_alone():
    shipped = AugmentationArguments().waveform()
    assert [t["transform"] for t in shipped.parameters()] == [
        "GaussianNoise", "PitchShift", "TimeStretch", "TimeShift", "Gain"
    ]  # fmt: skip
    robust = AugmentationArguments(reverberation_p=0.5, background_noise_p=0.5, codec_p=0.3).waveform()
    names = [t["transform"] for t in robust.parameters()]
    assert names[-3:] == ["Reverberation", "BackgroundNoise", "CodecRoundTrip"] and robust.parameters() != shipped


def test_the_chain_is_deterministic_per_seed_and_changes_the_clip():
    chain = WaveformAugmentations(
        Reverberation(p=1.0), BackgroundNoise(p=1.0).with_backgrounds([_clip(seed=9)], ["1-9-A-0.wav"]),
        LevelAndClipping(p=1.0), CodecRoundTrip(p=1.0, codecs=("gsm",)),
    )  # fmt: skip
    outputs = []
    for seed in (5, 5, 6):
        np.random.seed(seed)
        outputs.append(chain(_clip(), RATE))
    assert np.array_equal(outputs[0], outputs[1]) and not np.allclose(outputs[0], outputs[2])
    assert outputs[0].shape == _clip().shape and not np.allclose(outputs[0], _clip(), atol=1e-2)
    assert chain.parameters()[1]["background_clips"] == ["1-9-A-0.wav"]


def test_the_recipe_mixes_backgrounds_from_its_training_folds_only(esc50_dir):
    from esc50_hf.training.arguments import parse_args
    from esc50_hf.training.fold_features import _augmenter, run_data

    setup = parse_args(
        ["--data_dir", str(esc50_dir), "--train_folds", "1", "2", "--validation_fold", "3", "--background_noise_p",
         "0.5", "--output_dir", "unused"]
    )  # fmt: skip
    clips = run_data(setup, RATE)
    names = _augmenter(setup, clips).background_noise().background_clips
    assert len(names) == 2 * len(deg.AMBIENT_CLASSES)  # one fixture clip per class and fold
    assert {name.split("-")[0] for name in names} == {"1", "2"}
    assert {int(name.split("-")[-1].removesuffix(".wav")) for name in names} == {
        clips.labels.index(name) for name in deg.AMBIENT_CLASSES
    }


@pytest.mark.slow
def test_the_benchmark_scores_every_corruption_and_merges_models(esc50_dir, saved_model_dir, tmp_path, monkeypatch):
    from bench import robustness

    real_load = robustness.load_fold

    def fewer(data_dir, fold, rate):  # 12 clips of fold 5, four of them ambient: enough to run every corruption
        waveforms, labels, ambient = real_load(data_dir, fold, rate)
        keep = list(range(8)) + ambient.indices[:4]
        kept = robustness.Ambient([waveforms[i] for i in ambient.indices[:4]], list(range(8, 12)))
        return [waveforms[i] for i in keep], [labels[i] for i in keep], kept

    monkeypatch.setattr(robustness, "load_fold", fewer)
    common = ["--data-dir", str(esc50_dir), "--output-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]
    robustness.main(["--model", f"before={saved_model_dir}", *common])
    robustness.main(["--model", f"after={saved_model_dir},{saved_model_dir}", *common])  # cache reused
    report = json.loads((tmp_path / "robustness.json").read_text())
    assert list(report["models"]) == ["before", "after"] and report["clips"] == 12
    assert len(report["corruptions"]) == 11
    for corruption in report["corruptions"]:
        assert len(corruption["severities"]) == 3
        before = report["models"]["before"]["results"][corruption["name"]]
        after = report["models"]["after"]["results"][corruption["name"]]
        assert all(len(after[s]) == 2 and after[s][0] == after[s][1] == before[s][0] for s in corruption["severities"])
    markdown = (tmp_path / "ROBUSTNESS.md").read_text()
    assert "| placement | 10 dB SNR of 20 s of ambience |" in markdown and "mean corrupted" in markdown
    assert (tmp_path / "robustness.png").stat().st_size > 10_000
    assert len(list((tmp_path / "cache" / "fold5").glob("*.npy"))) == 30  # placement is rebuilt, not cached

    # a third training of "after", scored in another session into another report that takes the first one's models
    shutil.copytree(saved_model_dir, tmp_path / "third")
    later = [*common[:2], "--output-dir", str(tmp_path / "later"), *common[4:], "--add-trainings"]
    robustness.main(
        ["--model", f"after={tmp_path / 'third'}", "--merge-from", str(tmp_path / "robustness.json"), *later]
    )
    report = json.loads((tmp_path / "later" / "robustness.json").read_text())
    assert list(report["models"]) == ["before", "after"] and len(report["models"]["after"]["paths"]) == 3
    assert all(
        len(scores) == 3 for family in report["models"]["after"]["results"].values() for scores in family.values()
    )
    with pytest.raises(SystemExit, match="already holds"):
        robustness.main(["--model", f"after={tmp_path / 'third'}", *later])
