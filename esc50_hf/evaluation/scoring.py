"""Scoring a saved model on labelled clips (an ESC-50 fold, a user's evaluation split) through the same feature
extractor the pipeline uses; classes are the model's own (`config.id2label`).

`esc50-hf evaluate` (`evaluate_model`) is the supported route; `evaluator.evaluator_compatible()` makes
`evaluate.evaluator("audio-classification")` usable with the pinned versions as well.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from tqdm.auto import tqdm

from ..data.esc50 import decoded_mono
from ..errors import Esc50HfError
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import ESC50_LABELS, model_labels
from .metrics import classification_metrics


def predict_logits(
    model: torch.nn.Module,
    feature_extractor: Esc50FeatureExtractor,
    dataset: Dataset,
    batch_size: int = 32,
    atypicality: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Logits `(clips, num_labels)` for a dataset with an `audio` column decoded at the feature extractor's rate;
    with `atypicality`, also each clip's atypicality (`Esc50CnnOutput`), as `(logits, atypicality)`.

    The features are computed on the CPU, a batch at a time, and moved to the model's device and dtype (a model just
    trained on a GPU stays there; one loaded in bfloat16 takes bfloat16).
    """

    def batches():
        for start in range(0, len(dataset), batch_size):
            waveforms = [decoded_mono(audio) for audio in dataset[start : start + batch_size]["audio"]]
            yield feature_extractor(waveforms, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")[
                "input_values"
            ]

    return _logits(model, batches(), -(-len(dataset) // batch_size), atypicality)


def predict_feature_logits(
    model: torch.nn.Module, features: torch.Tensor, batch_size: int = 64, atypicality: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Logits `(clips, num_labels)` for normalised log-mels `(clips, mels, frames)`, e.g. a feature file's clips;
    with `atypicality`, `(logits, atypicality)`."""
    batches = (features[start : start + batch_size] for start in range(0, len(features), batch_size))
    return _logits(model, batches, -(-len(features) // batch_size), atypicality)


@torch.inference_mode()
def _logits(
    model: torch.nn.Module, batches: Iterator[torch.Tensor], total: int, atypicality: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The model's logits for each batch of input values, moved to its device and dtype, as one array (and the
    inputs' atypicality as another, when asked for)."""
    model.eval()
    parameter = next(model.parameters())
    logits, atypical = [], []
    for batch in tqdm(batches, total=total, desc="Evaluating", unit="batch"):
        if atypicality:
            output = model(input_values=batch.to(parameter), output_atypicality=True)
            atypical.append(output.atypicality.float().cpu().numpy())
        else:
            output = model(input_values=batch.to(parameter))
        logits.append(output.logits.float().cpu().numpy())
    return (np.concatenate(logits), np.concatenate(atypical)) if atypicality else np.concatenate(logits)


class LabelMismatchError(Esc50HfError, ValueError):
    """The clips' labels are not classes of the model."""


def score_predictions(
    predictions: np.ndarray, references: np.ndarray, labels: Sequence[str] = ESC50_LABELS
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and the most confused pairs.

    Args:
        predictions (`np.ndarray`): Predicted class ids.
        references (`np.ndarray`): True class ids, in the same id space.
        labels (`Sequence[str]`, *optional*, defaults to `ESC50_LABELS`): The name of each class id (the model's
            `model_labels(config)`; the default for the ESC-50 baseline).
    """
    label_ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=label_ids, zero_division=0
    )
    matrix = confusion_matrix(references, predictions, labels=label_ids)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    return {
        **classification_metrics(predictions, references, len(labels)),
        "num_clips": int(len(references)),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "most_confused_pairs": most_confused_pairs(matrix, labels),
    }


def most_confused_pairs(matrix: np.ndarray, labels: Sequence[str], top: int = 10) -> list[dict[str, Any]]:
    """Class pairs with the most errors in either direction (true a -> predicted b, plus b -> a).

    Args:
        matrix (`np.ndarray`): The confusion matrix (true class rows, predicted class columns).
        labels (`Sequence[str]`): The name of each class.
        top (`int`, *optional*, defaults to 10): Pairs returned, most errors first.
    """
    errors = matrix + matrix.T
    np.fill_diagonal(errors, 0)
    first, second = np.triu_indices_from(errors, k=1)
    order = np.argsort(-errors[first, second], kind="stable")[:top]
    return [
        {"pair": [labels[first[i]], labels[second[i]]], "errors": int(errors[first[i], second[i]])}
        for i in order
        if errors[first[i], second[i]] > 0
    ]


def evaluate_model(
    model: torch.nn.Module, feature_extractor: Esc50FeatureExtractor, dataset: Dataset
) -> dict[str, Any]:
    """Scores `model` on the clips of `dataset` (`score_predictions`), each featurised by the model's feature extractor
    as one clip: a clip longer than the model's clip length is scored on its start, where the pipeline would pool
    windows over all of it (ESC-50's clips are one window long, so both agree there).

    Args:
        model (`torch.nn.Module`): An `Esc50CnnForAudioClassification` (put in evaluation mode here).
        feature_extractor (`Esc50FeatureExtractor`): The model's own, e.g. `AutoFeatureExtractor.from_pretrained`.
        dataset (`Dataset`): Clips with an `audio` column decoded at the feature extractor's rate and a `label`
            column, e.g. `split_folds(load_esc50(...), fold)["validation"]`.

    Returns:
        `dict`: accuracy, macro-F1, per-class precision/recall/F1, the confusion matrix and the most confused pairs.

    Raises:
        `LabelMismatchError`: the dataset has a class the model does not know.

    The dataset's label ids are matched to the model's by name (its `ClassLabel` names against `config.id2label`),
    so a model whose labels are in another order is scored right.
    """
    logits, references = labelled_logits(model, feature_extractor, dataset)
    return score_predictions(logits.argmax(axis=-1), references, model_labels(model.config))


def labelled_logits(
    model: torch.nn.Module, feature_extractor: Esc50FeatureExtractor, dataset: Dataset, atypicality: bool = False
) -> tuple[np.ndarray, ...]:
    """The model's logits `(clips, num_labels)` for the clips of `dataset` and their true class ids in the model's
    label order (`model_label_ids`), as `evaluate_model` scores them; with `atypicality`, the clips' atypicality
    third.

    Raises:
        `LabelMismatchError`: the dataset has a class the model does not know.
    """
    references = model_label_ids(dataset, model_labels(model.config))
    if atypicality:
        logits, atypical = predict_logits(model, feature_extractor, dataset, atypicality=True)
        return logits, references, atypical
    return predict_logits(model, feature_extractor, dataset), references


def model_label_ids(dataset: Dataset, labels: Sequence[str]) -> np.ndarray:
    """The `label` column of `dataset` as ids of the model's `labels`, matched by class name.

    Args:
        dataset (`Dataset`): Clips with a `label` column (`ClassLabel`, or plain ids already in the model's order).
        labels (`Sequence[str]`): The model's labels, in output order.

    Raises:
        `LabelMismatchError`: a class of the dataset is not among `labels`.
    """
    ids = np.asarray(dataset["label"])
    names = getattr(dataset.features.get("label"), "names", None)
    if names is None or list(names) == list(labels):
        return ids
    unknown = sorted({names[index] for index in np.unique(ids)} - set(labels))  # only the classes it holds
    if unknown:
        raise LabelMismatchError(
            f"The clips' classes {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not classes of the model "
            f"(its {len(labels)} labels: {', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''})"
        )
    to_model = np.asarray([list(labels).index(name) for name in names])
    return to_model[ids]
