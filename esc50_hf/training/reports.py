"""What a training run leaves beside the weights: metrics, per-class report, plots and the model card."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt
import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.esc50 import DEFAULT_HUB_DATASET_ID, fold_config_name
from ..errors import Esc50HfError
from ..evaluation.calibration import RELIABILITY_PLOT
from ..evaluation.metrics import spread
from ..evaluation.plots import save_compact_png
from ..model.labels import model_labels
from ..paths import TEMPLATES_DIR
from ..publish import is_hub_id
from .model_folder import (
    BASELINE_FILE,
    CONFIG_FILE,
    CROSS_VALIDATION_FILE,
    FIRST_STAGE_SECONDS,
    METRICS_FILE,
    RECIPE_FILE,
    REPEATED_RUNS_FILE,
    SELECTION_FILE,
    STARTING_RECIPE_FILE,
    WEIGHTS_FILE,
    ModelFolder,
    first_stage_seconds,
    is_own_sounds,
    model_form,
    read_model_folder,
    run_seed,
    starting_folder,
)
from .recipe import repetition_differences

CALIBRATION_TEST_FILE = "calibration_test.json"  # the test fold's calibration figures (`esc50-hf calibrate`)
UNKNOWN_RESULTS_FILE = "unknown_results.json"  # the unknown answer's figures (`bench/unknown.py`)

MODEL_CARD_TEMPLATE = TEMPLATES_DIR / "model_card.md"
OWN_CLASSES_CARD_TEMPLATE = TEMPLATES_DIR / "own_model_card.md"
# What a card is rendered from: the run's recipe and its metrics (and whatever companions lie beside them).
CARD_SOURCES = (RECIPE_FILE, METRICS_FILE)
# Kept per candidate from `bench/recipes.py`'s recipes.json when attached to a card.
SELECTION_KEYS = (
    "candidate", "train_folds", "validation_fold", "device", "seeds", "parameters", "gflops", "seconds_per_epoch",
    "accuracy", "f1", "last_weights_accuracy", "teachers",
)  # fmt: skip
# Headline numbers kept from a training run's metrics.json when it is attached to another folder's card.
RUN_SUMMARY_KEYS = (
    "accuracy", "f1", "epochs", "seconds_per_epoch", "torch_threads_per_process", "processes", "hardware"
)  # fmt: skip


class CompanionResultsError(Esc50HfError, ValueError):
    """Results given to a model card do not belong on it: a run of another recipe or split, or a selection without
    a candidate compared on the inner folds."""


def write_model_folder_reports(
    folder: Path,
    model,
    scores: dict[str, Any],
    recipe: dict[str, Any],
    log_history: list[dict[str, Any]],
    run_facts: dict[str, Any],
) -> dict[str, Any]:
    """Writes the reports of the final model's validation `scores` (`evaluation.scoring.score_predictions`), the recipe
    and the model card; `run_facts` (timing, hardware, how it was scored) go into metrics.json as they are."""
    epochs = [entry for entry in log_history if "eval_accuracy" in entry]
    own = is_own_sounds(recipe)  # a model of the user's own sounds: its card names the model it started from
    if not own and "merged_from" not in run_facts:  # a second stage counts its first stage's time (a merge sums its
        seconds = first_stage_seconds(recipe)  # members' first stages itself)
        run_facts = run_facts if seconds is None else {**run_facts, FIRST_STAGE_SECONDS: seconds}
    results = {
        "validation_fold": recipe["validation_fold"],
        "accuracy": scores["accuracy"],
        "f1": scores["f1"],
        "num_clips": scores["num_clips"],
        "epochs": recipe["num_train_epochs"],
        **run_facts,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "most_confused_pairs": scores["most_confused_pairs"],
        "per_epoch_validation": [
            {"epoch": e["epoch"], "accuracy": e["eval_accuracy"], "f1": e["eval_f1"]} for e in epochs
        ],
    }
    (folder / METRICS_FILE).write_text(metrics_json(results))
    (folder / RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    starting = None if own else _starting_recipe(recipe, run_facts.get("merged_from"))
    if starting is None:  # trained from scratch, from a Hub model (its own card has its recipe), or own sounds
        (folder / STARTING_RECIPE_FILE).unlink(missing_ok=True)
    else:  # without it, a second stage's recipe names a folder of the machine it trained on, and no way to make it
        (folder / STARTING_RECIPE_FILE).write_text(json.dumps(starting, indent=2))
    write_per_class_report(folder / "per_class_report.csv", scores["per_class"])
    plot_confusion_matrix(
        np.array(scores["confusion_matrix"]), folder / "confusion_matrix.png", list(scores["per_class"])
    )
    if log_history:  # a merged model (`training.merge`) has none of its own
        plot_training_curves(log_history, folder / "training_curves.png")
    render_model_card(folder, results, recipe)
    return results


def _starting_recipe(recipe: dict[str, Any], merged_from: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The recipe of the model a training started from: a merge's first member's record of it, else read from the
    starting folder (`starting_folder`)."""
    if merged_from:
        kept = ModelFolder(Path(merged_from[0]["path"])).optional(STARTING_RECIPE_FILE)
        if kept is not None:
            return kept
    start = starting_folder(recipe)
    return start.recipe if start is not None else None


def metrics_json(results: dict[str, Any]) -> str:
    """`metrics.json`'s text: indented JSON, each row of `per_epoch_validation` on one line (a shipped model folder
    has a size budget, and two hundred epochs of five lines each are most of this file)."""
    rows = results.get("per_epoch_validation")
    if not rows:
        return json.dumps(results, indent=2)
    head = json.dumps({key: value for key, value in results.items() if key != "per_epoch_validation"}, indent=2)
    lines = ",\n".join(f"    {json.dumps(row, separators=(',', ':'))}" for row in rows)
    return f'{head[:-2]},\n  "per_epoch_validation": [\n{lines}\n  ]\n}}'


def write_per_class_report(path: Path, per_class: dict[str, dict[str, float]]) -> None:
    lines = ["class,precision,recall,f1,support"]
    lines += [
        f"{name},{v['precision']:.4f},{v['recall']:.4f},{v['f1']:.4f},{v['support']}" for name, v in per_class.items()
    ]
    path.write_text("\n".join(lines) + "\n")


def plot_confusion_matrix(matrix: np.ndarray, path: Path, labels: list[str]) -> None:
    """The validation confusion matrix with the model's class names, sized to their number.

    Args:
        matrix (`np.ndarray`): Counts, true class rows, predicted class columns.
        path (`Path`): The PNG to write.
        labels (`list[str]`): The name of each class, in id order.
    """
    side = min(13.0, 3.0 + 0.2 * len(labels))
    font = 7 if len(labels) > 20 else 9
    figure, axes = plt.subplots(figsize=(side, side * 12 / 13))
    image = axes.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=90, fontsize=font)
    axes.set_yticks(ticks, labels, fontsize=font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix (validation clips)")
    for row, column in zip(*np.nonzero(matrix)):
        colour = "white" if matrix[row, column] > matrix.max() / 2 else "black"
        axes.text(column, row, matrix[row, column], ha="center", va="center", fontsize=font - 2, color=colour)
    figure.colorbar(image, fraction=0.046, pad=0.04)
    figure.tight_layout()
    save_compact_png(figure, path)
    plt.close(figure)


def plot_training_curves(log_history: list[dict[str, Any]], path: Path) -> None:
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e]
    evals = [
        (e["epoch"], e["eval_loss"], e["eval_accuracy"], e["eval_f1"]) for e in log_history if "eval_accuracy" in e
    ]
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        loss_axes.plot(*zip(*train), label="train loss (mixup targets)")
    if evals:
        epochs, losses, accuracy, f1 = zip(*evals)
        loss_axes.plot(epochs, losses, label="validation loss")
        metric_axes.plot(epochs, accuracy, label="accuracy")
        metric_axes.plot(epochs, f1, label="macro-F1")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_title("loss")
    if train or evals:
        loss_axes.legend()
    metric_axes.set_xlabel("epoch")
    metric_axes.set_ylim(0, 1)
    metric_axes.set_title("validation fold (monitoring only; the final model is reported)")
    if evals:
        metric_axes.legend()
    figure.tight_layout()
    save_compact_png(figure, path)
    plt.close(figure)


def render_model_card(folder: Path, results: dict[str, Any], recipe: dict[str, Any]) -> ModelCard:
    """Fills `model_card.md` (a Jinja template) with measured results; writes `folder/README.md`.

    The baseline and cross-validation sections appear when `folder` holds their JSON files
    (see `attach_companion_results`).
    """
    if "data" in results:  # the user's own classes (or a subset of ESC-50's): their own card
        return _render_own_classes_card(folder, results, recipe)
    fold = results["validation_fold"]
    companions = ModelFolder(folder)
    hub_dataset_id = recipe.get("hub_dataset_id") or DEFAULT_HUB_DATASET_ID
    model_name = Path(recipe.get("hub_model_id") or recipe.get("output_dir") or folder.name).name
    card_data = ModelCardData(
        license="cc-by-nc-3.0",
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["audio-classification", "esc50", "environmental-sound", "log-mel", "cnn", "custom_code"],
        datasets=[hub_dataset_id],
        metrics=["accuracy", "f1"],
        model_name=model_name,
        eval_results=_eval_results(
            results,
            task_name="Environmental sound classification",
            dataset_type=hub_dataset_id,
            dataset_name="ESC-50",
            dataset_config=fold_config_name(fold),
            dataset_split="validation",
        ),
    )
    return _save_card(
        folder,
        card_data,
        MODEL_CARD_TEMPLATE,
        model_name,
        results,
        recipe,
        hub_dataset_id=hub_dataset_id,
        dataset_config=fold_config_name(fold),
        labels=folder_labels(folder),
        weights_megabytes=_megabytes(folder / WEIGHTS_FILE),
        tensorboard_logs=(folder / "runs").is_dir(),
        baseline=companions.optional(BASELINE_FILE),
        cross_validation=companions.optional(CROSS_VALIDATION_FILE),
        repeated_runs=_repeated_runs_with_spread(companions, results),
        selection=companions.optional(SELECTION_FILE),
        starting_recipe=STARTING_RECIPE_FILE if companions.optional(STARTING_RECIPE_FILE) is not None else None,
        seed=run_seed(recipe, results),
        calibration=calibration_section(folder),
    )


def attach_companion_results(
    folder: Path,
    baseline: dict[str, Any] | None = None,
    cross_validation: dict[str, Any] | None = None,
    repeated_runs: list[Path] | None = None,
    selection: dict[str, Any] | None = None,
) -> None:
    """Stores headline numbers measured outside the folder's own run beside it (a few kB).

    `repeated_runs` are other training folders of the same recipe and validation fold (their seeds, and a second
    stage's starting models, may differ), made as the model was (`model_form`): their scores show how much one
    fold's score moves from one training to the next. `selection` is the `recipes.json` of `bench/recipes.py`: the
    candidates compared without the test fold, from which this recipe was chosen.
    """
    if selection is not None:
        candidates = [row for row in selection.get("candidates", []) if not row.get("sees_test_fold")]
        if not candidates:
            raise CompanionResultsError("the selection holds no candidate compared without the test fold (fold 5)")
        kept = [{key: row[key] for key in SELECTION_KEYS if key in row} for row in candidates]
        (folder / SELECTION_FILE).write_text(json.dumps({"candidates": kept}, indent=2))
    if baseline is not None:
        kept = ("model", "fold", "num_clips", "num_train_clips", "accuracy", "f1", "wall_seconds")
        (folder / BASELINE_FILE).write_text(json.dumps({k: baseline[k] for k in kept if k in baseline}, indent=2))
    if cross_validation is not None:
        compact = {
            "summary": cross_validation["summary"],
            "folds": {fold: _run_summary(result) for fold, result in cross_validation["folds"].items()},
        }
        (folder / CROSS_VALIDATION_FILE).write_text(json.dumps(compact, indent=2))
    if repeated_runs is not None:
        reference = read_model_folder(folder, require=CARD_SOURCES)
        runs = [_repeated_run(reference, read_model_folder(other, require=CARD_SOURCES)) for other in repeated_runs]
        (folder / REPEATED_RUNS_FILE).write_text(json.dumps({"runs": runs}, indent=2))


def _repeated_run(reference: ModelFolder, other: ModelFolder) -> dict[str, Any]:
    """The headline numbers of `other`, after checking that it trained the recipe of `reference` on the same split."""
    folder, results, other_results = reference.path, reference.metrics, other.metrics
    differences = repetition_differences(reference.recipe, other.recipe)
    if differences:
        raise CompanionResultsError(
            f"{other.path} is not a run of the recipe in {folder}: it differs in {', '.join(differences)}"
        )
    forms = model_form(results), model_form(other_results)
    if forms[0] != forms[1]:
        raise CompanionResultsError(
            f"{other.path} is a model of {forms[1]}, {folder} of {forms[0]}: repeat the runs as the model was made "
            "(for a merged model, merge each repetition's trainings)"
        )
    if other_results["validation_fold"] != results["validation_fold"]:
        raise CompanionResultsError(
            f"{other.path} was validated on fold {other_results['validation_fold']}, {folder} on fold "
            f"{results['validation_fold']}: their scores are not comparable"
        )
    return {"run": other.path.name, "seed": run_seed(other.recipe, other_results), **_run_summary(other_results)}


def _run_summary(results: dict[str, Any]) -> dict[str, Any]:
    return {key: results[key] for key in RUN_SUMMARY_KEYS if key in results}


def _repeated_runs_with_spread(folder: ModelFolder, results: dict[str, Any]) -> dict[str, Any] | None:
    stored = folder.optional(REPEATED_RUNS_FILE)
    if stored is None:
        return None
    return {"runs": stored["runs"], "summary": spread([results, *stored["runs"]])}


def _save_card(
    folder: Path,
    card_data: ModelCardData,
    template: Path,
    model_name: str,
    results: dict[str, Any],
    recipe: dict[str, Any],
    **fields: Any,
) -> ModelCard:
    """Renders `template` with the card metadata, the run's results and recipe (`config`) and `fields`; writes
    `folder/README.md`."""
    card = ModelCard.from_template(
        card_data, template_path=str(template), model_name=model_name, results=results, config=recipe, **fields
    )
    card.save(folder / "README.md")
    return card


def _eval_results(results: dict[str, Any], task_name: str, **dataset: Any) -> list[EvalResult]:
    """The card's model-index entries: accuracy and macro-F1 of `results` on the dataset described by `dataset`
    (`dataset_type`, `dataset_name`, and optionally `dataset_config`, `dataset_split`)."""
    return [
        EvalResult(
            task_type="audio-classification",
            task_name=task_name,
            **dataset,
            metric_type=metric,
            metric_name=name,
            metric_value=round(results[metric], 4),
            metric_args=args,
        )
        for metric, name, args in (("accuracy", "Accuracy", None), ("f1", "Macro F1", {"average": "macro"}))
    ]


def _render_own_classes_card(folder: Path, results: dict[str, Any], recipe: dict[str, Any]) -> ModelCard:
    """The card of a model of the user's classes: their data, labels, evaluation split and the starting model."""
    data = results["data"]
    model_name = Path(recipe.get("hub_model_id") or recipe.get("output_dir") or folder.name).name
    base = recipe.get("model_name_or_path")
    dataset = recipe.get("dataset_name")
    hub_base = bool(base and is_hub_id(base) and not Path(base).exists())
    hub_dataset = bool(dataset and is_hub_id(dataset) and not Path(dataset).exists())
    card_data = ModelCardData(
        license="cc-by-nc-3.0" if base else None,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["audio-classification", "esc50-hf", "log-mel", "cnn", "custom_code"],
        base_model=base if hub_base else None,  # a local folder is named in the card's text only
        datasets=[dataset] if hub_dataset else None,
        metrics=["accuracy", "f1"],
        model_name=model_name,
        eval_results=_eval_results(
            results,
            task_name="Audio classification",
            dataset_type=dataset if hub_dataset else "audiofolder",
            dataset_name=data["source"],
            dataset_split="evaluation",
        ),
    )
    labels = list(folder_labels(folder))
    start = starting_folder(recipe)  # a second stage of the same classes keeps its first stage's head
    kept_head = start is not None and (start.path / CONFIG_FILE).is_file() and list(folder_labels(start.path)) == labels
    per_class = {}
    report = folder / "per_class_report.csv"
    if report.is_file():
        with report.open(newline="") as handle:
            per_class = {row.pop("class"): {k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)}
    return _save_card(
        folder,
        card_data,
        OWN_CLASSES_CARD_TEMPLATE,
        model_name,
        results,
        recipe,
        data=data,
        labels=labels,
        per_class=per_class,
        is_hub_model=hub_base,
        kept_head=kept_head,
        seed=run_seed(recipe, results),
        calibration=calibration_section(folder),
    )


def calibration_section(folder: Path) -> str:
    """The card's section on calibrated scores and the "none of these" answer, from the folder's `config.json`
    (`calibration`, written by training or `esc50-hf calibrate`), `calibration_test.json` (the test fold, measured
    and never fitted on) and `unknown_results.json` (`bench/unknown.py`); empty for an uncalibrated model."""
    companions = ModelFolder(folder)
    fit = companions.config.get("calibration")
    if not fit:
        return ""
    test = companions.optional(CALIBRATION_TEST_FILE)
    unknown = companions.optional(UNKNOWN_RESULTS_FILE)
    lines = [
        '### Calibrated scores and "none of these"',
        "",
        f"The scores are calibrated probabilities: the logits are divided by a temperature of "
        f"{fit['temperature']:.3f} (`calibration_temperature` in config.json), fitted on {fit['fitted_on']} "
        f"({fit['num_clips']} clips). On those clips, each half scored with the temperature fitted on the other, the "
        f"expected calibration error (15 bins) goes from {fit['before']['ece']:.3f} to {fit['after']['ece']:.3f} "
        f"and the negative log-likelihood from {fit['before']['nll']:.3f} to {fit['after']['nll']:.3f}.",
    ]
    if test:
        lines += [
            "",
            f"On fold {test['fold']} ({test['num_clips']} clips, never fitted on): expected calibration error "
            f"{test['before']['ece']:.3f} before, **{test['after']['ece']:.3f}** after; negative log-likelihood "
            f"{test['before']['nll']:.3f} before, **{test['after']['nll']:.3f}** after; mean top score "
            f"{test['before']['mean_top_score']:.3f} -> {test['after']['mean_top_score']:.3f} against an accuracy of "
            f"{test['accuracy']:.3f}.",
        ]
    if fit.get("unknown_score", "top score").startswith("top score x atypicality"):
        score = (
            "unknown score (the share of those clips with a top score at most the recording's, times the share at "
            "least as atypical to the network, that share counting only in its tail; `unknown_quantiles`)"
        )
    else:
        score = "top score"
    lines += [
        "",
        f"A recording whose {score} is below **{fit['unknown_threshold']:.3f}** (`unknown_threshold`) is none of "
        f"the known sounds: `pipeline(..., unknown_threshold=True)`, `esc50-hf predict --unknown` and the web demo "
        f"say so, with the best guess. The threshold accepts {fit['accept']:.0%} of the known clips it was fitted on"
        + (f"; {test['known_accepted']:.1%} of fold {test['fold']}." if test else "."),
    ]
    if unknown:
        lines += ["", unknown["summary"]]
    if (Path(folder) / RELIABILITY_PLOT).is_file():
        lines += ["", f"![reliability diagram]({RELIABILITY_PLOT})"]
    return "\n".join(lines) + "\n"


def folder_labels(folder: Path) -> tuple[str, ...]:
    """The labels of the model in `folder`, from its `config.json` (`id2label`)."""
    config = json.loads((Path(folder) / "config.json").read_text())
    return model_labels(SimpleNamespace(id2label=config["id2label"], num_labels=len(config["id2label"])))


def rerender_model_card(folder: Path) -> ModelCard:
    """The card of a finished model folder, from its `metrics.json`, `training_config.json` and companions.

    Raises:
        `ModelFolderError`: the folder lacks `training_config.json` or `metrics.json`.
    """
    finished = read_model_folder(folder, require=CARD_SOURCES)
    return render_model_card(finished.path, finished.metrics, finished.recipe)


def _megabytes(path: Path) -> float | None:
    return round(path.stat().st_size / 1e6, 2) if path.is_file() else None
