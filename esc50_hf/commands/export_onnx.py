"""`esc50-hf export-onnx`: the network as ONNX (log-mel features -> logits), or with `--waveform` the whole classifier
(mono waveform -> probabilities, front end inside), optionally int8 as well."""

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-onnx", help="export a saved model to ONNX (model.onnx) and optionally int8 (model.int8.onnx)"
    )
    parser.add_argument("--model", required=True, help="saved model folder")
    parser.add_argument(
        "--output", default=None, help="ONNX file to write (default: <model>/model.onnx, or model.waveform.onnx)"
    )
    parser.add_argument(
        "--waveform",
        action="store_true",
        help="export waveform -> probabilities with the log-mel front end inside (for browsers, phones, boards)",
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: 18)")
    parser.add_argument(
        "--dynamo", action="store_true", help="use the torch.export-based exporter (needs onnxscript installed)"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write the int8 twin next to the output (static, calibrated on training clips)",
    )
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder for int8 calibration (default: download)")
    parser.add_argument("--fold", type=int, default=5, help="held-out fold: never used for calibration")
    parser.add_argument("--calibration-clips", type=int, default=200, help="training clips to calibrate int8 on")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.waveform:
        return _run_waveform(args)
    import numpy as np

    from ..inference.onnx_export import DEFAULT_OPSET, PARITY_TOLERANCE, export_onnx, parity_error

    try:
        output = export_onnx(args.model, args.output, opset=args.opset or DEFAULT_OPSET, dynamo=args.dynamo)
    except ImportError as error:  # --dynamo without onnxscript: a setup problem, not a crash
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
    # Features are standardised, so unit-normal inputs cover the range the model sees.
    probe = np.random.default_rng(0).standard_normal((4, *_input_shape(args.model))).astype(np.float32)
    error = parity_error(args.model, probe, output.resolve())
    print(f"max |logit difference| PyTorch vs ONNX Runtime: {error:.2e} (tolerance {PARITY_TOLERANCE:.0e})")
    if error > PARITY_TOLERANCE:
        print("error: the exported model does not match the PyTorch model")
        return 1
    if args.int8:
        print(f"wrote {_write_int8(args, output)}")
    return 0


def _input_shape(model_dir: str) -> tuple[int, int]:
    from ..model.feature_extraction_esc50 import Esc50FeatureExtractor

    extractor = Esc50FeatureExtractor.from_pretrained(model_dir)
    return extractor.num_mel_bins, extractor.num_frames


def _write_int8(args: argparse.Namespace, onnx_path: Path) -> Path:
    from ..data.esc50 import load_esc50, split_folds
    from ..inference.onnx_export import calibration_features, quantize_int8
    from ..model.feature_extraction_esc50 import Esc50FeatureExtractor

    extractor = Esc50FeatureExtractor.from_pretrained(args.model)
    train = split_folds(load_esc50(args.data_dir, extractor.sampling_rate), args.fold)["train"]
    int8_path = quantize_int8(onnx_path, calibration_features(train, extractor, args.calibration_clips))
    return int8_path


def _run_waveform(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import Esc50HfError
    from ..inference.onnx_export import (
        DEFAULT_OPSET,
        MIN_WAVEFORM_OPSET,
        WAVEFORM_PARITY_TOLERANCE,
        export_waveform_onnx,
        quantize_waveform_int8,
        waveform_parity_error,
    )
    from ..model.feature_extraction_esc50 import Esc50FeatureExtractor

    if args.dynamo:
        raise Esc50HfError("--waveform uses the TorchScript exporter (torch.stft -> ONNX STFT): drop --dynamo.")
    opset = args.opset or DEFAULT_OPSET
    if opset < MIN_WAVEFORM_OPSET:
        raise Esc50HfError(f"--waveform needs --opset {MIN_WAVEFORM_OPSET} or later (the ONNX STFT operator).")
    output = export_waveform_onnx(args.model, args.output, opset=opset)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
    # Noise shorter than, as long as and longer than a clip: padding, the exact clip and cutting.
    clip = Esc50FeatureExtractor.from_pretrained(args.model).clip_samples
    rng = np.random.default_rng(0)
    probes = [0.1 * rng.standard_normal(length).astype(np.float32) for length in (clip // 7, clip, clip + clip // 3)]
    error = waveform_parity_error(args.model, probes, output.resolve())
    print(
        f"max |probability difference| Python vs ONNX Runtime: {error:.2e} (tolerance {WAVEFORM_PARITY_TOLERANCE:.0e})"
    )
    if error > WAVEFORM_PARITY_TOLERANCE:
        print("error: the exported waveform model does not match the Python path")
        return 1
    if args.int8:
        from ..data.esc50 import load_esc50, split_folds
        from ..inference.onnx_export import calibration_waveforms

        extractor = Esc50FeatureExtractor.from_pretrained(args.model)
        train = split_folds(load_esc50(args.data_dir, extractor.sampling_rate), args.fold)["train"]
        int8_path = quantize_waveform_int8(
            output, calibration=calibration_waveforms(train, extractor, args.calibration_clips)
        )
        print(f"wrote {int8_path} ({int8_path.stat().st_size / 1e6:.2f} MB)")
        error = waveform_parity_error(args.model, probes, int8_path)
        print(f"max |probability difference| Python vs int8 on noise: {error:.2e} (quantization noise, not checked)")
    return 0
