"""Configuration of the ESC-50 log-mel CNN."""

import copy
import math
from typing import Any

from transformers import PreTrainedConfig

from .labels import ID2LABEL, LABEL2ID
from .prediction import atypicality_tail

# The model's own `transformers` pipeline, saved beside it (pipeline_esc50.py): used by
# `pipeline("audio-classification", model=..., trust_remote_code=True)`.
CUSTOM_PIPELINES = {
    "audio-classification": {
        "impl": "pipeline_esc50.Esc50AudioClassificationPipeline",
        "pt": ["AutoModelForAudioClassification"],
        "tf": [],
        "type": "audio",
    }
}


# What a model's calibration is before any is fitted: a model trained (or fine-tuned) from another starts from this,
# and its training fits its own.
UNCALIBRATED = {
    "calibration_temperature": 1.0,
    "unknown_threshold": None,
    "unknown_quantiles": None,
    "event_thresholds": None,
    "calibration": None,
}


def check_quantiles(quantiles: Any) -> None:
    """Raises `ValueError` unless `quantiles` is `{"top_score": [...], "atypicality": [...]}`, two sorted lists of
    numbers of one length (at least 2), and optionally `"atypicality_tail"` in (0, 1]."""
    names = ("top_score", "atypicality")
    if not isinstance(quantiles, dict) or sorted(set(quantiles) - {"atypicality_tail"}) != sorted(names):
        raise ValueError(f"unknown_quantiles must have the keys {list(names)}, got {quantiles!r:.80}")
    if not 0 < atypicality_tail(quantiles) <= 1:
        raise ValueError("unknown_quantiles: atypicality_tail must be in (0, 1]")
    lengths = {len(quantiles[name]) if isinstance(quantiles[name], list) else -1 for name in names}
    if len(lengths) != 1 or min(lengths) < 2:
        raise ValueError("unknown_quantiles: top_score and atypicality must be lists of one length, at least 2")
    for name in names:
        values = quantiles[name]
        if not all(isinstance(value, (int, float)) and math.isfinite(value) for value in values) or any(
            later < earlier for earlier, later in zip(values, values[1:])
        ):
            raise ValueError(f"unknown_quantiles[{name!r}] must be finite numbers in increasing order")


# The stem of new models; a config.json saved before the stem existed has no `stem_channels` and means 0.
DEFAULT_STEM_CHANNELS = 16


class Esc50CnnConfig(PreTrainedConfig):
    r"""Hyper-parameters of [`Esc50CnnForAudioClassification`].

    The network is a stack of convolution blocks over a log-mel spectrogram
    (`num_mel_bins` x time). A stem (one 3x3 convolution with batch norm and ReLU, then 2x2
    average pooling) brings the spectrogram to half its resolution cheaply; each block is two
    3x3 convolutions with batch norm and ReLU, followed by 2x2 average pooling; a global pooling
    head (mean over frequency, then mean + max over time) makes the model independent of clip
    length. The blocks' compute grows with the square of their channels but shrinks four-fold
    with each pooling, so the stem is what keeps the first, widest-resolution block cheap.

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Mel bands of the input; must match the feature extractor's `num_mel_bins`.
        stem_channels (`int`, *optional*, defaults to 16):
            Output channels of the stem; 0 leaves it out (the first block then runs at full resolution). A
            `config.json` saved before the stem existed has no such key and loads as 0, the network it describes.
        block_channels (`list[int]`, *optional*, defaults to `[32, 64, 128, 256]`):
            Output channels of each convolution block.
        dropout (`float`, *optional*, defaults to 0.3):
            Dropout before the classifier.
        num_networks (`int`, *optional*, defaults to 1):
            Networks of this shape in the model, trained apart (`esc50-hf merge`); the model's probability is the
            mean of theirs, its atypicality the mean of theirs.
        label_smoothing (`float`, *optional*, defaults to 0.1):
            Label smoothing of the cross-entropy loss used in training; also the default of `train.py
            --label_smoothing`. Every `config.json` written by this project records the value it trained with (the
            key has been saved since the first version, whatever its value), so this default only decides the loss
            of a model built from a new config.
        calibration_temperature (`float`, *optional*, defaults to 1.0):
            Divides the logits the model returns (temperature scaling), so that its softmax scores read as
            probabilities; fitted on held-out clips by training or `esc50-hf calibrate`. 1 leaves them as trained;
            the loss is always computed before it, so training is the same whatever its value.
        unknown_threshold (`float`, *optional*):
            The unknown score (`prediction.unknown_score`: the calibrated top score, or with `unknown_quantiles`
            that combined with the atypicality) below which a clip is "none of these" (not one of the known
            sounds), for the paths that are asked for the unknown answer; `None` when no threshold was fitted.
        unknown_quantiles (`dict[str, list[float]]`, *optional*):
            `"top_score"` and `"atypicality"`: quantiles (sorted, as many of each) of the calibrated top score and
            of the model's atypicality over held-out clips of the known sounds, which the unknown score is read
            against (bench/unknown_choice.md), and `"atypicality_tail"`, the most atypical share of them in which
            the atypicality counts (default 1: all); `None`: the unknown score is the top score.
        event_thresholds (`dict[str, float]`, *optional*):
            Per-label lowest calibrated window score that joins a sound event (`esc50-hf predict --events
            --min-score model`), fitted on held-out recordings; `None` when not fitted.
        calibration (`dict`, *optional*):
            How the calibration was fitted: on what clips, how many, the share of known clips the threshold
            accepts, and the calibration error and log-likelihood before and after (`evaluation.calibration`).
    """

    model_type = "esc50_cnn"

    def __init__(
        self,
        num_mel_bins: int = 64,
        stem_channels: int | None = None,
        block_channels: tuple[int, ...] | list[int] = (32, 64, 128, 256),
        dropout: float = 0.3,
        num_networks: int = 1,
        label_smoothing: float = 0.1,
        calibration_temperature: float = 1.0,
        unknown_threshold: float | None = None,
        unknown_quantiles: dict[str, list[float]] | None = None,
        event_thresholds: dict[str, float] | None = None,
        calibration: dict | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("custom_pipelines", copy.deepcopy(CUSTOM_PIPELINES))
        if "id2label" not in kwargs and "num_labels" not in kwargs:  # a new config: the ESC-50 classes
            kwargs["id2label"] = dict(ID2LABEL)
            kwargs.setdefault("label2id", dict(LABEL2ID))
        if kwargs.get("id2label") and not kwargs.get("label2id"):  # the inverse of the labels given, never ESC-50's
            kwargs["label2id"] = {name: int(index) for index, name in kwargs["id2label"].items()}
        if stem_channels is None:  # `transformers_version` is in every saved config.json: an older folder
            stem_channels = 0 if "transformers_version" in kwargs else DEFAULT_STEM_CHANNELS
        if stem_channels < 0:
            raise ValueError(f"stem_channels must be 0 (no stem) or more, got {stem_channels}")
        poolings = len(block_channels) + bool(stem_channels)  # each halves the mel axis
        if num_mel_bins < 2**poolings:
            raise ValueError(
                f"num_mel_bins={num_mel_bins} is too few for {poolings} 2x2 poolings (the stem and "
                f"{len(block_channels)} blocks): use at least {2**poolings} mel bands, or fewer blocks"
            )
        if num_networks < 1:
            raise ValueError(f"num_networks must be at least 1, got {num_networks}")
        if not calibration_temperature > 0:
            raise ValueError(f"calibration_temperature must be positive, got {calibration_temperature}")
        if unknown_threshold is not None and not 0.0 <= unknown_threshold <= 1.0:
            raise ValueError(f"unknown_threshold is a score in [0, 1], got {unknown_threshold}")
        if unknown_quantiles is not None:
            check_quantiles(unknown_quantiles)
        self.num_mel_bins = num_mel_bins
        self.stem_channels = stem_channels
        self.block_channels = list(block_channels)
        self.dropout = dropout
        self.num_networks = num_networks
        self.label_smoothing = label_smoothing
        self.calibration_temperature = float(calibration_temperature)
        self.unknown_threshold = unknown_threshold
        self.unknown_quantiles = unknown_quantiles
        self.event_thresholds = event_thresholds
        self.calibration = calibration
        super().__init__(**kwargs)

    def to_dict(self) -> dict:
        """As `PreTrainedConfig.to_dict`, with `custom_pipelines` in its JSON form: `transformers.pipeline` replaces
        the model class names there by the classes themselves when it builds the pipeline."""
        output = super().to_dict()
        for task in output.get("custom_pipelines", {}).values():
            task["pt"] = [getattr(cls, "__name__", cls) for cls in task.get("pt", ())]
        return output


__all__ = ["UNCALIBRATED", "Esc50CnnConfig"]
