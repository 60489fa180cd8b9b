"""The `esc50-hf` command: evaluate a saved model on an ESC-50 fold (more subcommands build on it)."""

import argparse
import json
import sys
from pathlib import Path

from .data import load_esc50, split_folds


def _evaluate(args: argparse.Namespace) -> int:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(args.model)
    extractor = AutoFeatureExtractor.from_pretrained(args.model)
    from .evaluation import evaluate_model

    fold = split_folds(load_esc50(args.data_dir, extractor.sampling_rate), args.fold)["validation"]
    scores = evaluate_model(model, extractor, fold)
    print(f"ESC-50 fold {args.fold}: {scores['num_clips']} clips")
    print(f"accuracy  {scores['accuracy']:.4f}")
    print(f"macro-F1  {scores['f1']:.4f}")
    print("per-class F1:")
    for name, values in scores["per_class"].items():
        print(f"  {name:<18} {values['f1']:.3f}")
    if args.output:
        Path(args.output).write_text(json.dumps({"model": args.model, "fold": args.fold, **scores}, indent=2))
        print(f"written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc50-hf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="accuracy and macro-F1 of a saved model on one ESC-50 fold")
    evaluate.add_argument("--model", required=True, help="model folder or Hub id")
    evaluate.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    evaluate.add_argument("--fold", type=int, default=5)
    evaluate.add_argument("--output", default=None, help="write the full scores as JSON here")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import esc50_hf  # noqa: F401  (registers the model with the Auto classes)

    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
