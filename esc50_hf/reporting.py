"""What a training run leaves beside the weights: metrics, per-class report, plots and the model card."""

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt
import numpy as np
from datasets import Dataset
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .evaluation import evaluate_model
from .feature_extraction_esc50 import Esc50FeatureExtractor
from .labels import ESC50_LABELS
from .train_config import TrainConfig

MODEL_CARD_TEMPLATE = Path(__file__).resolve().parent.parent / "model_card.md"


def write_model_folder_reports(
    folder: Path,
    model,
    extractor: Esc50FeatureExtractor,
    validation: Dataset,
    config: TrainConfig,
    log_history: list[dict[str, Any]],
    timing: dict[str, Any],
) -> dict[str, Any]:
    """Evaluates the final model on the validation fold and writes the reports and the model card."""
    scores = evaluate_model(model, extractor, validation)
    epochs = [entry for entry in log_history if "eval_accuracy" in entry]
    results = {
        "validation_fold": config.validation_fold,
        "accuracy": scores["accuracy"],
        "f1": scores["f1"],
        "num_clips": scores["num_clips"],
        "epochs": config.num_train_epochs,
        **timing,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "most_confused_pairs": scores["most_confused_pairs"],
        "per_epoch_validation": [
            {"epoch": e["epoch"], "accuracy": e["eval_accuracy"], "f1": e["eval_f1"]} for e in epochs
        ],
    }
    (folder / "metrics.json").write_text(json.dumps(results, indent=2))
    (folder / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    write_per_class_report(folder / "per_class_report.csv", scores["per_class"])
    plot_confusion_matrix(np.array(scores["confusion_matrix"]), folder / "confusion_matrix.png")
    plot_training_curves(log_history, folder / "training_curves.png")
    render_model_card(folder, results, config)
    return results


def write_per_class_report(path: Path, per_class: dict[str, dict[str, float]]) -> None:
    lines = ["class,precision,recall,f1,support"]
    lines += [
        f"{name},{v['precision']:.4f},{v['recall']:.4f},{v['f1']:.4f},{v['support']}" for name, v in per_class.items()
    ]
    path.write_text("\n".join(lines) + "\n")


def plot_confusion_matrix(matrix: np.ndarray, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(13, 12))
    image = axes.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(ESC50_LABELS))
    axes.set_xticks(ticks, ESC50_LABELS, rotation=90, fontsize=7)
    axes.set_yticks(ticks, ESC50_LABELS, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("ESC-50 confusion matrix (validation fold)")
    for row, column in zip(*np.nonzero(matrix)):
        colour = "white" if matrix[row, column] > matrix.max() / 2 else "black"
        axes.text(column, row, matrix[row, column], ha="center", va="center", fontsize=5, color=colour)
    figure.colorbar(image, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
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
    loss_axes.legend()
    metric_axes.set_xlabel("epoch")
    metric_axes.set_ylim(0, 1)
    metric_axes.set_title("validation fold (monitoring only; the final model is reported)")
    metric_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render_model_card(folder: Path, results: dict[str, Any], config: TrainConfig) -> ModelCard:
    """Fills `model_card.md` (a Jinja template) with measured results; writes `folder/README.md`."""
    fold = results["validation_fold"]
    model_name = Path(config.hub_model_id or folder.name).name
    card_data = ModelCardData(
        license="cc-by-nc-3.0",
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["audio-classification", "esc50", "environmental-sound", "log-mel", "cnn", "custom_code"],
        datasets=["karolpiczak/ESC-50"],
        metrics=["accuracy", "f1"],
        model_name=model_name,
        eval_results=[
            EvalResult(
                task_type="audio-classification",
                task_name="Environmental sound classification",
                dataset_type="esc50",
                dataset_name="ESC-50",
                dataset_split=f"fold {fold}",
                metric_type=metric,
                metric_name=name,
                metric_value=round(results[metric], 4),
            )
            for metric, name in (("accuracy", "Accuracy"), ("f1", "Macro F1"))
        ],
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=model_name,
        results=results,
        config=config.to_dict(),
        labels=ESC50_LABELS,
    )
    card.save(folder / "README.md")
    return card
