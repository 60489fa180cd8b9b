"""`SoundClassifier`: short clips, long clips cut into windows, the timeline, and agreement with the model."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from esc50_hf import ESC50_LABELS, SAMPLING_RATE
from esc50_hf.inference.classifier import SoundClassifier, iter_windows, window_starts
from esc50_hf.model.audio_io import AudioInputError

from .conftest import synthetic_clip


@pytest.fixture(scope="module")
def classifier(saved_model_dir) -> SoundClassifier:
    return SoundClassifier(saved_model_dir, "torch")


def _model_probabilities(folder, waveforms: list[np.ndarray]) -> np.ndarray:
    """The model on 5-s clips, without `SoundClassifier`."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    with torch.inference_mode():
        logits = model(**extractor(waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits
    return torch.softmax(logits.double(), -1).numpy()


def test_window_starts():
    assert window_starts(100, clip_samples=50, hop_samples=25) == [0, 25, 50]
    assert window_starts(50, clip_samples=50, hop_samples=25) == [0]
    assert window_starts(10, clip_samples=50, hop_samples=25) == [0]
    assert window_starts(51, clip_samples=50, hop_samples=25) == [0, 1]  # the last window ends at the end
    assert window_starts(120, clip_samples=50, hop_samples=25) == [0, 25, 50, 70]


@pytest.mark.parametrize("num_samples", [1, 49, 50, 51, 99, 100, 101, 333])
@pytest.mark.parametrize("block", [1, 7, 50, 1000])
def test_windows_of_a_stream_are_the_windows_of_the_whole(num_samples, block):
    signal = np.arange(num_samples, dtype=np.float32)
    blocks = [signal[first : first + block] for first in range(0, num_samples, block)]
    windows = list(iter_windows(blocks, clip_samples=50, hop_samples=25))
    assert [start for start, _ in windows] == window_starts(num_samples, 50, 25)
    for start, samples in windows:
        np.testing.assert_array_equal(samples, signal[start : start + 50])


def test_a_few_extra_samples_do_not_add_a_window_of_padding(classifier):
    """5 s plus an encoder's 342 samples: two real windows, not a real one and an almost silent one."""
    clip = synthetic_clip(target=33, seed=8, rate=SAMPLING_RATE, seconds=5.0)
    longer = np.concatenate([clip, clip[:342]])
    base, extended = classifier.predict((SAMPLING_RATE, clip)), classifier.predict((SAMPLING_RATE, longer))
    assert [(w.start, w.end) for w in extended.windows] == [(0.0, 5.0), (0.016, 5.016)]
    assert extended.label == base.label
    assert extended.labels[0].score == pytest.approx(base.labels[0].score, abs=0.02)


def test_short_clip_is_one_padded_window(classifier, saved_model_dir):
    clip = synthetic_clip(target=7, seed=1, rate=SAMPLING_RATE, seconds=1.2)
    prediction = classifier.predict((SAMPLING_RATE, clip), top_k=5)
    assert prediction.duration == pytest.approx(1.2)
    assert [(window.start, window.end) for window in prediction.windows] == [(0.0, 1.2)]
    expected = _model_probabilities(saved_model_dir, [clip])[0]
    top = np.argsort(-expected)[:5]
    assert [item.label for item in prediction.labels] == [ESC50_LABELS[index] for index in top]
    assert [item.score for item in prediction.labels] == pytest.approx(expected[top], abs=1e-5)


def test_twelve_second_clip_gives_a_timeline(classifier, saved_model_dir):
    clip = synthetic_clip(target=20, seed=2, rate=SAMPLING_RATE, seconds=12.0)
    prediction = classifier.predict({"array": clip, "sampling_rate": SAMPLING_RATE}, top_k=3)
    assert prediction.duration == pytest.approx(12.0)
    spans = [(window.start, window.end) for window in prediction.windows]
    assert spans == [(0.0, 5.0), (2.5, 7.5), (5.0, 10.0), (7.0, 12.0)]  # hop 2.5 s, the last one ends at the end
    clip_samples = 5 * SAMPLING_RATE
    pieces = [clip[int(start * SAMPLING_RATE) :][:clip_samples] for start, _ in spans]
    per_window = _model_probabilities(saved_model_dir, pieces)
    for window, row in zip(prediction.windows, per_window):
        assert window.label == ESC50_LABELS[int(row.argmax())]
        assert window.score == pytest.approx(row.max(), abs=1e-5)
    mean = per_window.mean(axis=0)  # clip level: the mean of the windows' probabilities (all full: equal weights)
    assert [item.label for item in prediction.labels] == [ESC50_LABELS[i] for i in np.argsort(-mean)[:3]]
    assert prediction.labels[0].score == pytest.approx(mean.max(), abs=1e-5)


def test_result_serialises(classifier):
    prediction = classifier.predict((44100, synthetic_clip(target=3, seed=3, seconds=6.0)), top_k=50)
    as_dict = prediction.to_dict()
    assert len(as_dict["labels"]) == 50 and sum(item["score"] for item in as_dict["labels"]) == pytest.approx(1.0)
    assert as_dict["windows"][-1]["end"] == pytest.approx(6.0)
    assert list(prediction.confidences()) == [item.label for item in prediction.labels]


def test_batches_of_windows_match_one_batch(saved_model_dir, classifier):
    clip = synthetic_clip(target=40, seed=4, rate=SAMPLING_RATE, seconds=20.0)
    small_batches = SoundClassifier(saved_model_dir, "torch", batch_size=2)
    a, b = classifier.predict((SAMPLING_RATE, clip)), small_batches.predict((SAMPLING_RATE, clip))
    assert [w.label for w in a.windows] == [w.label for w in b.windows]
    assert [x.score for x in a.labels] == pytest.approx([x.score for x in b.labels], abs=1e-6)


def test_threads_share_one_classifier(classifier):
    clips = [synthetic_clip(target=t, seed=t, rate=SAMPLING_RATE, seconds=3.0 + t % 5) for t in range(8)]
    alone = [classifier.predict((SAMPLING_RATE, clip)) for clip in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda clip: classifier.predict((SAMPLING_RATE, clip)), clips))
    for one, other in zip(alone, together):
        assert [x.label for x in one.labels] == [x.label for x in other.labels]
        assert [x.score for x in one.labels] == pytest.approx([x.score for x in other.labels], abs=1e-6)


def test_bad_input_raises_the_audio_error(classifier):
    with pytest.raises(AudioInputError, match="NaN"):
        classifier.predict((SAMPLING_RATE, np.full(SAMPLING_RATE, np.nan, np.float32)))


def test_bad_hop_is_refused(saved_model_dir):
    with pytest.raises(ValueError, match="hop_seconds"):
        SoundClassifier(saved_model_dir, hop_seconds=6.0)


def test_onnx_backend_gives_the_same_prediction(onnx_model_dir, classifier):
    """The backend name is passed through: ONNX Runtime on the exported graph (the fixture model's export, shared
    with test_onnx), same windows and scores."""
    onnx_classifier = SoundClassifier(onnx_model_dir, "onnx")
    clip = (SAMPLING_RATE, synthetic_clip(target=11, seed=5, rate=SAMPLING_RATE, seconds=8.0))
    expected, got = classifier.predict(clip), onnx_classifier.predict(clip)
    assert [w.label for w in got.windows] == [w.label for w in expected.windows]
    assert [x.label for x in got.labels] == [x.label for x in expected.labels]
    assert [x.score for x in got.labels] == pytest.approx([x.score for x in expected.labels], abs=1e-5)


def test_the_pipelines_inputs_work_here_too(classifier, tmp_path):
    """One input path (`audio_io.audio_blocks`) for SoundClassifier and the pipeline: bare arrays and decoders."""
    import soundfile as sf
    from torchcodec.decoders import AudioDecoder

    clip = synthetic_clip(target=17, seed=6, rate=SAMPLING_RATE, seconds=3.0)
    sf.write(tmp_path / "clip.wav", clip, SAMPLING_RATE, subtype="FLOAT")
    expected = classifier.predict((SAMPLING_RATE, clip))
    for source in (clip, torch.from_numpy(clip), AudioDecoder(str(tmp_path / "clip.wav"))):
        got = classifier.predict(source)
        assert [x.label for x in got.labels] == [x.label for x in expected.labels]
        assert [x.score for x in got.labels] == pytest.approx([x.score for x in expected.labels], abs=1e-5)
