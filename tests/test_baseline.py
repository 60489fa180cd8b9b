"""The scikit-learn baseline end to end on the synthetic ESC-50 fixture, through the CLI."""

import json

import numpy as np
import pytest

from esc50_hf.cli import main
from esc50_hf.evaluation.baseline import FEATURE_NAMES, clip_features
from esc50_hf.model.labels import NUM_LABELS, SAMPLING_RATE

from .conftest import synthetic_clip


def test_clip_features_are_finite_means_and_stds():
    features = clip_features(synthetic_clip(7, seed=0, rate=SAMPLING_RATE))
    assert features.shape == (len(FEATURE_NAMES),) == (70,)
    assert np.isfinite(features).all()
    stds = features[1::2]
    assert (stds >= 0).all()
    assert np.isfinite(clip_features(np.zeros(SAMPLING_RATE, dtype=np.float32))).all()  # digital silence


@pytest.mark.slow
def test_baseline_runs_end_to_end_and_beats_chance(esc50_dir, tmp_path, capsys):
    output = tmp_path / "baseline.json"
    # In-process extraction (--workers 0): worker start-up would dominate on 250 one-second clips.
    argv = ["baseline", "--data-dir", str(esc50_dir), "--fold", "5", "--output", str(output), "--workers", "0"]
    assert main(argv) == 0
    scores = json.loads(output.read_text())
    assert scores["num_clips"] == NUM_LABELS and scores["num_train_clips"] == 4 * NUM_LABELS
    assert 0.0 <= scores["f1"] <= 1.0 and 0.0 <= scores["accuracy"] <= 1.0
    # One pure tone per class, one clip per class and fold: far above chance (1/50) if the features work.
    assert scores["accuracy"] >= 0.9  # it scores 1.0
    assert "macro-F1" in capsys.readouterr().out
