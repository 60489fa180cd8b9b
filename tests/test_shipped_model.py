"""The model shipped in `models/esc50-mel-cnn`: complete, in step with the package's code, and loadable."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

import esc50_hf
from esc50_hf import ESC50_LABELS, SAMPLING_RATE

from .conftest import synthetic_clip

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "esc50-mel-cnn"
MODEL_CODE = Path(esc50_hf.__file__).parent / "model"  # exactly the code that ships in a model folder
CODE_FILES = tuple(sorted(path.name for path in MODEL_CODE.glob("*.py") if path.name != "__init__.py"))


@pytest.mark.parametrize("name", CODE_FILES)
def test_shipped_code_is_the_package_code(name):
    """The folder's remote code (used with trust_remote_code) must match the package; re-save it if not."""
    assert (SHIPPED / name).read_text() == (MODEL_CODE / name).read_text()


def test_shipped_folder_is_small_and_complete():
    files = {path.name for path in SHIPPED.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "metrics.json"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)
    assert "training_args.bin" not in files  # a pickle nothing reads; training_config.json is the recipe
    size = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert size <= 5_000_000  # the size aim: 5 MB


def test_shipped_card_states_the_shipped_metrics():
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    card = ModelCard.load(SHIPPED / "README.md")
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {"accuracy": round(metrics["accuracy"], 4), "f1": round(metrics["f1"], 4)}


def test_shipped_code_files_are_the_model_package():
    """Every module of `esc50_hf/model/` ships, and nothing else: the package's layer is the folder's code."""
    assert {path.name for path in SHIPPED.glob("*.py")} == set(CODE_FILES)
    assert len(CODE_FILES) == 8


def test_a_saved_model_carries_exactly_the_model_package(tmp_path):
    """`save_pretrained` (config, model, feature extractor, pipeline) writes every module of `esc50_hf/model/`."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    AutoModelForAudioClassification.from_pretrained(SHIPPED).save_pretrained(tmp_path)
    AutoFeatureExtractor.from_pretrained(SHIPPED).save_pretrained(tmp_path)
    assert {path.name for path in tmp_path.glob("*.py")} == set(CODE_FILES)


@pytest.mark.slow
def test_shipped_folder_loads_with_its_own_code_alone(tmp_path):
    """trust_remote_code in a process that never imports esc50_hf: the folder's code files and JSON agree."""
    code = (
        "import sys, numpy as np; from transformers import pipeline; "
        "c = pipeline('audio-classification', model=sys.argv[1], trust_remote_code=True); "
        "print(c.feature_extractor.num_mel_bins, type(c.model).__module__.split('.')[0], "
        "any(m.startswith('esc50_hf') for m in sys.modules), len(c(np.zeros(22050, np.float32), top_k=2)))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(SHIPPED)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["64", "transformers_modules", "False", "2"]


def test_shipped_model_classifies_through_the_pipeline():
    classifier = esc50_hf.audio_pipeline(str(SHIPPED))
    result = classifier(synthetic_clip(target=0, seed=0, rate=SAMPLING_RATE, seconds=5.0), top_k=5)
    assert [item["label"] in ESC50_LABELS for item in result] == [True] * 5
    assert np.isclose(sum(item["score"] for item in classifier(np.zeros(SAMPLING_RATE), top_k=50)), 1.0, atol=1e-4)


A_THEN_B = """
import json, sys
from transformers import pipeline
classifier = pipeline("audio-classification", model=sys.argv[1], trust_remote_code=True)
labels = {path: classifier(path, top_k=1)[0]["label"] for path in sys.argv[2:]}
labels["imported_esc50_hf"] = any(name.split(".")[0] == "esc50_hf" for name in sys.modules)
print(json.dumps(labels))
"""


@pytest.mark.slow
def test_thirty_seconds_of_a_then_b_answers_b_in_a_fresh_process(tmp_path):
    """25 s of quiet rain (20 dB down), then 5 s of a dog (real fold-5 clips): the windowed pipeline says dog, the
    loudest stretch, where cropping to the first 5 s said rain. The process never imports esc50_hf: the folder's
    own pipeline code runs."""
    import subprocess
    import sys

    import soundfile as sf

    dog, rate = sf.read(REPO / "examples" / "dog_5-203128-A-0.flac", dtype="float32")
    rain, _ = sf.read(REPO / "examples" / "rain_5-181766-A-10.flac", dtype="float32")
    mixed = tmp_path / "rain_then_dog.wav"
    sf.write(mixed, np.concatenate([*[0.1 * rain] * 5, dog]), rate)
    clips = [str(REPO / "examples" / "dog_5-203128-A-0.flac"), str(REPO / "examples" / "rain_5-181766-A-10.flac")]
    completed = subprocess.run(
        [sys.executable, "-c", A_THEN_B, str(SHIPPED), *clips, str(mixed)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    labels = json.loads(completed.stdout.strip().splitlines()[-1])
    assert labels == {clips[0]: "dog", clips[1]: "rain", str(mixed): "dog", "imported_esc50_hf": False}
