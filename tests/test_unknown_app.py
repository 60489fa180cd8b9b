"""The app's "none of these" answer, for real: `python app.py` with the shipped (calibrated) model, a speech clip
and an ESC-50 example clip through the REST API (`gradio_client`)."""

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from esc50_hf.paths import DEFAULT_MODEL_DIR
from esc50_hf.serving.app import UNKNOWN_HEADLINE

from .app_server import app_subprocess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SPEECH = REPO / "tests" / "data" / "speech.flac"  # espeak-ng speech (tests/data/README.md)
DOG = REPO / "examples" / "dog_5-203128-A-0.flac"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unknown-server")
    with app_subprocess([], folder / "server.log", {"GRADIO_TEMP_DIR": str(folder / "tmp")}) as (url, _):
        yield Client(url, verbose=False, analytics_enabled=False)


def test_the_shipped_model_is_calibrated_with_a_threshold():
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["calibration_temperature"] != 1.0 and 0.0 < config["unknown_threshold"] < 1.0
    assert "fold 5" not in config["calibration"]["fitted_on"]  # fitted without the test fold


def test_speech_is_none_of_the_known_sounds_and_a_dog_is_a_dog(client):
    threshold = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["unknown_threshold"]
    speech, _ = client.predict(handle_file(str(SPEECH)), api_name="/predict")
    best = speech["confidences"][0]
    assert best["confidence"] < threshold
    expected = UNKNOWN_HEADLINE.format(label=best["label"].replace("_", " "), score=best["confidence"])
    assert speech["label"] == expected and expected.startswith("Not one of the known sounds")
    dog, _ = client.predict(handle_file(str(DOG)), api_name="/predict")
    assert dog["label"] == "dog" and dog["confidences"][0]["confidence"] >= threshold
