"""The ESC-50 label set, the audio constants, and how a model's own labels are read from its config.

The order is the dataset's own `target` column (0-49), so `ESC50_LABELS[target]` is the
official category name. `ESC50_LABELS` is what a model trained on ESC-50 answers with; the
inference path never assumes it: every model answers with the names of its own `config.id2label`
(`model_labels`), whatever their number and order. This file is copied next to the model code
when a model is saved, so it must stay free of imports beyond the standard library.
"""

from typing import Any

ESC50_LABELS: tuple[str, ...] = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops",
    "wind", "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing",
    "clapping", "breathing", "coughing", "footsteps", "laughing", "brushing_teeth",
    "snoring", "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing",
    "door_wood_creaks", "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm",
    "clock_tick", "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine",
    "train", "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip

NUM_LABELS = len(ESC50_LABELS)
ID2LABEL: dict[int, str] = dict(enumerate(ESC50_LABELS))
LABEL2ID: dict[str, int] = {name: index for index, name in ID2LABEL.items()}

# The model's audio contract: 22.05 kHz mono, 5-second clips (the length of every ESC-50 clip).
SAMPLING_RATE = 22050
CLIP_SECONDS = 5.0


def model_labels(config: Any) -> tuple[str, ...]:
    """The names of a model's outputs, in output order: `config.id2label[0 .. num_labels - 1]`.

    Args:
        config (`PreTrainedConfig`): The model's configuration (`config.json`); any object with `id2label` (keys as
            ints or digit strings) and `num_labels`.

    Raises:
        `ValueError`: `id2label` does not name each of the `num_labels` outputs exactly once.
    """
    id2label = {int(index): str(name) for index, name in (getattr(config, "id2label", None) or {}).items()}
    num_labels = int(getattr(config, "num_labels", len(id2label)))
    missing = [index for index in range(num_labels) if index not in id2label]
    if missing or len(id2label) != num_labels:
        raise ValueError(
            f"The model's config.json has num_labels={num_labels} but id2label names outputs "
            f"{sorted(id2label)[:8]}{'...' if len(id2label) > 8 else ''}: give one name per output, ids 0 to "
            f"{num_labels - 1}"
        )
    labels = tuple(id2label[index] for index in range(num_labels))
    if len(set(labels)) != len(labels):
        duplicated = sorted({name for name in labels if labels.count(name) > 1})
        raise ValueError(f"The model's config.json gives two outputs the same label: {duplicated}")
    return labels


def resolve_unknown_threshold(config: Any, threshold: "bool | float | str") -> float:
    """The threshold of the "none of these" answer: the model's own (`True` or `"model"`: `config.unknown_threshold`,
    fitted on held-out clips) or a number given.

    Args:
        config (`PreTrainedConfig`): The model's configuration.
        threshold (`bool`, `float` or `str`): `True` / `"model"`, or an unknown score in [0, 1]
            (`prediction.unknown_score`: the top score for a model without `unknown_quantiles`).

    Raises:
        `ValueError`: the model has no fitted threshold, or the number is not in [0, 1].
    """
    if threshold is True or threshold == "model":
        fitted = getattr(config, "unknown_threshold", None)
        if fitted is None:
            raise ValueError(
                "This model has no fitted unknown threshold (its config.json has no unknown_threshold): give one "
                "as a number in [0, 1]. Training fits one on the evaluation split when it holds enough clips "
                "(docs/scores.md); an ESC-50 model can also be calibrated on out-of-fold runs (esc50-hf calibrate)"
            )
        return float(fitted)
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        message = f"The unknown threshold must be a number in [0, 1] or the model's own, got {threshold!r}"
        raise ValueError(message) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"The unknown threshold is an unknown score in [0, 1], got {value}")
    return value
