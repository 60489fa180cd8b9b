"""Cross-validation (`train.py --cv`): each fold trained once into its own folder, resumable, with a
distillation teacher check before the first fold trains, and the summary (`cv_results.json`) over the folds."""

import json
from pathlib import Path
from typing import Any

from accelerate import PartialState

from ..data.esc50 import FOLDS, training_folds
from ..evaluation.metrics import spread
from . import print_main_process
from .arguments import TrainingSetup, build_feature_extractor
from .distillation import TeacherError, changed_teachers, load_teachers
from .model_folder import CROSS_VALIDATION_FILE, METRICS_FILE, ModelFolder, finished_model_recipe
from .recipe import fingerprint
from .run_folder import OutputFolderError, describe_difference, newest_checkpoint_of, stored_recipe_state
from .trainer import train
from .transfer import with_starting_model


def cross_validate(setup: TrainingSetup) -> dict[str, Any]:
    """The literature's protocol: train five times, each fold once as validation; mean ± std.

    Runs the folds in `--cv_folds` under `<output_dir>/fold-<k>`: a fold whose folder holds a
    finished model of this recipe is done and kept, one with checkpoints of this recipe resumes
    from the newest complete one, so an interrupted CV picks up where it stopped and disjoint fold
    lists can run side by side. A fold folder holding another recipe's work stops the run (unless
    `--overwrite_output_dir`). `cv_results.json` summarises every finished fold in `output_dir`,
    rewritten after each fold (an empty `cv_folds` only rewrites it).
    """
    if setup.data.train_folds is not None:
        raise ValueError("--cv trains each fold on all the other folds: leave --train_folds unset")
    root = Path(setup.training.output_dir)
    redo = _folds_taught_by_other_teachers(setup, root)  # checked before the first fold trains
    fold_setups = {fold: _fold_setup(setup, root, fold) for fold in setup.data.cv_folds}  # so are starting models
    for fold, fold_setup in fold_setups.items():
        fold_dir = root / f"fold-{fold}"
        recipe = fold_setup.recipe()
        finished = finished_model_recipe(fold_dir)
        if finished is not None and fingerprint(finished) == fingerprint(recipe) and fold not in redo:
            print_main_process(f"fold {fold}: finished in {fold_dir}, kept")
            continue
        if finished is not None and not setup.training.overwrite_output_dir:
            raise OutputFolderError(
                f"{fold_dir} holds a finished model of {describe_difference(finished, recipe)}; choose another "
                "--output_dir or pass --overwrite_output_dir to train this fold again"
            )
        resumable = fold not in redo and newest_checkpoint_of(fold_dir, recipe) is not None
        train(fold_setup.replace(resume_from_checkpoint="latest" if resumable else None))
        write_cross_validation_summary(root)
    summary = write_cross_validation_summary(root)
    if summary:
        print(json.dumps(summary["summary"], indent=2))
    return summary


def _fold_setup(setup: TrainingSetup, root: Path, fold: int) -> TrainingSetup:
    """One fold's run of a cross-validation: validates on `fold`, writes `root/fold-<fold>`, shares a feature cache;
    its starting model (`{validation_fold}` in `--model_name_or_path` names one per fold) read and checked, its
    options in the recipe that decides whether a finished fold is kept."""
    return with_starting_model(
        setup.replace(
            validation_fold=fold,
            output_dir=str(root / f"fold-{fold}"),
            feature_cache_dir=setup.data.feature_cache_dir or str(root / "feature_cache"),
            push_to_hub=False,
        )
    )


def _folds_taught_by_other_teachers(setup: TrainingSetup, root: Path) -> set[int]:
    """Under `--cv` with teachers: loads and checks every fold's teachers, then finds the folds whose finished model or
    newest checkpoint of this recipe learned from other weights of a teacher than it holds now (retrained since).
    Those folds are trained again from the start with `--overwrite_output_dir`; without it, the run stops here,
    before any fold trains, naming them."""
    if not setup.training.teacher_models:
        return set()
    extractor = build_feature_extractor(setup.model)
    stale = {}
    for fold in setup.data.cv_folds:
        teachers = load_teachers(setup.training.teacher_models, fold, training_folds(fold), extractor)
        fold_dir = root / f"fold-{fold}"
        finished = ModelFolder(fold_dir)
        if finished.complete:
            recorded, where = finished.teachers, "its finished model"
        else:
            newest = newest_checkpoint_of(fold_dir, _fold_setup(setup, root, fold).recipe())
            recorded = (stored_recipe_state(newest.path) or {}).get("teachers") if newest else None
            where = newest.path.name if newest else ""
        changed = changed_teachers(recorded, teachers)
        if changed:
            stale[fold] = f"fold {fold} ({where}: {', '.join(changed)})"
    if stale and not setup.training.overwrite_output_dir:
        raise TeacherError(
            f"--teacher_models: {'; '.join(stale.values())} learned from other weights of these teachers than they "
            "hold now (retrained or replaced since). Restore those teachers, or pass --overwrite_output_dir to train "
            "those folds again with the teachers as they are."
        )
    return set(stale)


def write_cross_validation_summary(root: Path) -> dict[str, Any]:
    """Summarises the finished folds under `root` into `root/cv_results.json` (main process; others get {})."""
    summary: dict[str, Any] = {}
    if PartialState().is_main_process:
        finished = {fold: ModelFolder(root / f"fold-{fold}").optional(METRICS_FILE) for fold in FOLDS}
        per_fold = {fold: metrics for fold, metrics in finished.items() if metrics is not None}
        summary = summarize_cross_validation(per_fold)
        root.mkdir(parents=True, exist_ok=True)
        (root / CROSS_VALIDATION_FILE).write_text(json.dumps(summary, indent=2))
    PartialState().wait_for_everyone()
    return summary


def summarize_cross_validation(per_fold: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std (population) of accuracy and macro-F1 over the finished folds, and which are missing."""
    summary: dict[str, Any] = {"folds_done": sorted(per_fold), "folds_missing": sorted(set(FOLDS) - set(per_fold))}
    summary.update(spread(per_fold.values()))
    return {"summary": summary, "folds": {str(fold): result for fold, result in sorted(per_fold.items())}}
