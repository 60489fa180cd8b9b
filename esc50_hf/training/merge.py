"""Several trained models of one network shape as one model whose probability is the mean of theirs.

`merge_models` reads finished model folders of ESC-50 (written by `train.py`, or merged before), checks that they
answer the same labels from the same features and trained on the same folds, and writes one model folder of
`config.num_networks` networks (`Esc50CnnForAudioClassification.ensemble`). Every path then serves it as any model:
the pipeline, `SoundClassifier`, `esc50-hf predict`, the app, the ONNX export and the browser page. Like training, it
scores the model on the members' validation fold, fits its calibration there and writes the reports and the card.
"""

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Esc50HfError, OutputExistsError
from .model_folder import ModelFolder, read_model_folder

# What must be the same in every member's config.json besides its labels: the shape of its networks.
SHAPE_KEYS = ("num_mel_bins", "stem_channels", "block_channels")


class MergeError(Esc50HfError, ValueError):
    """Models that cannot answer as one: other labels, features, network shapes or folds; the message names them."""


def check_members(folders: Sequence[ModelFolder]) -> None:
    """Raises `MergeError` unless `folders` (at least two) are ESC-50 models of one label set, feature extractor,
    network shape (`SHAPE_KEYS`), training folds and validation fold."""
    if len(folders) < 2:
        raise MergeError(f"merging takes at least two models, got {len(folders)}")
    first = folders[0]
    for folder in folders:
        if folder.esc50_folds is None:
            raise MergeError(f"{folder.path} was trained on the user's own sounds: merging takes ESC-50 models")
    for folder in folders[1:]:
        differences = [key for key in SHAPE_KEYS if folder.config.get(key) != first.config.get(key)]
        if folder.config["id2label"] != first.config["id2label"]:
            differences.append("labels")
        if folder.recipe.get("validation_fold") != first.recipe.get("validation_fold"):
            differences.append("validation_fold")
        if folder.esc50_folds != first.esc50_folds:
            differences.append("training folds")
        if _features(folder) != _features(first):
            differences.append("feature extractor (preprocessor_config.json)")
        if differences:
            raise MergeError(
                f"{folder.path} cannot answer together with {first.path}: they differ in {', '.join(differences)}. "
                "Merge models of one recipe shape trained on the same folds."
            )


def _features(folder: ModelFolder) -> dict[str, Any]:
    return json.loads((folder.path / "preprocessor_config.json").read_text())


def merge_models(
    paths: Sequence[str | Path], output_dir: str | Path, data_dir: str | None = None, float16: bool = False
) -> dict[str, Any]:
    """Writes one model folder whose networks are those of the models at `paths`, in that order.

    Args:
        paths (`Sequence[str | Path]`): Finished ESC-50 model folders (`check_members`).
        output_dir (`str` or `Path`): The new folder; it must not exist yet.
        data_dir (`str`, *optional*): ESC-50 (as `load_esc50` takes it) for scoring and calibrating the merged model
            on the members' validation fold; `None` downloads it.
        float16 (`bool`, *optional*, defaults to `False`): Store the weights in float16 (half the bytes; they load
            as float32, and are scored here as they are stored).

    Returns:
        `dict`: What `metrics.json` holds: the validation fold's accuracy and macro-F1, and the members.

    Raises:
        `MergeError`: the models cannot answer together, or `output_dir` exists.
    """
    output = Path(output_dir)
    if output.exists():
        raise OutputExistsError(f"{output} already exists: name a new folder for the merged model")
    folders = [read_model_folder(path) for path in paths]
    check_members(folders)
    try:
        return _write(folders, output, data_dir, float16)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)  # never half a model folder
        raise


def _write(folders: list[ModelFolder], output: Path, data_dir: str | None, float16: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoFeatureExtractor

    from ..data.esc50 import load_esc50, split_folds
    from ..evaluation.calibration import calibrate_model_folder
    from ..evaluation.scoring import labelled_logits, score_predictions
    from ..model.configuration_esc50_cnn import UNCALIBRATED, Esc50CnnConfig
    from ..model.labels import model_labels
    from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
    from .reports import write_model_folder_reports

    members = [Esc50CnnForAudioClassification.from_pretrained(folder.path) for folder in folders]
    networks = [network for member in members for network in member.networks()]
    config = Esc50CnnConfig.from_pretrained(folders[0].path, num_networks=len(networks), **UNCALIBRATED)
    model = Esc50CnnForAudioClassification(config).eval()
    for target, source in zip(model.networks(), networks):
        target_names, source_names = _own_state(target), _own_state(source)
        for name, tensor in source_names.items():
            target_names[name].copy_(tensor)
    if float16:
        model.half()
    model.save_pretrained(output)
    model.float()  # the float16 values, computed in float32 as they load
    model.config.dtype = torch.float32  # what from_pretrained loads them as
    model.config.save_pretrained(output)
    extractor = AutoFeatureExtractor.from_pretrained(folders[0].path)
    extractor.save_pretrained(output)

    recipe = dict(folders[0].recipe)
    fold = recipe["validation_fold"]
    dataset = split_folds(load_esc50(data_dir, extractor.sampling_rate), fold, recipe.get("train_folds"))
    logits, references, atypicality = labelled_logits(model, extractor, dataset["validation"], atypicality=True)
    calibrate_model_folder(
        output, model.config, logits, references, f"fold {fold} (the evaluation split)", atypicality=atypicality
    )
    scores = score_predictions(logits.argmax(axis=-1), references, model_labels(model.config))
    recipe["output_dir"] = str(output)
    merged_from = [
        {"path": str(folder.path), "seed": folder.recipe.get("seed"), "weights_digest": folder.weights_digest,
         "accuracy": folder.metrics.get("accuracy")}
        for folder in folders
    ]  # fmt: skip
    first = folders[0].metrics
    facts = {key: first[key] for key in MEMBER_FACTS if key in first}
    facts.update(
        train_seconds=sum(folder.metrics.get("train_seconds", 0.0) for folder in folders),
        scored_from="audio",
        merged_from=merged_from,
        weights_dtype="float16" if float16 else "float32",
    )
    return write_model_folder_reports(output, model, scores, recipe, [], facts)


# Facts of the first member's run that the card tells of the training (the members of one recipe share them).
MEMBER_FACTS = ("processes", "torch_threads_per_process", "device", "hardware", "seconds_per_epoch")


def _own_state(network: Any) -> dict[str, Any]:
    """`network`'s parameters and buffers by name, without those of a model's further networks (`ensemble.*`)."""
    state = network.state_dict(keep_vars=True)
    return {name: value.data for name, value in state.items() if not name.startswith("ensemble.")}


__all__ = ["MergeError", "check_members", "merge_models"]
