"""A training recipe as data: reading a config file (older keys translated), what is recorded of a run, its
fingerprint, and how two recipes differ. What `run_folder` checks before resuming and `reports` states in the card."""

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainingArguments

from ..errors import Esc50HfError


class ConfigFileError(Esc50HfError, ValueError):
    """A config file (`train.py --config`) that cannot be read, or does not hold a mapping of options."""


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or JSON mapping of options; keys of recipes written before this configuration are translated.

    Args:
        path (`str` or `os.PathLike`): The file, e.g. `configs/esc50.yaml` or a run's `training_config.json`.

    Raises:
        `ConfigFileError`: the file is missing or unreadable, is not YAML or JSON, or holds something else than a
            mapping.
    """
    try:
        values = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigFileError(
            f"Cannot read the config file {path}: {error.strerror or error}. Pass --config a YAML or JSON file of "
            "options, e.g. configs/esc50.yaml"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigFileError(f"{path} is not YAML or JSON: {' '.join(str(error).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigFileError(f"{path} must hold a mapping of options, got {type(values).__name__}")
    return translate_legacy_recipe(values)


# training_config.json keys written before the HfArgumentParser configuration, and their names now.
LEGACY_KEYS = {
    "n_mels": "num_mel_bins",
    "warmup_ratio": "warmup_steps",  # a float below 1 is a fraction of the steps in both
    "hub_private": "hub_private_repo",
    "optimizer": "optim",
}


# Recorded by every train.py run: a file holding them all is a complete recipe, not a partial config.
RECORDED_MODEL_KEYS = ("num_mel_bins", "n_fft", "hop_length", "block_channels", "dropout", "augmented_variants")


# What a complete recipe recorded before an option existed meant: the behaviour from before the option.
BEFORE_THE_OPTION = {"stem_channels": 0, "ema_decay": 0.0}


def translate_legacy_recipe(values: dict[str, Any]) -> dict[str, Any]:
    """Renames the keys of an older recipe; `optimizer: adam` was AdamW without weight decay; a complete recipe
    recorded before the stem and the weight average existed trains without them."""
    translated = {LEGACY_KEYS.get(key, key): value for key, value in values.items()}
    if all(key in translated for key in RECORDED_MODEL_KEYS):
        for key, value in BEFORE_THE_OPTION.items():
            translated.setdefault(key, value)
    if "optimizer" in values:
        if values["optimizer"] == "adam":
            translated["weight_decay"] = 0.0
        translated["optim"] = TrainingArguments.default_optim  # the Trainer's AdamW, which both ran
    return translated


# Options that change where, how fast or how visibly a run executes, or where it is published, not what it
# learns; the seed is not one of them (it draws a different run of the recipe).
RUN_SETTINGS = frozenset({
    "data_dir", "cv_folds", "feature_cache_dir", "feature_workers", "features_file", "output_dir",
    "overwrite_output_dir", "resume_from_checkpoint", "torch_threads", "use_cpu", "dataloader_num_workers",
    "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "per_device_eval_batch_size", "run_name", "report_to", "disable_tqdm", "push_to_hub", "local_rank", "do_train",
    "do_eval", "do_predict", "project",
})  # fmt: skip


RUN_SETTING_PREFIXES = ("logging_", "log_", "save_", "eval_", "hub_", "ddp_", "trackio_")


def is_run_setting(name: str) -> bool:
    return name in RUN_SETTINGS or name.startswith(RUN_SETTING_PREFIXES)


def fingerprint(recipe: dict[str, Any]) -> str:
    """A short hash of what a run learns from: the recipe without its run settings (seed included)."""
    kept = {key: _comparable(value) for key, value in recipe.items() if not is_run_setting(key)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _comparable(value: Any) -> Any:
    """`2` (YAML) and `2.0` (a float flag) are the same epoch count; tuples and lists the same channels."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_comparable(item) for item in value]
    return value


def recipe_differences(mine: dict[str, Any], theirs: dict[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """The options (run settings and `ignore` aside) in which two recipes differ."""
    names = (set(mine) | set(theirs)) - set(ignore)
    return sorted(name for name in names if not is_run_setting(name) and mine.get(name) != theirs.get(name))


def repetition_differences(mine: dict[str, Any], theirs: dict[str, Any], ignore: Sequence[str] = ()) -> list[str]:
    """The options (`ignore` aside) in which two trainings differ beyond what repetitions of one recipe may: their
    seeds, and for a second stage its starting model (each repetition starts from its own first stage)."""
    allowed = {"seed", *ignore}
    if mine.get("model_name_or_path") and theirs.get("model_name_or_path"):
        allowed.add("model_name_or_path")
    return recipe_differences(mine, theirs, ignore=tuple(allowed))


# Recorded even at transformers' defaults: the model card states them.
ALWAYS_RECORDED = ("optim", "seed", "gradient_accumulation_steps", "max_grad_norm")


# Never recorded: secrets, per-process values, and how this invocation was started.
# (use_cpu and ddp_backend are set when there is no GPU; a re-run elsewhere decides again).
NEVER_RECORDED = frozenset({
    "hub_token", "local_rank", "resume_from_checkpoint", "overwrite_output_dir", "push_to_hub", "use_cpu",
    "ddp_backend",
})  # fmt: skip


# Recorded only when teachers are given: a recipe without distillation stays the recipe it was before the option
# existed (the same fingerprint, so older checkpoints still resume and older runs still compare).
DISTILLATION_KEYS = ("teacher_models", "distillation_weight", "distillation_temperature")


def training_recipe(arguments: TrainingArguments) -> dict[str, Any]:
    """The `TrainingArguments` fields this run sets: those away from transformers' defaults, or given new ones here."""
    values = {key: value for key, value in arguments.to_dict().items() if key not in NEVER_RECORDED}
    if not values.get("teacher_models"):
        for key in DISTILLATION_KEYS:
            values.pop(key, None)
    defaults = _transformers_defaults()
    declared = {item.name: _field_default(item) for item in dataclasses.fields(TrainingArguments)}
    changed_here = {
        item.name
        for item in dataclasses.fields(type(arguments))
        if item.init and _field_default(item) != declared.get(item.name, dataclasses.MISSING)
    }
    return {
        key: value
        for key, value in values.items()
        if key in changed_here or key in ALWAYS_RECORDED or value != defaults.get(key, dataclasses.MISSING)
    }


def _field_default(item: dataclasses.Field) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


@cache
def _transformers_defaults() -> dict[str, Any]:
    """`TrainingArguments()` as `to_dict()` shows it (after its own normalisation), for this process.

    Built on the process's configured accelerate state: a plain `TrainingArguments()` would reset it
    (under DDP, every process would then take itself for the main one).
    """
    from accelerate import PartialState
    from transformers.trainer_pt_utils import AcceleratorConfig
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "No output directory specified" is expected here
    try:
        configured = {"accelerator_config": {"use_configured_state": True}} if PartialState._shared_state else {}
        defaults = TrainingArguments(**configured).to_dict()
    finally:
        logging.set_verbosity(verbosity)
    defaults["accelerator_config"] = {  # as transformers shows the default: without use_configured_state
        key: value for key, value in AcceleratorConfig().to_dict().items() if key != "use_configured_state"
    }
    return defaults
