"""`evaluate`'s audio-classification evaluator, made to work with transformers 5 and this model's pipeline:
`evaluator_compatible()` returns one that runs on a `datasets` ESC-50 split."""

import os
from typing import Any

import numpy as np
from datasets import Dataset
from evaluate import EvaluationModule
from evaluate.evaluator import AudioClassificationEvaluator, Evaluator
from evaluate.evaluator.utils import DatasetColumn
from transformers import Pipeline, PreTrainedModel

from ..data.esc50 import decoded_mono
from .metrics import SHIPPED_METRICS, load_metric


class CompatibleAudioClassificationEvaluator(AudioClassificationEvaluator):
    """`evaluate`'s audio-classification evaluator, working with transformers 5 and `datasets` audio columns.

    With the pinned evaluate 0.4.6 the stock evaluator breaks in two places: it checks
    `transformers.TFPreTrainedModel`, which transformers 5 no longer has (so a ready `Pipeline` fails),
    and it hands the pipeline each `audio` value as `datasets` decodes it, a torchcodec `AudioDecoder`
    whose samples the pipeline receives as a `(1, samples)` torch tensor and rejects. This subclass
    builds or takes the pipeline without the TensorFlow check, gives it `{"array": 1-D float32,
    "sampling_rate": rate}` per clip (the pipeline resamples when the rate differs), maps predicted
    names back to the dataset's ids (its `ClassLabel` names; else the model's `label2id`) unless `label_mapping` is
    given, so a model whose labels are in another order is scored right, and loads
    `"accuracy"` and `"f1"` (macro) from the package instead of the Hub.
    """

    _label2id: dict[str, int] | None = None  # predicted name -> reference id, set when the pipeline is prepared
    _dataset_names: list[str] | None = None  # the label column's ClassLabel names, set when the data is prepared

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
        names = self._dataset_names
        if names is not None:
            extra = [name for name in self._label2id if name not in names]
            self._label2id = {name: index for index, name in enumerate([*names, *extra])}
        return model_or_pipeline

    def prepare_data(self, data: Dataset, input_column: str, label_column: str, *args, **kwargs):
        self.check_required_columns(data, {"input_column": input_column, "label_column": label_column})
        # Predicted names become the dataset's ids (its ClassLabel names), whatever order the model's labels are in.
        self._dataset_names = getattr(data.features.get(label_column), "names", None)
        return {"references": data[label_column]}, _PipelineAudioColumn(data, input_column)

    def prepare_metric(self, metric: "str | EvaluationModule | None") -> EvaluationModule:
        name = self.default_metric_name if metric is None else metric
        if isinstance(name, str) and name in SHIPPED_METRICS:
            return load_metric(name)
        return super().prepare_metric(metric)

    def compute_metric(self, metric: EvaluationModule, metric_inputs: dict, *args, **kwargs):
        if metric.name == "f1":  # multi-class: macro-F1 over all the model's classes
            metric_inputs = {**metric_inputs, "average": "macro", "labels": sorted(self._label2id.values())}
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
        from esc50_hf.evaluation.evaluator import evaluator_compatible

        task_evaluator = evaluator_compatible(evaluator("audio-classification"))
        task_evaluator.compute(model_or_pipeline="models/esc50-mel-cnn", data=fold5, input_column="audio")
        ```
    """
    if task_evaluator is not None and task_evaluator.task != "audio-classification":
        raise ValueError(f"evaluator_compatible adapts audio-classification evaluators, not {task_evaluator.task!r}.")
    default_metric = task_evaluator.default_metric_name if task_evaluator is not None else "accuracy"
    return CompatibleAudioClassificationEvaluator(default_metric_name=default_metric)
