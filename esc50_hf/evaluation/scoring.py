"""Scoring a saved model on an ESC-50 fold through the same feature extractor the pipeline uses.

`esc50-hf evaluate` (`evaluate_model`) is the supported route. `evaluator_compatible()` makes
`evaluate.evaluator("audio-classification")` usable with the pinned versions as well.
"""

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from evaluate import EvaluationModule
from evaluate.evaluator import AudioClassificationEvaluator, Evaluator
from evaluate.evaluator.utils import DatasetColumn
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from tqdm.auto import tqdm
from transformers import Pipeline, PreTrainedModel

from ..data.features import decoded_mono
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import ESC50_LABELS
from .metrics import SHIPPED_METRICS, classification_metrics, load_metric


def predict_logits(
    model: torch.nn.Module, extractor: Esc50FeatureExtractor, dataset: Dataset, batch_size: int = 32
) -> np.ndarray:
    """Logits `(clips, 50)` for a dataset with an `audio` column decoded at the extractor's rate.

    The features are computed on the CPU, a batch at a time, and moved to the model's device and dtype (a model just
    trained on a GPU stays there; one loaded in bfloat16 takes bfloat16).
    """

    def batches():
        for start in range(0, len(dataset), batch_size):
            waveforms = [decoded_mono(audio) for audio in dataset[start : start + batch_size]["audio"]]
            yield extractor(waveforms, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]

    return _logits(model, batches(), -(-len(dataset) // batch_size))


def predict_feature_logits(model: torch.nn.Module, features: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Logits `(clips, 50)` for normalised log-mels `(clips, mels, frames)` (e.g. a feature file's clean clips)."""
    batches = (features[start : start + batch_size] for start in range(0, len(features), batch_size))
    return _logits(model, batches, -(-len(features) // batch_size))


@torch.inference_mode()
def _logits(model: torch.nn.Module, batches: Iterator[torch.Tensor], total: int) -> np.ndarray:
    """The model's logits for each batch of input values, moved to its device and dtype, as one array."""
    model.eval()
    parameter = next(model.parameters())
    logits = [
        model(input_values=batch.to(parameter)).logits.float().cpu().numpy()
        for batch in tqdm(batches, total=total, desc="Evaluating", unit="batch")
    ]
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


class CompatibleAudioClassificationEvaluator(AudioClassificationEvaluator):
    """`evaluate`'s audio-classification evaluator, working with transformers 5 and `datasets` audio columns.

    With the pinned evaluate 0.4.6 the stock evaluator breaks in two places: it checks
    `transformers.TFPreTrainedModel`, which transformers 5 no longer has (so a ready `Pipeline` fails),
    and it hands the pipeline each `audio` value as `datasets` decodes it, a torchcodec `AudioDecoder`
    whose samples the pipeline receives as a `(1, samples)` torch tensor and rejects. This subclass
    builds or takes the pipeline without the TensorFlow check, gives it `{"array": 1-D float32,
    "sampling_rate": rate}` per clip (the pipeline resamples when the rate differs), maps predicted
    names back to ids with the model's `label2id` unless `label_mapping` is given, and loads
    `"accuracy"` and `"f1"` (macro) from the package instead of the Hub.
    """

    _label2id: dict[str, int] | None = None  # the model's, set when the pipeline is prepared

    def prepare_pipeline(
        self,
        model_or_pipeline: "str | os.PathLike | PreTrainedModel | Pipeline",
        tokenizer: Any = None,
        feature_extractor: Any = None,
        device: int | None = None,
    ) -> Pipeline:
        if model_or_pipeline is None:
            raise ValueError("Pass model_or_pipeline: a model folder, a Hub id, a model or a pipeline.")
        if isinstance(model_or_pipeline, str | os.PathLike | PreTrainedModel):
            model = str(model_or_pipeline) if isinstance(model_or_pipeline, os.PathLike) else model_or_pipeline
            device = self._infer_device() if device is None else device
            from .. import audio_pipeline  # the model's own pipeline class, the installed one (no remote code)

            model_or_pipeline = audio_pipeline(model, feature_extractor=feature_extractor, device=device)
        if getattr(model_or_pipeline, "task", None) != self.task:
            raise ValueError(f"model_or_pipeline must be an {self.task!r} pipeline or model.")
        self._label2id = {name: int(index) for name, index in model_or_pipeline.model.config.label2id.items()}
        return model_or_pipeline

    def prepare_data(self, data: Dataset, input_column: str, label_column: str, *args, **kwargs):
        self.check_required_columns(data, {"input_column": input_column, "label_column": label_column})
        return {"references": data[label_column]}, _PipelineAudioColumn(data, input_column)

    def prepare_metric(self, metric: "str | EvaluationModule | None") -> EvaluationModule:
        name = self.default_metric_name if metric is None else metric
        if isinstance(name, str) and name in SHIPPED_METRICS:
            return load_metric(name)
        return super().prepare_metric(metric)

    def compute_metric(self, metric: EvaluationModule, metric_inputs: dict, *args, **kwargs):
        if metric.name == "f1":  # ESC-50 is multi-class: report macro-F1 over the 50 classes
            metric_inputs = {**metric_inputs, "average": "macro", "labels": list(range(len(ESC50_LABELS)))}
        return super().compute_metric(metric, metric_inputs, *args, **kwargs)

    def predictions_processor(self, predictions, label_mapping):
        return super().predictions_processor(predictions, label_mapping or self._label2id)


class _PipelineAudioColumn(DatasetColumn):
    """The audio column, read lazily, as the `{"array", "sampling_rate"}` dicts the pipeline accepts."""

    def __getitem__(self, index: int) -> Any:
        return _pipeline_input(self.dataset[index][self.key])

    def __iter__(self):
        return (self[index] for index in range(len(self)))


def _pipeline_input(audio: Any) -> Any:
    if isinstance(audio, str | bytes | np.ndarray):  # file paths, encoded files and arrays pass unchanged
        return audio
    return {"array": decoded_mono(audio), "sampling_rate": int(audio["sampling_rate"])}


def evaluator_compatible(task_evaluator: Evaluator | None = None) -> CompatibleAudioClassificationEvaluator:
    """`evaluate.evaluator("audio-classification")`, made to work with the pinned versions.

    Args:
        task_evaluator: The evaluator to replace (its default metric is kept); `None` builds a new one.

    Example:
        ```python
        from evaluate import evaluator
        from esc50_hf.evaluation.scoring import evaluator_compatible

        task_evaluator = evaluator_compatible(evaluator("audio-classification"))
        task_evaluator.compute(model_or_pipeline="models/esc50-mel-cnn", data=fold5, input_column="audio")
        ```
    """
    if task_evaluator is not None and task_evaluator.task != "audio-classification":
        raise ValueError(f"evaluator_compatible adapts audio-classification evaluators, not {task_evaluator.task!r}.")
    default_metric = task_evaluator.default_metric_name if task_evaluator is not None else "accuracy"
    return CompatibleAudioClassificationEvaluator(default_metric_name=default_metric)
