"""`pipeline("audio-classification")` on a saved model: every input kind, in-process and via remote code."""

import json
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch
from transformers import pipeline

from esc50_hf import ESC50_LABELS, SAMPLING_RATE

from .conftest import synthetic_clip


@pytest.fixture(scope="module")
def classifier(saved_model_dir):
    return pipeline("audio-classification", model=str(saved_model_dir))


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
    clip = synthetic_clip(target=30, seed=2, rate=rate, seconds=5.0)
    result = classifier({key: clip, "sampling_rate": rate}, top_k=3)
    _check_top_k(result, 3)
    resampled = synthetic_clip(target=30, seed=2, rate=SAMPLING_RATE, seconds=5.0)
    probabilities = _direct_probabilities(saved_model_dir, resampled)
    assert result[0]["label"] == ESC50_LABELS[int(probabilities.argmax())]


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
result = {
    "file": classifier(sys.argv[2], top_k=3),
    "array": classifier(np.zeros(rate, dtype=np.float32) + 0.01, top_k=3),
    "dict": classifier({"array": np.ones(16000, dtype=np.float32) * 0.01, "sampling_rate": 16000}, top_k=3),
    "classes": [type(classifier.model).__module__, type(classifier.feature_extractor).__module__],
    "imported_esc50_hf": any(name.split(".")[0] == "esc50_hf" for name in sys.modules),
}
print(json.dumps(result))
"""


def test_fresh_process_loads_with_trust_remote_code(saved_model_dir, audio_files, tmp_path):
    """A process that never imports esc50_hf runs the folder's own code."""
    folder = tmp_path / "model-copy"
    shutil.copytree(saved_model_dir, folder)
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(audio_files["flac"])],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not result["imported_esc50_hf"]
    assert all(module.startswith("transformers_modules") for module in result["classes"])
    for key in ("file", "array", "dict"):
        _check_top_k(result[key], 3)
