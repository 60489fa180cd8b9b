"""Calibrated scores and the "none of these" answer: the fitting, the model's config, and every path that reads it."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import pipeline

from esc50_hf import Esc50CnnConfig, Esc50CnnForAudioClassification, audio_pipeline
from esc50_hf.cli import main
from esc50_hf.evaluation.calibration import (
    ATYPICALITY_TAIL,
    UNKNOWN_QUANTILES,
    auroc,
    calibrate_model_folder,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    fit_unknown_threshold,
    negative_log_likelihood,
    probabilities,
    rejection_score,
    unknown_scores,
)
from esc50_hf.inference.classifier import ModelLoadError, SoundClassifier
from esc50_hf.model.prediction import Prediction, unknown_score

from .conftest import synthetic_clip


def _sampled(num_clips: int, true_temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / true_temperature): that temperature calibrates them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(num_clips, 10))
    probs = probabilities(logits, true_temperature)
    references = np.array([rng.choice(10, p=row) for row in probs])
    return logits, references


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with():
    logits, references = _sampled(4000, true_temperature=2.5)
    assert fit_temperature(logits, references) == pytest.approx(2.5, rel=0.08)
    uncalibrated = expected_calibration_error(probabilities(logits), references)
    calibrated = expected_calibration_error(probabilities(logits, 2.5), references)
    assert calibrated < 0.03 < uncalibrated
    assert negative_log_likelihood(logits, references, 2.5) < negative_log_likelihood(logits, references)


def test_expected_calibration_error_is_the_weighted_gap_per_bin():
    # two clips at 0.9 (one right: accuracy 0.5), two at 0.6 (both right): |0.9-0.5|*2/4 + |0.6-1|*2/4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(probs, np.array([0, 1, 0, 0])) == pytest.approx(0.4)


def test_the_unknown_threshold_accepts_the_share_asked_for():
    scores = np.linspace(0.0, 1.0, 201)
    threshold = fit_unknown_threshold(scores, accept=0.95)
    assert (scores >= threshold).mean() >= 0.95
    assert (scores >= np.nextafter(threshold, 2.0)).mean() < 0.95  # the highest such threshold
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.85])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="share"):
        fit_unknown_threshold(scores, accept=1.5)


def test_cross_fitted_figures_are_not_scored_on_what_they_were_fitted_on():
    logits, references = _sampled(600, true_temperature=0.5, seed=1)
    fit = fit_calibration(logits, references, "test clips")
    assert fit.after["ece"] < fit.before["ece"] and fit.after["nll"] < fit.before["nll"]
    # the cross-fitted NLL is a held-out figure: never better than fitting on all clips and scoring them
    assert fit.after["nll"] >= negative_log_likelihood(logits, references, fit.temperature) - 1e-9
    known = rejection_score(logits, fit.temperature)
    assert (known >= fit.unknown_threshold).mean() >= 0.95
    with pytest.raises(ValueError, match="Unknown rejection score"):
        rejection_score(logits, kind="entropy")


@pytest.fixture(scope="module")
def calibrated_dir(saved_model_dir, tmp_path_factory):
    """The random fixture model with a calibration fitted on made-up held-out logits (temperature 0.25: its near-uniform
    scores sharpened), written by the same function training uses."""
    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(saved_model_dir, folder)
    model = Esc50CnnForAudioClassification.from_pretrained(folder)
    logits, references = _sampled(500, true_temperature=0.25, seed=2)
    logits = np.pad(logits, ((0, 0), (0, model.config.num_labels - logits.shape[1])), constant_values=-20.0)
    calibrate_model_folder(folder, model.config, logits, references, "made-up held-out clips")
    return folder


def test_the_calibration_is_in_the_config_and_divides_the_logits(saved_model_dir, calibrated_dir):
    config = json.loads((calibrated_dir / "config.json").read_text())
    assert config["calibration_temperature"] == pytest.approx(0.25, rel=0.15)
    assert 0.0 < config["unknown_threshold"] < 1.0
    assert config["calibration"]["fitted_on"] == "made-up held-out clips" and config["calibration"]["num_clips"] == 500
    assert (calibrated_dir / "reliability.png").is_file()
    raw = Esc50CnnForAudioClassification.from_pretrained(saved_model_dir).eval()
    calibrated = Esc50CnnForAudioClassification.from_pretrained(calibrated_dir).eval()
    inputs = torch.randn(3, 32, 216)
    labels = torch.tensor([0, 1, 2])
    with torch.no_grad():
        before, after = raw(inputs, labels=labels), calibrated(inputs, labels=labels)
    torch.testing.assert_close(after.logits, before.logits / config["calibration_temperature"])
    torch.testing.assert_close(after.loss, before.loss)  # training is the same whatever the calibration


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration-clip") / "clip.wav"
    sf.write(path, synthetic_clip(target=3, seed=3, seconds=5.0), 44100)
    return path


def test_every_path_reports_the_calibrated_scores(saved_model_dir, calibrated_dir, clip_file):
    temperature = json.loads((calibrated_dir / "config.json").read_text())["calibration_temperature"]
    raw = SoundClassifier(saved_model_dir).predict(clip_file, top_k=50)
    calibrated = SoundClassifier(calibrated_dir).predict(clip_file, top_k=50)
    raw_scores = {row.label: row.score for row in raw.labels}
    logits = np.log([raw_scores[row.label] for row in calibrated.labels])  # logits up to a constant
    expected = probabilities(logits[None], temperature)[0]
    np.testing.assert_allclose([row.score for row in calibrated.labels], expected, rtol=1e-4)
    piped = audio_pipeline(str(calibrated_dir))(str(clip_file), top_k=3)
    assert [row["label"] for row in piped] == [row.label for row in calibrated.labels[:3]]
    np.testing.assert_allclose([row["score"] for row in piped], [r.score for r in calibrated.labels[:3]], rtol=1e-4)


def test_the_pipeline_output_is_unchanged_unless_the_unknown_answer_is_asked_for(calibrated_dir, clip_file):
    classifier = pipeline("audio-classification", model=str(calibrated_dir), trust_remote_code=True)
    plain = classifier(str(clip_file))
    assert isinstance(plain, list) and set(plain[0]) == {"label", "score"} and len(plain) == 5
    threshold = json.loads((calibrated_dir / "config.json").read_text())["unknown_threshold"]
    answer = classifier(str(clip_file), unknown_threshold=True)
    assert answer["labels"] == plain and answer["unknown"] == (plain[0]["score"] < threshold)
    assert classifier(str(clip_file), unknown_threshold=1.0)["unknown"] is True
    assert classifier(str(clip_file), unknown_threshold=0.0)["unknown"] is False
    both = classifier(str(clip_file), unknown_threshold=1.0, return_timeline=True)
    assert both["unknown"] is True and both["timeline"] and both["duration_s"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        classifier(str(clip_file), unknown_threshold=2.0)


def test_a_model_without_a_threshold_says_how_to_get_one(saved_model_dir, clip_file, capsys):
    with pytest.raises(ValueError, match="esc50-hf calibrate"):
        audio_pipeline(str(saved_model_dir))(str(clip_file), unknown_threshold=True)
    assert main(["predict", str(clip_file), "--model", str(saved_model_dir), "--unknown"]) == 2
    assert "no fitted unknown threshold" in capsys.readouterr().err


def test_the_cli_says_unknown_with_the_best_guess(calibrated_dir, clip_file, capsys):
    assert main(["predict", str(clip_file), "--model", str(calibrated_dir), "--unknown", "1", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["unknown"] is True and len(row["labels"]) == 5
    assert main(["predict", str(clip_file), "--model", str(calibrated_dir), "--unknown", "1"]) == 0
    assert f"unknown (best guess: {row['labels'][0]['label']})" in capsys.readouterr().out
    assert main(["predict", str(clip_file), "--model", str(calibrated_dir), "--unknown", "0", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown"] is False
    assert main(["predict", str(clip_file), "--model", str(calibrated_dir), "--format", "json"]) == 0
    assert "unknown" not in json.loads(capsys.readouterr().out)  # not asked for: the row as before


def test_the_unknown_score_reads_the_top_score_and_the_atypicality_against_held_out_clips():
    """The share of held-out known clips with a top score at most this one's, times the share at least as atypical
    (ties count half); without quantiles or an atypicality, the top score itself."""
    quantiles = {"top_score": [0.2, 0.4, 0.6, 0.8, 1.0], "atypicality": [-3.0, -2.0, -1.0, 0.0, 1.0]}
    assert unknown_score(0.9, None, quantiles) == 0.9 and unknown_score(0.9, -1.0, None) == 0.9
    assert unknown_score(0.7, -2.5, quantiles) == pytest.approx(0.6 * 0.8)
    assert unknown_score(0.7, 0.5, quantiles) == pytest.approx(0.6 * 0.2)  # as sure, far less typical: lower
    assert unknown_score(0.6, -1.0, quantiles) == pytest.approx(0.5 * 0.5)  # on a quantile: half of it each way
    assert unknown_score(0.1, -3.5, quantiles) == 0.0 == unknown_score(1.0, 1.5, quantiles)  # beyond either tail
    # with an atypicality tail of 40 %, the atypicality counts only among the 40 % most atypical held-out clips
    tail = {**quantiles, "atypicality_tail": 0.4}
    assert unknown_score(0.7, -2.5, tail) == pytest.approx(0.6)  # 80 % at least as atypical: outside the tail
    assert unknown_score(0.7, 0.5, tail) == pytest.approx(0.6 * 0.2 / 0.4)  # inside it: counted, rescaled
    assert unknown_score(1.0, 1.5, tail) == 0.0  # beyond every held-out clip: still none of the known sounds
    with pytest.raises(ValueError, match="atypicality_tail"):
        Esc50CnnConfig(unknown_quantiles={**quantiles, "atypicality_tail": 0.0})


def test_with_the_atypicality_the_calibration_fits_quantiles_and_a_threshold_on_the_unknown_score():
    logits, references = _sampled(400, 0.5)
    atypicality = np.random.default_rng(1).normal(-2.0, 0.5, 400)
    calibration = fit_calibration(logits, references, "made-up held-out clips", atypicality=atypicality)
    quantiles = calibration.unknown_quantiles
    assert len(quantiles["top_score"]) == len(quantiles["atypicality"]) == UNKNOWN_QUANTILES
    assert quantiles["atypicality"][0] == pytest.approx(atypicality.min(), abs=1e-5)
    known = unknown_scores(logits, calibration.temperature, atypicality, quantiles)
    assert 0.95 <= (known >= calibration.unknown_threshold).mean() < 0.96
    assert "unknown_quantiles" not in calibration.to_dict()  # the config holds them once
    assert calibration.to_dict()["unknown_score"] == f"top score x atypicality (in its {ATYPICALITY_TAIL:.0%} tail)"
    assert quantiles["atypicality_tail"] == ATYPICALITY_TAIL
    without = fit_calibration(logits, references, "made-up held-out clips")
    assert without.unknown_quantiles is None and without.temperature == calibration.temperature


def test_every_path_reads_the_atypicality_for_the_unknown_answer(
    calibrated_dir, clip_file, tmp_path, monkeypatch, capsys
):
    """A model with `unknown_quantiles`: the pipeline, `SoundClassifier` (PyTorch and ONNX) and the CLI say unknown
    when the clip is more atypical than every held-out clip, and known when it is less, at the same top score; an
    ONNX file exported without the atypicality is refused with what to do."""
    from esc50_hf.inference.onnx_export import export_onnx

    folder = tmp_path / "model"
    shutil.copytree(calibrated_dir, folder)
    clip_atypicality = _clip_atypicality(folder, clip_file)
    config = json.loads((folder / "config.json").read_text())
    answers = {}
    for case, offsets in (("beyond", (-2.0, -1.0)), ("within", (1.0, 2.0))):
        config["unknown_quantiles"] = {
            "top_score": [0.0, 1.0],  # every top score is halfway: the atypicality decides
            "atypicality": [clip_atypicality + offset for offset in offsets],
        }
        config["unknown_threshold"] = 0.1
        (folder / "config.json").write_text(json.dumps(config))
        export_onnx(folder)
        piped = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
        assert main(["predict", str(clip_file), "--model", str(folder), "--unknown", "--format", "json"]) == 0
        answers[case] = {
            "pipeline": piped(str(clip_file), unknown_threshold=True)["unknown"],
            "torch": SoundClassifier(folder).predict(clip_file).with_unknown(0.1).unknown,
            "onnx": SoundClassifier(folder, backend="onnx").predict(clip_file).with_unknown(0.1).unknown,
            "cli": json.loads(capsys.readouterr().out)["unknown"],
        }
    assert answers["beyond"] == dict.fromkeys(answers["beyond"], True), answers
    assert answers["within"] == dict.fromkeys(answers["within"], False), answers
    monkeypatch.setattr("esc50_hf.inference.onnx_backend.ATYPICALITY_NAME", "not-an-output")
    with pytest.raises(ModelLoadError, match="export-onnx"):
        SoundClassifier(folder, backend="onnx")


def test_every_path_pools_the_same_unknown_score_over_windows(calibrated_dir, clip_file, tmp_path):
    """A 12-s input of mixed loudness (a clip, 2 s of silence, the clip at -20 dB: four windows) and dense tables, so
    that the score moves with the calibrated top score and the atypicality: `SoundClassifier` gives the windows'
    power-weighted pooling (computed here from its backend, window by window), the ONNX backend the same score, and
    the pipeline decides on either side of it as that score says."""
    from esc50_hf.inference.onnx_export import export_onnx
    from esc50_hf.model.audio_io import load_audio
    from esc50_hf.model.windows import WINDOW_POWER_FLOOR, window_power, window_starts

    folder = tmp_path / "model"
    shutil.copytree(calibrated_dir, folder)
    classifier = SoundClassifier(folder)
    rate, clip = classifier.sampling_rate, classifier.clip_samples
    once = load_audio(clip_file, rate)
    waveform = np.concatenate([once, np.zeros(2 * rate, np.float32), 0.1 * once])
    long_file = tmp_path / "long.wav"
    sf.write(long_file, waveform, rate, subtype="FLOAT")
    centre, top = _clip_atypicality(folder, clip_file), classifier.predict(long_file).labels[0].score
    quantiles = {  # both around the input's values: a shift of either moves the score
        "top_score": np.linspace(0.0, 2 * top, 201).round(6).tolist(),
        "atypicality": np.linspace(centre - 3.0, centre + 3.0, 201).round(5).tolist(),
    }
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "unknown_quantiles": quantiles}))
    export_onnx(folder)

    classifier = SoundClassifier(folder)
    prediction = classifier.predict(long_file)
    starts = window_starts(len(waveform), clip, classifier.hop_samples)
    assert len(starts) == 4
    pieces = [waveform[start : start + clip] for start in starts]
    features = classifier.extractor(pieces, sampling_rate=rate)["input_values"]
    _, atypicality = classifier.backend.with_atypicality(features)
    weights = np.array([window_power(piece) + WINDOW_POWER_FLOOR for piece in pieces])
    pooled = float(np.sum(weights * atypicality) / weights.sum())
    expected = unknown_score(prediction.labels[0].score, pooled, quantiles)
    assert 0.1 < expected < 0.9  # inside both tables: neither factor is pinned at 0 or 1
    assert prediction.unknown_score == pytest.approx(expected, abs=1e-9)
    onnx = SoundClassifier(folder, backend="onnx").predict(long_file)
    assert onnx.unknown_score == pytest.approx(expected, abs=0.01)
    piped = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    assert piped(str(long_file), unknown_threshold=expected + 0.02)["unknown"] is True
    assert piped(str(long_file), unknown_threshold=expected - 0.02)["unknown"] is False


def test_a_backend_without_the_atypicality_is_refused_when_the_unknown_score_needs_it(calibrated_dir, clip_file):
    """A plain `LogitsBackend` (logits only) under a model with quantiles would leave the top score to be read
    against a threshold fitted on the product's scale: refused, with what to do."""
    classifier = SoundClassifier(calibrated_dir)
    classifier.unknown_quantiles = {"top_score": [0.0, 1.0], "atypicality": [0.0, 1.0]}
    classifier.backend = classifier.backend.__call__  # logits only
    with pytest.raises(TypeError, match="with_atypicality"):
        classifier.predict(clip_file)
    classifier.unknown_quantiles = None  # a model without them reads the top score: logits suffice
    assert classifier.predict(clip_file).unknown_score == classifier.predict(clip_file).labels[0].score


def _clip_atypicality(folder, clip_file) -> float:
    """The atypicality of `clip_file` as `SoundClassifier` computes it (decoded, resampled, one window)."""
    from esc50_hf.model.audio_io import load_audio

    classifier = SoundClassifier(folder)
    waveform = load_audio(clip_file, classifier.sampling_rate)
    features = classifier.extractor([waveform], sampling_rate=classifier.sampling_rate)["input_values"]
    return float(classifier.backend.with_atypicality(features)[1][0])


def test_events_take_one_threshold_per_label():
    windows = Prediction.from_row(
        {
            "labels": [{"label": "dog", "score": 0.6}],
            "duration_s": 10.0,
            "windows": [
                {"start_s": 0.0, "end_s": 5.0, "label": "dog", "score": 0.4},
                {"start_s": 2.5, "end_s": 7.5, "label": "rain", "score": 0.4},
                {"start_s": 5.0, "end_s": 10.0, "label": "rain", "score": 0.7},
            ],
        }
    )
    events = windows.with_events({"dog": 0.3, "rain": 0.5}).events
    assert [(event.label, event.start_s, event.end_s) for event in events] == [("dog", 0.0, 3.75), ("rain", 6.25, 10.0)]
    assert [event.label for event in windows.with_events(0.5).events] == ["rain"]
