"""Training through `transformers.Trainer`: cached features in, a Hub-ready model folder out."""

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .augmentation import build_waveform_augmenter, mixup, spec_augment
from .configuration_esc50_cnn import Esc50CnnConfig
from .data import FOLDS, load_esc50, split_folds
from .feature_cache import cached_log_mels
from .feature_extraction_esc50 import Esc50FeatureExtractor
from .hub import check_can_push, push_folder
from .labels import NUM_LABELS
from .metrics import classification_metrics, spread
from .modeling_esc50_cnn import Esc50CnnForAudioClassification
from .reporting import write_model_folder_reports
from .train_config import TrainConfig


class AugmentedFeatures(torch.utils.data.Dataset):
    """Training samples: a random cached variant of the clip, SpecAugment, and mixup with a random partner.

    All randomness comes from torch's global generator, which the Trainer seeds and stores in
    its checkpoints, so a resumed run draws the same samples as an uninterrupted one.
    """

    def __init__(
        self, log_mels: torch.Tensor, labels: torch.Tensor, extractor: Esc50FeatureExtractor, config: TrainConfig
    ):
        self.log_mels, self.labels, self.extractor, self.config = log_mels, labels, extractor, config
        self.num_labels = NUM_LABELS

    def __len__(self) -> int:
        return len(self.labels)

    def _sample(self, index: int) -> torch.Tensor:
        variant = int(torch.randint(self.log_mels.shape[1], ()))
        features = self.extractor.normalize(self.log_mels[index, variant].float())
        return spec_augment(features, self.config)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        features, label = self._sample(index), int(self.labels[index])
        if torch.rand(()) < self.config.mixup_p:
            partner = int(torch.randint(len(self), ()))
            features, targets = mixup(
                features,
                self._sample(partner),
                label,
                int(self.labels[partner]),
                self.num_labels,
                self.config.mixup_alpha,
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


class CleanFeatures(torch.utils.data.Dataset):
    """Evaluation samples: the clean clip's normalised features and its class index."""

    def __init__(self, log_mels: torch.Tensor, labels: torch.Tensor, extractor: Esc50FeatureExtractor):
        self.features = extractor.normalize(log_mels[:, 0].float())
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_values": self.features[index], "labels": self.labels[index]}


def build_feature_extractor(config: TrainConfig) -> Esc50FeatureExtractor:
    return Esc50FeatureExtractor(
        n_mels=config.n_mels,
        sampling_rate=config.sampling_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        f_min=config.f_min,
        f_max=config.f_max,
    )


def build_model(config: TrainConfig) -> Esc50CnnForAudioClassification:
    model_config = Esc50CnnConfig(
        num_mel_bins=config.n_mels,
        block_channels=config.block_channels,
        dropout=config.dropout,
        label_smoothing=config.label_smoothing,
    )
    # channels-last convolutions run ~15 % faster on CPU (oneDNN); the saved weights are unaffected.
    return Esc50CnnForAudioClassification(model_config).to(memory_format=torch.channels_last)


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    return classification_metrics(np.argmax(prediction.predictions, axis=-1), prediction.label_ids)


def training_arguments(config: TrainConfig) -> TrainingArguments:
    return TrainingArguments(
        output_dir=config.output_dir,
        num_train_epochs=config.num_train_epochs,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay if config.optimizer == "adamw" else 0.0,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a fraction of the total steps
        bf16=config.bf16,
        use_cpu=not torch.cuda.is_available(),
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=False,  # honest evaluation: the final model, never the best epoch on fold 5
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        report_to=[] if config.report_to in ("none", "") else [config.report_to],
        seed=config.seed,
        dataloader_num_workers=0,  # features are in memory; workers would only copy them
        remove_unused_columns=False,
        ddp_backend="gloo" if _distributed() and not torch.cuda.is_available() else None,
        disable_tqdm=False,
    )


def _distributed() -> bool:
    """Started by torchrun / `accelerate launch --multi_gpu` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _set_torch_threads(config: TrainConfig) -> int:
    """`accelerate launch` pins OMP_NUM_THREADS=1 for a single CPU process; give each process its share of cores."""
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = config.torch_threads or max(1, (os.cpu_count() or 1) // local_processes)
    torch.set_num_threads(threads)
    return threads


def _optimizer(config: TrainConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]] | None:
    if config.optimizer == "adamw":
        return None  # the Trainer's default AdamW
    if config.optimizer == "adam":
        return torch.optim.Adam, {"lr": config.learning_rate}
    raise ValueError(f"optimizer must be 'adam' or 'adamw', got {config.optimizer!r}")


def hardware_description() -> str:
    """The processor (and GPU, if any) a run used, for the model card."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
    description = f"{cpu}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        description += f", {torch.cuda.get_device_name()}"
    return description


def _resume_point(config: TrainConfig) -> str | None:
    if config.resume_from_checkpoint in (None, "", "false", "False"):
        return None
    if config.resume_from_checkpoint in ("latest", "true", "True"):
        checkpoint = get_last_checkpoint(config.output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"No checkpoint to resume from in {config.output_dir}")
        return checkpoint
    return config.resume_from_checkpoint


def prepare_features(config: TrainConfig, extractor: Esc50FeatureExtractor, args: TrainingArguments):
    """Loads the split and returns cached (features, labels) for train and validation.

    The cache covers all clips (augmented variants included), so the five cross-validation
    runs share one. The main process computes it first; other DDP processes then read it.
    """
    dataset = load_esc50(config.data_dir, config.sampling_rate)
    splits = split_folds(dataset, config.validation_fold)
    cache_dir = config.feature_cache_dir or str(Path(config.output_dir) / "feature_cache")
    augmenter = build_waveform_augmenter(config) if config.augmented_variants > 0 else None
    augmentation = {k: v for k, v in config.to_dict().items() if k.endswith(("_p", "_semitones", "_range", "_db"))}
    with args.main_process_first(desc="feature cache"):
        log_mels, labels = cached_log_mels(
            dataset, extractor, cache_dir, augmenter, augmentation,
            config.augmented_variants, config.seed, config.feature_workers, "esc50",
        )  # fmt: skip
    in_validation = torch.tensor(dataset["fold"]) == config.validation_fold  # same order as split_folds
    train = log_mels[~in_validation], labels[~in_validation]
    validation = log_mels[in_validation, :1], labels[in_validation]  # the clean clips only
    return splits, train, validation


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains on every fold but `validation_fold`, evaluates the final model on it, writes the model folder."""
    if config.push_to_hub:
        check_can_push(config.hub_model_id)  # fail before hours of training, not after
    set_seed(config.seed)
    _set_torch_threads(config)
    args = training_arguments(config)  # first: it sets up the (DDP) process group
    extractor = build_feature_extractor(config)
    splits, (train_mels, train_labels), (val_mels, val_labels) = prepare_features(config, extractor, args)
    clean = train_mels[:, 0].float()
    extractor.mean, extractor.std = float(clean.mean()), float(clean.std())

    model = build_model(config)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=AugmentedFeatures(train_mels, train_labels, extractor, config),
        eval_dataset=CleanFeatures(val_mels, val_labels, extractor),
        processing_class=extractor,
        compute_metrics=compute_metrics,
        optimizer_cls_and_kwargs=_optimizer(config),
    )
    epoch_timer = EpochTimer()
    trainer.add_callback(epoch_timer)
    resume_point = _resume_point(config)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_point)
    timing = {
        "train_seconds": round(time.perf_counter() - started, 1),
        "epochs_in_this_process": len(epoch_timer.durations),
        "seconds_per_epoch": round(float(np.mean(epoch_timer.durations)), 2) if epoch_timer.durations else None,
        "resumed_from": Path(resume_point).name if resume_point else None,
        "processes": trainer.args.world_size,
        "torch_threads_per_process": torch.get_num_threads(),
        "hardware": hardware_description(),
    }
    trainer.save_model(config.output_dir)
    results: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        results = write_model_folder_reports(
            Path(config.output_dir), trainer.model, extractor, splits["validation"], config,
            trainer.state.log_history, timing,
        )  # fmt: skip
        if config.push_to_hub:
            push_folder(Path(config.output_dir), config.hub_model_id, private=config.hub_private)
    PartialState().wait_for_everyone()
    return results


def cross_validate(config: TrainConfig) -> dict[str, Any]:
    """The literature's protocol: train five times, each fold once as validation; mean ± std.

    Runs the folds in `config.cv_folds` under `<output_dir>/fold-<k>`: a fold with a
    `metrics.json` is done and kept, one with checkpoints resumes from the latest, so an
    interrupted CV picks up where it stopped and disjoint fold lists can run side by side.
    `cv_results.json` summarises every finished fold in `output_dir`, rewritten after each fold
    (`--cv_folds "[]"` only rewrites it).
    """
    root = Path(config.output_dir)
    for fold in config.cv_folds:
        fold_dir = root / f"fold-{fold}"
        if (fold_dir / "metrics.json").is_file():
            continue
        has_checkpoint = fold_dir.is_dir() and get_last_checkpoint(str(fold_dir)) is not None
        fold_config = replace(
            config,
            validation_fold=fold,
            output_dir=str(fold_dir),
            feature_cache_dir=config.feature_cache_dir or str(root / "feature_cache"),
            resume_from_checkpoint="latest" if has_checkpoint else None,
            push_to_hub=False,
        )
        train(fold_config)
        write_cross_validation_summary(root)
    summary = write_cross_validation_summary(root)
    if summary:
        print(json.dumps(summary["summary"], indent=2))
    return summary


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
