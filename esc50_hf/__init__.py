"""esc50-hf: an ESC-50 environmental-sound classifier native to the Hugging Face ecosystem.

Importing the package registers the model with the `transformers` Auto classes, so `AutoConfig`,
`AutoFeatureExtractor` and `AutoModelForAudioClassification` load a saved folder without `trust_remote_code`;
`transformers.pipeline` still asks for it (the folder names its own pipeline class), and `audio_pipeline` runs
the installed pipeline class instead.
The import itself stays light (no torch, no transformers): the classes load on first use, and the
registration happens as soon as transformers' model code is loaded (see `auto_registration`), so
`esc50-hf --help` answers at once.
"""

import importlib
from typing import Any

from .auto_registration import install as _install_auto_registration
from .auto_registration import register_auto_classes
from .errors import Esc50HfError
from .model.labels import CLIP_SECONDS, ESC50_LABELS, ID2LABEL, LABEL2ID, NUM_LABELS, SAMPLING_RATE

__version__ = "0.1.0"

# Public names loaded on first access (PEP 562), from the submodule that defines them.
_LAZY = {
    "Esc50CnnConfig": "model.configuration_esc50_cnn",
    "Esc50CnnForAudioClassification": "model.modeling_esc50_cnn",
    "Esc50FeatureExtractor": "model.feature_extraction_esc50",
    "Esc50DataError": "data.esc50",
    "download_esc50": "data.esc50",
    "load_esc50": "data.esc50",
    "split_folds": "data.esc50",
}
_MODEL_CLASSES = ("Esc50CnnConfig", "Esc50CnnForAudioClassification", "Esc50FeatureExtractor")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MODEL_CLASSES:
        register_auto_classes()  # a class used directly (save_pretrained) must know its Auto class
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


_install_auto_registration()


def audio_pipeline(model, **kwargs):
    """`pipeline("audio-classification", model=model)` with this project's pipeline class, without remote code.

    Model folders declare `Esc50AudioClassificationPipeline` in `config.json` (`custom_pipelines`), so
    `transformers.pipeline` asks for `trust_remote_code=True`; in a process that has this package, this
    runs the installed class instead.

    Args:
        model (`str`, `Path` or `Esc50CnnForAudioClassification`): A model folder, a Hub id or a loaded model.
        **kwargs: Passed to `transformers.pipeline` (`device`, `batch_size`, `feature_extractor`, ...).

    Returns:
        `Esc50AudioClassificationPipeline`: call it on audio (a path, bytes, an array with its rate) for the top
        labels.
    """
    from transformers import pipeline

    from .model.pipeline_esc50 import Esc50AudioClassificationPipeline

    return pipeline("audio-classification", model=model, pipeline_class=Esc50AudioClassificationPipeline, **kwargs)


__all__ = [
    "CLIP_SECONDS",
    "audio_pipeline",
    "ESC50_LABELS",
    "ID2LABEL",
    "LABEL2ID",
    "NUM_LABELS",
    "SAMPLING_RATE",
    "Esc50CnnConfig",
    "Esc50CnnForAudioClassification",
    "Esc50DataError",
    "Esc50FeatureExtractor",
    "Esc50HfError",
    "download_esc50",
    "load_esc50",
    "split_folds",
    "register_auto_classes",
]
