"""The prediction schema (`esc50_hf.model.prediction`): rows of JSON types keyed by the fields, scores rounded in
`to_row`, the round trip through JSON, the names from before the schema, events, and `WindowPool`'s label names."""

import json

import numpy as np
import pytest

from esc50_hf import ESC50_LABELS
from esc50_hf.model.prediction import (
    SCORE_DIGITS,
    Event,
    LabelScore,
    Prediction,
    WindowPrediction,
    events_from_windows,
)
from esc50_hf.model.windows import WindowPool


def _prediction() -> Prediction:
    """Scores as the classifier's arrays hold them (numpy floats, float32 included), with more digits than a row."""
    windows = [
        WindowPrediction(0.0, 5.0, "rain", np.float64(0.912345678)),
        WindowPrediction(2.5, 7.5, "rain", np.float32(0.7)),
        WindowPrediction(5.0, 10.0, "dog", 0.8),
        WindowPrediction(7.5, 12.5, "dog", 0.2),
        WindowPrediction(10.0, 12.5, "dog", 0.6),
    ]
    labels = [LabelScore("rain", np.float64(0.6123456789)), LabelScore("dog", np.float32(0.25))]
    return Prediction(labels, windows, 12.5)


def test_rows_are_json_with_the_field_names_as_keys():
    prediction = _prediction().with_events(min_score=0.5).with_unknown(0.7)
    row = prediction.to_row()
    assert list(row) == list(Prediction.row_keys()) == ["labels", "windows", "duration_s", "events", "unknown"]
    assert row["unknown"] is True  # top score 0.61 < 0.7
    assert [list(item) for item in row["labels"]] == [list(LabelScore.row_keys())] * 2 == [["label", "score"]] * 2
    assert list(WindowPrediction.row_keys()) == ["start_s", "end_s", "label", "score", "labels"]
    assert list(row["windows"][0]) == ["start_s", "end_s", "label", "score"]  # `labels` only when asked for
    assert list(row["events"][0]) == list(Event.row_keys()) == ["start_s", "end_s", "label", "mean_score"]
    assert json.loads(json.dumps(row)) == row  # float32 scores included: plain floats
    assert row["labels"][0]["score"] == round(0.6123456789, SCORE_DIGITS) == 0.612346
    assert row["windows"][0]["score"] == 0.912346 and row["events"][0]["mean_score"] == 0.806173
    assert prediction.to_row(digits=2)["labels"][0]["score"] == 0.61
    assert prediction.to_row(digits=None)["labels"][0]["score"] == 0.6123456789  # exact: the pipeline's scores
    assert "events" not in _prediction().to_row() and "unknown" not in _prediction().to_row()  # only when asked for
    assert list(prediction.to_row(windows=False)) == ["labels", "duration_s", "events", "unknown"]


def test_a_row_read_back_is_the_prediction():
    for prediction in (_prediction(), _prediction().with_events(0.5)):
        exact = prediction.to_row(digits=None)
        assert Prediction.from_row(json.loads(json.dumps(exact))) == prediction
        assert Prediction.from_row(prediction.to_row()).to_row() == prediction.to_row()
    record = {"input": "a.wav", **_prediction().to_row(windows=False), "error": None}  # a line of the CLI
    assert Prediction.from_row(record) == Prediction([LabelScore("rain", 0.612346), LabelScore("dog", 0.25)], [], 12.5)


def test_events_merge_agreeing_windows():
    prediction = _prediction().with_events(min_score=0.5)
    # window centres 2.5, 5, 7.5, 10, 11.25: each window stands for the time nearest its centre
    assert prediction.events == [
        Event(0.0, 6.25, "rain", pytest.approx((0.912345678 + 0.7) / 2)),
        Event(6.25, 8.75, "dog", 0.8),
        Event(10.625, 12.5, "dog", 0.6),
    ]
    assert events_from_windows(prediction.windows, 0.5) == [event.to_row(digits=None) for event in prediction.events]
    assert _prediction().with_events().events[-1] == Event(6.25, 12.5, "dog", pytest.approx(0.5333333))


def test_names_from_before_the_schema_still_read():
    prediction = _prediction()
    window = prediction.windows[1]
    assert (window.start, window.end, prediction.duration, prediction.label) == (2.5, 7.5, 12.5, "rain")
    old = prediction.with_events().to_dict()
    assert list(old) == ["labels", "windows", "duration"] and old["duration"] == 12.5
    assert old["windows"][1] == {"start": 2.5, "end": 7.5, "label": "rain", "score": float(np.float32(0.7))}
    assert prediction.confidences() == {"rain": 0.6123456789, "dog": 0.25}


def test_window_pool_names_columns_with_the_labels_it_is_given():
    probabilities = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    pool = WindowPool(sampling_rate=10, clip_samples=10, labels=("a", "b", "c"))
    pool.add([(0, 10), (5, 5)], probabilities, [0.01, 0.01])  # the second is half real samples: half the weight
    prediction = pool.prediction(top_k=5)
    mean = (probabilities[0] + 0.5 * probabilities[1]) / 1.5
    assert [item.label for item in prediction.labels] == ["b", "a", "c"]
    assert [item.score for item in prediction.labels] == pytest.approx(mean[[1, 0, 2]])
    assert prediction.windows == [WindowPrediction(0.0, 1.0, "b", 0.7), WindowPrediction(0.5, 1.0, "a", 0.6)]
    assert prediction.duration_s == 1.0
    with pytest.raises(ValueError, match="returned 50 scores per window but its config names 3 labels"):
        pool.add([(0, 10)], np.eye(len(ESC50_LABELS))[[3]], [0.01])  # never a silent answer in the wrong label set


def test_the_loudest_windows_carry_a_long_inputs_answer():
    """A dog bark inside 15 s of quiet ambience: the ambience's three windows lose to the bark's one (fold 4's
    placement sets, bench/robust_recipe_choice.md), and an all-silent input is a plain mean."""
    probabilities = np.array([[0.1, 0.9], [0.1, 0.9], [0.8, 0.2], [0.1, 0.9]])
    pool = WindowPool(sampling_rate=10, clip_samples=10, labels=("dog", "rain"))
    pool.add([(0, 10), (5, 10), (10, 10), (15, 10)], probabilities, [1e-4, 1e-4, 1e-1, 1e-4])
    assert pool.prediction(top_k=1).label == "dog"
    silent = WindowPool(sampling_rate=10, clip_samples=10, labels=("dog", "rain"))
    silent.add([(0, 10), (5, 10), (10, 10), (15, 10)], probabilities, [0.0] * 4)
    assert silent.prediction(top_k=2).labels[0].score == pytest.approx(probabilities[:, 1].mean())
