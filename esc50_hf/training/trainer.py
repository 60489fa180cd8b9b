"""Training through `transformers.Trainer`: cached features in, a Hub-ready model folder out."""

import os
import platform
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from transformers import EvalPrediction, Trainer, set_seed

from ..evaluation.calibration import MIN_CALIBRATION_CLIPS, calibrate_model_folder
from ..evaluation.metrics import classification_metrics
from ..evaluation.scoring import score_predictions
from ..publish import check_can_push, push_folder
from . import print_main_process
from .arguments import Esc50TrainingArguments, TrainingSetup, build_feature_extractor, build_model
from .callbacks import EpochTimer, WeightAverage
from .distillation import DistillationTrainer, check_resumed_teachers, load_teachers
from .fold_features import AugmentedFeatures, CleanFeatures, prepare_features
from .recipe import fingerprint
from .reports import write_model_folder_reports
from .run_folder import (
    RecipeFingerprint,
    check_new_run,
    check_resumable,
    choose_checkpoint,
    hold_output_folder,
    publish_model_folder,
    recover_interrupted_publish,
    staging_folder,
)
from .transfer import keep_batch_norm_statistics, starting_model, transfer_optimizer, with_starting_model


def metrics_of(num_labels: int) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's `compute_metrics`: accuracy and macro-F1 over `num_labels` classes."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return classification_metrics(np.argmax(prediction.predictions, axis=-1), prediction.label_ids, num_labels)

    return compute_metrics


def _set_torch_threads(arguments: Esc50TrainingArguments) -> int:
    """`accelerate launch` pins OMP_NUM_THREADS=1 for a single CPU process; give each process its share of cores."""
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = arguments.torch_threads or max(1, (os.cpu_count() or 1) // local_processes)
    torch.set_num_threads(threads)
    return threads


def hardware_description(device: torch.device | None = None) -> str:
    """The processor, and the GPU where `device` is one, that a run used, for the model card."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    description = f"{cpu}, {os.cpu_count()} cores"
    if device is not None and device.type == "cuda":
        description += f", {torch.cuda.get_device_name(device)}"
    return description


def files_as_umask_says(folder: Path) -> None:
    """The weights get the mode the user's umask gives every other file (safetensors writes them 0600).

    Args:
        folder (`Path`): A saved model folder.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.glob("*.safetensors"):
        path.chmod(0o666 & ~umask)


def _resume_point(setup: TrainingSetup) -> str | None:
    """The checkpoint to resume (`latest`: the newest complete one of this recipe), after checking the folder.

    A run that does not resume refuses a folder holding a finished model or checkpoints (see
    `run_folder.check_new_run`). Every process reads the same folder, so all reach the same answer.
    """
    folder, recipe = Path(setup.training.output_dir), setup.recipe()
    requested = setup.training.resume_from_checkpoint
    if requested in (None, "", "false", "False"):
        if PartialState().is_main_process:
            check_new_run(folder, recipe, setup.training.overwrite_output_dir, log=print_main_process)
        PartialState().wait_for_everyone()
        return None
    if requested in ("latest", "true", "True"):
        checkpoint = choose_checkpoint(folder, recipe, log=print_main_process)
        return str(checkpoint) if checkpoint else None
    check_resumable(Path(requested), recipe)
    return requested


def train(setup: TrainingSetup) -> dict[str, Any]:
    """Trains on `train_folds` (default: all but `validation_fold`), evaluates the final model, writes the model folder;
    one run at a time per output folder (`run_folder.hold_output_folder`), see `_train`."""
    main = PartialState().is_main_process
    with hold_output_folder(Path(setup.training.output_dir)) if main else nullcontext():
        return _train(setup)


def _train(setup: TrainingSetup) -> dict[str, Any]:
    """Trains on `train_folds` (default: all but `validation_fold`), evaluates the final model, writes the model folder.

    The folder is checked first (resume only a complete checkpoint of this recipe; never start over
    another run's work unless `--overwrite_output_dir`), and the final model is swapped in atomically.
    """
    setup = with_starting_model(setup)  # a starting model fixes the features and architecture it learned with
    args = setup.training
    folder = Path(args.output_dir)
    if args.push_to_hub:
        check_can_push(args.hub_model_id)  # fail before hours of training, not after
    if PartialState().is_main_process:
        recover_interrupted_publish(folder, log=print_main_process)
    PartialState().wait_for_everyone()
    resume_point = _resume_point(setup)
    set_seed(args.seed)
    _set_torch_threads(args)
    extractor = build_feature_extractor(setup.model)
    teachers = (  # checked before the features are built: a wrong teacher fails in seconds
        load_teachers(args.teacher_models, setup.data.validation_fold, setup.data.training_folds(), extractor)
        if args.teacher_models
        else None
    )
    if teachers and resume_point:
        check_resumed_teachers(resume_point, teachers)
    features = prepare_features(setup, extractor)
    (train_mels, train_labels), (val_mels, val_labels) = features.train, features.validation
    transfer = setup.model.model_name_or_path is not None
    if transfer:  # the starting model's network expects its own normalisation: kept
        model, extractor = starting_model(setup.model, features.labels)
        if setup.model.freeze_batch_norm:
            keep_batch_norm_statistics(model)
        optimizers = (
            transfer_optimizer(model, args.learning_rate, setup.model.body_learning_rate_scale, args.weight_decay),
            None,
        )
    else:
        clean = train_mels[:, 0].float()
        extractor.mean, extractor.std = float(clean.mean()), float(clean.std())
        model, optimizers = build_model(setup.model, features.labels), (None, None)

    recipe = setup.recipe()
    distillation = {}
    if teachers:
        distillation = {
            "teachers": teachers,
            "weight": args.distillation_weight,
            "temperature": args.distillation_temperature,
        }
    trainer = (DistillationTrainer if teachers else Trainer)(
        **distillation,
        model=model,
        optimizers=optimizers,
        # The Trainer pushes nothing itself: the finished model folder is pushed once, below.
        args=setup.replace(push_to_hub=False).training if args.push_to_hub else args,
        train_dataset=AugmentedFeatures(
            train_mels,
            train_labels,
            extractor,
            setup.augmentation.spec_augment(),
            setup.augmentation.mixup(),
            len(features.labels),
        ),
        eval_dataset=CleanFeatures(val_mels, val_labels, extractor),
        processing_class=extractor,
        compute_metrics=metrics_of(len(features.labels)),
        callbacks=[
            RecipeFingerprint(fingerprint(recipe), recipe, [t.record() for t in teachers] if teachers else None)
        ],
    )
    epoch_timer = EpochTimer()
    trainer.add_callback(epoch_timer)
    weight_average = WeightAverage(args.ema_decay, resume_point) if args.ema_decay > 0 else None
    if weight_average is not None:
        trainer.add_callback(weight_average)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_point)
    run_facts = {
        "scored_from": features.scored_from,
        "train_seconds": round(time.perf_counter() - started, 1),
        "epochs_in_this_process": len(epoch_timer.durations),
        "seconds_per_epoch": round(float(np.mean(epoch_timer.durations)), 2) if epoch_timer.durations else None,
        "resumed_from": Path(resume_point).name if resume_point else None,
        "processes": trainer.args.world_size,
        "torch_threads_per_process": torch.get_num_threads(),
        "device": trainer.args.device.type,
        "hardware": hardware_description(trainer.args.device),
    }
    if features.own is not None or setup.data.classes:
        run_facts["data"] = {
            "source": features.own.source if features.own else f"ESC-50, {len(features.labels)} of its classes",
            "evaluation": features.own.evaluation if features.own else f"ESC-50 fold {setup.data.validation_fold}",
            "num_train_clips": len(train_labels),
        }
    if teachers:
        run_facts["teachers"] = [teacher.record() for teacher in teachers]
    if weight_average is not None:
        if trainer.is_world_process_zero():  # scored as the saved model is, below
            scores = features.score(trainer.model, extractor)
            run_facts["last_weights"] = {"accuracy": scores["accuracy"], "f1": scores["f1"]}
        weight_average.copy_to(trainer.model)
    staging = staging_folder(folder)
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        files_as_umask_says(staging)
    results: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle nothing reads; the recipe is JSON
        logits, references, atypicality = features.logits(trainer.model, extractor, atypicality=True)
        scores = score_predictions(logits.argmax(axis=-1), references, features.labels)
        evaluated = "the evaluation clips" if features.own is not None else f"fold {setup.data.validation_fold}"
        if len(references) >= MIN_CALIBRATION_CLIPS:
            calibrate_model_folder(
                staging,
                trainer.model.config,
                logits,
                references,
                f"{evaluated} (the evaluation split)",
                atypicality=atypicality,
            )
        else:
            print_main_process(
                f"Not calibrated: {len(references)} evaluation clips are too few to fit calibrated scores and an "
                f"unknown threshold (at least {MIN_CALIBRATION_CLIPS}); the scores stay as trained"
            )
        results = write_model_folder_reports(
            staging, trainer.model, scores, recipe, trainer.state.log_history, run_facts
        )
        publish_model_folder(folder, recipe)
        if args.push_to_hub:
            push_folder(folder, args.hub_model_id, private=bool(args.hub_private_repo))
        print_main_process(
            f"Model saved in {folder}: accuracy {results['accuracy']:.4f}, macro-F1 {results['f1']:.4f} on "
            f"{evaluated} ({results['num_clips']} clips)"
        )
    PartialState().wait_for_everyone()
    return results
