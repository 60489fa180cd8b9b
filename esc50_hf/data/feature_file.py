"""A portable feature file: the log-mels a recipe trains on (every fold, clean clips and augmented variants) as
float16 safetensors with the settings that made them, so that training can run where the audio is not
(`train.py --export_features FILE` here, `--features_file FILE` there)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import Esc50HfError
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from .features import feature_parameters, save_atomically

FEATURE_FILE_FORMAT = "esc50-hf log-mels 1"


class FeatureFileError(Esc50HfError, ValueError):
    """A feature file (`--features_file`) that is missing, foreign or damaged, or was made for another recipe."""


# How to ask for a recipe that matches a file, per setting the file records (the feature ones: see ModelArguments).
_MATCHING_FLAG = {"augmented_variants": "--augmented_variants", "seed": "--seed"}


@dataclass
class FeatureFile:
    """A portable copy of the features a recipe trains on (see `write_feature_file`).

    Attributes:
        log_mels (`torch.Tensor`): float16 `(clips, 1 + augmented_variants, mels, frames)`; variant 0 is clean.
        labels (`torch.Tensor`): int64 `(clips,)` class ids.
        folds (`torch.Tensor`): int64 `(clips,)` ESC-50 folds.
        metadata (`dict`): what made them: `feature_extractor`, `augmented_variants`, `augmentation`, `seed`, `clips`.
    """

    log_mels: torch.Tensor
    labels: torch.Tensor
    folds: torch.Tensor
    metadata: dict[str, Any]

    def check_recipe(
        self, path: str | Path, feature_extractor: Esc50FeatureExtractor, variants: dict[str, Any]
    ) -> None:
        """Raises `FeatureFileError` naming each setting in which the file was made differently from a recipe.

        Args:
            path (`str` or `Path`): the file, for the message.
            feature_extractor (`Esc50FeatureExtractor`): the recipe's extractor.
            variants (`dict`): the recipe's `variant_settings`.
        """
        wanted = {f"feature_extractor.{key}": value for key, value in feature_parameters(feature_extractor).items()}
        made = {f"feature_extractor.{key}": value for key, value in self.metadata["feature_extractor"].items()}
        wanted.update(variants)
        made.update({key: self.metadata.get(key) for key in variants})
        differences = [key for key in sorted(set(wanted) | set(made)) if _json(made.get(key)) != _json(wanted.get(key))]
        if differences:
            details = "; ".join(f"{key}: file {made.get(key)!r}, recipe {wanted.get(key)!r}" for key in differences)
            flags = " ".join(
                f"{_MATCHING_FLAG[key]} {made[key]}"
                for key in differences
                if key in _MATCHING_FLAG and made[key] is not None
            )
            raise FeatureFileError(
                f"{path} was exported for another recipe ({details}). Train with the file's settings"
                + (f" ({flags})" if flags else "")
                + f", or export the file again where the audio is: python train.py <this run's options> "
                f"--export_features {path}"
            )


def _json(value: Any) -> str:
    """A value as its JSON text: a tuple and a list, or a recipe's value and the file's, compare alike."""
    return json.dumps(value, sort_keys=True)


def write_feature_file(
    path: str | Path,
    log_mels: torch.Tensor,
    labels: torch.Tensor,
    folds: torch.Tensor,
    feature_extractor: Esc50FeatureExtractor,
    variants: dict[str, Any],
    clips: list[str],
) -> Path:
    """Writes features from `cached_log_mels` with what made them, as safetensors (tensors + string metadata).

    Args:
        path (`str` or `Path`): the file to write (replaced atomically).
        log_mels (`torch.Tensor`): float16 `(clips, 1 + variants, mels, frames)`.
        labels (`torch.Tensor`): `(clips,)` class ids.
        folds (`torch.Tensor`): `(clips,)` ESC-50 folds.
        feature_extractor (`Esc50FeatureExtractor`): the extractor that computed them.
        variants (`dict`): what decided the augmented variants (`variant_settings`).
        clips (`list[str]`): the clips' file names, in row order.
    """
    path = Path(path)
    if log_mels.shape[1] != 1 + variants["augmented_variants"]:
        raise ValueError(f"log_mels hold {log_mels.shape[1]} views per clip, not 1 + {variants['augmented_variants']}")
    metadata = {
        "format": FEATURE_FILE_FORMAT,
        "feature_extractor": feature_parameters(feature_extractor),
        **variants,
        "clips": list(clips),
    }
    tensors = {
        "log_mels": log_mels.to(torch.float16).contiguous(),
        "labels": labels.to(torch.int64).contiguous(),
        "folds": torch.as_tensor(folds, dtype=torch.int64).contiguous(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    strings = {key: json.dumps(value) for key, value in metadata.items()}
    needed = sum(tensor.nbytes for tensor in tensors.values())
    save_atomically(
        lambda temporary: save_file(tensors, temporary, metadata=strings),
        path,
        needed,
        elsewhere="give --export_features a path on another disk",
    )
    return path


def read_feature_file(path: str | Path) -> FeatureFile:
    """Reads a file written by `write_feature_file`; a missing, foreign or damaged file is a `FeatureFileError`.

    Args:
        path (`str` or `Path`): The safetensors file (`train.py --export_features`).

    Raises:
        `FeatureFileError`: the file is missing, not a feature file of this project, or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"--features_file {path}: no such file (write one with train.py --export_features)")
    try:
        with safe_open(path, framework="pt") as handle:
            raw = handle.metadata() or {}
            if raw.get("format") != json.dumps(FEATURE_FILE_FORMAT):
                raise FeatureFileError(
                    f"{path} is not a feature file of this project (expected format {FEATURE_FILE_FORMAT!r}); "
                    "write one with train.py --export_features"
                )
            tensors = {name: handle.get_tensor(name) for name in ("log_mels", "labels", "folds")}
        metadata = {key: json.loads(value) for key, value in raw.items()}
        views = 1 + int(metadata["augmented_variants"])
        mels = int(metadata["feature_extractor"]["num_mel_bins"])
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise FeatureFileError(f"{path} is not a readable feature file ({error!r}); export it again") from None
    log_mels, clips = tensors["log_mels"], len(tensors["labels"])
    if log_mels.ndim != 4 or log_mels.shape[:3] != (clips, views, mels) or len(tensors["folds"]) != clips:
        raise FeatureFileError(
            f"{path} is damaged: log_mels {tuple(log_mels.shape)} do not hold {clips} clips x {views} views x {mels} "
            "mel bands; export it again"
        )
    return FeatureFile(log_mels, tensors["labels"], tensors["folds"], metadata)
