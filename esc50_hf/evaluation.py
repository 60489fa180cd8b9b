"""Scoring a saved model on an ESC-50 fold through the same feature extractor the pipeline uses."""

from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from tqdm.auto import tqdm

from .feature_cache import decoded_mono
from .feature_extraction_esc50 import Esc50FeatureExtractor
from .labels import ESC50_LABELS
from .metrics import classification_metrics


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, extractor: Esc50FeatureExtractor, dataset: Dataset, batch_size: int = 32
) -> np.ndarray:
    """Logits `(clips, 50)` for a dataset with an `audio` column decoded at the extractor's rate."""
    model.eval()
    logits = []
    for start in tqdm(range(0, len(dataset), batch_size), desc="Evaluating", unit="batch"):
        batch = dataset[start : start + batch_size]
        waveforms = [decoded_mono(audio) for audio in batch["audio"]]
        inputs = extractor(waveforms, sampling_rate=extractor.sampling_rate, return_tensors="pt")
        logits.append(model(**inputs).logits.float().numpy())
    return np.concatenate(logits)


def score_predictions(predictions: np.ndarray, references: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and the most confused pairs."""
    label_ids = list(range(len(ESC50_LABELS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=label_ids, zero_division=0
    )
    matrix = confusion_matrix(references, predictions, labels=label_ids)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(ESC50_LABELS, precision, recall, f1, support)
    }
    return {
        **classification_metrics(predictions, references),
        "num_clips": int(len(references)),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "most_confused_pairs": most_confused_pairs(matrix),
    }


def most_confused_pairs(matrix: np.ndarray, top: int = 10) -> list[dict[str, Any]]:
    """Class pairs with the most errors in either direction (true a -> predicted b, plus b -> a)."""
    errors = matrix + matrix.T
    np.fill_diagonal(errors, 0)
    first, second = np.triu_indices_from(errors, k=1)
    order = np.argsort(-errors[first, second], kind="stable")[:top]
    return [
        {"pair": [ESC50_LABELS[first[i]], ESC50_LABELS[second[i]]], "errors": int(errors[first[i], second[i]])}
        for i in order
        if errors[first[i], second[i]] > 0
    ]


def evaluate_model(model: torch.nn.Module, extractor: Esc50FeatureExtractor, dataset: Dataset) -> dict[str, Any]:
    logits = predict_logits(model, extractor, dataset)
    return score_predictions(logits.argmax(axis=-1), np.asarray(dataset["label"]))
