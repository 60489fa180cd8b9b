"""esc50-hf: an ESC-50 environmental-sound classifier native to the Hugging Face ecosystem.

Importing the package registers the model with the `transformers` Auto classes, so
`pipeline("audio-classification", model=<saved folder>)` works without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from .configuration_esc50_cnn import Esc50CnnConfig
from .data import Esc50DataError, download_esc50, load_esc50, split_folds
from .feature_extraction_esc50 import Esc50FeatureExtractor
from .labels import CLIP_SECONDS, ESC50_LABELS, ID2LABEL, LABEL2ID, NUM_LABELS, SAMPLING_RATE
from .modeling_esc50_cnn import Esc50CnnForAudioClassification

__version__ = "0.1.0"


def audio_pipeline(model, **kwargs):
    """`pipeline("audio-classification", model=model)` with this project's pipeline class, without remote code.

    Model folders declare `Esc50AudioClassificationPipeline` in `config.json` (`custom_pipelines`), so
    `transformers.pipeline` asks for `trust_remote_code=True`; in a process that has this package, this
    runs the installed class instead. `kwargs` go to `transformers.pipeline` (`device`, `batch_size`, ...).
    """
    from transformers import pipeline

    from .pipeline_esc50 import Esc50AudioClassificationPipeline

    return pipeline("audio-classification", model=model, pipeline_class=Esc50AudioClassificationPipeline, **kwargs)


AutoConfig.register(Esc50CnnConfig.model_type, Esc50CnnConfig, exist_ok=True)
AutoFeatureExtractor.register(Esc50CnnConfig, Esc50FeatureExtractor, exist_ok=True)
AutoModelForAudioClassification.register(Esc50CnnConfig, Esc50CnnForAudioClassification, exist_ok=True)
# Saved folders carry the code and an `auto_map`, so they also load with trust_remote_code=True.
Esc50CnnConfig.register_for_auto_class()
Esc50FeatureExtractor.register_for_auto_class()
Esc50CnnForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

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
    "download_esc50",
    "load_esc50",
    "split_folds",
]
