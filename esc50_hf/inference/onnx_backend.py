"""ONNX Runtime backend: the exported network (`model.onnx` or its int8 twin) behind the `LogitsBackend` interface.

Only the network is in the graph; the caller featurises audio with `Esc50FeatureExtractor`, exactly
as for the PyTorch backend, so both backends see identical `input_values`.
"""

from pathlib import Path

import numpy as np

from ..errors import Esc50HfError

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAME = "input_values"
OUTPUT_NAME = "logits"
ATYPICALITY_NAME = "atypicality"  # the graph's second output (files exported before it have none)
# The temperature the graph divides its logits by, in its metadata (files exported before it have none): a model
# recalibrated after its export would otherwise mix the old temperature with the new threshold and quantiles.
TEMPERATURE_METADATA_KEY = "calibration_temperature"


def onnx_file_name(quantized: bool | str = False) -> str:
    """`False` -> model.onnx, `True` -> model.int8.onnx, a string -> that file name (or path)."""
    if isinstance(quantized, str):
        return quantized
    return INT8_FILE if quantized else ONNX_FILE


class OnnxFileMissingError(Esc50HfError, FileNotFoundError):
    """The model folder has no exported ONNX file for this backend; the message says how to export it."""


class OnnxBackend:
    """ONNX Runtime (CPU) on `<model_path>/model.onnx`, or on the int8 file with `quantized`.

    Args:
        model_path: The saved model folder holding the exported file(s).
        num_threads: Intra-op threads (`None`: ONNX Runtime's default, one per physical core).
        quantized: `False` (float32 `model.onnx`), `True` (`model.int8.onnx`), or a file name in
            `model_path` (an absolute path is used as is).
    """

    def __init__(self, model_path: str | Path, num_threads: int | None = None, quantized: bool | str = False) -> None:
        import onnxruntime as ort

        self.path = Path(model_path) / onnx_file_name(quantized)
        if not self.path.is_file():
            raise OnnxFileMissingError(
                f"{self.path} does not exist. Export the model first: "
                f"esc50-hf export-onnx --model {model_path}" + (" --int8 --data-dir DIR" if quantized else "")
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1  # the graph is a single chain: no parallel branches to run
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        # Files exported before the network gave its atypicality have only the logits.
        self.gives_atypicality = ATYPICALITY_NAME in {output.name for output in self.session.get_outputs()}
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, input_values: np.ndarray) -> np.ndarray:
        inputs = {INPUT_NAME: np.ascontiguousarray(input_values, dtype=np.float32)}
        return self.session.run([OUTPUT_NAME], inputs)[0]

    def with_atypicality(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The logits and each input's atypicality from one run; `None` for a file exported without it."""
        if not self.gives_atypicality:
            return self(input_values), None
        inputs = {INPUT_NAME: np.ascontiguousarray(input_values, dtype=np.float32)}
        logits, atypicality = self.session.run([OUTPUT_NAME, ATYPICALITY_NAME], inputs)
        return logits, atypicality


__all__ = [
    "ATYPICALITY_NAME",
    "INT8_FILE",
    "ONNX_FILE",
    "TEMPERATURE_METADATA_KEY",
    "OnnxBackend",
    "OnnxFileMissingError",
    "onnx_file_name",
]
