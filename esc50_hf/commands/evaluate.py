"""`esc50-hf evaluate`: accuracy, macro-F1 and per-class F1 of a saved model on one ESC-50 fold."""

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="accuracy and macro-F1 of a saved model on one ESC-50 fold")
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument(
        "--data-dir", default=None, help="ESC-50 folder (official or esc50-hf dataset) or Hub id (default: download)"
    )
    parser.add_argument("--fold", type=int, default=5)
    parser.add_argument("--output", default=None, help="write the full scores as JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from ..data.esc50 import fold_clips, load_esc50, some_esc50_classes
    from ..evaluation.scoring import evaluate_model
    from ..inference.classifier import explain_load_failure
    from ..model.labels import model_labels

    with explain_load_failure(args.model):
        model = AutoModelForAudioClassification.from_pretrained(args.model)
        extractor = AutoFeatureExtractor.from_pretrained(args.model)
    labels = model_labels(model.config)
    fold = fold_clips(load_esc50(args.data_dir, extractor.sampling_rate), args.fold, labels)
    scores = evaluate_model(model, extractor, fold)
    some = f" of the model's {len(labels)} classes" if some_esc50_classes(labels) else ""
    print(f"ESC-50 fold {args.fold}: {scores['num_clips']} clips{some}")
    print(f"accuracy  {scores['accuracy']:.4f}")
    print(f"macro-F1  {scores['f1']:.4f}")
    print("per-class F1:")
    for name, values in scores["per_class"].items():
        print(f"  {name:<18} {values['f1']:.3f}")
    if args.output:
        Path(args.output).write_text(json.dumps({"model": str(args.model), "fold": args.fold, **scores}, indent=2))
        print(f"written to {args.output}")
    return 0
