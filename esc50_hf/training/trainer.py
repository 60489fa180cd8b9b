"""Training through `transformers.Trainer`: cached features in, a Hub-ready model folder out."""

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import EvalPrediction, Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data.augmentation import Mixup, SpecAugment
from ..data.esc50 import FOLDS, load_esc50, split_folds, training_folds
from ..data.features import cached_log_mels, read_feature_file, variant_settings, write_feature_file
from ..evaluation.metrics import classification_metrics, spread
from ..evaluation.scoring import evaluate_model, predict_feature_logits, score_predictions
from ..model.configuration_esc50_cnn import Esc50CnnConfig
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import NUM_LABELS
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from ..publish import check_can_push, push_folder
from .arguments import Esc50TrainingArguments, ModelArguments, TrainingSetup, fingerprint
from .distillation import DistillationTrainer, TeacherError, changed_teachers, check_resumed_teachers, load_teachers
from .reports import write_model_folder_reports
from .run_folder import (
    EMA_FILE,
    RecipeFingerprint,
    check_new_run,
    check_resumable,
    choose_checkpoint,
    describe_difference,
    finished_model_recipe,
    newest_checkpoint_of,
    publish_model_folder,
    recover_interrupted_publish,
    staging_folder,
    stored_recipe_state,
)


class AugmentedFeatures(torch.utils.data.Dataset):
    """Training samples: a random cached variant of the clip, SpecAugment, and mixup with a random partner.

    Mixup lives here rather than in a collator: the partner is drawn from the whole training set
    (not only the current batch) and gets its own cached variant and SpecAugment, and every draw
    comes from torch's global generator in a fixed order, which the Trainer seeds and stores in its
    checkpoints, so a resumed run draws the same samples as an uninterrupted one.
    """

    def __init__(
        self,
        log_mels: torch.Tensor,
        labels: torch.Tensor,
        extractor: Esc50FeatureExtractor,
        spec_augment: SpecAugment,
        mixup: Mixup,
    ):
        self.log_mels, self.labels, self.extractor = log_mels, labels, extractor
        self.spec_augment, self.mixup = spec_augment, mixup
        self.num_labels = NUM_LABELS

    def __len__(self) -> int:
        return len(self.labels)

    def _sample(self, index: int) -> torch.Tensor:
        variant = int(torch.randint(self.log_mels.shape[1], ()))
        return self.spec_augment(self.extractor.normalize(self.log_mels[index, variant].float()))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        features, label = self._sample(index), int(self.labels[index])
        if self.mixup.draw():
            partner = int(torch.randint(len(self), ()))
            features, targets = self.mixup(
                features, self._sample(partner), label, int(self.labels[partner]), self.num_labels
            )
        else:
            targets = torch.nn.functional.one_hot(torch.tensor(label), self.num_labels).float()
        return {"input_values": features, "labels": targets}


class EpochTimer(TrainerCallback):
    """Wall time of each training epoch run in this process (evaluation and checkpointing excluded)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self.durations.append(time.perf_counter() - self._started)


class WeightAverage(TrainerCallback):
    """An exponential moving average of the weights and batch-norm statistics, updated after every optimizer step.

    torch's `AveragedModel` keeps the average; it is written into each checkpoint folder just before the
    Trainer fills it (`ema_model.safetensors`) and read back on resume, so a resumed run averages as an
    uninterrupted one. `copy_to` puts the average into the model once training ends.

    Args:
        decay (`float`):
            Weight of the old average at each step, in (0, 1).
        resume_from (`str`, *optional*):
            The checkpoint the run resumes from.
    """

    FILE_NAME = EMA_FILE

    def __init__(self, decay: float, resume_from: str | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.resume_from = decay, resume_from
        self.average: AveragedModel | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        horizon = round(1 / (1 - self.decay))
        if state.max_steps < horizon:
            raise ValueError(
                f"--ema_decay {self.decay} averages over about {horizon} optimizer steps, but this run has only "
                f"{state.max_steps}: the saved model would lean on the first weights. Lower --ema_decay (e.g. "
                f"{1 - 10 / max(state.max_steps, 10):.3g}) or set it to 0 to keep the last weights"
            )
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        if self.resume_from:  # run_folder only resumes checkpoints of an averaging recipe that hold the average
            self.average.module.load_state_dict(load_file(Path(self.resume_from) / self.FILE_NAME))
            self.average.n_averaged.fill_(max(1, state.global_step))

    def on_step_end(self, args, state, control, model=None, **kwargs) -> None:
        self.average.update_parameters(model)
        self._save_if_checkpoint_follows(args, state, control)  # save_strategy "steps"

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self._save_if_checkpoint_follows(args, state, control)  # save_strategy "epoch"

    def _save_if_checkpoint_follows(self, args, state, control) -> None:
        # DefaultFlowCallback, which runs before this callback, has decided whether a checkpoint follows.
        if control.should_save and args.should_save:  # the processes that write checkpoints
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in self.average.module.state_dict().items()}, folder / self.FILE_NAME)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.average.module.state_dict())


class CleanFeatures(torch.utils.data.Dataset):
    """Evaluation samples: the clean clip's normalised features and its class index."""

    def __init__(self, log_mels: torch.Tensor, labels: torch.Tensor, extractor: Esc50FeatureExtractor):
        self.features = extractor.normalize(log_mels[:, 0].float())
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_values": self.features[index], "labels": self.labels[index]}


def build_feature_extractor(arguments: ModelArguments) -> Esc50FeatureExtractor:
    return Esc50FeatureExtractor(**arguments.feature_extractor_kwargs())


def build_model(arguments: ModelArguments) -> Esc50CnnForAudioClassification:
    model_config = Esc50CnnConfig(**arguments.model_config_kwargs())
    # channels-last convolutions run ~15 % faster on CPU (oneDNN); the saved weights are unaffected.
    return Esc50CnnForAudioClassification(model_config).to(memory_format=torch.channels_last)


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    return classification_metrics(np.argmax(prediction.predictions, axis=-1), prediction.label_ids)


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


def _log(message: str) -> None:
    if PartialState().is_main_process:
        print(message, flush=True)


def _resume_point(setup: TrainingSetup) -> str | None:
    """The checkpoint to resume (`latest`: the newest complete one of this recipe), after checking the folder.

    A run that does not resume refuses a folder holding a finished model or checkpoints (see
    `run_folder.check_new_run`). Every process reads the same folder, so all reach the same answer.
    """
    folder, recipe = Path(setup.training.output_dir), setup.recipe()
    requested = setup.training.resume_from_checkpoint
    if requested in (None, "", "false", "False"):
        if PartialState().is_main_process:
            check_new_run(folder, recipe, setup.training.overwrite_output_dir, log=_log)
        PartialState().wait_for_everyone()
        return None
    if requested in ("latest", "true", "True"):
        checkpoint = choose_checkpoint(folder, recipe, log=_log)
        return str(checkpoint) if checkpoint else None
    check_resumable(Path(requested), recipe)
    return requested


@dataclass
class FoldFeatures:
    """The features of one run and how its final model is scored.

    Attributes:
        train (`tuple[torch.Tensor, torch.Tensor]`): float16 log-mels `(clips, 1 + variants, mels, frames)` of the
            training clips and their labels.
        validation (`tuple[torch.Tensor, torch.Tensor]`): the clean log-mels `(clips, 1, mels, frames)` of the
            validation clips and their labels.
        validation_audio (`Dataset`, *optional*): the validation clips' audio, when the run has it: the final model
            is then scored from the audio, as the pipeline hears it; without it (a feature file), from `validation`.
    """

    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    validation_audio: Dataset | None

    @property
    def scored_from(self) -> str:
        return "audio" if self.validation_audio is not None else "features_file"

    def score(self, model: torch.nn.Module, extractor: Esc50FeatureExtractor) -> dict[str, Any]:
        """Scores `model` on the validation fold: from the audio, as the pipeline hears it, when there is audio."""
        if self.validation_audio is not None:
            return evaluate_model(model, extractor, self.validation_audio)
        clean = CleanFeatures(*self.validation, extractor)
        logits = predict_feature_logits(model, clean.features)
        return score_predictions(logits.argmax(axis=-1), clean.labels.numpy())


def recipe_log_mels(
    setup: TrainingSetup, extractor: Esc50FeatureExtractor
) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The dataset and the cached `(features, labels)` of all its clips, variants included, for this recipe.

    The cache covers all clips, so the five cross-validation runs share one. The main process
    computes it first; other DDP processes then read it.
    """
    data, augmentation, args = setup.data, setup.augmentation, setup.training
    dataset = load_esc50(data.data_dir, extractor.sampling_rate)
    cache_dir = data.feature_cache_dir or str(Path(args.output_dir) / "feature_cache")
    augmenter = augmentation.waveform() if augmentation.augmented_variants > 0 else None
    with args.main_process_first(desc="feature cache"):
        log_mels, labels = cached_log_mels(
            dataset, extractor, cache_dir, augmenter,
            augmentation.augmented_variants, args.seed, data.feature_workers, "esc50",
        )  # fmt: skip
    return dataset, log_mels, labels


def _variants_of(setup: TrainingSetup) -> dict[str, Any]:
    """What decides this recipe's augmented variants (`feature_cache.variant_settings`)."""
    augmentation = setup.augmentation
    return variant_settings(augmentation.waveform(), augmentation.augmented_variants, setup.training.seed)


def export_features(setup: TrainingSetup) -> Path:
    """`train.py --export_features FILE`: the features this recipe trains on, all folds, as a portable file.

    Args:
        setup (`TrainingSetup`): the parsed command line; `setup.export_features` names the file.

    Returns:
        `Path`: the file written (by the main process; the others wait for it).
    """
    extractor = build_feature_extractor(setup.model)
    dataset, log_mels, labels = recipe_log_mels(setup, extractor)
    path = Path(setup.export_features)
    if PartialState().is_main_process:
        write_feature_file(
            path, log_mels, labels, torch.tensor(dataset["fold"]), extractor, _variants_of(setup), dataset["filename"]
        )
        megabytes = path.stat().st_size / 1e6
        _log(f"Wrote {path}: {len(labels)} clips x {log_mels.shape[1]} views, {megabytes:.1f} MB")
    PartialState().wait_for_everyone()
    return path


def prepare_features(setup: TrainingSetup, extractor: Esc50FeatureExtractor) -> FoldFeatures:
    """Train and validation features of this run: from the audio through the cache, or from `--features_file`.

    Args:
        setup (`TrainingSetup`): the parsed command line.
        extractor (`Esc50FeatureExtractor`): the recipe's feature extractor (a feature file must match it).

    Raises:
        ValueError: the feature file is missing, damaged, made for another recipe, or lacks a fold the run needs.
    """
    data = setup.data
    train_folds = torch.tensor(data.training_folds())
    if data.features_file:
        stored = read_feature_file(data.features_file)
        stored.check_recipe(data.features_file, extractor, _variants_of(setup))
        log_mels, labels, folds, validation_audio = stored.log_mels, stored.labels, stored.folds, None
        missing = sorted(set([*train_folds.tolist(), data.validation_fold]) - set(folds.tolist()))
        if missing:
            raise ValueError(
                f"{data.features_file} holds no clips of fold(s) {missing}, which this run needs (--train_folds "
                f"{' '.join(map(str, train_folds.tolist()))} --validation_fold {data.validation_fold})"
            )
    else:
        dataset, log_mels, labels = recipe_log_mels(setup, extractor)
        folds = torch.tensor(dataset["fold"])
        validation_audio = split_folds(dataset, data.validation_fold, train_folds.tolist())["validation"]
    in_validation, in_train = folds == data.validation_fold, torch.isin(folds, train_folds)
    return FoldFeatures(
        train=(log_mels[in_train], labels[in_train]),
        validation=(log_mels[in_validation, :1], labels[in_validation]),  # the clean clips only
        validation_audio=validation_audio,
    )


def train(setup: TrainingSetup) -> dict[str, Any]:
    """Trains on `train_folds` (default: all but `validation_fold`), evaluates the final model, writes the model folder.

    The folder is checked first (resume only a complete checkpoint of this recipe; never start over
    another run's work unless `--overwrite_output_dir`), and the final model is swapped in atomically.
    """
    args = setup.training
    folder = Path(args.output_dir)
    if args.push_to_hub:
        check_can_push(args.hub_model_id)  # fail before hours of training, not after
    if PartialState().is_main_process:
        recover_interrupted_publish(folder, log=_log)
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
    clean = train_mels[:, 0].float()
    extractor.mean, extractor.std = float(clean.mean()), float(clean.std())

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
        model=build_model(setup.model),
        # The Trainer pushes nothing itself: the finished model folder is pushed once, below.
        args=setup.replace(push_to_hub=False).training if args.push_to_hub else args,
        train_dataset=AugmentedFeatures(
            train_mels, train_labels, extractor, setup.augmentation.spec_augment(), setup.augmentation.mixup()
        ),
        eval_dataset=CleanFeatures(val_mels, val_labels, extractor),
        processing_class=extractor,
        compute_metrics=compute_metrics,
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
    results: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle nothing reads; the recipe is JSON
        scores = features.score(trainer.model, extractor)
        results = write_model_folder_reports(
            staging, trainer.model, scores, recipe, trainer.state.log_history, run_facts
        )
        publish_model_folder(folder, recipe)
        if args.push_to_hub:
            push_folder(folder, args.hub_model_id, private=bool(args.hub_private_repo))
    PartialState().wait_for_everyone()
    return results


def cross_validate(setup: TrainingSetup) -> dict[str, Any]:
    """The literature's protocol: train five times, each fold once as validation; mean ± std.

    Runs the folds in `--cv_folds` under `<output_dir>/fold-<k>`: a fold whose folder holds a
    finished model of this recipe is done and kept, one with checkpoints of this recipe resumes
    from the newest complete one, so an interrupted CV picks up where it stopped and disjoint fold
    lists can run side by side. A fold folder holding another recipe's work stops the run (unless
    `--overwrite_output_dir`). `cv_results.json` summarises every finished fold in `output_dir`,
    rewritten after each fold (an empty `cv_folds` only rewrites it).
    """
    if setup.data.train_folds is not None:
        raise ValueError("--cv trains each fold on all the other folds: leave --train_folds unset")
    root = Path(setup.training.output_dir)
    redo = _folds_taught_by_other_teachers(setup, root)  # checked before the first fold trains
    for fold in setup.data.cv_folds:
        fold_dir = root / f"fold-{fold}"
        fold_setup = _fold_setup(setup, root, fold)
        recipe = fold_setup.recipe()
        finished = finished_model_recipe(fold_dir)
        if finished is not None and fingerprint(finished) == fingerprint(recipe) and fold not in redo:
            _log(f"fold {fold}: finished in {fold_dir}, kept")
            continue
        if finished is not None and not setup.training.overwrite_output_dir:
            raise RuntimeError(
                f"{fold_dir} holds a finished model of {describe_difference(finished, recipe)}; choose another "
                "--output_dir or pass --overwrite_output_dir to train this fold again"
            )
        resumable = fold not in redo and newest_checkpoint_of(fold_dir, recipe) is not None
        train(fold_setup.replace(resume_from_checkpoint="latest" if resumable else None))
        write_cross_validation_summary(root)
    summary = write_cross_validation_summary(root)
    if summary:
        print(json.dumps(summary["summary"], indent=2))
    return summary


def _fold_setup(setup: TrainingSetup, root: Path, fold: int) -> TrainingSetup:
    """One fold's run of a cross-validation: validates on `fold`, writes `root/fold-<fold>`, shares a feature cache."""
    return setup.replace(
        validation_fold=fold,
        output_dir=str(root / f"fold-{fold}"),
        feature_cache_dir=setup.data.feature_cache_dir or str(root / "feature_cache"),
        push_to_hub=False,
    )


def _folds_taught_by_other_teachers(setup: TrainingSetup, root: Path) -> set[int]:
    """Under `--cv` with teachers: loads and checks every fold's teachers, then finds the folds whose finished model or
    newest checkpoint of this recipe learned from other weights of a teacher than it holds now (retrained since).
    Those folds are trained again from the start with `--overwrite_output_dir`; without it, the run stops here,
    before any fold trains, naming them."""
    if not setup.training.teacher_models:
        return set()
    extractor = build_feature_extractor(setup.model)
    stale = {}
    for fold in setup.data.cv_folds:
        teachers = load_teachers(setup.training.teacher_models, fold, training_folds(fold), extractor)
        fold_dir = root / f"fold-{fold}"
        if finished_model_recipe(fold_dir) is not None:
            recorded = json.loads((fold_dir / "metrics.json").read_text()).get("teachers")
            where = "its finished model"
        else:
            newest = newest_checkpoint_of(fold_dir, _fold_setup(setup, root, fold).recipe())
            recorded = (stored_recipe_state(newest.path) or {}).get("teachers") if newest else None
            where = newest.path.name if newest else ""
        changed = changed_teachers(recorded, teachers)
        if changed:
            stale[fold] = f"fold {fold} ({where}: {', '.join(changed)})"
    if stale and not setup.training.overwrite_output_dir:
        raise TeacherError(
            f"--teacher_models: {'; '.join(stale.values())} learned from other weights of these teachers than they "
            "hold now (retrained or replaced since). Restore those teachers, or pass --overwrite_output_dir to train "
            "those folds again with the teachers as they are."
        )
    return set(stale)


def write_cross_validation_summary(root: Path) -> dict[str, Any]:
    """Summarises the finished folds under `root` into `root/cv_results.json` (main process; others get {})."""
    summary: dict[str, Any] = {}
    if PartialState().is_main_process:
        finished = {fold: root / f"fold-{fold}" / "metrics.json" for fold in FOLDS}
        per_fold = {fold: json.loads(path.read_text()) for fold, path in finished.items() if path.is_file()}
        summary = summarize_cross_validation(per_fold)
        root.mkdir(parents=True, exist_ok=True)
        (root / "cv_results.json").write_text(json.dumps(summary, indent=2))
    PartialState().wait_for_everyone()
    return summary


def summarize_cross_validation(per_fold: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std (population) of accuracy and macro-F1 over the finished folds, and which are missing."""
    summary: dict[str, Any] = {"folds_done": sorted(per_fold), "folds_missing": sorted(set(FOLDS) - set(per_fold))}
    summary.update(spread(per_fold.values()))
    return {"summary": summary, "folds": {str(fold): result for fold, result in sorted(per_fold.items())}}
