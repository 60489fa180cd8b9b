"""The one reader of a model folder written by train.py: complete or not, the recipe with older keys translated, the
metrics and the teachers they record, the companions beside them, and errors that name the folder and the file."""

import hashlib
import json
from pathlib import Path

import pytest
from transformers import TrainingArguments

from esc50_hf.training.arguments import parse_args
from esc50_hf.training.model_folder import (
    MODEL_FILES,
    ModelFolder,
    ModelFolderError,
    finished_model_recipe,
    read_model_folder,
)
from esc50_hf.training.recipe import fingerprint

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "esc50-mel-cnn"
TEACHERS = [{"model": "runs/a", "recipe_fingerprint": "0123", "weights_sha256": "abcd"}]


def write_model(folder: Path, recipe: dict, metrics: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "training_config.json").write_text(json.dumps(recipe))
    (folder / "metrics.json").write_text(json.dumps(metrics or {"accuracy": 0.5}))
    return folder


def test_a_finished_folder_is_read_with_older_recipe_keys_translated(tmp_path):
    older = {"n_mels": 32, "optimizer": "adam", "validation_fold": 4, "seed": 1}
    folder = ModelFolder(write_model(tmp_path / "run", older, {"accuracy": 0.5, "teachers": TEACHERS}))
    assert folder.complete and folder.missing == []
    assert folder.recipe == {
        "num_mel_bins": 32, "optim": TrainingArguments.default_optim, "weight_decay": 0.0, "validation_fold": 4,
        "seed": 1,
    }  # fmt: skip
    assert finished_model_recipe(tmp_path / "run") == folder.recipe
    assert folder.metrics["accuracy"] == 0.5 and folder.teachers == TEACHERS
    assert folder.weights_digest == hashlib.sha256(b"weights").hexdigest()[:16]
    assert folder.optional("cv_results.json") is None
    (tmp_path / "run" / "cv_results.json").write_text('{"summary": {}}')
    assert folder.optional("cv_results.json") == {"summary": {}}


@pytest.mark.parametrize("name", MODEL_FILES)
def test_a_folder_without_one_of_the_model_files_is_not_finished(tmp_path, name):
    (write_model(tmp_path / "run", {"seed": 1}) / name).unlink()
    folder = ModelFolder(tmp_path / "run")
    assert not folder.complete and folder.missing == [name]
    assert finished_model_recipe(folder.path) is None
    with pytest.raises(ModelFolderError, match=rf"^{tmp_path / 'run'} has no {name}: pass a model folder written by"):
        read_model_folder(folder.path)


def test_a_damaged_file_is_an_error_naming_it_and_the_folder_is_not_finished(tmp_path):
    folder = write_model(tmp_path / "run", {"seed": 1})
    (folder / "training_config.json").write_text('{"seed": 1, "learning')  # cut short
    (folder / "metrics.json").write_text("[0.5]")
    assert not ModelFolder(folder).complete and finished_model_recipe(folder) is None
    with pytest.raises(ModelFolderError, match=r"training_config.json cannot be read as JSON"):
        _ = read_model_folder(folder).recipe
    with pytest.raises(ModelFolderError, match=r"metrics.json holds a list, not a JSON object"):
        _ = read_model_folder(folder).metrics


def test_a_nonexistent_folder_lacks_everything(tmp_path):
    folder = ModelFolder(tmp_path / "nowhere")
    assert folder.missing == list(MODEL_FILES) and not folder.complete
    with pytest.raises(ModelFolderError, match=r"nowhere has no metrics.json"):
        read_model_folder(folder.path, require=("metrics.json",))


def test_the_shipped_model_folder_reads_as_finished():
    """The shipped folder, with its card companions, reads as a finished run of today's recipe (a merged pair of
    second stages: configs/esc50-stage2.yaml from its first stage), so resuming and cross-validation recognise it."""
    folder = read_model_folder(SHIPPED)
    assert folder.complete and folder.recipe["validation_fold"] == folder.metrics["validation_fold"] == 5
    assert folder.teachers is None  # trained without teachers
    start = ["--model_name_or_path", folder.recipe["model_name_or_path"]]
    todays_recipe = parse_args(["--config", str(REPO / "configs" / "esc50-stage2.yaml"), *start]).recipe()
    assert fingerprint(finished_model_recipe(SHIPPED)) == fingerprint(todays_recipe)
    assert folder.config["model_type"] == "esc50_cnn"
    assert set(folder.optional("cv_results.json")["summary"]) >= {"accuracy", "f1"}
