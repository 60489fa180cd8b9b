"""Shared fixtures: a small synthetic ESC-50 folder in the official layout, and a saved random model.

The environment is made offline and isolated before any Hugging Face library is imported; its cache folder goes
when the run ends.
"""

import atexit
import os
import shutil
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="esc50-hf-tests-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)  # its datasets cache is ~130 MB a run
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    GRADIO_ANALYTICS_ENABLED="False",
    HF_HOME=_HF_HOME,
    TOKENIZERS_PARALLELISM="false",
)

import csv  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from esc50_hf.model.labels import ESC50_LABELS  # noqa: E402

FIXTURE_RATE = 44100  # the official release's rate, unlike the model's 22050 Hz
FIXTURE_SECONDS = 1.0


def synthetic_clip(target: int, seed: int, rate: int = FIXTURE_RATE, seconds: float = FIXTURE_SECONDS) -> np.ndarray:
    """A class-specific tone (with a harmonic) in a little noise: learnable, yet cheap to make."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(rate * seconds)) / rate
    frequency = 200.0 * 2 ** (target / 10)  # 200 Hz .. ~6 kHz, one per class
    tone = 0.4 * np.sin(2 * np.pi * frequency * time) + 0.1 * np.sin(2 * np.pi * 2 * frequency * time)
    return (tone + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


def write_fake_esc50(root: Path, clips_per_class_per_fold: int = 1) -> Path:
    """Writes `root/meta/esc50.csv` and `root/audio/*.wav` (16-bit, 44.1 kHz) like the official release."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for fold in range(1, 6):
        for target, category in enumerate(ESC50_LABELS):
            for take in range(clips_per_class_per_fold):
                source = 100000 + 1000 * fold + 10 * target + take
                filename = f"{fold}-{source}-{'ABCDEFGH'[take]}-{target}.wav"
                clip = synthetic_clip(target, seed=source)
                sf.write(root / "audio" / filename, clip, FIXTURE_RATE, subtype="PCM_16")
                rows.append([filename, fold, target, category, str(target < 10), source, "ABCDEFGH"[take]])
    with (root / "meta" / "esc50.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def esc50_dir(tmp_path_factory) -> Path:
    return write_fake_esc50(tmp_path_factory.mktemp("fake-esc50") / "ESC-50")


@pytest.fixture(scope="session")
def saved_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised model (seeded: the same weights in every run) and its feature extractor, saved as a
    Hub-ready folder."""
    import torch

    from esc50_hf import Esc50CnnConfig, Esc50CnnForAudioClassification, Esc50FeatureExtractor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("random-model")
    extractor = Esc50FeatureExtractor(num_mel_bins=32, mean=-40.0, std=20.0)
    model = Esc50CnnForAudioClassification(Esc50CnnConfig(num_mel_bins=32, block_channels=[8, 16, 32]))
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def onnx_model_dir(saved_model_dir, esc50_dir, tmp_path_factory) -> Path:
    """A copy of `saved_model_dir` with model.onnx and model.int8.onnx (calibrated on 24 fixture clips), written by
    `esc50-hf export-onnx` once for every test that needs an exported model."""
    import shutil

    from esc50_hf.cli import main

    folder = tmp_path_factory.mktemp("onnx-model") / "model"
    shutil.copytree(saved_model_dir, folder)
    argv = ["export-onnx", "--model", str(folder), "--int8", "--data-dir", str(esc50_dir), "--calibration-clips", "24"]
    assert main(argv) == 0
    return folder


@pytest.fixture(scope="session")
def parquet_dir(esc50_dir, tmp_path_factory) -> Path:
    """The fixture folder written by `esc50-hf dataset`: parquet shards per fold and a dataset card."""
    from esc50_hf.cli import main

    output = tmp_path_factory.mktemp("esc50-parquet") / "esc50"
    assert main(["dataset", "--data-dir", str(esc50_dir), "--output", str(output)]) == 0
    return output
