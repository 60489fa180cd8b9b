"""The training recipe the Hugging Face way: `HfArgumentParser` over this project's dataclasses and TrainingArguments.

    python train.py --config configs/esc50.yaml --learning_rate 1e-3 --gradient_accumulation_steps 2

A YAML (or JSON) file gives the defaults, command-line flags override them, and an unknown flag or
key is an error that names it. With no file at all, the dataclass defaults are the first stage of the
shipped model's recipe (`models/esc50-mel-cnn`: two seeds of that stage, each followed by
`configs/esc50-stage2.yaml`, merged). Feature and model defaults are read from
`Esc50FeatureExtractor` and `Esc50CnnConfig`, so each has one source.

The recipe a run records (`training_config.json`, and a fingerprint of it in every checkpoint) is
every field of this project's dataclasses plus the `TrainingArguments` fields that differ from
transformers' defaults; `RUN_SETTINGS` names what changes where or how a run executes, not what it
learns, and is left out of the fingerprint.
"""

import dataclasses
import inspect
import os
import sys
from argparse import ArgumentParser
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset
from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

from ..data.augmentation import (
    AugmentationParameterError,
    BackgroundNoise,
    CodecRoundTrip,
    ColouredNoise,
    FrequencyMasking,
    Gain,
    GaussianNoise,
    LevelAndClipping,
    Mixup,
    PitchShift,
    Reverberation,
    SpecAugment,
    TelephoneBand,
    TimeMasking,
    TimeRoll,
    TimeShift,
    TimeStretch,
    WaveformAugmentations,
)
from ..data.esc50 import DEFAULT_HUB_DATASET_ID, FOLDS, clips_per_class_and_fold, load_esc50, training_folds
from ..data.labelled import DEFAULT_EVAL_FRACTION, LabelledAudio, load_labelled_audio
from ..model.configuration_esc50_cnn import DEFAULT_STEM_CHANNELS, Esc50CnnConfig
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import ESC50_LABELS
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from .recipe import fingerprint, read_config_file, training_recipe


def default_of(cls: type, name: str) -> Any:
    """The default of `cls.__init__`'s parameter `name`: the single source of a feature or model default."""
    return inspect.signature(cls.__init__).parameters[name].default


def _field(help: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: list(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class DataArguments:
    """Where the clips come from, which fold validates, and how the feature cache is built.

    ESC-50 (`--data_dir`, or nothing) by default; or the user's own labelled audio: a folder of class subfolders
    (`--train_dir`) or a `datasets` dataset (`--dataset_name` and the column and split options of transformers'
    audio-classification example), read by `esc50_hf.data.labelled.load_labelled_audio`.
    """

    data_dir: str | None = _field(
        "ESC-50 in the official layout (meta/esc50.csv, audio/), an `esc50-hf dataset` folder or its Hub id; "
        "unset: download the official archive into the HF cache",
        None,
    )
    train_dir: str | None = _field(
        "train on your own audio instead of ESC-50: a folder with one subfolder per class (my_sounds/<label>/*.wav), "
        "optionally under train/ and validation/ or test/; without an evaluation split, --eval_fraction of each class "
        "evaluates",
        None,
    )
    dataset_name: str | None = _field(
        "train on your own audio instead of ESC-50: a `datasets` dataset (a save_to_disk folder, a dataset folder or "
        "a Hub id) with an Audio column and string or ClassLabel labels",
        None,
    )
    dataset_config_name: str | None = _field("the configuration of --dataset_name", None)
    audio_column_name: str = _field("the Audio column of --dataset_name", "audio")
    label_column_name: str = _field("the label column of --dataset_name (strings or a ClassLabel)", "label")
    train_split_name: str = _field("the split of --dataset_name (or split folder of --train_dir) that trains", "train")
    eval_split_name: str | None = _field(
        "the split of --dataset_name (or split folder of --train_dir) that evaluates; unset: validation, else test, "
        "else a stratified hold-out of --eval_fraction",
        None,
    )
    eval_fraction: float = _field(
        "share of each class that evaluates when --train_dir or --dataset_name has no evaluation split (a stratified "
        "hold-out, seed 0; at least 1 clip per class)",
        DEFAULT_EVAL_FRACTION,
    )
    hub_dataset_id: str = _field(
        "the Hub dataset the model card names (datasets:, model-index); publish it with `esc50-hf dataset`",
        DEFAULT_HUB_DATASET_ID,
    )
    validation_fold: int = _field("the fold held out for validation (1-5)", 5)
    train_folds: list[int] | None = _field(
        "the folds that train; unset: every fold but --validation_fold. Compare recipes without fold 5, e.g. "
        "--train_folds 1 2 3 --validation_fold 4",
        None,
    )
    cv_folds: list[int] = _field("folds that --cv trains, each once as the validation fold", list(FOLDS))
    feature_cache_dir: str | None = _field("folder of the log-mel cache; unset: <output_dir>/feature_cache", None)
    feature_workers: int = _field("processes that decode and augment clips while the feature cache is built", 2)
    features_file: str | None = _field(
        "train from a feature file written by --export_features instead of the audio (no decoding; e.g. on a GPU "
        "machine without the dataset); it must have been exported with this recipe's feature and augmentation "
        "options, and the final model is scored on its clean clips",
        None,
    )

    classes: list[str] | None = _field(
        "train on these ESC-50 classes only (at least 2), in this order: the model's labels; unset: all 50. "
        "E.g. a base model for transfer to the other classes (bench/own_classes.py)",
        None,
    )
    max_clips_per_class_and_fold: int | None = _field(
        "use at most this many ESC-50 clips of each class in each fold (the first in meta/esc50.csv; the official "
        "data has 8), and build features for those only: a quick check of the training path (configs/smoke.yaml), "
        "not for results; unset: all",
        None,
    )

    # Options of the user's own audio, of a class subset and of a clip limit: not recorded when unused, so the
    # recipes (and fingerprints) of ESC-50 runs stay as they were.
    OWN_DATA_FIELDS = (
        "train_dir", "dataset_name", "dataset_config_name", "audio_column_name", "label_column_name",
        "train_split_name", "eval_split_name", "eval_fraction",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.classes is not None:
            unknown = [name for name in self.classes if name not in ESC50_LABELS]
            if unknown or len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise ValueError(
                    f"--classes must name 2 or more different ESC-50 classes, got {self.classes}"
                    + (f" ({unknown} are not ESC-50 classes)" if unknown else "")
                )
        self._check_sources()
        if self.max_clips_per_class_and_fold is not None and self.max_clips_per_class_and_fold < 1:
            raise ValueError(
                f"--max_clips_per_class_and_fold must be at least 1 (or unset: all clips), "
                f"got {self.max_clips_per_class_and_fold}"
            )
        named = (
            ("validation_fold", [self.validation_fold]),
            ("cv_folds", self.cv_folds),
            ("train_folds", self.train_folds or []),
        )
        for name, folds in named:
            if not set(folds or []) <= set(FOLDS):
                raise ValueError(f"--{name} must name folds among {list(FOLDS)}, got {folds}")
        try:
            self.training_folds()
        except ValueError as error:
            raise ValueError(f"--train_folds: {error}") from None

    def _check_sources(self) -> None:
        """One source of audio, and only the options that apply to it."""
        if self.train_dir is not None and self.dataset_name is not None:
            raise ValueError("--train_dir and --dataset_name are two sources of audio: give one")
        own = "--train_dir" if self.train_dir is not None else "--dataset_name" if self.dataset_name else None
        if own and self.data_dir is not None:
            raise ValueError(f"--data_dir names ESC-50 and {own} your own audio: give one")
        defaults = {item.name: item.default for item in dataclasses.fields(self)}
        changed = [name for name in self.OWN_DATA_FIELDS[2:] if getattr(self, name) != defaults[name]]
        if own is None and changed:
            raise ValueError(
                f"--{changed[0]} applies to your own audio (--train_dir or --dataset_name); ESC-50 validates on "
                "--validation_fold"
            )
        columns = [
            name for name in changed if name in ("dataset_config_name", "audio_column_name", "label_column_name")
        ]
        if own == "--train_dir" and columns:
            raise ValueError(
                f"--{columns[0]} applies to --dataset_name; a --train_dir folder's classes are its folders"
            )
        if own and (self.validation_fold != defaults["validation_fold"] or self.train_folds is not None):
            raise ValueError(
                f"--validation_fold and --train_folds choose ESC-50 folds; with {own}, --eval_split_name or "
                "--eval_fraction choose what evaluates"
            )
        if own and self.classes is not None:
            raise ValueError(f"--classes chooses among ESC-50's classes; with {own} the classes are your labels")
        if own and self.max_clips_per_class_and_fold is not None:
            raise ValueError(
                f"--max_clips_per_class_and_fold limits ESC-50's clips; with {own} give a smaller folder or dataset"
            )
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"--eval_fraction must be between 0 and 1 (exclusive), got {self.eval_fraction}")

    def is_esc50(self) -> bool:
        """Whether the run trains on ESC-50 (`--data_dir` or the download), not on --train_dir / --dataset_name."""
        return self.train_dir is None and self.dataset_name is None

    def load_dataset(self, sampling_rate: int) -> Dataset | LabelledAudio:
        """The run's audio, decoding mono at `sampling_rate`.

        Returns:
            ESC-50: `load_esc50(--data_dir)`, the `Dataset` of folds 1-5 (split it with --validation_fold and
            --train_folds). Own audio: a `LabelledAudio` whose `dataset` has the same `audio`, `label`, `fold` and
            `filename` columns, fold 1 training and fold 2 evaluating, with its labels and provenance.

        Raises:
            `Esc50DataError` (ESC-50) or `LabelledDataError` (own audio): the data cannot be read as given.
        """
        if self.is_esc50():
            dataset = load_esc50(self.data_dir, sampling_rate)
            limit = self.max_clips_per_class_and_fold
            return dataset if limit is None else clips_per_class_and_fold(dataset, limit)
        return load_labelled_audio(
            self.train_dir, self.dataset_name, self.dataset_config_name, self.audio_column_name,
            self.label_column_name, self.train_split_name, self.eval_split_name, self.eval_fraction, sampling_rate,
        )  # fmt: skip

    def recorded(self) -> dict[str, Any]:
        """What a run's recipe records of these options: all of them but --features_file (where this run's features
        came from), and for ESC-50 none of the own-audio options, so that its recipes keep their fingerprints."""
        values = dataclasses.asdict(self)
        del values["features_file"]
        if self.is_esc50():
            for name in self.OWN_DATA_FIELDS:
                del values[name]
        for name in ("classes", "max_clips_per_class_and_fold"):
            if values[name] is None:
                del values[name]
        return values

    def training_folds(self) -> list[int]:
        """The folds that train: --train_folds, or every fold but --validation_fold."""
        return training_folds(self.validation_fold, self.train_folds)


@dataclass
class ModelArguments:
    """Log-mel features (saved in preprocessor_config.json) and the CNN (saved in config.json)."""

    sampling_rate: int = _field(
        "rate the clips are resampled to (Hz)", default_of(Esc50FeatureExtractor, "sampling_rate")
    )
    num_mel_bins: int = _field(
        "mel bands of the log-mel spectrogram", default_of(Esc50FeatureExtractor, "num_mel_bins")
    )
    n_fft: int = _field("FFT size and window length (samples)", default_of(Esc50FeatureExtractor, "n_fft"))
    hop_length: int = _field("samples between spectrogram frames", default_of(Esc50FeatureExtractor, "hop_length"))
    f_min: float = _field("lowest frequency of the mel filter bank (Hz)", default_of(Esc50FeatureExtractor, "f_min"))
    f_max: float | None = _field("highest frequency of the mel filter bank (Hz); unset: Nyquist", None)
    stem_channels: int = _field(
        "output channels of the stem convolution (then 2x2 pooling); 0: no stem, blocks start at full resolution",
        DEFAULT_STEM_CHANNELS,
    )
    block_channels: list[int] = _field(
        "output channels of each convolution block", list(default_of(Esc50CnnConfig, "block_channels"))
    )
    dropout: float = _field("dropout before the classifier", default_of(Esc50CnnConfig, "dropout"))
    label_smoothing: float = _field(
        "label smoothing of the training loss", default_of(Esc50CnnConfig, "label_smoothing")
    )

    model_name_or_path: str | None = _field(
        "start from this trained model (a folder or Hub id, e.g. models/esc50-mel-cnn): its features and network, "
        "with a new classifier head unless this run's labels are the model's own; unset: train from scratch. On "
        "ESC-50 it must not have trained on this run's validation fold; under --cv, {validation_fold} in it names "
        "one per fold (runs/cv/fold-{validation_fold})",
        None,
    )
    freeze_batch_norm: bool = _field(
        "with --model_name_or_path: keep the model's batch-norm statistics while the rest trains (default: they "
        "follow the new clips, which measured better with 10 clips per class: bench/OWN_CLASSES.md)",
        False,
    )
    body_learning_rate_scale: float = _field(
        "with --model_name_or_path: the learning rate of the network below the head, as a fraction of "
        "--learning_rate; 0 trains the head only (a linear probe on the model's embeddings)",
        1.0,
    )

    FEATURE_FIELDS = ("sampling_rate", "num_mel_bins", "n_fft", "hop_length", "f_min", "f_max")
    MODEL_FIELDS = ("num_mel_bins", "stem_channels", "block_channels", "dropout", "label_smoothing")
    ARCHITECTURE_FIELDS = ("num_mel_bins", "stem_channels", "block_channels")  # what a starting model fixes
    TRANSFER_FIELDS = ("model_name_or_path", "freeze_batch_norm", "body_learning_rate_scale")

    def __post_init__(self) -> None:
        defaults = {item.name: item.default for item in dataclasses.fields(self)}
        if self.model_name_or_path is None:
            changed = [name for name in self.TRANSFER_FIELDS[1:] if getattr(self, name) != defaults[name]]
            if changed:
                raise ValueError(f"--{changed[0]} applies to a run that starts from --model_name_or_path")
        if not 0.0 <= self.body_learning_rate_scale <= 1.0:
            raise ValueError(f"--body_learning_rate_scale must be in [0, 1], got {self.body_learning_rate_scale}")

    def recorded(self) -> dict[str, Any]:
        """What a run's recipe records of these options: all, but the transfer ones only when the run starts from a
        model, so that the recipes of runs from scratch keep their fingerprints."""
        values = dataclasses.asdict(self)
        if self.model_name_or_path is None:
            for name in self.TRANSFER_FIELDS:
                del values[name]
        return values

    def feature_extractor_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FEATURE_FIELDS}

    def model_config_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.MODEL_FIELDS}


@dataclass
class AugmentationArguments:
    """Waveform augmentation (cached variants, part of the feature-cache key) and on-the-fly spectrogram ones."""

    augmented_variants: int = _field("augmented copies of each training clip in the cache, besides the clean one", 8)
    gaussian_noise_p: float = _field("probability of adding Gaussian noise to a variant", 0.3)
    gaussian_noise_min_amplitude: float = _field("smallest noise amplitude (full scale 1.0)", 1e-3)
    gaussian_noise_max_amplitude: float = _field("largest noise amplitude (full scale 1.0)", 1.5e-2)
    pitch_shift_p: float = _field("probability of a pitch shift", 0.5)
    pitch_shift_semitones: float = _field("largest pitch shift, up or down (semitones)", 2.0)
    time_stretch_p: float = _field("probability of a time stretch (length kept)", 0.5)
    time_stretch_range: float = _field("time-stretch rates are drawn from [1 - r, 1 + r]", 0.15)
    time_shift_p: float = _field("probability of a circular time shift of the waveform", 0.5)
    time_shift_max_fraction: float = _field("largest time shift, as a fraction of the clip", 0.5)
    gain_p: float = _field("probability of a gain change", 0.5)
    gain_db: float = _field("largest gain change, up or down (dB)", 6.0)
    background_noise_p: float = _field(
        "probability of mixing in a recorded background (ambient classes of the training folds; 0 = off)", 0.0
    )
    background_noise_min_snr_db: float = _field("lowest SNR of a mixed-in background (dB)", 0.0)
    background_noise_max_snr_db: float = _field("highest SNR of a mixed-in background (dB)", 20.0)
    coloured_noise_p: float = _field("probability of adding white-to-brown noise at an SNR (0 = off)", 0.0)
    coloured_noise_min_snr_db: float = _field("lowest SNR of the coloured noise (dB)", 0.0)
    coloured_noise_max_snr_db: float = _field("highest SNR of the coloured noise (dB)", 30.0)
    reverberation_p: float = _field("probability of a synthetic room's reverberation (0 = off)", 0.0)
    reverberation_max_rt60: float = _field("longest reverberation time of the synthetic rooms (s)", 1.5)
    codec_p: float = _field("probability of an MP3/AAC/Opus/GSM round trip at a low bit rate (0 = off)", 0.0)
    telephone_p: float = _field("probability of a 300-3400 Hz telephone band (0 = off)", 0.0)
    level_p: float = _field("probability of a level change with clipping at full scale (0 = off)", 0.0)
    level_min_db: float = _field("quietest level change (dB)", -30.0)
    level_max_db: float = _field("loudest level change, clipped at full scale (dB)", 20.0)
    time_roll_p: float = _field("probability of a random circular time roll of the spectrogram", 0.5)
    freq_masks: int = _field("SpecAugment frequency masks per sample", 2)
    freq_mask_width: int = _field("widest SpecAugment frequency mask (mel bands)", 8)
    time_masks: int = _field("SpecAugment time masks per sample", 2)
    time_mask_width: int = _field("widest SpecAugment time mask (frames)", 24)
    mixup_p: float = _field("probability of mixing a sample with a random partner", 0.8)
    mixup_alpha: float = _field("mixup weights are drawn from Beta(alpha, alpha)", 0.4)

    # Real recording conditions, by the probability that switches each off: left out of a run's recipe at p = 0,
    # so that the recipes (and fingerprints) of runs without them stay those of the runs before they existed.
    RECORDING_CONDITION_FIELDS = {
        "background_noise_p": ("background_noise_min_snr_db", "background_noise_max_snr_db"),
        "coloured_noise_p": ("coloured_noise_min_snr_db", "coloured_noise_max_snr_db"),
        "reverberation_p": ("reverberation_max_rt60",),
        "codec_p": (),
        "telephone_p": (),
        "level_p": ("level_min_db", "level_max_db"),
    }

    def __post_init__(self) -> None:
        if self.augmented_variants < 0:
            raise ValueError(f"--augmented_variants must be 0 or more, got {self.augmented_variants}")
        # Build every transform once, so that a bad value fails now, naming its flag, not hours into training.
        self.waveform()
        self.spec_augment()
        self.mixup()

    def recorded(self) -> dict[str, Any]:
        """What a run's recipe records of these options: all, but a recording condition only when it is on."""
        values = dataclasses.asdict(self)
        for probability, ranges in self.RECORDING_CONDITION_FIELDS.items():
            if values[probability] == 0:
                for name in (probability, *ranges):
                    del values[name]
        return values

    def waveform(self) -> WaveformAugmentations:
        """The audiomentations chain applied once per cached variant."""
        return _build(
            WaveformAugmentations,
            _build(GaussianNoise, p="gaussian_noise_p", min_amplitude="gaussian_noise_min_amplitude",
                   max_amplitude="gaussian_noise_max_amplitude", arguments=self),
            _build(PitchShift, p="pitch_shift_p", semitones="pitch_shift_semitones", arguments=self),
            _build(TimeStretch, p="time_stretch_p", rate_range="time_stretch_range", arguments=self),
            _build(TimeShift, p="time_shift_p", max_fraction="time_shift_max_fraction", arguments=self),
            _build(Gain, p="gain_p", max_db="gain_db", arguments=self),
            # Real recording conditions, in the order they happen: the room, the background, the recorder's level,
            # the line and the codec. Left out of the chain (and of the cache key) at p = 0.
            _build(Reverberation, p="reverberation_p", max_rt60="reverberation_max_rt60", arguments=self),
            _build(BackgroundNoise, p="background_noise_p", min_snr_db="background_noise_min_snr_db",
                   max_snr_db="background_noise_max_snr_db", arguments=self),
            _build(ColouredNoise, p="coloured_noise_p", min_snr_db="coloured_noise_min_snr_db",
                   max_snr_db="coloured_noise_max_snr_db", arguments=self),
            _build(LevelAndClipping, p="level_p", min_gain_db="level_min_db", max_gain_db="level_max_db",
                   arguments=self),
            _build(TelephoneBand, p="telephone_p", arguments=self),
            _build(CodecRoundTrip, p="codec_p", arguments=self),
        )  # fmt: skip

    def spec_augment(self) -> SpecAugment:
        return SpecAugment(
            _build(TimeRoll, p="time_roll_p", arguments=self),
            _build(FrequencyMasking, num_masks="freq_masks", max_width="freq_mask_width", arguments=self),
            _build(TimeMasking, num_masks="time_masks", max_width="time_mask_width", arguments=self),
        )

    def mixup(self) -> Mixup:
        return _build(Mixup, p="mixup_p", alpha="mixup_alpha", arguments=self)


def _build(cls: Any, *positional: Any, arguments: Any = None, **flags: str) -> Any:
    """`cls(**{parameter: arguments.<flag>})`; an invalid parameter is reported under its command-line flag."""
    try:
        return cls(*positional, **{parameter: getattr(arguments, flag) for parameter, flag in flags.items()})
    except AugmentationParameterError as error:
        flag = flags.get(error.parameter)
        raise ValueError(f"--{flag}: {error}" if flag else str(error)) from None


def _recipe_default(name: str, default: Any) -> Any:
    """A `TrainingArguments` field with the shipped recipe's default and transformers' own help text."""
    return field(default=default, metadata=TrainingArguments.__dataclass_fields__[name].metadata)


@dataclass
class Esc50TrainingArguments(TrainingArguments):
    """`transformers.TrainingArguments` with the shipped recipe as defaults, plus options of this project.

    Every other option (`--gradient_accumulation_steps`, `--max_grad_norm`, `--torch_compile`, ...)
    is transformers' own, with transformers' default.

    Args:
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Let a new run start in an `output_dir` that holds a finished model or checkpoints; they are deleted
            first (transformers 5 dropped this option).
        torch_threads (`int`, *optional*):
            Threads per process; unset, the machine's cores are shared among the local processes.
        ema_decay (`float`, *optional*, defaults to 0.998):
            Decay per optimizer step of the exponential moving average of the weights (and batch-norm
            statistics) that becomes the final model; 0 keeps the last weights instead. The average spans
            about `1 / (1 - ema_decay)` optimizer steps: with N processes or gradient accumulation an epoch
            has fewer steps, so the same decay spans more epochs; a run shorter than that span is refused.
            The final evaluation reports the last weights too (`metrics.json`, `last_weights`).
        teacher_models (`list[str]`, *optional*):
            Model folders or Hub ids of trained teachers: the student also learns their averaged predictions
            (knowledge distillation, `esc50_hf.training.distillation`). Each must have trained on this run's
            training folds only; `{validation_fold}` in a name is replaced by the run's validation fold (one teacher
            per fold under `--cv`). Unset: no distillation, and the three distillation options are not recorded.
        distillation_weight (`float`, *optional*, defaults to 0.5):
            Share of the distillation term in the training loss, in (0, 1]; the rest is the label loss.
        distillation_temperature (`float`, *optional*, defaults to 2.0):
            Softmax temperature of teachers and student in the distillation term.
    """

    output_dir: str | None = _recipe_default("output_dir", "outputs/esc50-mel-cnn")
    overwrite_output_dir: bool = _field(
        "let a new run start in an output_dir holding a finished model or checkpoints (they are deleted)", False
    )
    torch_threads: int | None = _field(
        "threads per process; unset: the machine's cores shared among the local processes", None
    )
    ema_decay: float = _field(
        "decay per step of the moving average of the weights saved as the final model; 0: keep the last weights",
        0.998,
    )
    teacher_models: list[str] | None = _field(
        "model folders or Hub ids whose averaged predictions the student also learns (knowledge distillation); each "
        "must have trained on this run's training folds only; {validation_fold} in a name is replaced by the fold",
        None,
    )
    distillation_weight: float = _field("share of the distillation term in the loss, in (0, 1]", 0.5)
    distillation_temperature: float = _field("softmax temperature of the distillation term", 2.0)
    seed: int = _recipe_default("seed", 0)  # the shipped model's; its feature cache is keyed by it too
    per_device_train_batch_size: int = _recipe_default("per_device_train_batch_size", 32)
    per_device_eval_batch_size: int = _recipe_default("per_device_eval_batch_size", 64)
    num_train_epochs: float = _recipe_default("num_train_epochs", 200.0)
    learning_rate: float = _recipe_default("learning_rate", 2e-3)
    weight_decay: float = _recipe_default("weight_decay", 1e-2)
    lr_scheduler_type: SchedulerType | str = _recipe_default("lr_scheduler_type", "cosine")
    warmup_steps: float = _recipe_default("warmup_steps", 0.05)
    bf16: bool = _recipe_default("bf16", True)  # CPUs with AVX512-BF16/AMX: about 2.5x faster
    eval_strategy: IntervalStrategy | str = _recipe_default("eval_strategy", "epoch")
    save_strategy: SaveStrategy | str = _recipe_default("save_strategy", "epoch")
    save_total_limit: int | None = _recipe_default("save_total_limit", 2)
    logging_steps: float = _recipe_default("logging_steps", 10)
    report_to: None | str | list[str] = _recipe_default("report_to", "tensorboard")
    remove_unused_columns: bool = _recipe_default("remove_unused_columns", False)  # the model takes input_values
    disable_tqdm: bool | None = _recipe_default("disable_tqdm", False)

    def __post_init__(self) -> None:
        import torch

        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"--ema_decay must be in [0, 1) (0: no averaging), got {self.ema_decay}")
        if self.ema_decay and (self.load_best_model_at_end or self.save_strategy in ("best", SaveStrategy.BEST)):
            raise ValueError(
                "--ema_decay saves the moving average of the weights as the final model; it cannot be combined with "
                "--load_best_model_at_end or --save_strategy best (set --ema_decay 0 to keep a checkpoint's weights)"
            )

        defaults = type(self).__dataclass_fields__
        shaping = ("distillation_weight", "distillation_temperature")
        if not self.teacher_models and any(getattr(self, name) != defaults[name].default for name in shaping):
            raise ValueError(
                "--distillation_weight and --distillation_temperature shape the loss to teachers: give --teacher_models"
            )
        if not 0.0 < self.distillation_weight <= 1.0:
            raise ValueError(f"--distillation_weight must be in (0, 1], got {self.distillation_weight}")
        if not self.distillation_temperature > 0.0:
            raise ValueError(f"--distillation_temperature must be above 0, got {self.distillation_temperature}")

        if not torch.cuda.is_available():
            self.use_cpu = True  # transformers refuses bf16 without a GPU unless told the run is on CPU
            if self.ddp_backend is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
                self.ddp_backend = "gloo"  # DDP across CPU processes
        super().__post_init__()


ARGUMENT_CLASSES = (DataArguments, ModelArguments, AugmentationArguments, Esc50TrainingArguments)


@dataclass
class TrainingSetup:
    """A parsed command line: the four argument groups and the run mode."""

    data: DataArguments
    model: ModelArguments
    augmentation: AugmentationArguments
    training: Esc50TrainingArguments
    cross_validate: bool = False
    export_features: str | None = None

    def recipe(self) -> dict[str, Any]:
        """What `training_config.json` records: `train.py --config` reads it back into the same setup (reading the
        audio: where this run's features came from, `features_file`, is not part of it)."""
        values = {**self.data.recorded(), **self.model.recorded()}
        values.update(self.augmentation.recorded())
        values.update(training_recipe(self.training))
        return values

    def fingerprint(self) -> str:
        return fingerprint(self.recipe())

    def replace(self, **changes: Any) -> "TrainingSetup":
        """A copy with some options changed, by name (`validation_fold=2`, `output_dir=...`)."""
        groups = {"data": self.data, "model": self.model, "augmentation": self.augmentation, "training": self.training}
        for name, group in groups.items():
            mine = {key: value for key, value in changes.items() if key in _init_fields(type(group))}
            if mine:
                if name == "training":  # a TrainingArguments rebuilt from its init fields re-runs __post_init__
                    group = type(group)(**{**_init_values(group), **mine})
                else:
                    group = dataclasses.replace(group, **mine)
                groups[name] = group
        unknown = set(changes) - set().union(*(_init_fields(type(group)) for group in groups.values()))
        if unknown:
            raise ValueError(f"Unknown training option(s): {sorted(unknown)}")
        return TrainingSetup(**groups, cross_validate=self.cross_validate, export_features=self.export_features)


def _init_fields(cls: type) -> set[str]:
    return {item.name for item in dataclasses.fields(cls) if item.init}


def _init_values(arguments: TrainingArguments) -> dict[str, Any]:
    return {name: getattr(arguments, name) for name in _init_fields(type(arguments))}


def build_feature_extractor(arguments: ModelArguments) -> Esc50FeatureExtractor:
    """The feature extractor of the recipe's `ModelArguments`."""
    return Esc50FeatureExtractor(**arguments.feature_extractor_kwargs())


def build_model(arguments: ModelArguments, labels: Sequence[str] = ESC50_LABELS) -> Esc50CnnForAudioClassification:
    """A new, randomly initialised network of the recipe's `ModelArguments`.

    Args:
        arguments (`ModelArguments`): The recipe's model options.
        labels (`Sequence[str]`, *optional*, defaults to `ESC50_LABELS`): The classes, in output order
            (`config.id2label`).
    """
    id2label = dict(enumerate(labels))
    model_config = Esc50CnnConfig(**arguments.model_config_kwargs(), id2label=id2label)
    # channels-last convolutions run ~15 % faster on CPU (oneDNN); the saved weights are unaffected.
    import torch

    return Esc50CnnForAudioClassification(model_config).to(memory_format=torch.channels_last)


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(
        ARGUMENT_CLASSES,
        prog="train.py",
        description="Train the ESC-50 log-mel CNN. Without --config the defaults are the shipped model's first stage "
        "(configs/esc50-stage2.yaml is its second).",
        allow_abbrev=False,  # a mistyped flag is an error, never silently another option
    )
    parser.add_argument("--config", default=None, help="YAML or JSON file of option defaults, e.g. configs/esc50.yaml")
    parser.add_argument("--cv", action="store_true", help="train and evaluate each of --cv_folds once")
    parser.add_argument(
        "--export_features",
        default=None,
        metavar="FILE",
        help="write the log-mels this recipe trains on (every fold, clean clips and augmented variants; float16 "
        "safetensors) to FILE and stop; train elsewhere with --features_file FILE",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainingSetup:
    """Parses `train.py`'s command line: `--config FILE` gives defaults, other flags override them.

    Raises `SystemExit` (argparse's usage error) naming an unknown flag or file key, and `ConfigFileError` for a
    `--config` file that cannot be read.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    config_reader = ArgumentParser(add_help=False, allow_abbrev=False)
    config_reader.add_argument("--config", default=None)
    config_path = config_reader.parse_known_args(argv)[0].config
    if config_path:
        values = read_config_file(config_path)
        known = {action.dest for action in parser._actions} - {"help", "config", "cv", "export_features"}
        unknown = sorted(set(values) - known)
        if unknown:
            parser.error(f"{config_path}: unknown key(s) {', '.join(unknown)} (see python train.py --help)")
        parser.set_defaults(**values)
    try:
        *groups, extra, remaining = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except ValueError as error:  # a dataclass rejected a value: a usage error, not a traceback
        parser.error(str(error))
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)} (see python train.py --help)")
    if not groups[0].is_esc50() and (extra.cv or extra.export_features or groups[0].features_file):
        parser.error(
            "--cv, --export_features and --features_file work on ESC-50's folds; with --train_dir or --dataset_name, "
            "train once (the evaluation split scores the model)"
        )
    if extra.cv and groups[0].train_folds is not None:
        parser.error("--cv trains each fold on all the other folds: leave --train_folds unset (--cv_folds picks folds)")
    if extra.export_features and (extra.cv or groups[0].features_file):
        parser.error("--export_features writes a feature file from the audio and stops: drop --cv and --features_file")
    return TrainingSetup(*groups, cross_validate=extra.cv, export_features=extra.export_features)
