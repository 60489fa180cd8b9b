"""Starting a run from a trained model (`--model_name_or_path`): its features and network, a head for this run's
labels, and how the network below the head is treated so that a few clips per class do not wreck it.

The starting model fixes what its weights were learned on: the log-mel features (every parameter of its
`preprocessor_config.json`, normalisation included) and the architecture. The run's recipe records the starting
model's values for those options, so `training_config.json` tells the truth whatever the command line said.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import Esc50HfError
from ..model.configuration_esc50_cnn import UNCALIBRATED
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.labels import model_labels
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from .arguments import ModelArguments, TrainingSetup
from .model_folder import ModelFolder, ModelFolderError, local_model_folder


class StartingModelError(Esc50HfError, ValueError):
    """A `--model_name_or_path` that learned from clips this run validates on."""


def with_starting_model(setup: TrainingSetup) -> TrainingSetup:
    """`setup` with the feature and architecture options of its `--model_name_or_path` (unchanged without one), and
    `{validation_fold}` in that name replaced by the run's validation fold (one starting model per fold under `--cv`).

    Args:
        setup (`TrainingSetup`): The parsed command line.

    Raises:
        `ModelLoadError`: the starting model cannot be read.
        `StartingModelError`: an ESC-50 run whose starting model trained on its validation fold.
    """
    path = setup.model.model_name_or_path
    if path is None:
        return setup
    from ..inference.classifier import explain_load_failure
    from ..model.configuration_esc50_cnn import Esc50CnnConfig

    path = path.replace("{validation_fold}", str(setup.data.validation_fold))
    try:
        source: str | Path = local_model_folder(path)  # a Hub model whole, with the record of its run
    except ModelFolderError:
        source = path  # neither: `from_pretrained` says what is wrong in the words it has for it
    with explain_load_failure(path):
        config = Esc50CnnConfig.from_pretrained(source)
        extractor = Esc50FeatureExtractor.from_pretrained(source)
    _check_starting_folds(setup, path, ModelFolder(Path(source)))
    changes: dict[str, Any] = {"model_name_or_path": path}
    changes.update({name: getattr(extractor, name) for name in ModelArguments.FEATURE_FIELDS})
    changes.update({name: getattr(config, name) for name in ModelArguments.ARCHITECTURE_FIELDS})
    return setup.replace(**changes)


def _check_starting_folds(setup: TrainingSetup, path: str, starting: ModelFolder) -> None:
    """Refuses an ESC-50 run whose starting model `path` (its local folder `starting`: a folder written by `train.py`,
    or a Hub model's snapshot) trained on a fold this run does not train on: its validation score would count clips the
    model already learned. A model without the record of its run (`training_config.json`) is taken as it is."""
    if setup.data.train_dir or setup.data.dataset_name or not starting.complete:
        return  # the user's own sounds (ESC-50's folds are not this run's), or no record of the folds
    train_folds = setup.data.training_folds()
    beyond = starting.folds_beyond(train_folds)
    if beyond:
        raise StartingModelError(
            f"--model_name_or_path: {path} trained on ESC-50 folds {starting.esc50_folds}, which include fold(s) "
            f"{beyond} that this run does not train on (it trains on {train_folds} and validates on "
            f"{setup.data.validation_fold}): its validation score would count clips the model already learned. Start "
            "from a model trained on this run's training folds only (under --cv, name one per fold with "
            "{validation_fold} in the path, e.g. runs/cv/fold-{validation_fold})."
        )


def starting_model(
    arguments: ModelArguments, labels: Sequence[str]
) -> tuple[Esc50CnnForAudioClassification, Esc50FeatureExtractor]:
    """The starting model with a head for `labels`, and its own feature extractor (its normalisation kept).

    The head is the model's own when `labels` are its labels in its order; otherwise a new, randomly initialised
    one (never the old head's rows under new names).

    Args:
        arguments (`ModelArguments`): The recipe's model options (`model_name_or_path`, `dropout`,
            `label_smoothing`).
        labels (`Sequence[str]`): This run's classes, in id order.
    """
    path = arguments.model_name_or_path
    extractor = Esc50FeatureExtractor.from_pretrained(path)
    model = Esc50CnnForAudioClassification.from_pretrained(
        path, dropout=arguments.dropout, label_smoothing=arguments.label_smoothing, **UNCALIBRATED
    )  # trained from its raw logits; this run fits its own calibration
    if model_labels(model.config) != tuple(labels):
        for network in model.networks():  # each network of a merged model gets its own head
            network.classifier = torch.nn.Linear(network.classifier.in_features, len(labels))
            model._init_weights(network.classifier)
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {name: index for index, name in enumerate(labels)}
        model.config.num_labels = len(labels)
    return model.to(memory_format=torch.channels_last), extractor


def keep_batch_norm_statistics(model: torch.nn.Module) -> None:
    """Every batch-norm layer of `model` keeps its running statistics while the rest trains: it normalises with them,
    in training too, and never updates them (its scale and shift still learn, unless frozen)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
            module.train = _stay_in_eval.__get__(module)  # Trainer calls model.train() every step


def _stay_in_eval(self: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
    return torch.nn.Module.train(self, False)


def transfer_optimizer(
    model: Esc50CnnForAudioClassification, learning_rate: float, body_scale: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW with the head at `learning_rate` and the rest at `body_scale` times it; `body_scale` 0 freezes the rest.

    Args:
        model (`Esc50CnnForAudioClassification`): The model to train.
        learning_rate (`float`): The head's peak learning rate (the Trainer's scheduler scales both groups).
        body_scale (`float`): The network's share of it, in [0, 1].
        weight_decay (`float`): AdamW's decoupled weight decay (not on biases and batch-norm parameters).
    """
    head = {id(parameter) for network in model.networks() for parameter in network.classifier.parameters()}
    if body_scale == 0:
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in head)
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            groups.setdefault((id(parameter) in head, parameter.ndim > 1), []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": parameters,
                "lr": learning_rate * (1.0 if is_head else body_scale),
                "weight_decay": weight_decay if decays else 0.0,
            }
            for (is_head, decays), parameters in groups.items()
        ],
        lr=learning_rate,
    )


__all__ = [
    "StartingModelError",
    "keep_batch_norm_statistics",
    "starting_model",
    "transfer_optimizer",
    "with_starting_model",
]
