"""Every inference path answers with the model's own labels (`config.id2label`): a 5-class model, and a 50-label
model whose labels are ESC-50's in another order (the same weights as the fixture model, its outputs renamed)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
import soundfile as sf
import torch

from esc50_hf import Esc50CnnConfig, Esc50CnnForAudioClassification, Esc50FeatureExtractor, audio_pipeline
from esc50_hf.data.esc50 import load_esc50, split_folds
from esc50_hf.evaluation.scoring import evaluate_model
from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.inference.onnx_export import export_onnx, onnx_labels
from esc50_hf.model.labels import ESC50_LABELS, model_labels
from esc50_hf.serving.space import write_space

from .app_server import app_subprocess
from .conftest import synthetic_clip

FIVE = ("hammer", "drill", "saw", "sander", "quiet")
REVERSED = tuple(reversed(ESC50_LABELS))


@pytest.fixture(scope="module")
def five_class_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("five-class")
    config = Esc50CnnConfig(num_mel_bins=32, block_channels=[8, 16, 32], id2label=dict(enumerate(FIVE)))
    Esc50CnnForAudioClassification(config).save_pretrained(folder)
    Esc50FeatureExtractor(num_mel_bins=32, mean=-40.0, std=20.0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def reordered_dir(saved_model_dir, tmp_path_factory) -> Path:
    """The fixture model with its config's labels reversed: output i is named `ESC50_LABELS[49 - i]`."""
    folder = tmp_path_factory.mktemp("reordered") / "model"
    shutil.copytree(saved_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(index): name for index, name in enumerate(REVERSED)}
    config["label2id"] = {name: index for index, name in enumerate(REVERSED)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own-labels-clip") / "clip.wav"
    sf.write(path, synthetic_clip(target=12, seed=3, seconds=7.0), 44100, subtype="PCM_16")
    return path


def test_model_labels_are_read_from_the_config_in_output_order(five_class_dir, reordered_dir):
    assert model_labels(Esc50CnnConfig.from_pretrained(five_class_dir)) == FIVE
    assert model_labels(Esc50CnnConfig.from_pretrained(reordered_dir)) == REVERSED
    assert Esc50CnnConfig(id2label={0: "a", 1: "b"}).label2id == {"a": 0, "b": 1}  # never ESC-50's inverse
    with pytest.raises(ValueError, match="one name per output"):
        model_labels(Esc50CnnConfig(id2label={0: "a", 2: "b"}))


def test_classifier_and_pipeline_answer_with_the_five_labels(five_class_dir, clip):
    prediction = SoundClassifier(five_class_dir).predict(clip, top_k=10)
    assert sorted(item.label for item in prediction.labels) == sorted(FIVE)  # top_k is capped at the 5 classes
    assert {window.label for window in prediction.windows} <= set(FIVE)
    piped = audio_pipeline(str(five_class_dir))(str(clip), top_k=5)
    assert [row["label"] for row in piped] == [item.label for item in prediction.labels]
    assert [row["score"] for row in piped] == pytest.approx([item.score for item in prediction.labels], abs=1e-5)


def test_a_reordered_model_answers_with_its_own_configs_names(saved_model_dir, reordered_dir, clip):
    original = SoundClassifier(saved_model_dir).predict(clip, top_k=50)
    renamed = SoundClassifier(reordered_dir).predict(clip, top_k=50)
    expected = [REVERSED[ESC50_LABELS.index(item.label)] for item in original.labels]
    assert [item.label for item in renamed.labels] == expected
    assert [item.score for item in renamed.labels] == pytest.approx([item.score for item in original.labels])
    piped = audio_pipeline(str(reordered_dir))(str(clip), top_k=3)
    assert [row["label"] for row in piped] == expected[:3]


@pytest.mark.slow
def test_remote_code_in_a_fresh_process_uses_the_folders_labels(five_class_dir, reordered_dir, saved_model_dir, clip):
    """`pipeline(..., trust_remote_code=True)` runs the folder's own code, without this package."""
    script = (
        "import json, sys\n"
        "from transformers import pipeline\n"
        "out = {}\n"
        "for folder in sys.argv[2:]:\n"
        "    classifier = pipeline('audio-classification', model=folder, trust_remote_code=True)\n"
        "    out[folder] = [row['label'] for row in classifier(sys.argv[1], top_k=3)]\n"
        "    assert 'esc50_hf' not in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    folders = [str(five_class_dir), str(reordered_dir), str(saved_model_dir)]
    run = subprocess.run(
        [sys.executable, "-c", script, str(clip), *folders], capture_output=True, text=True, cwd="/", timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answers = json.loads(run.stdout.splitlines()[-1])
    assert set(answers[str(five_class_dir)]) <= set(FIVE)
    original = answers[str(saved_model_dir)]
    assert answers[str(reordered_dir)] == [REVERSED[ESC50_LABELS.index(name)] for name in original]


@pytest.mark.slow
def test_cli_predict_answers_with_the_five_labels(five_class_dir, clip):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "esc50_hf.cli",
            "predict",
            str(clip),
            "--model",
            str(five_class_dir),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout.splitlines()[0])
    assert {row["label"] for row in record["labels"]} == set(FIVE)


def test_onnx_export_carries_and_serves_the_labels(five_class_dir, clip, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(five_class_dir, folder)
    path = export_onnx(folder)
    assert onnx_labels(path) == list(FIVE)
    onnx.checker.check_model(str(path))
    by_onnx = SoundClassifier(folder, "onnx").predict(clip, top_k=5)
    by_torch = SoundClassifier(folder).predict(clip, top_k=5)
    assert [item.label for item in by_onnx.labels] == [item.label for item in by_torch.labels]


def test_the_space_describes_the_models_labels_and_offers_no_foreign_examples(
    five_class_dir, saved_model_dir, tmp_path
):
    space = write_space(tmp_path / "space", five_class_dir)
    readme = (space / "README.md").read_text()
    assert "5 classes (hammer, drill, saw, sander, quiet)" in readme
    assert "ESC-50 clips" not in readme and not (space / "examples").exists()
    esc50_space = write_space(tmp_path / "esc50-space", saved_model_dir)
    assert (esc50_space / "examples" / "attribution.csv").is_file()


def test_scores_match_the_models_labels_by_name(saved_model_dir, esc50_dir):
    """The same network with its outputs (classifier rows and names) in another order gets the same scores: the clips'
    ids are matched to the model's by class name, never by position."""
    fold = split_folds(load_esc50(esc50_dir), 5)["validation"]
    extractor = Esc50FeatureExtractor.from_pretrained(saved_model_dir)
    original = Esc50CnnForAudioClassification.from_pretrained(saved_model_dir)
    permuted = Esc50CnnForAudioClassification.from_pretrained(saved_model_dir)
    with torch.no_grad():
        permuted.classifier.weight.copy_(permuted.classifier.weight.flip(0))
        permuted.classifier.bias.copy_(permuted.classifier.bias.flip(0))
    permuted.config.id2label = dict(enumerate(REVERSED))
    permuted.config.label2id = {name: index for index, name in enumerate(REVERSED)}
    scores = [evaluate_model(model, extractor, fold) for model in (original, permuted)]
    assert scores[0]["accuracy"] == scores[1]["accuracy"]
    assert scores[0]["per_class"] == {name: scores[1]["per_class"][name] for name in ESC50_LABELS}
    assert list(scores[1]["per_class"]) == list(REVERSED)  # reported in the model's own order


@pytest.mark.slow
def test_the_apps_rest_api_answers_with_the_five_labels(five_class_dir, clip, tmp_path):
    with app_subprocess(["--model", str(five_class_dir)], tmp_path / "server.log") as (url, _):
        api = f"{url}/gradio_api"
        with clip.open("rb") as handle:
            uploaded = requests.post(f"{api}/upload", files={"files": (clip.name, handle)}, timeout=30).json()[0]
        payload = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
        call = requests.post(f"{api}/call/predict", json={"data": [payload]}, timeout=30).json()
        stream = requests.get(f"{api}/call/predict/{call['event_id']}", timeout=60).text
        page = requests.get(url, timeout=30).text
    data = json.loads(next(line[5:] for line in stream.splitlines() if line.startswith("data:")))
    label_output, timeline = data
    assert {item["label"] for item in label_output["confidences"]} == set(FIVE)
    assert {row[2] for row in timeline["data"]} <= set(FIVE)
    assert "5 classes: hammer, drill, saw, sander, quiet" in page
    assert np.isfinite([item["confidence"] for item in label_output["confidences"]]).all()
