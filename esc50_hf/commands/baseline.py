"""`esc50-hf baseline`: handcrafted librosa features + scikit-learn MLP, scored like the CNN on one fold."""

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline", help="train and score the scikit-learn baseline (librosa features + MLP) on one ESC-50 fold"
    )
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--fold", type=int, default=5, help="test fold; the other four train the classifier")
    parser.add_argument("--output", default=None, help="write the full scores as JSON here")
    parser.add_argument("--workers", type=int, default=2, help="processes for decoding and feature extraction")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the MLP")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.baseline import run_baseline

    scores = run_baseline(args.data_dir, args.fold, workers=args.workers, seed=args.seed)
    print(f"baseline on ESC-50 fold {args.fold}: {scores['num_clips']} clips ({scores['num_train_clips']} to train)")
    print(f"accuracy  {scores['accuracy']:.4f}")
    print(f"macro-F1  {scores['f1']:.4f}")
    print(
        f"time      {scores['wall_seconds']:.0f} s (features {scores['feature_seconds']:.0f} s, "
        f"fit {scores['fit_seconds']:.0f} s)"
    )
    if args.output:
        Path(args.output).write_text(json.dumps({"data_dir": args.data_dir, **scores}, indent=2))
        print(f"written to {args.output}")
    return 0
