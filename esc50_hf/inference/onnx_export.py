"""ONNX export of the CNN (log-mel `input_values` -> logits) and its int8 quantization.

The log-mel front end stays outside the graph: every backend is fed by the same
`Esc50FeatureExtractor`, so PyTorch, ONNX Runtime and int8 differ only in how they run the network.
"""

import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..data.esc50 import decoded_mono
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import model_labels
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from .onnx_backend import INPUT_NAME, INT8_FILE, ONNX_FILE, OUTPUT_NAME, OnnxBackend

# 18 is the oldest opset the torch.export-based exporter emits; the TorchScript one supports it too.
DEFAULT_OPSET = 18
LABELS_METADATA_KEY = "labels"
# float32 PyTorch vs ONNX Runtime: kernels differ in summation order only, so logits agree to ~1e-5.
PARITY_TOLERANCE = 1e-4


class _LogitsOnly(torch.nn.Module):
    """The model with a plain tensor output (`SequenceClassifierOutput` is not exportable as is)."""

    def __init__(self, model: Esc50CnnForAudioClassification) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values, return_dict=False)[0]


def export_onnx(
    model_path: str | Path, output: str | Path | None = None, opset: int = DEFAULT_OPSET, dynamo: bool = False
) -> Path:
    """Exports a saved model folder to ONNX (dynamic batch and frames axes) and checks the file.

    Args:
        model_path (`str` or `Path`): Saved model folder (config, weights, preprocessor_config.json).
        output (`str` or `Path`, *optional*): Destination file (default `<model_path>/model.onnx`, where
            `OnnxBackend` looks).
        opset (`int`, *optional*, defaults to 18): ONNX opset version.
        dynamo (`bool`, *optional*, defaults to `False`): Use the torch.export-based exporter (needs the
            `onnxscript` package) instead of the TorchScript one, which needs nothing beyond torch and gives the same
            graph for this CNN.

    Returns:
        `Path`: The ONNX file.

    Raises:
        `ModelLoadError`: `model_path` holds no model that loads.
        `ImportError`: `dynamo` without `onnxscript` installed.
    """
    import onnx

    from .classifier import explain_load_failure

    if dynamo:
        _require_onnxscript()
    with explain_load_failure(model_path):
        model = Esc50CnnForAudioClassification.from_pretrained(model_path).eval()
        extractor = Esc50FeatureExtractor.from_pretrained(model_path)
    output = Path(output) if output is not None else Path(model_path) / ONNX_FILE
    output.parent.mkdir(parents=True, exist_ok=True)
    # Batch 2 (not 1), so the exporter cannot specialise the batch axis to a constant.
    example = torch.zeros(2, extractor.num_mel_bins, extractor.num_frames)
    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, recursively.
    wrapper = _LogitsOnly(model).eval()
    with warnings.catch_warnings():
        # The input-shape check in `pooled_embedding` is constant for a fixed num_mel_bins: safe to trace.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The TorchScript exporter is chosen on purpose (no onnxscript dependency): silence its deprecation notes.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(output),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "frames"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=dynamo,
            external_data=False,  # a few MB of weights: one self-contained file
        )
    # The labels travel inside the file too (metadata `labels`, a JSON list in output order), for runtimes that
    # read only the .onnx file; in a model folder config.json stays the source.
    graph = onnx.load(str(output))
    onnx.helper.set_model_props(graph, {LABELS_METADATA_KEY: json.dumps(list(model_labels(model.config)))})
    onnx.save(graph, str(output))
    onnx.checker.check_model(str(output), full_check=True)
    return output


def onnx_labels(onnx_file: str | Path) -> list[str] | None:
    """The labels an exported file carries in its metadata (`None` for a file exported before they were written).

    Args:
        onnx_file (`str` or `Path`): An ONNX file written by `export_onnx` (or its int8 twin).
    """
    import onnx

    props = {prop.key: prop.value for prop in onnx.load(str(onnx_file), load_external_data=False).metadata_props}
    return json.loads(props[LABELS_METADATA_KEY]) if LABELS_METADATA_KEY in props else None


def _require_onnxscript() -> None:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ImportError(
            "The torch.export-based exporter (dynamo=True) needs the onnxscript package: pip install onnxscript. "
            "The default TorchScript exporter needs nothing extra."
        ) from None


@torch.inference_mode()
def parity_error(model_path: str | Path, input_values: np.ndarray, onnx_file: str | Path = ONNX_FILE) -> float:
    """Max |logit difference| between the saved PyTorch model and ONNX Runtime on the same features.

    Args:
        model_path (`str` or `Path`): Saved model folder.
        input_values (`np.ndarray`): Features `(batch, num_mel_bins, frames)`, as `Esc50FeatureExtractor` gives them.
        onnx_file (`str` or `Path`, *optional*, defaults to `"model.onnx"`): Relative to `model_path`, or an absolute
            path.
    """
    model = Esc50CnnForAudioClassification.from_pretrained(model_path).eval()
    reference = model(input_values=torch.as_tensor(input_values)).logits.numpy()
    return float(np.abs(OnnxBackend(model_path, quantized=str(onnx_file))(input_values) - reference).max())


def feature_batches(
    dataset: Dataset, feature_extractor: Esc50FeatureExtractor, batch_size: int = 32, desc: str = "Featurising"
) -> Iterator[np.ndarray]:
    """Normalised log-mels `(batch, num_mel_bins, frames)` of a dataset decoded at the feature extractor's rate."""
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, unit="batch"):
        waveforms = [decoded_mono(audio) for audio in dataset[start : start + batch_size]["audio"]]
        yield feature_extractor(waveforms, sampling_rate=feature_extractor.sampling_rate)["input_values"]


def calibration_features(
    train_dataset: Dataset, feature_extractor: Esc50FeatureExtractor, clips: int = 200, seed: int = 0
) -> np.ndarray:
    """Features of a fixed random sample of training clips: the activation ranges int8 is calibrated on.

    Pass training folds only, so that int8 accuracy on the held-out fold stays an honest number.
    """
    sample = train_dataset.shuffle(seed=seed).select(range(min(clips, len(train_dataset))))
    return np.concatenate(list(feature_batches(sample, feature_extractor, desc="Calibration features")))


def quantize_int8(
    onnx_path: str | Path, calibration: np.ndarray, output: str | Path | None = None, batch_size: int = 16
) -> Path:
    """Static int8 quantization (QDQ, per-channel weights) calibrated on `calibration` features.

    Static rather than dynamic: ONNX Runtime's dynamic quantization turns convolutions into
    `ConvInteger`, which re-quantizes activations at run time and is slower than float32 on CPU;
    calibrated activation ranges give fused int8 convolutions instead.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            starts = range(0, len(calibration), batch_size)
            self._batches = ({INPUT_NAME: calibration[start : start + batch_size]} for start in starts)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    onnx_path = Path(onnx_path)
    output = Path(output) if output is not None else onnx_path.with_name(INT8_FILE)
    with tempfile.TemporaryDirectory() as scratch:
        # Shape inference and graph clean-up first, as onnxruntime recommends before quantizing.
        prepared = Path(scratch) / "prepared.onnx"
        # Symbolic shape inference is skipped: it cannot read opset-18 ReduceMean (axes as an input);
        # ONNX shape inference, which still runs, is all a CNN needs.
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(output),
            _Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    labels = onnx_labels(onnx_path)
    if labels is not None:  # the int8 file carries the same labels as the file it was made from
        quantized = onnx.load(str(output))
        onnx.helper.set_model_props(quantized, {LABELS_METADATA_KEY: json.dumps(labels)})
        onnx.save(quantized, str(output))
    onnx.checker.check_model(str(output))
    return output


__all__ = [
    "DEFAULT_OPSET",
    "LABELS_METADATA_KEY",
    "PARITY_TOLERANCE",
    "calibration_features",
    "export_onnx",
    "feature_batches",
    "onnx_labels",
    "parity_error",
    "quantize_int8",
]
