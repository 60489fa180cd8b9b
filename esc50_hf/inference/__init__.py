"""Classifying new audio: `SoundClassifier` (windows over recordings of any length), the logits backends
(torch, ONNX, int8), ONNX export (also the self-contained waveform graph), and batch prediction into one file.

The public names of the modules below are also importable from here, as before the package was cut into layers
(`from esc50_hf.inference import SoundClassifier`). They load on first access (PEP 562), so importing this
subpackage stays free of torch.
"""

from ..lazy import lazy_exports

# The public names of each module of this subpackage (its `__all__`, or its own classes and functions).
_EXPORTS = {
    "classifier": "DEFAULT_MODEL_DIR LabelScore ModelLoadError Prediction SoundClassifier WindowBatcher "
    "WindowPrediction iter_windows resolve_model softmax window_starts",
    "backends": "AtypicalityBackend LogitsBackend TorchBackend load_backend",
    "onnx_backend": "ATYPICALITY_NAME INT8_FILE ONNX_FILE TEMPERATURE_METADATA_KEY OnnxBackend OnnxFileMissingError "
    "onnx_file_name",
    "onnx_export": "CLIP_SAMPLES_METADATA_KEY DEFAULT_OPSET LABELS_METADATA_KEY PARITY_TOLERANCE PROBABILITIES_NAME "
    "SAMPLING_RATE_METADATA_KEY UNKNOWN_QUANTILES_METADATA_KEY UNKNOWN_THRESHOLD_METADATA_KEY WAVEFORM_FILE "
    "WAVEFORM_INPUT_NAME WAVEFORM_INT8_FILE WAVEFORM_PARITY_TOLERANCE "
    "calibration_features calibration_waveforms export_onnx export_waveform_onnx feature_batches onnx_labels "
    "onnx_metadata parity_error quantize_int8 quantize_waveform_int8 waveform_parity_error",
    "batch": "AUDIO_SUFFIXES BatchPredictionError OUTPUT_FORMATS Input Inputs classify_to_file label_track "
    "prediction_record progress_bar read_shards track_names window_top_k",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
