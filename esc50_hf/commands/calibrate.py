"""`esc50-hf calibrate`: fit a model's calibration and unknown threshold on held-out ESC-50 predictions.

Training already calibrates every model on its evaluation split. For a model whose evaluation split is the test fold
(the shipped model: fold 5), this refits it without the test fold: on the out-of-fold predictions of models of the
same recipe trained with another validation fold (`--held-out RUN ...`, each predicting its own validation fold,
which it never trained on). `--test-fold` then only measures what calibration does there, and fits nothing on it.

    esc50-hf calibrate --model models/esc50-mel-cnn --held-out runs/oof-f3 runs/oof-f4 --data-dir ESC-50
"""

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="fit a model's calibrated scores and unknown threshold on held-out ESC-50 folds"
    )
    parser.add_argument("--model", required=True, help="the model folder to calibrate (its config.json is updated)")
    parser.add_argument(
        "--held-out",
        nargs="+",
        required=True,
        metavar="RUN",
        help="model folders of the same labels, each trained without its validation fold: their predictions on "
        "that fold are what the calibration is fitted on (never the test fold)",
    )
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder (official or esc50-hf dataset) or Hub id")
    parser.add_argument("--test-fold", type=int, default=None, help="also measure (never fit) on this fold, e.g. 5")
    parser.add_argument(
        "--accept", type=float, default=None, help="share of known held-out clips the unknown threshold accepts"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from ..data.esc50 import TEST_FOLD, load_esc50, split_folds
    from ..errors import Esc50HfError
    from ..evaluation.calibration import (
        DEFAULT_ACCEPT,
        calibrate_model_folder,
        expected_calibration_error,
        negative_log_likelihood,
        probabilities,
        rejection_score,
    )
    from ..evaluation.scoring import labelled_logits
    from ..inference.classifier import explain_load_failure
    from ..model.configuration_esc50_cnn import UNCALIBRATED
    from ..model.labels import model_labels
    from ..training.model_folder import read_model_folder
    from ..training.reports import CALIBRATION_TEST_FILE, rerender_model_card

    def load(folder: str):
        with explain_load_failure(folder):
            model = AutoModelForAudioClassification.from_pretrained(folder, **UNCALIBRATED)  # raw logits
            return model, AutoFeatureExtractor.from_pretrained(folder)

    target, extractor = load(args.model)
    labels = model_labels(target.config)
    dataset = load_esc50(args.data_dir, extractor.sampling_rate)
    all_logits, all_references, sources = [], [], []
    for run_folder in args.held_out:
        recipe = read_model_folder(run_folder, require=("config.json", "training_config.json")).recipe
        fold = int(recipe["validation_fold"])
        test_fold = args.test_fold or TEST_FOLD
        if fold == test_fold:
            raise Esc50HfError(
                f"{run_folder} was validated on fold {fold}, the test fold: calibrate on folds the model is not tested "
                f"on, e.g. a run trained with --train_folds 1 2 3 --validation_fold 4"
            )
        model, run_extractor = load(run_folder)
        if model_labels(model.config) != labels:
            raise Esc50HfError(f"{run_folder} has other labels than {args.model}: calibrate with runs of its labels")
        logits, references = labelled_logits(model, run_extractor, split_folds(dataset, fold)["validation"])
        all_logits.append(logits)
        all_references.append(references)
        trained_on = recipe.get("train_folds") or [f for f in range(1, 6) if f != fold]
        sources.append(f"fold {fold} (a model trained on folds {', '.join(map(str, trained_on))})")
    logits, references = np.concatenate(all_logits), np.concatenate(all_references)
    fitted_on = "out-of-fold predictions of the same recipe: " + "; ".join(sources)
    accept = DEFAULT_ACCEPT if args.accept is None else args.accept
    calibration = calibrate_model_folder(args.model, target.config, logits, references, fitted_on, accept)
    print(f"Calibrated {args.model} on {calibration.num_clips} held-out clips ({fitted_on})")
    print(f"  temperature {calibration.temperature:.4f}; unknown threshold {calibration.unknown_threshold:.4f}")
    print(
        f"  held-out (cross-fitted): ECE {calibration.before['ece']:.4f} -> {calibration.after['ece']:.4f}, "
        f"NLL {calibration.before['nll']:.4f} -> {calibration.after['nll']:.4f}"
    )
    if args.test_fold:
        test_model, _ = load(args.model)
        test_logits, test_references = labelled_logits(
            test_model, extractor, split_folds(dataset, args.test_fold)["validation"]
        )
        before, after = probabilities(test_logits), probabilities(test_logits, calibration.temperature)
        accepted = rejection_score(test_logits, calibration.temperature) >= calibration.unknown_threshold
        measured = {
            "fold": args.test_fold,
            "num_clips": int(len(test_references)),
            "accuracy": float((after.argmax(axis=-1) == test_references).mean()),
            "before": {
                "ece": expected_calibration_error(before, test_references),
                "nll": negative_log_likelihood(test_logits, test_references),
                "mean_top_score": float(before.max(axis=-1).mean()),
            },
            "after": {
                "ece": expected_calibration_error(after, test_references),
                "nll": negative_log_likelihood(test_logits, test_references, calibration.temperature),
                "mean_top_score": float(after.max(axis=-1).mean()),
            },
            "known_accepted": float(accepted.mean()),
        }
        (Path(args.model) / CALIBRATION_TEST_FILE).write_text(json.dumps(measured, indent=2))
        print(
            f"  fold {args.test_fold} (not fitted on): ECE {measured['before']['ece']:.4f} -> "
            f"{measured['after']['ece']:.4f}, NLL {measured['before']['nll']:.4f} -> {measured['after']['nll']:.4f}, "
            f"known clips accepted {measured['known_accepted']:.1%}"
        )
    if (Path(args.model) / "metrics.json").exists():
        rerender_model_card(Path(args.model))
    return 0
