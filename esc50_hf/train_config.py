"""The training recipe: every hyper-parameter in one dataclass, read from YAML plus `--key value` overrides."""

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .data import DEFAULT_HUB_DATASET_ID


@dataclasses.dataclass
class TrainConfig:
    # Data
    data_dir: str | None = None  # official layout, `esc50-hf dataset` folder or Hub id; None downloads the archive
    hub_dataset_id: str = DEFAULT_HUB_DATASET_ID  # the Hub dataset the model card names (datasets:, model-index)
    validation_fold: int = 5
    cv_folds: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 3, 4, 5])  # folds `--cv` runs
    feature_cache_dir: str | None = None  # None: <output_dir>/feature_cache
    feature_workers: int = 2  # processes decoding and augmenting clips while the cache is built
    # Features (saved in preprocessor_config.json)
    sampling_rate: int = 22050
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 512
    f_min: float = 0.0
    f_max: float | None = None
    # Model (saved in config.json)
    block_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128, 256])
    dropout: float = 0.3
    label_smoothing: float = 0.1
    # Waveform augmentation (audiomentations), applied once per cached variant
    augmented_variants: int = 4  # augmented copies of each training clip, besides the clean one
    gaussian_noise_p: float = 0.3
    pitch_shift_p: float = 0.5
    pitch_shift_semitones: float = 2.0
    time_shift_p: float = 0.5
    time_stretch_p: float = 0.5
    time_stretch_range: float = 0.15  # rate in [1 - r, 1 + r]
    gain_p: float = 0.5
    gain_db: float = 6.0
    # Spectrogram augmentation, applied on the fly to every training sample
    time_roll_p: float = 0.5  # circular shift of the spectrogram in time
    freq_masks: int = 2
    freq_mask_width: int = 8
    time_masks: int = 2
    time_mask_width: int = 24
    mixup_p: float = 0.8
    mixup_alpha: float = 0.4
    # Optimisation
    optimizer: str = "adamw"  # adamw | adam
    learning_rate: float = 2e-3
    weight_decay: float = 1e-2
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    num_train_epochs: float = 60
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    bf16: bool = False  # CPU bf16 autocast: ~2x faster on AVX512-BF16/AMX processors
    seed: int = 42
    torch_threads: int | None = None  # None: the machine's cores divided among the local processes
    # Output, checkpoints and logging
    output_dir: str = "outputs/esc50-mel-cnn"
    save_total_limit: int = 2
    logging_steps: int = 10
    report_to: str = "tensorboard"
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "latest" in output_dir
    # Publishing
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_private: bool = False

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "TrainConfig":
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of hyper-parameters, got {type(values).__name__}")
        values.update(overrides or {})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"Unknown training option(s): {unknown}. Known: {sorted(known)}")
        coerced = {name: _coerce(name, value, known[name].type) for name, value in values.items()}
        return cls(**coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recipe_differences(self, other: "TrainConfig") -> list[str]:
        """The options that make `other` a different recipe: where it runs, its seed or logging do not."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(name for name in mine if name not in RUN_SETTINGS and mine[name] != theirs[name])


# Options that change where or how a run executes, not what it learns (the seed draws a new run of a recipe).
RUN_SETTINGS = frozenset({
    "data_dir", "cv_folds", "feature_cache_dir", "feature_workers", "torch_threads", "seed", "output_dir",
    "save_total_limit", "logging_steps", "report_to", "resume_from_checkpoint", "push_to_hub", "hub_model_id",
    "hub_private", "hub_dataset_id", "per_device_eval_batch_size",
})  # fmt: skip


def parse_overrides(arguments: list[str]) -> dict[str, Any]:
    """`["--num_train_epochs", "1", "--bf16", "true"]` -> `{"num_train_epochs": 1, "bf16": True}`.

    Values are read as YAML scalars/lists, so `[16, 32]`, `null`, `true` and `3e-4` all work;
    dashes in keys are accepted for underscores (`--data-dir`).
    """
    overrides: dict[str, Any] = {}
    iterator = iter(arguments)
    for argument in iterator:
        if not argument.startswith("--"):
            raise ValueError(f"Expected --key value, got {argument!r}")
        key, _, inline_value = argument[2:].partition("=")
        value = inline_value if inline_value else next(iterator, None)
        if value is None:
            raise ValueError(f"Option --{key} needs a value")
        overrides[key.replace("-", "_")] = yaml.safe_load(value)
    return overrides


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Casts YAML values to the field's type so that e.g. `learning_rate: 1e-3` (a string in YAML 1.1) works."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"{name} cannot be null")
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if origin is type(None):
            continue
        if origin is list:
            items = value if isinstance(value, (list, tuple)) else [value]
            return [typing.get_args(kind)[0](item) for item in items]
        if origin is bool:
            if isinstance(value, bool):
                return value
            raise ValueError(f"{name} must be true or false, got {value!r}")
        try:
            return origin(value)
        except (TypeError, ValueError):
            continue
    raise ValueError(f"{name}: cannot read {value!r} as {annotation}")
