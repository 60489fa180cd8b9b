"""Crash-safe output folders: recipe fingerprints in checkpoints, safe resume, and an atomic final model folder.

A training run writes into one folder: `checkpoint-<step>/` while it trains, then the final model
(weights, configs, metrics, card) beside them. A `kill -9` can strike at any point, so:

- every checkpoint's `trainer_state.json` carries the fingerprint of its run's recipe
  (`RecipeFingerprint`, a stateful Trainer callback); a checkpoint counts only if complete (every
  file there and non-empty, `trainer_state.json` readable) and of the same recipe;
- a new run refuses a folder that holds a finished model or another run's checkpoints, unless told
  to overwrite it;
- the final model is written into a temporary sibling folder, then swapped in by renames
  (`publish_model_folder`), so weights, configs, metrics and card always come from the same run.
"""

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..errors import Esc50HfError
from .model_folder import CONFIG_FILE, WEIGHTS_FILE, finished_model_recipe
from .recipe import fingerprint, recipe_differences

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Written by every checkpoint save (rng_state.pth, or rng_state_<rank>.pth under DDP, is checked apart).
CHECKPOINT_FILES = ("trainer_state.json", WEIGHTS_FILE, CONFIG_FILE, "optimizer.pt", "scheduler.pt")
# What makes a finished model folder is `model_folder.MODEL_FILES`; `finished_model_recipe` reads one.
# The moving average of the weights in a checkpoint (written by training.WeightAverage).
EMA_FILE = "ema_model.safetensors"
# Training by-products that stay in the folder when its final model is replaced.
BY_PRODUCTS = re.compile(r"^(checkpoint-\d+|runs|feature_cache)$")


class OutputFolderError(Esc50HfError, RuntimeError):
    """The output folder holds work that this run must not resume or overwrite."""


@contextmanager
def hold_output_folder(folder: Path) -> Iterator[None]:
    """Holds an exclusive lock on `folder` for one training run: a second run into the same folder is refused
    (naming the first one's process id) instead of both writing there. The lock is `.<name>.lock` beside the
    folder (the folder itself is swapped when the model is published); the operating system releases it when the
    process ends, however it ends.

    Args:
        folder (`Path`): The run's `output_dir`.

    Raises:
        `OutputFolderError`: another process holds the folder.
    """
    folder = Path(folder)
    created = [parent for parent in (folder.parent, *folder.parent.parents) if not parent.exists()]  # deepest first
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}.lock"
    try:
        with _locked(lock, folder):
            yield
    except BaseException:
        if created:  # a run that failed leaves no folders of its own behind (a wrong --data_dir, say)
            lock.unlink(missing_ok=True)
            for parent in created:
                try:
                    parent.rmdir()
                except OSError:
                    break
        raise


@contextmanager
def _locked(lock: Path, folder: Path) -> Iterator[None]:
    import fcntl

    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputFolderError(
                f"Another training (process {holder}) is writing {folder}: wait for it to end, or give this run "
                "another --output_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RecipeFingerprint(TrainerCallback, ExportableState):
    """Stores the run's recipe and its fingerprint in every checkpoint's `trainer_state.json`.

    The Trainer writes a stateful callback's `state()` into `trainer_state.json`, which it writes
    last in a checkpoint, so a checkpoint with a readable state has its fingerprint.
    """

    def __init__(self, fingerprint: str, recipe: dict[str, Any], teachers: list[dict[str, str]] | None = None) -> None:
        self.fingerprint = fingerprint
        self.recipe = recipe
        self.teachers = teachers  # distillation: each teacher's name and weights digest, checked on resume

    def state(self) -> dict[str, Any]:
        args = {"fingerprint": self.fingerprint, "recipe": self.recipe}
        if self.teachers:
            args["teachers"] = self.teachers
        return {"args": args, "attributes": {}}

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        # A state resumed from a checkpoint of an older version has no entry yet; the Trainer expects one.
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())


@dataclass
class Checkpoint:
    path: Path
    step: int
    problem: str | None = None  # why it cannot be resumed: incomplete, or another recipe
    fingerprint: str | None = None
    recipe: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return self.fingerprint is not None


def checkpoints(folder: Path) -> list[Checkpoint]:
    """The folder's `checkpoint-<step>` folders, newest first, each checked for completeness."""
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = CHECKPOINT.match(path.name)
            if match and path.is_dir():
                found.append(_inspect_checkpoint(path, int(match.group(1))))
    return sorted(found, key=lambda checkpoint: checkpoint.step, reverse=True)


def stored_recipe_state(checkpoint: Path) -> dict[str, Any] | None:
    """What `RecipeFingerprint` stored in a checkpoint (`fingerprint`, `recipe`, and `teachers` when the run had
    any); None for an unreadable state or one of a version before the fingerprint."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        return state["stateful_callbacks"][RecipeFingerprint.__name__]["args"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None


def _inspect_checkpoint(path: Path, step: int) -> Checkpoint:
    for name in CHECKPOINT_FILES:
        if not (path / name).is_file():
            return Checkpoint(path, step, f"incomplete: no {name}")
        if (path / name).stat().st_size == 0:
            return Checkpoint(path, step, f"incomplete: {name} is empty")
    if not any(rng.stat().st_size > 0 for rng in path.glob("rng_state*.pth")):
        return Checkpoint(path, step, "incomplete: no random-generator state")
    stored = stored_recipe_state(path)
    if stored is None:
        return Checkpoint(path, step, "no recipe fingerprint in trainer_state.json (unreadable or older version)")
    if stored["recipe"].get("ema_decay") and not (path / EMA_FILE).is_file():
        return Checkpoint(path, step, f"incomplete: no {EMA_FILE} (the recipe averages the weights)")
    return Checkpoint(path, step, None, stored["fingerprint"], stored["recipe"])


def describe_difference(recipe: dict[str, Any] | None, mine: dict[str, Any]) -> str:
    if recipe is None:
        return "another recipe"
    differences = recipe_differences(recipe, mine)
    return f"another recipe (differs in {', '.join(differences)})" if differences else "another recipe"


def newest_checkpoint_of(folder: Path, recipe: dict[str, Any]) -> Checkpoint | None:
    """The newest complete checkpoint of `recipe` in `folder`, if any (what `latest` would resume); silent."""
    mine = fingerprint(recipe)
    return next((item for item in checkpoints(folder) if item.complete and item.fingerprint == mine), None)


def choose_checkpoint(folder: Path, recipe: dict[str, Any], log=print) -> Path | None:
    """`--resume_from_checkpoint latest`: the newest complete checkpoint of this recipe; prints the choice.

    Returns None (start from scratch) when the folder only holds incomplete checkpoints, i.e. the run
    was interrupted before its first complete save. Raises `OutputFolderError` when it holds none
    at all, or only other recipes' checkpoints.
    """
    mine = fingerprint(recipe)
    found = checkpoints(folder)
    if not found:
        raise OutputFolderError(f"No checkpoint to resume from in {folder}")
    skipped = []
    for checkpoint in found:
        if checkpoint.complete and checkpoint.fingerprint != mine:
            checkpoint.problem = describe_difference(checkpoint.recipe, recipe)
        if checkpoint.problem is None:
            notes = "".join(f"; skipped {item.path.name}: {item.problem}" for item in skipped)
            log(f"Resuming from {checkpoint.path}{notes}")
            return checkpoint.path
        skipped.append(checkpoint)
    summary = "; ".join(f"{item.path.name}: {item.problem}" for item in skipped)
    if all(not item.complete for item in skipped):
        log(f"No complete checkpoint in {folder} ({summary}); training from the start")
        return None
    raise OutputFolderError(
        f"No checkpoint of this recipe to resume in {folder} ({summary}). Resume with the options of that run, "
        "choose another --output_dir, or pass --overwrite_output_dir to discard it."
    )


def check_resumable(checkpoint: Path, recipe: dict[str, Any]) -> None:
    """An explicitly named checkpoint must be complete and of this recipe."""
    match = CHECKPOINT.match(checkpoint.name)
    found = _inspect_checkpoint(checkpoint, int(match.group(1)) if match else 0)
    if found.complete and found.fingerprint != fingerprint(recipe):
        found.problem = describe_difference(found.recipe, recipe)
    if found.problem is not None:
        raise OutputFolderError(f"Cannot resume from {checkpoint}: {found.problem}")


def check_new_run(folder: Path, recipe: dict[str, Any], overwrite: bool, log=print) -> None:
    """A run that does not resume refuses a folder holding a finished model or complete checkpoints.

    With `overwrite`, they (and the rest of the folder but the feature cache) are deleted first.
    Call on the main process only.
    """
    finished = finished_model_recipe(folder)
    complete = [checkpoint for checkpoint in checkpoints(folder) if checkpoint.complete]
    if finished is None and not complete:
        return
    mine = fingerprint(recipe)
    if finished is not None:
        held = "a finished model" + (
            "" if fingerprint(finished) == mine else f" of {describe_difference(finished, recipe)}"
        )
        hint = ""
    else:
        other = [checkpoint for checkpoint in complete if checkpoint.fingerprint != mine]
        held = (
            f"checkpoints of {describe_difference(other[0].recipe, recipe)}" if other else "checkpoints of this recipe"
        )
        hint = "" if other else "--resume_from_checkpoint latest to continue them, "
    if not overwrite:
        raise OutputFolderError(
            f"{folder} already holds {held}. Pass {hint}another --output_dir, or --overwrite_output_dir to delete it."
        )
    removed = sorted(path.name for path in folder.iterdir() if path.name != "feature_cache")
    log(f"--overwrite_output_dir: deleting {', '.join(removed)} from {folder}")
    for name in removed:
        _remove(folder / name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def staging_folder(folder: Path) -> Path:
    """Where the final model is written before it replaces `folder`'s content: a hidden sibling."""
    return folder.parent / f".{folder.name}.staging"


def _previous_folder(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.previous"


def publish_model_folder(folder: Path, recipe: dict[str, Any]) -> None:
    """Makes the complete model in `staging_folder(folder)` the content of `folder`, atomically.

    The staging folder receives (as hard links, or copies across file systems) the training
    by-products of `folder` (checkpoints, TensorBoard runs, feature cache) and, unless `folder`
    held a finished model of another recipe, the other files kept there; then two renames swap
    it in. Whatever the moment of a crash, `folder` holds either the old content or the new
    complete one; `recover_interrupted_publish` finishes or undoes the swap at the next start.
    """
    staging, previous = staging_folder(folder), _previous_folder(folder)
    if folder.is_dir():
        old_model = finished_model_recipe(folder)
        keep_others = old_model is None or fingerprint(old_model) == fingerprint(recipe)
        for path in folder.iterdir():
            if (staging / path.name).exists() or path.name == "training_args.bin":
                continue  # replaced by the new model's file, or no longer kept
            if not (BY_PRODUCTS.match(path.name) or keep_others):
                continue  # the previous model's files (plots, card companions) describe another recipe
            if path.is_dir():
                shutil.copytree(path, staging / path.name, copy_function=_link_or_copy, symlinks=True)
            else:
                _link_or_copy(path, staging / path.name)
        os.replace(folder, previous)
    os.replace(staging, folder)
    if previous.exists():
        shutil.rmtree(previous)


def _link_or_copy(source: str | Path, destination: str | Path) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, destination)


def recover_interrupted_publish(folder: Path, log=print) -> None:
    """Completes or rolls back a `publish_model_folder` that a crash interrupted. Main process only."""
    staging, previous = staging_folder(folder), _previous_folder(folder)
    if previous.exists():
        if not folder.exists():  # crashed between the two renames: staging is complete
            os.replace(staging, folder)
            log(f"Finished publishing the model folder {folder} (a previous run stopped between two renames)")
        shutil.rmtree(previous)
    if staging.exists():  # crashed while writing the new model: the old folder is intact
        shutil.rmtree(staging)
