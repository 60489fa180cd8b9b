"""The one reader of a model folder written by `train.py`: its configs, metrics and recipe, and whether it is finished.

A finished folder holds the weights and configs (`config.json`, `model.safetensors`, `preprocessor_config.json`) and
the record of the run that made them: `training_config.json` (the recipe) and `metrics.json` (its scores, and the
teachers a distilled student learned from, each with the digest of the weights it had). Beside them may lie results
measured elsewhere (`baseline_metrics.json`, `cv_results.json`, ...: `optional`) and, for a second stage, the recipe
and time of the folder it started from (`starting_model_recipe.json`, `first_stage_seconds`); for a merged model,
its members (`run_seed`, `model_form`). Everything here is read on demand, so a folder being written, or only partly
there, can still be asked what it holds.

Every part of the project that reads such a folder reads it here: resuming and publishing (`run_folder`),
cross-validation's finished folds and teacher checks, the teachers and starting models (`distillation`, `transfer`:
a Hub model is fetched whole by `local_model_folder`), merging (`merge`), the model card (`reports`) and
`bench/recipes.py`.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..data.esc50 import training_folds
from ..errors import Esc50HfError
from .recipe import translate_legacy_recipe

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
RECIPE_FILE = "training_config.json"
METRICS_FILE = "metrics.json"
# What makes a finished model folder: weights and configs, and the record of the run that made them.
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, "preprocessor_config.json", RECIPE_FILE, METRICS_FILE)
# Results measured outside the folder's own run, stored beside the weights (`reports.attach_companion_results`), so
# that the card can be re-rendered.
BASELINE_FILE = "baseline_metrics.json"
CROSS_VALIDATION_FILE = "cv_results.json"
REPEATED_RUNS_FILE = "repeated_runs.json"
SELECTION_FILE = "recipe_selection.json"
# A second stage's record of its first: the recipe of the model it started from (`--model_name_or_path`, a folder),
# and (metrics.json's key) the seconds that model took to train, its own first stages included.
STARTING_RECIPE_FILE = "starting_model_recipe.json"
FIRST_STAGE_SECONDS = "first_stage_train_seconds"
# What every message about a folder that is not one asks for.
PASS_A_MODEL_FOLDER = "pass a model folder written by train.py"


class ModelFolderError(Esc50HfError, ValueError):
    """A folder that lacks a file of a model folder written by `train.py`, or holds it damaged; the message names the
    folder and the file."""


@dataclass(frozen=True)
class ModelFolder:
    """A model folder written by `train.py`, each file read when first asked for (and kept).

    Args:
        path (`Path`): The folder; it need not exist (`missing` then names every file).
    """

    path: Path

    @property
    def missing(self) -> list[str]:
        """The files of a finished model (`MODEL_FILES`) that the folder lacks, in that order."""
        return [name for name in MODEL_FILES if not (self.path / name).is_file()]

    @property
    def complete(self) -> bool:
        """Whether the folder holds a finished model: every file of `MODEL_FILES`, and a recipe that can be read (a
        folder is published whole, so a complete one is all of one run)."""
        if self.missing:
            return False
        try:
            _ = self.recipe
        except ModelFolderError:
            return False
        return True

    def require(self, *names: str) -> "ModelFolder":
        """Checks that the folder holds each of `names`; returns it.

        Args:
            *names (`str`): File names, checked in this order.

        Raises:
            `ModelFolderError`: naming the folder and the first of `names` it lacks.
        """
        for name in names:
            if not (self.path / name).is_file():
                raise ModelFolderError(f"{self.path} has no {name}: {PASS_A_MODEL_FOLDER}")
        return self

    @cached_property
    def recipe(self) -> dict[str, Any]:
        """The training recipe (`training_config.json`), keys of older versions translated to today's names."""
        return translate_legacy_recipe(self._read(RECIPE_FILE))

    @property
    def esc50_folds(self) -> list[int] | None:
        """The ESC-50 folds the model trained on (its recipe's `validation_fold` and `train_folds`); `None` for a
        model of the user's own sounds (`train_dir` or `dataset_name`), whose folds are not ESC-50's."""
        recipe = self.recipe
        if is_own_sounds(recipe):
            return None
        return training_folds(recipe["validation_fold"], recipe.get("train_folds"))

    def folds_beyond(self, train_folds: Sequence[int]) -> list[int]:
        """The ESC-50 folds the model trained on that are not in `train_folds` (sorted; none for own sounds): what it
        learned there would reach the score of a run that validates on one of them."""
        return sorted(set(self.esc50_folds or ()) - set(train_folds))

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """What the run measured of its final model (`metrics.json`)."""
        return self._read(METRICS_FILE)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The model's configuration (`config.json`) as stored."""
        return self._read(CONFIG_FILE)

    @property
    def teachers(self) -> list[dict[str, str]] | None:
        """The teachers the model learned from, as `metrics.json` recorded them (`Teacher.record()`: name, recipe
        fingerprint, weights digest); None for a model trained without teachers, or before digests were recorded."""
        return self.metrics.get("teachers")

    @cached_property
    def weights_digest(self) -> str:
        """A short SHA-256 of `model.safetensors`: what a student records of its teacher, to notice a retrained one."""
        self.require(WEIGHTS_FILE)
        return hashlib.sha256((self.path / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]

    def optional(self, name: str) -> dict[str, Any] | None:
        """The JSON object in the file `name` of the folder, or None when there is no such file.

        Args:
            name (`str`): A file beside the weights, e.g. `cv_results.json`.

        Raises:
            `ModelFolderError`: the file is there but is not a JSON object.
        """
        return self._read(name) if (self.path / name).is_file() else None

    def _read(self, name: str) -> dict[str, Any]:
        self.require(name)
        path = self.path / name
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
            raise ModelFolderError(f"{path} cannot be read as JSON ({error}): {PASS_A_MODEL_FOLDER}") from None
        if not isinstance(value, dict):
            raise ModelFolderError(f"{path} holds a {type(value).__name__}, not a JSON object: {PASS_A_MODEL_FOLDER}")
        return value


def read_model_folder(path: str | Path, require: tuple[str, ...] = MODEL_FILES) -> ModelFolder:
    """The model folder at `path`, checked to hold the files `require` names.

    Args:
        path (`str` or `Path`): The folder.
        require (`tuple[str]`, *optional*, defaults to `MODEL_FILES`): The files it must hold, checked in this order;
            the default asks for a finished model.

    Raises:
        `ModelFolderError`: naming the folder and the first required file it lacks.
    """
    return ModelFolder(Path(path)).require(*require)


def local_model_folder(name: str) -> Path:
    """The local folder of the model `name`: the folder itself, or the whole Hub repository `name` downloaded into the
    Hugging Face cache (a snapshot: the record of its run, `training_config.json`, comes with the weights, which
    `from_pretrained` alone would not fetch).

    Args:
        name (`str`): A folder written by `train.py`, or a Hub id (`OWNER/NAME`).

    Raises:
        `ModelFolderError`: `name` is neither a folder nor a Hub model that could be downloaded.
    """
    from huggingface_hub import snapshot_download

    from ..publish import is_hub_id

    if Path(name).is_dir():
        return Path(name)
    if is_hub_id(name):
        try:
            return Path(snapshot_download(name))
        except Exception as error:  # offline, not found, no access: one message for all
            raise ModelFolderError(
                f"no model folder at {name!r}, and no Hub model of that id could be downloaded "
                f"({type(error).__name__}: {error})"
            ) from None
    raise ModelFolderError(f"no model folder at {name!r} (a finished train.py output or a Hub id)")


def finished_model_recipe(path: str | Path) -> dict[str, Any] | None:
    """The recipe of the finished model at `path`, or None if it holds none (or only part of one, or a recipe that
    cannot be read).

    Args:
        path (`str` or `Path`): The folder.
    """
    folder = ModelFolder(Path(path))
    return folder.recipe if folder.complete else None


def is_own_sounds(recipe: dict[str, Any]) -> bool:
    """Whether a recipe trains on the user's own sounds (`train_dir` or `dataset_name`) rather than ESC-50."""
    return bool(recipe.get("train_dir") or recipe.get("dataset_name"))


def run_seed(recipe: dict[str, Any], metrics: dict[str, Any]) -> int | str:
    """A training's seed; a merged model's, its networks' seeds joined ("0+3", `merged_from` of its metrics)."""
    members = metrics.get("merged_from")
    return "+".join(str(member["seed"]) for member in members) if members else recipe["seed"]


def model_form(metrics: dict[str, Any]) -> str:
    """How a model is made beyond its recipe: one network, or several merged, from one shared first stage or each
    from its own (`merged_from` of its metrics). Repetitions of a model are made in the same form."""
    members = metrics.get("merged_from")
    if not members:
        return "1 network"
    starts = [member.get("model_name_or_path") for member in members]
    shared = None not in starts and len(set(starts)) < len(starts)
    return f"{len(members)} networks" + (" from one first stage" if shared else "")


def starting_folder(recipe: dict[str, Any]) -> ModelFolder | None:
    """The model folder a recipe started from (`model_name_or_path`), when it is a local folder with a recipe of its
    own; None for a training from scratch, from a Hub model, or from a folder that is gone."""
    start = recipe.get("model_name_or_path")
    folder = ModelFolder(Path(start)) if start and Path(start).is_dir() else None
    return folder if folder is not None and (folder.path / RECIPE_FILE).is_file() else None


def training_seconds(metrics: dict[str, Any]) -> float:
    """A run's training seconds (`train_seconds`); for a run resumed from a checkpoint, its last process's seconds
    scaled to all its epochs: an estimate, as the earlier processes' time is not recorded."""
    seconds, epochs = metrics.get("train_seconds", 0.0), metrics.get("epochs_in_this_process")
    if metrics.get("resumed_from") and epochs and metrics.get("epochs"):
        return round(seconds * metrics["epochs"] / epochs, 1)
    return seconds


def first_stage_seconds(recipe: dict[str, Any], metrics: dict[str, Any] | None = None) -> float | None:
    """The seconds the model a training started from took to train (`training_seconds`), its own first stages
    included: `metrics`' record (`FIRST_STAGE_SECONDS`) when it has one, else read from that model's folder
    (`starting_folder`); None when neither says (trained from scratch, from a Hub model, or the folder is gone).

    Args:
        recipe (`dict`): The training's recipe (`training_config.json`).
        metrics (`dict`, *optional*): Its metrics.json, when it has been written.
    """
    if metrics and FIRST_STAGE_SECONDS in metrics:
        return metrics[FIRST_STAGE_SECONDS]
    start = starting_folder(recipe)
    start_metrics = start.optional(METRICS_FILE) if start is not None else None
    if not start_metrics or "train_seconds" not in start_metrics:
        return None
    return round(training_seconds(start_metrics) + (first_stage_seconds(start.recipe, start_metrics) or 0.0), 1)


__all__ = [
    "MODEL_FILES",
    "ModelFolder",
    "ModelFolderError",
    "local_model_folder",
    "finished_model_recipe",
    "read_model_folder",
    "first_stage_seconds",
    "is_own_sounds",
    "model_form",
    "run_seed",
    "starting_folder",
    "training_seconds",
]
