"""The ESC-50 label set and audio constants: the single source of truth for names and rates.

The order is the dataset's own `target` column (0-49), so `ESC50_LABELS[target]` is the
official category name. This file is copied next to the model code when a model is saved,
so it must stay free of imports beyond the standard library.
"""

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
