"""`esc50-hf calibrate`: fit a model's calibration and unknown threshold on held-out ESC-50 predictions.

Training already calibrates every model on its evaluation split. For a model whose evaluation split is the test fold
(the shipped model: fold 5), this refits it without the test fold: on the out-of-fold predictions of models of the
same recipe trained with another validation fold (`--held-out RUN ...`, each predicting its own validation fold,
which it never trained on). `--test-fold` then only measures what calibration does there, and fits nothing on it.

    esc50-hf calibrate --model models/esc50-mel-cnn --held-out runs/oof-f3 runs/oof-f4 --data-dir ESC-50 --test-fold 5
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


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
    parser.add_argument(
        "--test-fold", type=int, default=5, help="the fold never fitted on; measured there (default: 5)"
    )
    parser.add_argument(
        "--accept", type=float, default=None, help="share of known held-out clips the unknown threshold accepts"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from ..data.esc50 import fold_clips, load_esc50
    from ..evaluation.calibration import DEFAULT_ACCEPT, calibrate_model_folder, measure_calibration
    from ..evaluation.scoring import labelled_logits
    from ..inference.classifier import explain_load_failure
    from ..model.configuration_esc50_cnn import UNCALIBRATED
    from ..model.labels import model_labels
    from ..training.reports import CALIBRATION_TEST_FILE, rerender_model_card

    with explain_load_failure(args.model):
        model = AutoModelForAudioClassification.from_pretrained(args.model, **UNCALIBRATED)  # raw logits
        extractor = AutoFeatureExtractor.from_pretrained(args.model)
    dataset = load_esc50(args.data_dir, extractor.sampling_rate)
    logits, references, atypicality, sources = out_of_fold_logits(
        args.held_out, dataset, model_labels(model.config), args.test_fold, model.config.num_networks
    )
    fitted_on = "out-of-fold predictions of the same recipe: " + "; ".join(sources)
    accept = DEFAULT_ACCEPT if args.accept is None else args.accept
    test_logits, test_references, test_atypicality = labelled_logits(  # raw: before the calibration is in the config
        model, extractor, fold_clips(dataset, args.test_fold, model_labels(model.config)), atypicality=True
    )
    calibration = calibrate_model_folder(
        args.model, model.config, logits, references, fitted_on, accept, atypicality=atypicality
    )
    print(f"Calibrated {args.model} on {calibration.num_clips} held-out clips ({fitted_on})")
    print(f"  temperature {calibration.temperature:.4f}; unknown threshold {calibration.unknown_threshold:.4f}")
    print(
        f"  held-out (cross-fitted): ECE {calibration.before['ece']:.4f} -> {calibration.after['ece']:.4f}, "
        f"NLL {calibration.before['nll']:.4f} -> {calibration.after['nll']:.4f}"
    )
    measured = {
        "fold": args.test_fold,
        **measure_calibration(test_logits, test_references, calibration, test_atypicality),
    }
    (Path(args.model) / CALIBRATION_TEST_FILE).write_text(json.dumps(measured, indent=2))
    print(
        f"  fold {args.test_fold} (never fitted on): ECE {measured['before']['ece']:.4f} -> "
        f"{measured['after']['ece']:.4f}, NLL {measured['before']['nll']:.4f} -> {measured['after']['nll']:.4f}, "
        f"known clips accepted {measured['known_accepted']:.1%}"
    )
    if (Path(args.model) / "metrics.json").exists():
        rerender_model_card(Path(args.model))
    return 0


def out_of_fold_logits(
    run_folders: list[str | Path], dataset: Any, labels: tuple[str, ...], test_fold: int, num_networks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Held-out predictions of ESC-50 runs: each run's raw logits (temperature 1) on its own validation fold, which
    it never trained on, the clips' class ids in `labels` order, and each clip's atypicality by that run.

    Args:
        run_folders (`list`): Model folders trained by `train.py` (their `training_config.json` names the fold).
        dataset (`Dataset`): ESC-50 as `load_esc50` gives it.
        labels (`tuple[str, ...]`): The labels of the model to calibrate; every run must have them, in that order.
        test_fold (`int`): The fold nothing may be fitted on: a run validated on it is refused.
        num_networks (`int`): The networks of the model to calibrate (`config.num_networks`): every run must be made
            as it is (a merged model's calibration is fitted on merged runs).

    Returns:
        `(logits, references, atypicality, sources)`: the stacked logits, class ids and atypicality, and each run's
        fold in words.

    Raises:
        `Esc50HfError`: a run was validated on the test fold, has other labels or another number of networks.
    """
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from ..data.esc50 import FOLDS, fold_clips
    from ..errors import Esc50HfError
    from ..evaluation.scoring import labelled_logits
    from ..inference.classifier import explain_load_failure
    from ..model.configuration_esc50_cnn import UNCALIBRATED
    from ..model.labels import model_labels
    from ..training.model_folder import read_model_folder

    all_logits, all_references, all_atypicality, sources = [], [], [], []
    for folder in run_folders:
        recipe = read_model_folder(folder, require=("config.json", "training_config.json")).recipe
        fold = int(recipe["validation_fold"])
        if fold == test_fold:
            raise Esc50HfError(
                f"{folder} was validated on fold {fold}, the test fold: calibrate on folds the model is not tested on, "
                "e.g. with a run trained with --train_folds 1 2 3 --validation_fold 4"
            )
        with explain_load_failure(folder):
            model = AutoModelForAudioClassification.from_pretrained(folder, **UNCALIBRATED)
            extractor = AutoFeatureExtractor.from_pretrained(folder)
        if model_labels(model.config) != tuple(labels):
            raise Esc50HfError(f"{folder} has other labels than the model to calibrate: use runs of its labels")
        if model.config.num_networks != num_networks:
            raise Esc50HfError(
                f"{folder} is a model of {model.config.num_networks} network(s), the model to calibrate of "
                f"{num_networks}: its scores are not the model's. Use runs made as the model was (for a merged model, "
                "merge each held-out fold's trainings with `esc50-hf merge`)"
            )
        logits, references, atypicality = labelled_logits(
            model, extractor, fold_clips(dataset, fold, labels), atypicality=True
        )
        all_logits.append(logits)
        all_references.append(references)
        all_atypicality.append(atypicality)
        trained_on = recipe.get("train_folds") or [other for other in FOLDS if other != fold]
        sources.append(f"fold {fold} (a model trained on folds {', '.join(map(str, trained_on))})")
    return np.concatenate(all_logits), np.concatenate(all_references), np.concatenate(all_atypicality), sources
