"""Crash-safe output folders without training: checkpoint completeness, the choice of `latest`, atomic publishing."""

import json
import os
from pathlib import Path

import pytest

from esc50_hf.training.recipe import fingerprint
from esc50_hf.training.run_folder import (
    OutputFolderError,
    RecipeFingerprint,
    check_new_run,
    choose_checkpoint,
    finished_model_recipe,
    publish_model_folder,
    recover_interrupted_publish,
    staging_folder,
)

RECIPE = {"learning_rate": 0.002, "seed": 42, "output_dir": "here"}
OTHER = {**RECIPE, "seed": 8}


def write_checkpoint(folder: Path, step: int, recipe: dict | None = RECIPE) -> Path:
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (checkpoint / name).write_bytes(b"x")
    callbacks = {} if recipe is None else {"RecipeFingerprint": RecipeFingerprint(fingerprint(recipe), recipe).state()}
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step, "stateful_callbacks": callbacks}))
    return checkpoint


def write_model(folder: Path, recipe: dict, weights: bytes = b"weights") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "preprocessor_config.json", "metrics.json"):
        (folder / name).write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "training_config.json").write_text(json.dumps(recipe))


def test_latest_is_the_newest_complete_checkpoint_of_the_recipe(tmp_path):
    write_checkpoint(tmp_path, 13)
    write_checkpoint(tmp_path, 26)
    write_checkpoint(tmp_path, 39, OTHER)
    (write_checkpoint(tmp_path, 52) / "optimizer.pt").write_bytes(b"")
    write_checkpoint(tmp_path, 65, recipe=None)  # written before fingerprints
    messages = []
    assert choose_checkpoint(tmp_path, RECIPE, log=messages.append) == tmp_path / "checkpoint-26"
    assert messages == [
        f"Resuming from {tmp_path / 'checkpoint-26'}; skipped checkpoint-65: no recipe fingerprint in "
        "trainer_state.json (unreadable or older version); skipped checkpoint-52: incomplete: optimizer.pt is "
        "empty; skipped checkpoint-39: another recipe (differs in seed)"
    ]


def test_only_partial_checkpoints_start_from_scratch_only_foreign_ones_refuse(tmp_path):
    """The first save was interrupted: nothing to resume, but nothing wrong to resume either."""
    (write_checkpoint(tmp_path / "a", 13) / "trainer_state.json").unlink()
    messages = []
    assert choose_checkpoint(tmp_path / "a", RECIPE, log=messages.append) is None
    assert "No complete checkpoint" in messages[0] and "training from the start" in messages[0]
    write_checkpoint(tmp_path / "b", 13, OTHER)
    with pytest.raises(OutputFolderError, match=r"No checkpoint of this recipe .*differs in seed"):
        choose_checkpoint(tmp_path / "b", RECIPE)
    with pytest.raises(OutputFolderError, match="No checkpoint to resume"):
        choose_checkpoint(tmp_path / "c", RECIPE)


def test_new_run_refuses_finished_models_and_checkpoints_unless_overwriting(tmp_path):
    check_new_run(tmp_path / "empty", RECIPE, overwrite=False)
    (write_checkpoint(tmp_path / "partial", 13) / "trainer_state.json").unlink()
    check_new_run(tmp_path / "partial", RECIPE, overwrite=False)  # an interrupted first save blocks nothing
    write_checkpoint(tmp_path / "mine", 13)
    with pytest.raises(OutputFolderError, match="checkpoints of this recipe. Pass --resume_from_checkpoint latest"):
        check_new_run(tmp_path / "mine", RECIPE, overwrite=False)
    write_model(tmp_path / "done", OTHER)
    (tmp_path / "done" / "feature_cache").mkdir()
    with pytest.raises(OutputFolderError, match=r"a finished model of another recipe \(differs in seed\)"):
        check_new_run(tmp_path / "done", RECIPE, overwrite=False)
    messages = []
    check_new_run(tmp_path / "done", RECIPE, overwrite=True, log=messages.append)
    assert [path.name for path in (tmp_path / "done").iterdir()] == ["feature_cache"]  # the cache is keyed itself
    assert "deleting config.json, metrics.json, model.safetensors" in messages[0]


def test_publishing_swaps_in_the_whole_model_and_keeps_the_checkpoints(tmp_path):
    folder = tmp_path / "model"
    write_model(folder, RECIPE, b"old")
    write_checkpoint(folder, 13)
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / "notes.txt").write_text("mine")
    write_model(staging_folder(folder), RECIPE, b"new")
    publish_model_folder(folder, RECIPE)
    assert (folder / "model.safetensors").read_bytes() == b"new"
    assert (folder / "checkpoint-13" / "optimizer.pt").read_bytes() == b"x" and (folder / "notes.txt").is_file()
    assert not (folder / "training_args.bin").exists() and not staging_folder(folder).exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_publishing_over_another_recipe_drops_its_other_files(tmp_path):
    folder = tmp_path / "model"
    write_model(folder, OTHER, b"old")
    (folder / "repeated_runs.json").write_text("{}")  # a card companion of the old model
    write_model(staging_folder(folder), RECIPE, b"new")
    publish_model_folder(folder, RECIPE)
    assert not (folder / "repeated_runs.json").exists()
    assert finished_model_recipe(folder) == RECIPE


@pytest.mark.parametrize("crash_point", ["while writing the new model", "between the two renames"])
def test_an_interrupted_publish_is_completed_or_undone(tmp_path, crash_point):
    folder = tmp_path / "model"
    write_model(folder, OTHER, b"old")
    write_checkpoint(folder, 13)
    staging = staging_folder(folder)
    write_model(staging, RECIPE, b"new")
    if crash_point == "while writing the new model":
        (staging / "metrics.json").unlink()
        expected = b"old"
    else:
        os.link(folder / "checkpoint-13" / "optimizer.pt", staging / "optimizer-link")  # by-products linked over
        os.replace(folder, tmp_path / ".model.previous")
        expected = b"new"
    recover_interrupted_publish(folder, log=lambda message: None)
    assert (folder / "model.safetensors").read_bytes() == expected
    assert finished_model_recipe(folder) is not None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_a_second_training_into_a_held_folder_is_refused_naming_the_first(tmp_path):
    """Two runs into one --output_dir: the second stops before touching it, naming the first one's process."""
    from esc50_hf.training.arguments import parse_args
    from esc50_hf.training.run_folder import OutputFolderError, hold_output_folder
    from esc50_hf.training.trainer import train

    folder = tmp_path / "model"
    with hold_output_folder(folder):
        with pytest.raises(OutputFolderError, match=f"process {os.getpid()}\\) is writing {folder}"):
            train(parse_args(["--output_dir", str(folder), "--data_dir", str(tmp_path / "nowhere")]))
        assert not folder.exists()
    with hold_output_folder(folder):  # released when the first run ends
        pass
