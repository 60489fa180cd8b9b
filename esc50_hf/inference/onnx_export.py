"""ONNX export of the CNN and its int8 quantization, in two forms.

* The feature graph (`export_onnx`): log-mel `input_values` -> logits (and `atypicality`, what the unknown score
  reads beside the top score). The front end stays outside, so every
  Python backend is fed by the same `Esc50FeatureExtractor` and PyTorch, ONNX Runtime and int8 differ only in
  how they run the network.
* The waveform graph (`export_waveform_onnx`): a mono waveform -> probabilities, logits and atypicality, for
  runtimes without
  Python (a browser, a phone, a small board). Its front end is `Esc50FeatureExtractor`'s own `fix_length`,
  `log_mel` and `normalize`, traced into ONNX operators (`STFT`, the mel matrix, `Log`): not a second copy.
"""

import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..data.esc50 import decoded_mono
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import model_labels
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from ..model.windows import softmax
from .onnx_backend import (
    ATYPICALITY_NAME,
    INPUT_NAME,
    INT8_FILE,
    ONNX_FILE,
    OUTPUT_NAME,
    TEMPERATURE_METADATA_KEY,
    OnnxBackend,
)

# 18 is the oldest opset the torch.export-based exporter emits; the TorchScript one supports it too.
DEFAULT_OPSET = 18
LABELS_METADATA_KEY = "labels"
SAMPLING_RATE_METADATA_KEY = "sampling_rate"
CLIP_SAMPLES_METADATA_KEY = "clip_samples"
INPUT_METADATA_KEY = "input"  # "waveform" in the waveform graph
# The unknown answer's fit (`config.unknown_threshold`, `config.unknown_quantiles` as JSON), in the waveform graph of a
# model that has them: a runtime without the model folder (the browser page) can then say "none of these".
UNKNOWN_THRESHOLD_METADATA_KEY = "unknown_threshold"
UNKNOWN_QUANTILES_METADATA_KEY = "unknown_quantiles"
MIN_WAVEFORM_OPSET = 17  # the first opset with the STFT operator
WAVEFORM_FILE = "model.waveform.onnx"
WAVEFORM_INT8_FILE = "model.waveform.int8.onnx"
WAVEFORM_INPUT_NAME = "waveform"
PROBABILITIES_NAME = "probabilities"
# The waveform graph's front end is ONNX's STFT rather than torch's FFT: the probabilities agree to ~1e-6.
WAVEFORM_PARITY_TOLERANCE = 1e-4
# float32 PyTorch vs ONNX Runtime: kernels differ in summation order only, so logits agree to ~1e-5.
PARITY_TOLERANCE = 1e-4


class _LogitsAndAtypicality(torch.nn.Module):
    """The model with plain tensor outputs, `(logits, atypicality)` (`Esc50CnnOutput` is not exportable as is)."""

    def __init__(self, model: Esc50CnnForAudioClassification) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, atypicality = self.model(input_values=input_values, return_dict=False, output_atypicality=True)
        return logits, atypicality


class _RefuseEmpty(torch.nn.Module):
    """Passes `(batch, samples)` through unchanged; with no sample or no row the graph stops at this module.

    ONNX has no assertion operator: the first sample of the batch is reshaped to `(1, 1)`, which fails when there
    is none, and ONNX Runtime's error names the node (`/audio_must_not_be_empty/Reshape`). Adding it times zero
    keeps the check in the graph and every finite sample as it was.
    """

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return waveform + 0.0 * waveform[:1, :1].reshape(1, 1)


class _WaveformClassifier(torch.nn.Module):
    """Waveform `(batch, samples)` -> `(probabilities, logits, atypicality)`: the feature extractor's own code, then
    the model.

    Args:
        extractor (`Esc50FeatureExtractor`): Its `fix_length`, `log_mel` and `normalize` are traced as they are.
        model (`Esc50CnnForAudioClassification`): Its forward divides by `calibration_temperature`, as in Python.
    """

    def __init__(self, extractor: Esc50FeatureExtractor, model: Esc50CnnForAudioClassification) -> None:
        super().__init__()
        self.extractor = extractor
        self.audio_must_not_be_empty = _RefuseEmpty()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        clip = self.extractor.fix_length(self.audio_must_not_be_empty(waveform))
        features = self.extractor.normalize(self.extractor.log_mel(clip))
        logits, atypicality = self.model(input_values=features, return_dict=False, output_atypicality=True)
        return logits.softmax(dim=-1), logits, atypicality


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
    if dynamo:
        _require_onnxscript()
    model, extractor = _load(model_path)
    output = Path(output) if output is not None else Path(model_path) / ONNX_FILE
    # Batch 2 (not 1), so the exporter cannot specialise the batch axis to a constant.
    example = torch.zeros(2, extractor.num_mel_bins, extractor.num_frames)
    axes = {INPUT_NAME: {0: "batch", 2: "frames"}, OUTPUT_NAME: {0: "batch"}, ATYPICALITY_NAME: {0: "batch"}}
    outputs = [OUTPUT_NAME, ATYPICALITY_NAME]
    _trace(_LogitsAndAtypicality(model), example, output, [INPUT_NAME], outputs, axes, opset, dynamo)
    # The labels travel inside the file too (metadata `labels`, a JSON list in output order), for runtimes that
    # read only the .onnx file; in a model folder config.json stays the source. The temperature traced into the
    # graph is recorded, so that a later recalibration of the folder is noticed (`SoundClassifier`).
    labels = json.dumps(list(model_labels(model.config)))
    return _finish(output, {LABELS_METADATA_KEY: labels, TEMPERATURE_METADATA_KEY: _temperature(model.config)})


def export_waveform_onnx(model_path: str | Path, output: str | Path | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """Exports a saved model folder as one self-contained ONNX graph from waveform to probabilities.

    Input `waveform`: float32 `(batch, samples)`, mono, at the model's sampling rate, any length: zero-padded at
    the end or cut to one clip (`Esc50FeatureExtractor.fix_length`), then the STFT, mel filter bank, dB and
    standardisation of `Esc50FeatureExtractor.log_mel`/`normalize`, then the network (with its
    `calibration_temperature`). Outputs `probabilities` and `logits`, `(batch, num_labels)`, and `atypicality`,
    `(batch,)` (`Esc50CnnOutput`). A rank other than 2
    is refused by ONNX Runtime, an input of 0 samples by the graph. Metadata: `labels` (JSON list in output
    order), `sampling_rate`, `clip_samples` and `input` (`"waveform"`); for a model with a fitted unknown answer,
    `unknown_threshold` and `unknown_quantiles` (JSON; `prediction.unknown_score` reads them with the pooled
    top score and atypicality).

    Args:
        model_path (`str` or `Path`): Saved model folder (config, weights, preprocessor_config.json).
        output (`str` or `Path`, *optional*): Destination file (default `<model_path>/model.waveform.onnx`).
        opset (`int`, *optional*, defaults to 18): ONNX opset version; 17 or more (the `STFT` operator).

    Returns:
        `Path`: The ONNX file.

    Raises:
        `ModelLoadError`: `model_path` holds no model that loads.
        `ValueError`: `opset` below 17.
    """
    if opset < MIN_WAVEFORM_OPSET:
        raise ValueError(f"The waveform graph needs opset {MIN_WAVEFORM_OPSET} or later (ONNX STFT), got {opset}.")
    model, extractor = _load(model_path)
    output = Path(output) if output is not None else Path(model_path) / WAVEFORM_FILE
    example = torch.zeros(2, extractor.clip_samples)  # any length works: fix_length is traced as pad-then-cut
    axes = {
        WAVEFORM_INPUT_NAME: {0: "batch", 1: "samples"},
        PROBABILITIES_NAME: {0: "batch"},
        OUTPUT_NAME: {0: "batch"},
        ATYPICALITY_NAME: {0: "batch"},
    }
    outputs = [PROBABILITIES_NAME, OUTPUT_NAME, ATYPICALITY_NAME]
    _trace(_WaveformClassifier(extractor, model), example, output, [WAVEFORM_INPUT_NAME], outputs, axes, opset)
    metadata = {
        LABELS_METADATA_KEY: json.dumps(list(model_labels(model.config))),
        SAMPLING_RATE_METADATA_KEY: str(extractor.sampling_rate),
        CLIP_SAMPLES_METADATA_KEY: str(extractor.clip_samples),
        INPUT_METADATA_KEY: WAVEFORM_INPUT_NAME,
        TEMPERATURE_METADATA_KEY: _temperature(model.config),
    }
    if model.config.unknown_threshold is not None:
        metadata[UNKNOWN_THRESHOLD_METADATA_KEY] = repr(float(model.config.unknown_threshold))
    if model.config.unknown_quantiles is not None:
        metadata[UNKNOWN_QUANTILES_METADATA_KEY] = json.dumps(model.config.unknown_quantiles)
    return _finish(output, metadata)


def _temperature(config: Any) -> str:
    """The calibration temperature traced into a graph, as its metadata holds it (exact: `repr` of the float)."""
    return repr(float(config.calibration_temperature))


def _load(model_path: str | Path) -> tuple[Esc50CnnForAudioClassification, Esc50FeatureExtractor]:
    from .classifier import explain_load_failure

    with explain_load_failure(model_path):
        model = Esc50CnnForAudioClassification.from_pretrained(model_path).eval()
        extractor = Esc50FeatureExtractor.from_pretrained(model_path)
    return model, extractor


def _trace(
    module: torch.nn.Module,
    example: torch.Tensor,
    output: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
    dynamo: bool = False,
) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    module.eval()  # the exporter restores the wrapper's mode afterwards, recursively
    with warnings.catch_warnings():
        # Shape checks (`_check_input`) and the temperature are constants of the model: safe to trace.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The TorchScript exporter is chosen on purpose (no onnxscript dependency): silence its deprecation notes.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        # `log_mel` asks for the real STFT while exporting (ONNX has no complex type): expected, not a problem.
        warnings.filterwarnings("ignore", message=".*return_complex", category=UserWarning)
        # The STFT's framing slices cannot be constant-folded: they run in the graph, as intended.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(
            module,
            (example,),
            str(output),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=dynamo,
            external_data=False,  # a few MB of weights: one self-contained file
        )


def _finish(output: Path, metadata: dict[str, str]) -> Path:
    """Writes `metadata` into the file's custom metadata and runs the full ONNX checker."""
    import onnx

    _set_metadata(output, metadata)
    onnx.checker.check_model(str(output), full_check=True)
    return output


def _set_metadata(onnx_file: Path, metadata: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(onnx_file))
    onnx.helper.set_model_props(graph, {**onnx_metadata(onnx_file), **metadata})
    onnx.save(graph, str(onnx_file))


def onnx_metadata(onnx_file: str | Path) -> dict[str, str]:
    """The custom metadata of an ONNX file (`labels`, and for the waveform graph `sampling_rate`, ...).

    Args:
        onnx_file (`str` or `Path`): An ONNX file written by `export_onnx` or `export_waveform_onnx`, or an int8 twin.
    """
    import onnx

    return {prop.key: prop.value for prop in onnx.load(str(onnx_file), load_external_data=False).metadata_props}


def onnx_labels(onnx_file: str | Path) -> list[str] | None:
    """The labels an exported file carries in its metadata (`None` for a file exported before they were written).

    Args:
        onnx_file (`str` or `Path`): An ONNX file written by `export_onnx` (or its int8 twin).
    """
    props = onnx_metadata(onnx_file)
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
    return np.concatenate(
        list(feature_batches(_sample(train_dataset, clips, seed), feature_extractor, desc="Calibration features"))
    )


def calibration_waveforms(
    train_dataset: Dataset, feature_extractor: Esc50FeatureExtractor, clips: int = 200, seed: int = 0
) -> np.ndarray:
    """`(clips, clip_samples)` waveforms of the same random sample of training clips: the waveform graph's
    calibration data (each padded or cut to one clip, as the graph does).

    Args:
        train_dataset (`Dataset`): Training folds only, decoded at the feature extractor's rate.
        feature_extractor (`Esc50FeatureExtractor`): Gives the clip length.
        clips (`int`, *optional*, defaults to 200): Clips drawn.
        seed (`int`, *optional*, defaults to 0): Shuffle seed.
    """
    audio = _sample(train_dataset, clips, seed)["audio"]
    clip = feature_extractor.fix_length
    return np.stack([clip(torch.as_tensor(decoded_mono(item))[None])[0].numpy() for item in audio])


def _sample(train_dataset: Dataset, clips: int, seed: int) -> Dataset:
    return train_dataset.shuffle(seed=seed).select(range(min(clips, len(train_dataset))))


def quantize_int8(
    onnx_path: str | Path,
    calibration: np.ndarray,
    output: str | Path | None = None,
    batch_size: int = 16,
    input_name: str = INPUT_NAME,
    nodes_to_exclude: list[str] | None = None,
) -> Path:
    """Static int8 quantization (QDQ, per-channel weights) calibrated on `calibration` inputs.

    Static rather than dynamic: ONNX Runtime's dynamic quantization turns convolutions into
    `ConvInteger`, which re-quantizes activations at run time and is slower than float32 on CPU;
    calibrated activation ranges give fused int8 convolutions instead.

    Args:
        onnx_path (`str` or `Path`): The float32 graph.
        calibration (`np.ndarray`): Its inputs: features for `export_onnx`'s graph, waveforms for the waveform graph.
        output (`str` or `Path`, *optional*): Destination (default `model.int8.onnx` beside `onnx_path`).
        batch_size (`int`, *optional*, defaults to 16): Calibration batch size.
        input_name (`str`, *optional*, defaults to `"input_values"`): The graph's input.
        nodes_to_exclude (`list[str]`, *optional*): Nodes left in float32 (besides those that compute only the
            atypicality, always left so).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            starts = range(0, len(calibration), batch_size)
            self._batches = ({input_name: calibration[start : start + batch_size]} for start in starts)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    onnx_path = Path(onnx_path)
    output = Path(output) if output is not None else onnx_path.with_name(INT8_FILE)
    # The atypicality is a few means and logarithms of the network's activations: it stays float32, as in Python.
    nodes_to_exclude = [*(nodes_to_exclude or []), *_atypicality_only_nodes(onnx.load(str(onnx_path)))]
    with tempfile.TemporaryDirectory() as scratch:
        quantize_static(
            str(_prepared_for_quantization(onnx_path, Path(scratch))),
            str(output),
            _Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=nodes_to_exclude,
        )
    _set_metadata(output, onnx_metadata(onnx_path))  # the same labels as the file it was made from
    onnx.checker.check_model(str(output))
    return output


def quantize_waveform_int8(
    onnx_path: str | Path, output: str | Path | None = None, calibration: np.ndarray | None = None
) -> Path:
    """int8 quantization of the network in a waveform graph; its front end stays float32.

    With `calibration` waveforms, static (`quantize_int8`: calibrated activation ranges, fused int8 convolutions);
    without, dynamic (weights int8, activation ranges measured per call), which needs no data but is slower and
    further from float32 (bench/RESULTS.md). Only the network's nodes (`/model/...`) are quantized: int8 rounding
    on the spectrum itself would be a different front end.

    Args:
        onnx_path (`str` or `Path`): A file written by `export_waveform_onnx`.
        output (`str` or `Path`, *optional*): Destination (default `model.waveform.int8.onnx` beside `onnx_path`).
        calibration (`np.ndarray`, *optional*): `(clips, samples)` training waveforms at the model's rate.

    Returns:
        `Path`: The int8 file, with the same metadata (labels, sampling rate) as `onnx_path`.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_path = Path(onnx_path)
    output = Path(output) if output is not None else onnx_path.with_name(WAVEFORM_INT8_FILE)
    front_end = [node.name for node in onnx.load(str(onnx_path)).graph.node if not node.name.startswith("/model/")]
    if calibration is not None:
        return quantize_int8(onnx_path, calibration, output, input_name=WAVEFORM_INPUT_NAME, nodes_to_exclude=front_end)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = _prepared_for_quantization(onnx_path, Path(scratch))
        quantize_dynamic(str(prepared), str(output), weight_type=QuantType.QInt8, nodes_to_exclude=front_end)
    _set_metadata(output, onnx_metadata(onnx_path))
    onnx.checker.check_model(str(output))
    return output


def _atypicality_only_nodes(model) -> list[str]:
    """The names of the nodes of an ONNX `model` that compute its `atypicality` output and nothing else."""

    producers = {name: node for node in model.graph.node for name in node.output}

    def ancestors(output: str) -> set[str]:
        seen, pending = set(), [output]
        while pending:
            node = producers.get(pending.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                pending.extend(node.input)
        return seen

    outputs = [output.name for output in model.graph.output]
    if ATYPICALITY_NAME not in outputs:
        return []
    others = set().union(*(ancestors(name) for name in outputs if name != ATYPICALITY_NAME))
    return sorted(ancestors(ATYPICALITY_NAME) - others)


def _prepared_for_quantization(onnx_path: Path, scratch: Path) -> Path:
    """Shape inference and graph clean-up first, as onnxruntime recommends before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = scratch / "prepared.onnx"
    # Symbolic shape inference is skipped: it cannot read opset-18 ReduceMean (axes as an input);
    # ONNX shape inference, which still runs, is all a CNN needs.
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    return prepared


@torch.inference_mode()
def waveform_parity_error(model_path: str | Path, waveforms: list[np.ndarray], onnx_file: str | Path) -> float:
    """Max |probability difference| between the Python path and a waveform graph on the same mono clips.

    The Python path is `Esc50FeatureExtractor` then the PyTorch model, softmax as `windows.softmax` computes it.

    Args:
        model_path (`str` or `Path`): Saved model folder.
        waveforms (`list[np.ndarray]`): 1-D float clips at the model's rate, of any lengths (each run alone).
        onnx_file (`str` or `Path`): A file written by `export_waveform_onnx` (or its int8 twin).
    """
    import onnxruntime as ort

    model, extractor = _load(model_path)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    worst = 0.0
    for waveform in waveforms:
        features = extractor(waveform, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]
        reference = softmax(model(input_values=features).logits.double().numpy())
        graph_input = {WAVEFORM_INPUT_NAME: np.asarray(waveform, np.float32)[None]}
        probabilities = session.run([PROBABILITIES_NAME], graph_input)[0]
        worst = max(worst, float(np.abs(probabilities - reference).max()))
    return worst


__all__ = [
    "CLIP_SAMPLES_METADATA_KEY",
    "DEFAULT_OPSET",
    "LABELS_METADATA_KEY",
    "PARITY_TOLERANCE",
    "PROBABILITIES_NAME",
    "SAMPLING_RATE_METADATA_KEY",
    "UNKNOWN_QUANTILES_METADATA_KEY",
    "UNKNOWN_THRESHOLD_METADATA_KEY",
    "WAVEFORM_FILE",
    "WAVEFORM_INPUT_NAME",
    "WAVEFORM_INT8_FILE",
    "WAVEFORM_PARITY_TOLERANCE",
    "calibration_features",
    "calibration_waveforms",
    "export_onnx",
    "export_waveform_onnx",
    "feature_batches",
    "onnx_labels",
    "onnx_metadata",
    "parity_error",
    "quantize_int8",
    "quantize_waveform_int8",
    "waveform_parity_error",
]
