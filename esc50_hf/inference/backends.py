"""Inference backends: something that maps a batch of log-mel features to logits.

Every backend receives the output of `Esc50FeatureExtractor` (`input_values`, float32
`(batch, num_mel_bins, frames)`) and returns float32 logits `(batch, num_labels)`, so the
pre- and post-processing around it is the same code whatever runs the network.
"""

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

BACKENDS = ("torch", "onnx", "int8")


class LogitsBackend(Protocol):
    def __call__(self, input_values: np.ndarray) -> np.ndarray: ...


class AtypicalityBackend(LogitsBackend, Protocol):
    """A backend that can also give each input's atypicality (`Esc50CnnOutput.atypicality`) from the same pass,
    or `None` when its network has none (an ONNX file exported before it existed)."""

    def with_atypicality(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class TorchBackend:
    """Eager PyTorch: the saved `Esc50CnnForAudioClassification`."""

    def __init__(self, model_path: str | Path, num_threads: int | None = None) -> None:
        from transformers import AutoModelForAudioClassification

        import esc50_hf  # noqa: F401  (Auto-class registration)

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.model = AutoModelForAudioClassification.from_pretrained(model_path).eval()

    @torch.inference_mode()
    def __call__(self, input_values: np.ndarray) -> np.ndarray:
        return self.model(input_values=torch.as_tensor(input_values)).logits.float().numpy()

    @torch.inference_mode()
    def with_atypicality(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The logits and each input's atypicality, from one forward pass."""
        output = self.model(input_values=torch.as_tensor(input_values), output_atypicality=True)
        return output.logits.float().numpy(), output.atypicality.float().numpy()


def load_backend(model_path: str | Path, backend: str = "torch", **kwargs) -> LogitsBackend:
    """The network of a saved model behind the `LogitsBackend` interface (features in, logits out).

    Args:
        model_path (`str` or `Path`): Saved model folder (or Hub id, for `"torch"`).
        backend (`str`, *optional*, defaults to `"torch"`): `"torch"` (PyTorch), `"onnx"` (ONNX Runtime on
            `<model_path>/model.onnx`) or `"int8"` (on `model.int8.onnx`).
        **kwargs: Passed to the backend, e.g. `num_threads`.

    Raises:
        `ValueError`: an unknown `backend`.
        `OnnxFileMissingError`: `"onnx"` or `"int8"` without the exported file.
    """
    if backend == "torch":
        return TorchBackend(model_path, **kwargs)
    if backend in ("onnx", "int8"):
        from .onnx_backend import OnnxBackend

        if backend == "int8":
            kwargs.setdefault("quantized", True)
        return OnnxBackend(model_path, **kwargs)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
