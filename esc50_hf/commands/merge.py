"""`esc50-hf merge`: several trained models of one recipe shape as one model that averages their probabilities.

    esc50-hf merge runs/seed-0 runs/seed-1 --output runs/pair --data-dir ESC-50 --float16

The merged folder is a model like any other (pipeline, `esc50-hf predict`, the app, `esc50-hf export-onnx`): its
networks each classify the clip and its probability is the mean of theirs. Like training, the merge scores it on the
members' validation fold, fits its calibration there, and writes its reports and card.
"""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("merge", help="one model from several trained ones (their mean probability)")
    parser.add_argument("models", nargs="+", metavar="MODEL", help="finished model folders written by train.py")
    parser.add_argument("--output", required=True, help="the new model folder (must not exist)")
    parser.add_argument(
        "--data-dir", default=None, help="ESC-50 folder (official or esc50-hf dataset) or Hub id (default: download)"
    )
    parser.add_argument(
        "--float16", action="store_true", help="store the weights in float16: half the bytes, loaded as float32"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.merge import merge_models

    results = merge_models(args.models, args.output, data_dir=args.data_dir, float16=args.float16)
    print(
        f"Model saved in {args.output}: {len(results['merged_from'])} networks, accuracy {results['accuracy']:.4f}, "
        f"macro-F1 {results['f1']:.4f} on fold {results['validation_fold']}"
    )
    return 0
