"""Training on the user's own folder of classes, from scratch and from a trained model (transfer)."""

import json
import os
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from esc50_hf import Esc50FeatureExtractor, audio_pipeline
from esc50_hf.training.arguments import parse_args
from esc50_hf.training.trainer import train

from .conftest import synthetic_clip

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"
CLASSES = ("hammer", "drill", "saw")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> list[str]:
    """configs/smoke.yaml without its limit on ESC-50's clips, which own audio refuses (a smaller folder is the way)."""
    lines = SMOKE.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("max_clips_per_class_and_fold:")]
    assert len(kept) == len(lines) - 1
    config = tmp_path_factory.mktemp("config") / "smoke-own-audio.yaml"
    config.write_text("\n".join(kept) + "\n")
    return ["--config", str(config), "--report_to", "none", "--ema_decay", "0"]


@pytest.fixture(scope="module")
def my_sounds(tmp_path_factory) -> Path:
    """`my_sounds/<class>/*.wav`: 3 classes x 6 clips at 16 kHz, and a stray text file."""
    root = tmp_path_factory.mktemp("my_sounds")
    for index, name in enumerate(CLASSES):
        (root / name).mkdir()
        for take in range(6):
            sf.write(root / name / f"{take}.wav", synthetic_clip(index * 9, seed=10 * index + take), 16000)
    (root / "hammer" / "notes.txt").write_text("not audio")
    return root


def _train(smoke: list[str], *flags: str) -> dict:
    return train(parse_args([*smoke, "--num_train_epochs", "3", *flags]))


@pytest.mark.slow
def test_a_folder_of_classes_trains_a_model_of_those_labels(smoke, my_sounds, tmp_path, capsys):
    output = tmp_path / "mine"
    results = _train(smoke, "--train_dir", str(my_sounds), "--output_dir", str(output))
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]  # the run ends saying where the model is and its scores
    assert last.startswith(f"Model saved in {output}: accuracy {results['accuracy']:.4f}, macro-F1")
    config = json.loads((output / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == sorted(CLASSES)  # audiofolder's order: sorted names
    assert results["num_clips"] == 3 and results["data"]["num_train_clips"] == 15  # one clip per class evaluates
    card = (output / "README.md").read_text()
    assert "\n# mine\n" in card  # named after the model folder, not its staging folder
    umask = os.umask(0)
    os.umask(umask)
    assert (output / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # as every other file, not 0600
    assert "3 classes:\ndrill, hammer, saw" in card and str(my_sounds) in card and "hold-out" in card
    assert "trained from scratch" in card
    # three evaluation clips are too few to calibrate on: the model stays as trained, and the run says so
    assert config["calibration_temperature"] == 1.0 and config["calibration"] is None
    assert "Not calibrated: 3 evaluation clips are too few" in out
    recipe = json.loads((output / "training_config.json").read_text())
    assert recipe["train_dir"] == str(my_sounds) and "model_name_or_path" not in recipe
    answer = audio_pipeline(str(output))(str(my_sounds / "saw" / "0.wav"), top_k=3)
    assert {row["label"] for row in answer} == set(CLASSES)


@pytest.mark.slow
def test_transfer_keeps_the_starting_models_features_and_statistics(smoke, my_sounds, saved_model_dir, tmp_path):
    """A new head for the new labels; the starting model's log-mel normalisation and batch-norm statistics kept; with
    a body learning rate of 0 (a linear probe) the network below the head is the starting model's, weight for
    weight. The recipe records the starting model's feature options, not the command line's."""
    output = tmp_path / "probe"
    _train(
        smoke, "--train_dir", str(my_sounds), "--output_dir", str(output), "--model_name_or_path", str(saved_model_dir),
        "--body_learning_rate_scale", "0", "--freeze_batch_norm", "true", "--num_mel_bins", "64",
    )  # fmt: skip
    base, tuned = load_file(saved_model_dir / "model.safetensors"), load_file(output / "model.safetensors")
    body = [name for name in base if not name.startswith("classifier.")]
    assert body and all(torch.equal(base[name], tuned[name]) for name in body)
    assert tuned["classifier.weight"].shape == (3, base["classifier.weight"].shape[1])
    base_extractor, tuned_extractor = (Esc50FeatureExtractor.from_pretrained(f) for f in (saved_model_dir, output))
    assert (tuned_extractor.mean, tuned_extractor.std) == (base_extractor.mean, base_extractor.std)
    recipe = json.loads((output / "training_config.json").read_text())
    assert recipe["num_mel_bins"] == 32 and recipe["model_name_or_path"] == str(saved_model_dir)
    card = (output / "README.md").read_text()
    assert f"It starts from [`{saved_model_dir}`]" in card and "linear probe" in card


@pytest.mark.slow
def test_transfer_trains_the_body_slower_and_keeps_batch_norm_statistics(smoke, my_sounds, saved_model_dir, tmp_path):
    output = tmp_path / "tuned"
    _train(
        smoke, "--train_dir", str(my_sounds), "--output_dir", str(output), "--model_name_or_path", str(saved_model_dir),
        "--freeze_batch_norm", "true", "--body_learning_rate_scale", "0.1",
    )  # fmt: skip
    base, tuned = load_file(saved_model_dir / "model.safetensors"), load_file(output / "model.safetensors")
    statistics = [name for name in base if name.endswith(("running_mean", "running_var"))]
    assert statistics and all(torch.equal(base[name], tuned[name]) for name in statistics)
    assert not torch.equal(base["blocks.0.conv1.weight"], tuned["blocks.0.conv1.weight"])  # the body learns too


def test_own_data_refuses_esc50_options(smoke, my_sounds, capsys):
    def refusal(*argv: str) -> str:
        with pytest.raises(SystemExit):
            parse_args(list(argv))
        return capsys.readouterr().err.strip().splitlines()[-1]

    assert "--cv" in refusal(*smoke, "--train_dir", str(my_sounds), "--cv")
    assert "--model_name_or_path" in refusal(*smoke, "--freeze_batch_norm", "true")
    limit = refusal("--config", str(SMOKE), "--train_dir", str(my_sounds))
    assert "--max_clips_per_class_and_fold limits ESC-50's clips; with --train_dir give a smaller folder" in limit
