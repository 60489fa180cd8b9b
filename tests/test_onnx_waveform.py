"""The self-contained waveform ONNX graph (`esc50-hf export-onnx --waveform`): parity with the Python path on
fixture clips, its metadata, its int8 twin and its refusals."""

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from esc50_hf.cli import main
from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.inference.onnx_export import (
    PROBABILITIES_NAME,
    UNKNOWN_QUANTILES_METADATA_KEY,
    UNKNOWN_THRESHOLD_METADATA_KEY,
    WAVEFORM_FILE,
    WAVEFORM_INPUT_NAME,
    WAVEFORM_INT8_FILE,
    WAVEFORM_PARITY_TOLERANCE,
    export_waveform_onnx,
    onnx_labels,
    onnx_metadata,
    quantize_waveform_int8,
    waveform_parity_error,
)
from esc50_hf.model.audio_io import load_audio
from esc50_hf.model.labels import ESC50_LABELS


@pytest.fixture(scope="module")
def waveform_model_dir(saved_model_dir, esc50_dir, tmp_path_factory):
    """A copy of the fixture model with model.waveform.onnx and its int8 twin (calibrated on 24 fixture clips),
    written by the command line."""
    folder = tmp_path_factory.mktemp("waveform-onnx") / "model"
    shutil.copytree(saved_model_dir, folder)
    argv = ["export-onnx", "--model", str(folder), "--waveform", "--int8", "--data-dir", str(esc50_dir)]
    assert main([*argv, "--calibration-clips", "24"]) == 0
    return folder


@pytest.fixture(scope="module")
def fixture_clips(esc50_dir):
    """Six fixture clips decoded at the model's rate (1 s each: the graph pads them, as Python does)."""
    paths = sorted((esc50_dir / "audio").glob("5-*.wav"))[:30:5]
    return [load_audio(str(path), 22050) for path in paths]


def _probabilities(path, waveform: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([PROBABILITIES_NAME], {WAVEFORM_INPUT_NAME: np.atleast_2d(waveform).astype(np.float32)})[0]


def test_graph_takes_waveforms_and_gives_probabilities_and_logits(waveform_model_dir):
    model = onnx.load(waveform_model_dir / WAVEFORM_FILE)
    onnx.checker.check_model(model, full_check=True)
    dims = [dim.dim_param or dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == WAVEFORM_INPUT_NAME and dims == ["batch", "samples"]
    assert [output.name for output in model.graph.output] == [PROBABILITIES_NAME, "logits", "atypicality"]
    assert "STFT" in {node.op_type for node in model.graph.node}  # the front end is in the graph


def test_metadata_carries_labels_and_sampling_rate(waveform_model_dir):
    for name in (WAVEFORM_FILE, WAVEFORM_INT8_FILE):
        metadata = onnx_metadata(waveform_model_dir / name)
        assert json.loads(metadata["labels"]) == list(ESC50_LABELS) == onnx_labels(waveform_model_dir / name)
        assert metadata["sampling_rate"] == "22050" and metadata["clip_samples"] == "110250"
        assert metadata["input"] == "waveform"


def test_same_answer_as_sound_classifier(waveform_model_dir, fixture_clips):
    classifier = SoundClassifier(waveform_model_dir)
    reference = classifier.window_probabilities(fixture_clips)
    graph = np.concatenate([_probabilities(waveform_model_dir / WAVEFORM_FILE, clip) for clip in fixture_clips])
    assert graph.shape == (6, 50)
    assert np.abs(graph - reference).max() <= WAVEFORM_PARITY_TOLERANCE
    assert (graph.argmax(-1) == reference.argmax(-1)).all()


def test_lengths_are_padded_and_cut_like_python(waveform_model_dir, fixture_clips):
    long = np.concatenate(fixture_clips)  # 6 s: cut to the first 5 s, as the feature extractor does
    short = fixture_clips[0][:300]
    assert waveform_parity_error(waveform_model_dir, [short, long], waveform_model_dir / WAVEFORM_FILE) <= 1e-4
    # A batch of equal-length rows: each row answered as if alone.
    batch = np.stack(fixture_clips[:3])
    together = _probabilities(waveform_model_dir / WAVEFORM_FILE, batch)
    alone = np.concatenate([_probabilities(waveform_model_dir / WAVEFORM_FILE, row) for row in batch])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_calibration_temperature_applies_as_in_pytorch(saved_model_dir, fixture_clips, tmp_path):
    folder = tmp_path / "hot"
    shutil.copytree(saved_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    tables = {"top_score": [0.1, 0.5, 0.9], "atypicality": [-1.0, 0.0, 2.5]}
    fitted = {"calibration_temperature": 3.0, "unknown_threshold": 0.0125, "unknown_quantiles": tables}
    (folder / "config.json").write_text(json.dumps({**config, **fitted}))
    path = export_waveform_onnx(folder)
    assert waveform_parity_error(folder, fixture_clips[:2], path) <= WAVEFORM_PARITY_TOLERANCE
    cold_path = export_waveform_onnx(saved_model_dir, tmp_path / "cold.onnx")
    cold = _probabilities(cold_path, fixture_clips[0])
    assert _probabilities(path, fixture_clips[0]).max() < cold.max()  # flatter: the temperature is in the graph
    # the unknown answer's fit travels with the graph (the browser page reads it), and only when there is one
    metadata = onnx_metadata(path)
    assert float(metadata[UNKNOWN_THRESHOLD_METADATA_KEY]) == 0.0125
    assert json.loads(metadata[UNKNOWN_QUANTILES_METADATA_KEY]) == tables
    cold_metadata, cold_config = onnx_metadata(cold_path), json.loads((saved_model_dir / "config.json").read_text())
    for key in (UNKNOWN_THRESHOLD_METADATA_KEY, UNKNOWN_QUANTILES_METADATA_KEY):
        assert json.loads(cold_metadata.get(key, "null")) == cold_config.get(key)


def test_int8_twin_is_smaller_and_close(waveform_model_dir, fixture_clips):
    fp32, int8 = waveform_model_dir / WAVEFORM_FILE, waveform_model_dir / WAVEFORM_INT8_FILE
    assert int8.stat().st_size < 0.7 * fp32.stat().st_size  # tiny network: the atypicality's constants stay float32
    quantized = np.concatenate([_probabilities(int8, clip) for clip in fixture_clips])
    exact = np.concatenate([_probabilities(fp32, clip) for clip in fixture_clips])
    assert np.isfinite(quantized).all() and np.allclose(quantized.sum(-1), 1.0, atol=1e-5)
    assert np.corrcoef(quantized.ravel(), exact.ravel())[0, 1] > 0.9  # quantization noise, not another function
    # The front end is not quantized: only the network's inputs are quantized and dequantized.
    graph = onnx.load(int8).graph
    producers = {output: node.name for node in graph.node for output in node.output}
    quantized = [producers.get(node.input[0], "") for node in graph.node if node.op_type == "QuantizeLinear"]
    assert quantized and not any(name.startswith(("/STFT", "/MatMul", "/Log")) for name in quantized)
    assert "STFT" in {node.op_type for node in graph.node}


def test_dynamic_int8_needs_no_data(waveform_model_dir, fixture_clips, tmp_path):
    path = quantize_waveform_int8(waveform_model_dir / WAVEFORM_FILE, tmp_path / "dynamic.onnx")
    integer_nodes = [node.name for node in onnx.load(path).graph.node if "Integer" in node.op_type]
    assert integer_nodes and all(name.startswith("/model/") for name in integer_nodes)
    assert json.loads(onnx_metadata(path)["labels"]) == list(ESC50_LABELS)
    assert np.isfinite(_probabilities(path, fixture_clips[0])).all()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((100,), "Invalid rank for input: waveform"),
        ((1, 1, 100), "Invalid rank for input: waveform"),
        ((1, 0), "audio_must_not_be_empty"),
        ((0, 100), "audio_must_not_be_empty"),
    ],
)
def test_wrong_rank_and_empty_input_are_refused(waveform_model_dir, shape, message):
    session = ort.InferenceSession(str(waveform_model_dir / WAVEFORM_FILE), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match=message):
        session.run(None, {WAVEFORM_INPUT_NAME: np.zeros(shape, np.float32)})


@pytest.mark.parametrize(
    ("extra", "message"), [(["--dynamo"], "drop --dynamo"), (["--opset", "16"], "--opset 17 or later")]
)
def test_command_refuses_what_the_waveform_graph_cannot_be(saved_model_dir, tmp_path, extra, message):
    output = tmp_path / "w.onnx"
    with pytest.raises(SystemExit, match=message):
        main(["export-onnx", "--model", str(saved_model_dir), "--waveform", "--output", str(output), *extra])
    assert not output.exists()
