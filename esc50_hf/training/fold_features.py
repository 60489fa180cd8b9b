"""The log-mels one run trains and validates on: from the cache built from the audio (clean clips and the
recipe's augmented variants) or from a feature file, as `torch` datasets that draw a variant per epoch."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset

from ..data.augmentation import BackgroundNoise, Mixup, SpecAugment
from ..data.degradations import AMBIENT_CLASSES
from ..data.esc50 import decoded_mono, keep_classes, split_folds
from ..data.feature_file import FeatureFileError, read_feature_file, write_feature_file
from ..data.features import cached_log_mels, variant_settings
from ..data.labelled import EVALUATION_FOLD, TRAINING_FOLD, LabelledAudio
from ..evaluation.scoring import labelled_logits, predict_feature_logits, score_predictions
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import ESC50_LABELS
from . import print_main_process
from .arguments import TrainingSetup, build_feature_extractor


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
        feature_extractor: Esc50FeatureExtractor,
        spec_augment: SpecAugment,
        mixup: Mixup,
        num_labels: int,
    ):
        self.log_mels, self.labels, self.extractor = log_mels, labels, feature_extractor
        self.spec_augment, self.mixup = spec_augment, mixup
        self.num_labels = num_labels

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


class CleanFeatures(torch.utils.data.Dataset):
    """Evaluation samples: the clean clip's normalised features and its class index."""

    def __init__(self, log_mels: torch.Tensor, labels: torch.Tensor, feature_extractor: Esc50FeatureExtractor):
        self.features = feature_extractor.normalize(log_mels[:, 0].float())
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_values": self.features[index], "labels": self.labels[index]}


@dataclass
class FoldFeatures:
    """The features of one run and how its final model is scored.

    Attributes:
        train (`tuple[torch.Tensor, torch.Tensor]`): float16 log-mels `(clips, 1 + variants, mels, frames)` of the
            training clips and their labels.
        validation (`tuple[torch.Tensor, torch.Tensor]`): the clean log-mels `(clips, 1, mels, frames)` of the
            validation clips and their labels.
        validation_audio (`Dataset`, *optional*): the validation clips' audio, when the run has it: the final model
            is then scored from the audio, through the feature extractor (`evaluate_model`); without it (a feature
            file), from `validation`.
        labels (`tuple[str, ...]`): the class names, in the id order of the label tensors: the model's labels.
        own (`LabelledAudio`, *optional*): the user's audio, when the run trains on it (not ESC-50).
    """

    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    validation_audio: Dataset | None
    labels: tuple[str, ...] = ESC50_LABELS
    own: LabelledAudio | None = None

    @property
    def scored_from(self) -> str:
        return "audio" if self.validation_audio is not None else "features_file"

    def score(self, model: torch.nn.Module, feature_extractor: Esc50FeatureExtractor) -> dict[str, Any]:
        """Scores `model` on the validation fold: from the audio through the feature extractor, when there is audio."""
        logits, references = self.logits(model, feature_extractor)
        return score_predictions(logits.argmax(axis=-1), references, self.labels)

    def logits(
        self, model: torch.nn.Module, feature_extractor: Esc50FeatureExtractor, atypicality: bool = False
    ) -> tuple[np.ndarray, ...]:
        """The model's logits on the validation clips and their class ids, as `score` scores them; with
        `atypicality`, the clips' atypicality third."""
        if self.validation_audio is not None:
            return labelled_logits(model, feature_extractor, self.validation_audio, atypicality)
        clean = CleanFeatures(*self.validation, feature_extractor)
        if atypicality:
            logits, atypical = predict_feature_logits(model, clean.features, atypicality=True)
            return logits, clean.labels.numpy(), atypical
        return predict_feature_logits(model, clean.features), clean.labels.numpy()


@dataclass
class RunData:
    """The clips of a run and how they split: ESC-50 by folds, the user's own audio by its fold 1 / fold 2.

    Attributes:
        dataset (`Dataset`): `audio`, `label`, `fold` and `filename` columns.
        labels (`tuple[str, ...]`): The class names of the `label` ids.
        validation_fold (`int`): The fold that validates.
        train_folds (`list[int]`): The folds that train.
        own (`LabelledAudio`, *optional*): The user's audio as loaded (its source and evaluation split, for the card).
    """

    dataset: Dataset
    labels: tuple[str, ...]
    validation_fold: int
    train_folds: list[int]
    own: LabelledAudio | None = None


def run_data(setup: TrainingSetup, sampling_rate: int) -> RunData:
    """The run's clips: ESC-50 (`--data_dir`, the download) or the user's (`--train_dir`, `--dataset_name`)."""
    data = setup.data
    loaded = data.load_dataset(sampling_rate)
    if isinstance(loaded, LabelledAudio):
        return RunData(loaded.dataset, loaded.labels, EVALUATION_FOLD, [TRAINING_FOLD], loaded)
    return RunData(loaded, ESC50_LABELS, data.validation_fold, data.training_folds())


def recipe_log_mels(
    setup: TrainingSetup, feature_extractor: Esc50FeatureExtractor
) -> tuple[RunData, torch.Tensor, torch.Tensor]:
    """The run's clips and the cached `(features, labels)` of all of them, variants included, for this recipe.

    The cache covers all clips, so the five cross-validation runs share one. The main process
    computes it first; other DDP processes then read it.
    """
    data, augmentation, args = setup.data, setup.augmentation, setup.training
    clips = run_data(setup, feature_extractor.sampling_rate)
    cache_dir = data.feature_cache_dir or str(Path(args.output_dir) / "feature_cache")
    augmenter = _augmenter(setup, clips) if augmentation.augmented_variants > 0 else None
    with args.main_process_first(desc="feature cache"):
        log_mels, labels = cached_log_mels(
            clips.dataset, feature_extractor, cache_dir, augmenter,
            augmentation.augmented_variants, args.seed, data.feature_workers, "esc50" if clips.own is None else "own",
        )  # fmt: skip
    return clips, log_mels, labels


def _give_backgrounds(transform: BackgroundNoise, clips: RunData) -> None:
    """The recorded backgrounds of `--background_noise_p`: the training folds' clips of the ambient classes."""
    names = [name for name in AMBIENT_CLASSES if name in clips.labels]
    if not names:
        raise ValueError(
            f"--background_noise_p {transform.p} mixes in clips of the ambient ESC-50 classes "
            f"({', '.join(AMBIENT_CLASSES)}), and this run's labels have none of them: set --background_noise_p 0 "
            "(the coloured noise of --coloured_noise_p needs no recordings)"
        )
    ids = {clips.labels.index(name) for name in names}
    train_folds = set(clips.train_folds)
    chosen = clips.dataset.filter(
        lambda label, fold: label in ids and fold in train_folds, input_columns=["label", "fold"]
    )
    transform.with_backgrounds([decoded_mono(audio) for audio in chosen["audio"]], chosen["filename"])


def _augmenter(setup: TrainingSetup, clips: RunData | None, stored_backgrounds: list[str] | None = None) -> Any:
    """The recipe's waveform transforms, the background clips given: the run's (`clips`), or, for a feature file
    (no audio here), the file's own list once checked to hold only clips of this run's training folds."""
    augmenter = setup.augmentation.waveform()
    background = augmenter.background_noise()
    if background is not None and clips is not None:
        _give_backgrounds(background, clips)
    elif background is not None and stored_backgrounds is not None:
        folds = set(setup.data.training_folds())
        foreign = [name for name in stored_backgrounds if int(name.split("-")[0]) not in folds]
        if foreign:
            raise FeatureFileError(
                f"{setup.data.features_file} mixed backgrounds from outside this run's training folds "
                f"({', '.join(foreign[:3])}...): export it again for --train_folds {' '.join(map(str, sorted(folds)))}"
            )
        background.background_clips = list(stored_backgrounds)
    return augmenter


def _variants_of(setup: TrainingSetup, clips: RunData | None = None, stored: Any = None) -> dict[str, Any]:
    """What decides this recipe's augmented variants (`data.features.variant_settings`)."""
    backgrounds = None
    if stored is not None:
        transforms = stored.metadata.get("augmentation") or []
        backgrounds = next((t["background_clips"] for t in transforms if "background_clips" in t), [])
    augmenter = _augmenter(setup, clips, backgrounds)
    return variant_settings(augmenter, setup.augmentation.augmented_variants, setup.training.seed)


def export_features(setup: TrainingSetup) -> Path:
    """`train.py --export_features FILE`: the features this recipe trains on, all folds, as a portable file.

    Args:
        setup (`TrainingSetup`): the parsed command line; `setup.export_features` names the file.

    Returns:
        `Path`: the file written (by the main process; the others wait for it).
    """
    extractor = build_feature_extractor(setup.model)
    clips, log_mels, labels = recipe_log_mels(setup, extractor)
    dataset = clips.dataset
    path = Path(setup.export_features)
    if PartialState().is_main_process:
        write_feature_file(
            path,
            log_mels,
            labels,
            torch.tensor(dataset["fold"]),
            extractor,
            _variants_of(setup, clips),
            dataset["filename"],
        )
        megabytes = path.stat().st_size / 1e6
        print_main_process(f"Wrote {path}: {len(labels)} clips x {log_mels.shape[1]} views, {megabytes:.1f} MB")
    PartialState().wait_for_everyone()
    return path


def prepare_features(setup: TrainingSetup, feature_extractor: Esc50FeatureExtractor) -> FoldFeatures:
    """Train and validation features of this run: from the audio through the cache, or from `--features_file`.

    Args:
        setup (`TrainingSetup`): the parsed command line.
        feature_extractor (`Esc50FeatureExtractor`): the recipe's feature extractor (a feature file must match it).

    Raises:
        `FeatureFileError`: the feature file is missing, damaged, made for another recipe, or lacks a fold the run
            needs.
    """
    data = setup.data
    if data.features_file:
        train_folds = torch.tensor(data.training_folds())
        stored = read_feature_file(data.features_file)
        stored.check_recipe(data.features_file, feature_extractor, _variants_of(setup, stored=stored))
        log_mels, labels, folds, validation_audio = stored.log_mels, stored.labels, stored.folds, None
        validation_fold, names, own = data.validation_fold, ESC50_LABELS, None
        missing = sorted(set([*train_folds.tolist(), validation_fold]) - set(folds.tolist()))
        if missing:
            raise FeatureFileError(
                f"{data.features_file} holds no clips of fold(s) {missing}, which this run needs (--train_folds "
                f"{' '.join(map(str, train_folds.tolist()))} --validation_fold {validation_fold})"
            )
    else:
        clips, log_mels, labels = recipe_log_mels(setup, feature_extractor)
        train_folds, validation_fold = torch.tensor(clips.train_folds), clips.validation_fold
        names, own = clips.labels, clips.own
        folds = torch.tensor(clips.dataset["fold"])
        validation_audio = split_folds(clips.dataset, validation_fold, clips.train_folds)["validation"]
    if data.classes:  # a subset of ESC-50's classes, in the order given: ids are re-numbered
        names, kept, labels = _select_classes(data.classes, labels)
        folds = torch.where(kept, folds, 0)  # fold 0: no split takes the other classes' clips
        if validation_audio is not None:
            validation_audio = keep_classes(validation_audio, names)
    in_validation, in_train = folds == validation_fold, torch.isin(folds, train_folds)
    return FoldFeatures(
        train=(log_mels[in_train], labels[in_train]),
        validation=(log_mels[in_validation, :1], labels[in_validation]),  # the clean clips only
        validation_audio=validation_audio,
        labels=tuple(names),
        own=own,
    )


def _select_classes(classes: list[str], labels: torch.Tensor) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor]:
    """`(names, kept, new_labels)`: the ESC-50 clips of `classes` (a mask) and their ids among `classes`."""
    index = {name: position for position, name in enumerate(ESC50_LABELS)}
    mapping = torch.full((len(ESC50_LABELS),), -1, dtype=torch.long)
    for position, name in enumerate(classes):
        mapping[index[name]] = position
    new_labels = mapping[labels.long()]
    return tuple(classes), new_labels >= 0, new_labels.clamp(min=0).to(labels.dtype)
