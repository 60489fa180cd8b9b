"""Several trained models of one network shape as one model whose probability is the mean of theirs.

`merge_models` reads finished model folders of ESC-50 written by `train.py`, checks that they are trainings of one
recipe (seeds and starting models aside) that answer the same labels from the same features and trained on the same
folds, and writes one model folder of `config.num_networks` networks (`Esc50CnnForAudioClassification.ensemble`).
Every path then serves it as any model: the pipeline, `SoundClassifier`, `esc50-hf predict`, the app, the ONNX export
and the browser page. Like training, it scores the model on the members' validation fold, fits its calibration there
and writes the reports and the card.
"""

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Esc50HfError, OutputExistsError
from .model_folder import (
    FIRST_STAGE_SECONDS,
    METRICS_FILE,
    ModelFolder,
    first_stage_seconds,
    read_model_folder,
    training_seconds,
)
from .recipe import repetition_differences

# What must be the same in every member's config.json besides its labels: the shape of its networks.
SHAPE_KEYS = ("num_mel_bins", "stem_channels", "block_channels")


class MergeError(Esc50HfError, ValueError):
    """Models that cannot answer as one: other labels, features, network shapes, recipes or folds, a model given
    twice or one merged before; the message names what differs, with both values."""


def check_members(folders: Sequence[ModelFolder]) -> None:
    """Raises `MergeError` unless `folders` (at least two, each given once) are single-network ESC-50 trainings of one
    recipe (seeds and a second stage's starting models aside: `repetition_differences`), label set, feature
    extractor, network shape (`SHAPE_KEYS`) and split."""
    if len(folders) < 2:
        raise MergeError(f"merging takes at least two models, got {len(folders)}")
    first = folders[0]
    digests: dict[str, Path] = {}
    for folder in folders:
        if folder.esc50_folds is None:
            raise MergeError(f"{folder.path} was trained on the user's own sounds: merging takes ESC-50 models")
        if folder.config.get("num_networks", 1) > 1:
            raise MergeError(
                f"{folder.path} is already a merged model of {folder.config['num_networks']} networks: merge the "
                "trainings it was made of (its metrics.json lists them under merged_from) with the others"
            )
        earlier = digests.setdefault(folder.weights_digest, folder.path)
        if earlier != folder.path:
            raise MergeError(f"{folder.path} holds the same weights as {earlier}: give each training once")
    for folder in folders[1:]:
        differences = _differences(first.config, folder.config, SHAPE_KEYS)
        if folder.config["id2label"] != first.config["id2label"]:
            differences.append("labels (id2label)")
        options = repetition_differences(first.recipe, folder.recipe, ignore=("train_folds",))
        differences += _differences(first.recipe, folder.recipe, options)  # validation_fold among them
        if folder.esc50_folds != first.esc50_folds:  # train_folds, as the folds they stand for
            differences.append(f"training folds ({first.esc50_folds} vs {folder.esc50_folds})")
        features = _features(first), _features(folder)
        differences += [f"feature extractor {item}" for item in _differences(*features, set().union(*features))]
        if differences:
            raise MergeError(
                f"{folder.path} cannot answer together with {first.path}: they differ in {'; '.join(differences)}. "
                "Merge trainings of one recipe (seeds and starting models may differ) on the same folds."
            )


def _differences(first: dict[str, Any], other: dict[str, Any], keys: Sequence[str] | set[str]) -> list[str]:
    """`key (first's value vs other's)` for each of `keys` whose values differ."""
    return [f"{key} ({first.get(key)} vs {other.get(key)})" for key in sorted(keys) if first.get(key) != other.get(key)]


def _features(folder: ModelFolder) -> dict[str, Any]:
    return json.loads((folder.path / "preprocessor_config.json").read_text())


def merge_models(
    paths: Sequence[str | Path],
    output_dir: str | Path,
    data_dir: str | None = None,
    float16: bool = False,
    keep_existing: bool = False,
) -> dict[str, Any]:
    """Writes one model folder whose networks are those of the models at `paths`, in that order.

    Args:
        paths (`Sequence[str | Path]`): Finished ESC-50 model folders (`check_members`).
        output_dir (`str` or `Path`): The new folder; it must not exist yet.
        data_dir (`str`, *optional*): ESC-50 (as `load_esc50` takes it) for scoring and calibrating the merged model
            on the members' validation fold; `None` downloads it.
        float16 (`bool`, *optional*, defaults to `False`): Store the weights in float16 (half the bytes; they load
            as float32, and are scored here as they are stored).
        keep_existing (`bool`, *optional*, defaults to `False`): When `output_dir` holds a finished merge of these
            models (the same weights, in this order, stored as `float16` says), keep it and return its metrics
            instead of refusing the folder; scripts that are run again redo only what is missing.

    Returns:
        `dict`: What `metrics.json` holds: the validation fold's accuracy and macro-F1, and the members.

    Raises:
        `MergeError`: the models cannot answer together (`check_members`).
        `OutputExistsError`: `output_dir` exists (and, with `keep_existing`, is not a finished merge of these
            models).
    """
    output = Path(output_dir)
    folders = [read_model_folder(path) for path in paths]
    if output.exists():
        existing = ModelFolder(output).optional(METRICS_FILE) if keep_existing else None
        digests = [member.get("weights_digest") for member in (existing or {}).get("merged_from", [])]
        dtype = "float16" if float16 else "float32"
        if digests == [folder.weights_digest for folder in folders] and existing.get("weights_dtype") == dtype:
            return existing
        raise OutputExistsError(f"{output} already exists: name a new folder for the merged model")
    check_members(folders)
    try:
        return _write(folders, output, data_dir, float16)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)  # never half a model folder
        raise


def _write(folders: list[ModelFolder], output: Path, data_dir: str | None, float16: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoFeatureExtractor

    from ..data.esc50 import fold_clips, load_esc50
    from ..evaluation.calibration import calibrate_model_folder
    from ..evaluation.scoring import labelled_logits, score_predictions
    from ..inference.classifier import explain_load_failure
    from ..model.configuration_esc50_cnn import UNCALIBRATED, Esc50CnnConfig
    from ..model.labels import model_labels
    from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
    from .reports import write_model_folder_reports

    extractor = AutoFeatureExtractor.from_pretrained(folders[0].path)
    config = Esc50CnnConfig.from_pretrained(folders[0].path, num_networks=len(folders), **UNCALIBRATED)
    recipe = dict(folders[0].recipe)
    fold = recipe["validation_fold"]
    validation = fold_clips(load_esc50(data_dir, extractor.sampling_rate), fold, model_labels(config))
    members = []
    for folder in folders:
        with explain_load_failure(folder.path):
            members.append(Esc50CnnForAudioClassification.from_pretrained(folder.path))
    model = Esc50CnnForAudioClassification(config).eval()
    for target, source in zip(model.networks(), members, strict=True):
        target_names, source_names = _own_state(target), _own_state(source)
        if target_names.keys() != source_names.keys():  # a network of another layout: nothing may stay random
            raise MergeError(f"the networks' layers differ from a new model's: {sorted(target_names ^ source_names)}")
        for name, tensor in source_names.items():
            target_names[name].copy_(tensor)
    if float16:
        model.half()
        if not all(torch.isfinite(parameter).all() for parameter in model.parameters()):
            raise MergeError("a weight is too large for float16: merge without --float16")
    model.save_pretrained(output)
    model.float()  # the float16 values, computed in float32 as they load
    model.config.dtype = torch.float32  # what from_pretrained loads them as
    model.config.save_pretrained(output)
    extractor.save_pretrained(output)

    logits, references, atypicality = labelled_logits(model, extractor, validation, atypicality=True)
    calibrate_model_folder(
        output, model.config, logits, references, f"fold {fold} (the evaluation split)", atypicality=atypicality
    )
    scores = score_predictions(logits.argmax(axis=-1), references, model_labels(model.config))
    recipe["output_dir"] = str(output)
    merged_from = [
        {"path": str(folder.path), "seed": folder.recipe.get("seed"), "weights_digest": folder.weights_digest,
         "accuracy": folder.metrics.get("accuracy"), "model_name_or_path": folder.recipe.get("model_name_or_path")}
        for folder in folders
    ]  # fmt: skip
    first = folders[0].metrics
    facts = {key: first[key] for key in MEMBER_FACTS if key in first}
    first_stages = {  # second stages: the time of their first stages too, each counted once (members may share one)
        folder.recipe.get("model_name_or_path"): first_stage_seconds(folder.recipe, folder.metrics)
        for folder in folders
    }
    if None not in first_stages.values():
        facts[FIRST_STAGE_SECONDS] = round(sum(first_stages.values()), 1)
    facts.update(  # the networks' training together, one after the other (a resumed one's in full: training_seconds)
        seconds_per_epoch=round(sum(folder.metrics.get("seconds_per_epoch", 0.0) for folder in folders), 2),
        train_seconds=round(sum(training_seconds(folder.metrics) for folder in folders), 1),
        scored_from="audio",
        merged_from=merged_from,
        weights_dtype="float16" if float16 else "float32",
    )
    return write_model_folder_reports(output, model, scores, recipe, [], facts)


# Facts of the first member's run that the card tells of the training (the members of one recipe share them).
MEMBER_FACTS = ("processes", "torch_threads_per_process", "device", "hardware", "data")


def _own_state(network: Any) -> dict[str, Any]:
    """`network`'s parameters and buffers by name, without those of a model's further networks (`ensemble.*`)."""
    state = network.state_dict(keep_vars=True)
    return {name: value.data for name, value in state.items() if not name.startswith("ensemble.")}


__all__ = ["MergeError", "check_members", "merge_models"]
