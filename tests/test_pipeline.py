"""`pipeline("audio-classification")` on a saved model: every input kind, windows, limits, in-process and remote code.

In-process tests use `esc50_hf.audio_pipeline` (the installed pipeline class, no remote code); the
fresh-process test uses `trust_remote_code=True` and the folder's own copy of the code.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import pipeline

from esc50_hf import ESC50_LABELS, SAMPLING_RATE, audio_pipeline
from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.model.audio_io import AudioInputError

from .conftest import synthetic_clip


@pytest.fixture(scope="module")
def classifier(saved_model_dir):
    return audio_pipeline(str(saved_model_dir))


def _check_top_k(result, k):
    assert len(result) == k
    assert all(item["label"] in ESC50_LABELS for item in result)
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6


def _direct_probabilities(folder, waveform):
    """What the model says for a 22.05 kHz waveform, without the pipeline."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    with torch.inference_mode():
        logits = model(**extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits
    return torch.softmax(logits, -1)[0]


def test_array_at_model_rate_matches_the_model(classifier, saved_model_dir):
    clip = synthetic_clip(target=12, seed=1, rate=SAMPLING_RATE, seconds=5.0)
    result = classifier(clip, top_k=50)
    _check_top_k(result, 50)
    probabilities = _direct_probabilities(saved_model_dir, clip)
    for item in result[:5]:
        assert item["score"] == pytest.approx(float(probabilities[ESC50_LABELS.index(item["label"])]), abs=1e-5)


@pytest.mark.parametrize(("key", "rate"), [("array", 16000), ("raw", 44100)])
def test_dict_input_is_resampled(classifier, saved_model_dir, key, rate):
    """A dict at another rate gives what the model gives for the same audio resampled to 22.05 kHz."""
    import torchaudio

    clip = synthetic_clip(target=30, seed=2, rate=rate, seconds=5.0)
    result = classifier({key: clip, "sampling_rate": rate}, top_k=50)
    _check_top_k(result, 50)
    resampled = torchaudio.functional.resample(torch.from_numpy(clip), rate, SAMPLING_RATE).numpy()
    probabilities = _direct_probabilities(saved_model_dir, resampled)
    for item in result:
        assert item["score"] == pytest.approx(float(probabilities[ESC50_LABELS.index(item["label"])]), abs=1e-4)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """The same clip as WAV, FLAC and OGG (libsndfile) and MP3 (the ffmpeg binary)."""
    folder = tmp_path_factory.mktemp("audio-files")
    clip = synthetic_clip(target=40, seed=3, rate=44100, seconds=5.0)
    files = {}
    for extension, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")):
        files[extension] = folder / f"clip.{extension}"
        sf.write(files[extension], clip, 44100, subtype=subtype)
    files["mp3"] = folder / "clip.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(files["wav"]), str(files["mp3"])], check=True
    )
    return files


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3"])
def test_file_paths_of_every_format(classifier, audio_files, extension):
    _check_top_k(classifier(str(audio_files[extension]), top_k=5), 5)


def test_formats_agree(classifier, audio_files):
    """Lossless formats give the same answer; lossy ones the same top label."""
    results = {ext: classifier(str(path), top_k=1)[0] for ext, path in audio_files.items()}
    assert results["wav"]["score"] == pytest.approx(results["flac"]["score"], abs=1e-4)
    assert len({result["label"] for result in results.values()}) == 1


def test_raw_bytes(classifier, audio_files):
    from_bytes = classifier(audio_files["wav"].read_bytes(), top_k=2)
    _check_top_k(from_bytes, 2)
    assert from_bytes == classifier(str(audio_files["wav"]), top_k=2)


FRESH_PROCESS = """
import json, sys
import numpy as np
from transformers import pipeline
classifier = pipeline("audio-classification", model=sys.argv[1], trust_remote_code=True)
rate = classifier.feature_extractor.sampling_rate
try:
    classifier(sys.argv[3])
    too_long = None
except ValueError as error:
    too_long = f"{type(error).__name__}: {error}"
result = {
    "file": classifier(sys.argv[2], top_k=3),
    "too_long": too_long,
    "pipeline_class": [type(classifier).__name__, type(classifier).__module__],
    "array": classifier(np.zeros(rate, dtype=np.float32) + 0.01, top_k=3),
    "dict": classifier({"array": np.ones(16000, dtype=np.float32) * 0.01, "sampling_rate": 16000}, top_k=3),
    "classes": [type(classifier.model).__module__, type(classifier.feature_extractor).__module__],
    "imported_esc50_hf": any(name.split(".")[0] == "esc50_hf" for name in sys.modules),
}
print(json.dumps(result))
"""


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(saved_model_dir, audio_files, tmp_path):
    """A process that never imports esc50_hf runs the folder's own code."""
    folder = tmp_path / "model-copy"
    shutil.copytree(saved_model_dir, folder)
    too_long = tmp_path / "eleven_minutes.flac"
    sf.write(too_long, np.zeros(8000 * 660, np.int16), 8000)
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(audio_files["flac"]), str(too_long)],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not result["imported_esc50_hf"]
    assert all(module.startswith("transformers_modules") for module in result["classes"])
    assert result["pipeline_class"][0] == "Esc50AudioClassificationPipeline"
    assert result["pipeline_class"][1].startswith("transformers_modules")
    for key in ("file", "array", "dict"):
        _check_top_k(result[key], 3)
    # the same refusal, in the same words, as the app and the CLI
    assert result["too_long"] == "AudioInputError: The audio is too long: 11 min 0.0 s; the limit is 10 min 0.0 s."


def test_without_trust_remote_code_transformers_asks_for_it(saved_model_dir):
    """The folder declares its own pipeline; transformers will not run it unasked (`audio_pipeline` is the
    in-process way)."""
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        pipeline("audio-classification", model=str(saved_model_dir))


def test_long_input_is_classified_in_windows_like_sound_classifier(classifier, saved_model_dir):
    """One windowing for both: the same windows, weights and scores as `SoundClassifier`."""
    clip = np.concatenate(
        [synthetic_clip(target=5, seed=1, rate=SAMPLING_RATE, seconds=5.0)]
        + [synthetic_clip(target=25, seed=seed, rate=SAMPLING_RATE, seconds=5.0) for seed in range(2, 7)]
    )[: int(27.3 * SAMPLING_RATE)]
    expected = SoundClassifier(saved_model_dir).predict((SAMPLING_RATE, clip), top_k=50)
    result = classifier(clip, top_k=50, return_timeline=True)
    assert [item["label"] for item in result["labels"]] == [item.label for item in expected.labels]
    assert [item["score"] for item in result["labels"]] == pytest.approx([x.score for x in expected.labels], abs=1e-5)
    spans = [(window["start_s"], window["end_s"]) for window in result["timeline"]]
    assert spans == [(window.start, window.end) for window in expected.windows]
    assert spans[-1] == (22.3, 27.3) and result["duration_s"] == 27.3


def test_batches_give_the_same_answers(classifier, audio_files):
    inputs = [str(audio_files["wav"]), synthetic_clip(target=9, seed=4, rate=SAMPLING_RATE, seconds=11.0)]
    one_by_one = [classifier(item, top_k=3) for item in inputs]
    batched = classifier(inputs, top_k=3, batch_size=4)
    assert [[x["label"] for x in r] for r in batched] == [[x["label"] for x in r] for r in one_by_one]
    for got, want in zip(batched, one_by_one):
        assert [x["score"] for x in got] == pytest.approx([x["score"] for x in want], abs=1e-5)


def test_torch_tensors_and_decoders_as_datasets_gives_them(classifier, audio_files):
    from torchcodec.decoders import AudioDecoder

    reference = classifier(str(audio_files["wav"]), top_k=2)
    decoded = AudioDecoder(str(audio_files["wav"])).get_all_samples()
    as_tensor = classifier({"array": decoded.data[0], "sampling_rate": decoded.sample_rate}, top_k=2)
    as_decoder = classifier(AudioDecoder(str(audio_files["wav"])), top_k=2)
    for result in (as_tensor, as_decoder):
        assert [x["label"] for x in result] == [x["label"] for x in reference]
        assert [x["score"] for x in result] == pytest.approx([x["score"] for x in reference], abs=1e-4)


def test_limits_and_bad_input_raise_the_audio_error(classifier, tmp_path):
    long_file = tmp_path / "long.wav"
    sf.write(long_file, np.zeros(8000 * 700, np.int16), 8000)
    with pytest.raises(AudioInputError, match=r"too long: 11 min 40\.0 s; the limit is 10 min 0\.0 s"):
        classifier(str(long_file))
    assert len(classifier(str(long_file), max_seconds=None, top_k=1)) == 1  # the limit lifted, locally
    with pytest.raises(AudioInputError, match="it looks like a PNG image"):
        classifier(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        classifier(str(long_file), top_k=0)


def test_a_hop_below_one_sample_is_refused(classifier, saved_model_dir):
    with pytest.raises(ValueError, match="hop_seconds must be in"):
        classifier(np.zeros(SAMPLING_RATE, np.float32), hop_seconds=1e-5)
    with pytest.raises(ValueError, match="hop_seconds must be in"):
        SoundClassifier(saved_model_dir, hop_seconds=1e-5)
