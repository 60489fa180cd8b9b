"""ONNX export, the ONNX Runtime backend and int8 quantization, on the fixture model and clips.

`onnx_model_dir` (conftest) is the fixture model exported by `esc50-hf export-onnx --int8`."""

import importlib.util

import numpy as np
import onnx
import pytest

from esc50_hf import Esc50FeatureExtractor, load_esc50
from esc50_hf.cli import main
from esc50_hf.inference.backends import TorchBackend, load_backend
from esc50_hf.inference.onnx_backend import INT8_FILE, ONNX_FILE, OnnxBackend
from esc50_hf.inference.onnx_export import PARITY_TOLERANCE, feature_batches, parity_error


@pytest.fixture(scope="module")
def clip_features(onnx_model_dir, esc50_dir) -> np.ndarray:
    """Log-mels of six fold-5 fixture clips (one batch), through the model's own feature extractor."""
    extractor = Esc50FeatureExtractor.from_pretrained(onnx_model_dir)
    fold5 = load_esc50(esc50_dir, extractor.sampling_rate).filter(lambda fold: fold == 5, input_columns="fold")
    return next(feature_batches(fold5.select(range(0, 30, 5)), extractor, batch_size=6))


def test_export_writes_a_valid_model_with_dynamic_axes(onnx_model_dir):
    model = onnx.load(onnx_model_dir / ONNX_FILE)
    onnx.checker.check_model(model, full_check=True)
    dims = [dim.dim_param or dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 32, "frames"]


def test_onnx_runtime_matches_pytorch(onnx_model_dir, clip_features):
    assert clip_features.shape[0] == 6
    torch_logits = TorchBackend(onnx_model_dir)(clip_features)
    onnx_logits = load_backend(onnx_model_dir, "onnx")(clip_features)
    assert onnx_logits.dtype == np.float32 and onnx_logits.shape == (6, 50)
    assert np.abs(onnx_logits - torch_logits).max() <= PARITY_TOLERANCE
    assert (onnx_logits.argmax(-1) == torch_logits.argmax(-1)).all()
    assert parity_error(onnx_model_dir, clip_features) <= PARITY_TOLERANCE


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch(onnx_model_dir, clip_features, batch):
    backend = OnnxBackend(onnx_model_dir, num_threads=1)
    batched = backend(clip_features[:batch])
    assert batched.shape == (batch, 50)
    # Each row is independent of the rest of the batch (eval-mode batch norm).
    np.testing.assert_allclose(batched[-1:], backend(clip_features[batch - 1 : batch]), atol=1e-5)


def test_other_clip_lengths_work(onnx_model_dir, clip_features):
    short = clip_features[:2, :, :40]
    assert np.abs(OnnxBackend(onnx_model_dir)(short) - TorchBackend(onnx_model_dir)(short)).max() <= PARITY_TOLERANCE


def test_int8_model_is_smaller_and_close(onnx_model_dir, clip_features):
    # Only about two thirds of the size for this tiny network (scales and zero points weigh, and the atypicality keeps
    # the batch-norm constants in float32); about a quarter for the real one (bench/RESULTS.md).
    assert (onnx_model_dir / INT8_FILE).stat().st_size < 0.7 * (onnx_model_dir / ONNX_FILE).stat().st_size
    int8_logits = OnnxBackend(onnx_model_dir, quantized=True)(clip_features)
    float_logits = OnnxBackend(onnx_model_dir)(clip_features)
    assert int8_logits.shape == (6, 50) and np.isfinite(int8_logits).all()
    # Quantization noise, not a different function: the logits stay strongly correlated.
    assert np.corrcoef(int8_logits.ravel(), float_logits.ravel())[0, 1] > 0.9
    assert OnnxBackend(onnx_model_dir, quantized=INT8_FILE)(clip_features).shape == (6, 50)


def test_missing_onnx_file_says_how_to_export(saved_model_dir):
    with pytest.raises(FileNotFoundError, match=r"model\.onnx does not exist.*esc50-hf export-onnx --model"):
        load_backend(saved_model_dir, "onnx")
    with pytest.raises(FileNotFoundError, match=r"model\.int8\.onnx does not exist.*--int8"):
        OnnxBackend(saved_model_dir, quantized=True)


def test_a_folder_recalibrated_after_its_export_is_refused(onnx_model_dir, tmp_path):
    """The graph divides by the temperature it was exported with (in its metadata, int8 twin too); a config that
    now says another would mix the old scores with the new threshold: refused with the re-export command."""
    import json
    import shutil

    from esc50_hf.inference.classifier import ModelLoadError, SoundClassifier
    from esc50_hf.inference.onnx_backend import TEMPERATURE_METADATA_KEY

    config = json.loads((onnx_model_dir / "config.json").read_text())
    for quantized in (False, True):
        metadata = OnnxBackend(onnx_model_dir, quantized=quantized).metadata
        assert float(metadata[TEMPERATURE_METADATA_KEY]) == config["calibration_temperature"]
    SoundClassifier(onnx_model_dir, backend="int8")  # as exported: loads
    folder = tmp_path / "model"
    shutil.copytree(onnx_model_dir, folder)
    recalibrated = config["calibration_temperature"] * 0.5
    (folder / "config.json").write_text(json.dumps({**config, "calibration_temperature": recalibrated}))
    for backend in ("onnx", "int8"):
        with pytest.raises(ModelLoadError, match="recalibrated since.*esc50-hf export-onnx --model"):
            SoundClassifier(folder, backend=backend)
    SoundClassifier(folder)  # PyTorch reads the config: nothing to re-export


def test_dynamo_exporter_without_onnxscript_is_a_clear_error(saved_model_dir, capsys):
    if importlib.util.find_spec("onnxscript") is not None:
        pytest.skip("onnxscript is installed: the dynamo exporter is available")
    assert main(["export-onnx", "--model", str(saved_model_dir), "--dynamo"]) == 2
    assert "pip install onnxscript" in capsys.readouterr().err
    assert not (saved_model_dir / ONNX_FILE).exists()
