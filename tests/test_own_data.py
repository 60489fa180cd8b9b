"""Training on the user's own labelled audio: a folder of class subfolders or a `datasets` dataset becomes ESC-50's
shape (`audio`, `label`, `fold` 1 trains / 2 evaluates, `filename`); bad input is refused in the user's terms."""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, DatasetDict

from esc50_hf.data.esc50 import decoded_mono, esc50_features, split_folds
from esc50_hf.data.labelled import (
    EVALUATION_FOLD,
    TRAINING_FOLD,
    LabelledAudio,
    LabelledDataError,
    labelled_features,
    load_labelled_audio,
)
from esc50_hf.errors import exit_on_user_error, user_errors

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
CLASSES = ("dog", "cat", "bird")


def write_clip(path: Path, seed: int, seconds: float = 0.5, rate: int = RATE) -> Path:
    """A short tone in noise: 16-bit WAV."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(rate * seconds)) / rate
    clip = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * time) + 0.02 * rng.standard_normal(time.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, clip.astype(np.float32), rate, subtype="PCM_16")
    return path


def write_classes(folder: Path, clips: int = 4, classes=CLASSES) -> Path:
    for number, label in enumerate(classes):
        for take in range(clips):
            write_clip(folder / label / f"{label}-{take}.wav", seed=10 * number + take)
    return folder


def folds_by_class(result: LabelledAudio) -> dict[str, list[int]]:
    dataset = result.dataset
    found = {name: [] for name in result.labels}
    for label, fold in zip(dataset["label"], dataset["fold"]):
        found[result.labels[label]].append(fold)
    return found


def test_a_class_folder_holds_out_a_stratified_deterministic_share(tmp_path, caplog):
    root = write_classes(tmp_path / "my_sounds")
    (root / "dog" / "notes.txt").write_text("recorded in the garden")
    (root / "README.md").write_text("my sounds")
    (root / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: ignored without a word
    with caplog.at_level(logging.WARNING, logger="esc50_hf.data.labelled"):
        result = load_labelled_audio(root, sampling_rate=8000)

    assert result.labels == ("bird", "cat", "dog")  # sorted names
    assert result.source == str(root)
    assert result.evaluation == "a stratified 20% hold-out of each class (at least 1 clip), seed 0"
    assert result.skipped == ("README.md", "dog/notes.txt")
    assert "dog/notes.txt" in caplog.text and "README.md" in caplog.text and ".DS_Store" not in caplog.text
    features = result.dataset.features
    assert features == labelled_features(result.labels, 8000)
    assert features["audio"] == esc50_features(8000)["audio"]  # mono at the training rate, as ESC-50 casts it
    assert features["label"] == ClassLabel(names=["bird", "cat", "dog"])
    for folds in folds_by_class(result).values():  # 4 clips: round(0.8) = 1 evaluates, 3 train
        assert sorted(folds) == [TRAINING_FOLD] * 3 + [EVALUATION_FOLD]
    assert sorted(result.dataset["filename"]) == sorted(f"{c}/{c}-{t}.wav" for c in CLASSES for t in range(4))
    assert decoded_mono(result.dataset[0]["audio"]).shape == (4000,)  # 0.5 s resampled to 8 kHz

    again = load_labelled_audio(root, sampling_rate=8000)
    assert list(again.dataset["fold"]) == list(result.dataset["fold"])  # the same hold-out every time
    splits = split_folds(result.dataset, validation_fold=EVALUATION_FOLD, train_folds=[TRAINING_FOLD])
    assert (splits["train"].num_rows, splits["validation"].num_rows) == (9, 3)
    assert result.splits()["validation"]["filename"] == splits["validation"]["filename"]

    half = load_labelled_audio(root, eval_fraction=0.5)
    assert all(sorted(folds) == [1, 1, 2, 2] for folds in folds_by_class(half).values())
    tiny = load_labelled_audio(root, eval_fraction=0.01)  # still 1 per class; 0.99 keeps 1 to train
    assert all(folds.count(EVALUATION_FOLD) == 1 for folds in folds_by_class(tiny).values())
    large = load_labelled_audio(root, eval_fraction=0.99)
    assert all(folds.count(TRAINING_FOLD) == 1 for folds in folds_by_class(large).values())


def test_train_and_test_subfolders_give_the_evaluation_split(tmp_path):
    root = tmp_path / "my_sounds"
    write_classes(root / "train", clips=3)
    write_classes(root / "test", clips=1)
    result = load_labelled_audio(root)
    assert result.labels == ("bird", "cat", "dog")
    assert result.evaluation == "the folder's test/ split"
    for filename, fold in zip(result.dataset["filename"], result.dataset["fold"]):
        assert fold == (TRAINING_FOLD if filename.startswith("train/") else EVALUATION_FOLD), filename
    assert list(result.dataset["fold"]).count(EVALUATION_FOLD) == 3

    write_classes(root / "validation", clips=2)  # validation/ is preferred to test/, unless named
    assert load_labelled_audio(root).evaluation == "the folder's validation/ split"
    assert list(load_labelled_audio(root).dataset["fold"]).count(EVALUATION_FOLD) == 6
    named = load_labelled_audio(root, eval_split_name="test")
    assert list(named.dataset["fold"]).count(EVALUATION_FOLD) == 3

    (root / "LICENSE.txt").write_text("CC0")
    (root / "train" / "dog" / "dog-0.json").write_text("{}")
    assert load_labelled_audio(root).skipped == ("LICENSE.txt", "train/dog/dog-0.json")

    only_train = tmp_path / "only_train"
    write_classes(only_train / "train", clips=2)
    assert load_labelled_audio(only_train).evaluation.startswith("a stratified 20% hold-out")


def test_class_folders_named_like_splits_stay_classes(tmp_path):
    """`audiofolder` takes `train/` (an ESC-50 class) and `steam_train/` for splits and drops the other classes."""
    root = write_classes(tmp_path / "sounds", clips=2, classes=("train", "steam_train", "dog"))
    (root / "dog" / "outdoor").mkdir()
    write_clip(root / "dog" / "outdoor" / "far.wav", seed=7)  # nested: still a dog
    result = load_labelled_audio(root)
    assert result.labels == ("dog", "steam_train", "train")
    assert "dog/outdoor/far.wav" in result.dataset["filename"]
    assert result.dataset.num_rows == 7


def save_dataset(path: Path, splits: dict[str, dict], features: dict | None = None) -> Path:
    """`splits` of columns, the audio column `clip` holding file paths, saved with `save_to_disk`."""
    built = {}
    for name, columns in splits.items():
        dataset = Dataset.from_dict(columns)
        dataset = dataset.cast_column("clip", Audio())
        for column, feature in (features or {}).items():
            dataset = dataset.cast_column(column, feature)
        built[name] = dataset
    (DatasetDict(built) if len(built) > 1 or "train" not in built else built["train"]).save_to_disk(str(path))
    return path


def clip_paths(folder: Path, names: list[str]) -> list[str]:
    return [str(write_clip(folder / f"{index}-{name}.wav", seed=index)) for index, name in enumerate(names)]


def test_a_saved_dataset_with_string_labels_and_its_own_column_names(tmp_path):
    train_labels = ["owl", "frog", "owl", "frog", "owl", "frog"]
    eval_labels = ["frog", "owl"]
    path = save_dataset(
        tmp_path / "saved",
        {
            "train": {"clip": clip_paths(tmp_path / "a", train_labels), "category": train_labels, "other": [0] * 6},
            "validation": {"clip": clip_paths(tmp_path / "b", eval_labels), "category": eval_labels, "other": [0] * 2},
        },
    )
    result = load_labelled_audio(
        dataset_name=str(path), audio_column_name="clip", label_column_name="category", sampling_rate=RATE
    )
    assert result.labels == ("frog", "owl")
    assert result.evaluation == "the dataset's 'validation' split"
    assert result.source == str(path)
    assert result.dataset.features == labelled_features(("frog", "owl"), RATE)
    assert list(result.dataset["fold"]) == [TRAINING_FOLD] * 6 + [EVALUATION_FOLD] * 2
    assert [result.labels[label] for label in result.dataset["label"]] == train_labels + eval_labels
    filenames = list(result.dataset["filename"])
    assert len(set(filenames)) == 8 and all(filenames)
    assert decoded_mono(result.dataset[7]["audio"]).shape == (8000,)


def test_a_saved_dataset_with_classlabels_keeps_their_order_and_holds_out(tmp_path):
    names = ["zebra", "ant", "mole"]  # not sorted: the ClassLabel's order is kept
    labels = [0, 1, 2] * 3
    path = save_dataset(
        tmp_path / "saved",
        {"train": {"clip": clip_paths(tmp_path / "a", [names[label] for label in labels]), "label": labels}},
        {"label": ClassLabel(names=names)},
    )
    result = load_labelled_audio(dataset_name=str(path), audio_column_name="clip")
    assert result.labels == tuple(names)
    assert result.dataset.features["label"] == ClassLabel(names=names)
    assert list(result.dataset["label"]) == labels
    assert all(sorted(folds) == [1, 1, 2] for folds in folds_by_class(result).values())  # round(0.6) = 1
    assert result.evaluation == "a stratified 20% hold-out of each class (at least 1 clip), seed 0"


def test_a_dataset_without_paths_names_its_clips_by_split_and_index(tmp_path):
    clip = write_clip(tmp_path / "one.wav", seed=1).read_bytes()
    audio = [{"bytes": clip, "path": None}] * 4
    train = Dataset.from_dict({"audio": audio, "label": ["a", "b", "a", "b"]}).cast_column("audio", Audio())
    DatasetDict(train=train, test=train).save_to_disk(str(tmp_path / "saved"))
    result = load_labelled_audio(dataset_name=str(tmp_path / "saved"))
    assert result.dataset["filename"][:5] == ["train/0", "train/1", "train/2", "train/3", "test/0"]
    assert result.evaluation == "the dataset's 'test' split"


def test_a_parquet_folder_loads_through_load_dataset_offline(tmp_path):
    """Not saved with save_to_disk: `datasets.load_dataset(folder)` reads it (splits from the file names)."""
    for split, count in (("train", 4), ("test", 2)):
        audio = [
            {"bytes": write_clip(tmp_path / "src" / f"{split}{i}.wav", seed=i).read_bytes(), "path": f"{split}{i}.wav"}
            for i in range(count)
        ]
        dataset = Dataset.from_dict({"sound": audio, "kind": [i % 2 for i in range(count)]})
        dataset = dataset.cast_column("sound", Audio()).cast_column("kind", ClassLabel(names=["yes", "no"]))
        dataset.to_parquet(str(tmp_path / "parquet" / f"{split}.parquet"))
    result = load_labelled_audio(
        dataset_name=str(tmp_path / "parquet"), audio_column_name="sound", label_column_name="kind", sampling_rate=8000
    )
    assert result.labels == ("yes", "no") and result.evaluation == "the dataset's 'test' split"
    assert list(result.dataset["filename"]) == ["train0.wav", "train1.wav", "train2.wav", "train3.wav", "test0.wav",
                                                "test1.wav"]  # fmt: skip
    assert list(result.dataset["fold"]) == [1, 1, 1, 1, 2, 2]
    assert decoded_mono(result.dataset[5]["audio"]).shape == (4000,)


def error_of(*args, **kwargs) -> str:
    with pytest.raises(LabelledDataError) as caught:
        load_labelled_audio(*args, **kwargs)
    return str(caught.value)


def test_bad_folders_are_refused_naming_the_class_or_file(tmp_path):
    missing = tmp_path / "nowhere"
    assert str(missing) in error_of(missing)

    few = write_classes(tmp_path / "few", clips=2)
    (few / "dog" / "dog-1.wav").unlink()
    (few / "fox").mkdir()
    (few / "fox" / "fox.txt").write_text("no audio")
    message = error_of(few)
    assert "'dog' has 1" in message and f"{few / 'dog'}" in message
    assert "'fox' has 0" in message and f"{few / 'fox'}" in message

    single = write_classes(tmp_path / "single", clips=3, classes=("dog",))
    assert "at least 2 classes" in error_of(single) and "'dog'" in error_of(single)

    broken = write_classes(tmp_path / "broken", clips=2)
    (broken / "cat" / "cat-9.wav").write_bytes(b"RIFF but not really")
    (broken / "cat" / "empty.wav").write_bytes(b"")
    message = error_of(broken)
    assert "2 clip(s)" in message and "cat/cat-9.wav" in message and "cat/empty.wav" in message

    split = tmp_path / "split"
    write_classes(split / "train", clips=2)
    write_classes(split / "test", clips=1, classes=("dog", "cat"))
    message = error_of(split)
    assert "lacks" in message and "'bird'" in message and str(split / "test" / "bird") in message

    write_classes(split / "test", clips=1, classes=("bird", "eel"))
    message = error_of(split)
    assert "training does not have" in message and "'eel'" in message and str(split / "test" / "eel") in message

    assert "no validation/ folder" in error_of(split, eval_split_name="validation")
    write_classes(split / "val", clips=1)  # not a split name: refused, not read as classes train and val
    message = error_of(split)
    assert "val/ is none of train/, validation/, test/" in message and "eval_split_name" in message
    assert load_labelled_audio(split, eval_split_name="val").evaluation == "the folder's val/ split"
    assert "no split folders" in error_of(few, eval_split_name="test")
    assert "eval_fraction" in error_of(few, eval_fraction=1.0)
    assert "either" in error_of() and "either" in error_of(few, dataset_name="x/y")


def test_bad_datasets_are_refused_naming_the_column_split_or_labels(tmp_path):
    def saved(name, splits, features=None):
        return str(save_dataset(tmp_path / name, splits, features))

    clips = clip_paths(tmp_path / "clips", ["a"] * 4)
    two = ["a", "b", "a", "b"]
    path = saved("plain", {"train": {"clip": clips, "category": two}})

    message = error_of(dataset_name=path, audio_column_name="clip")
    assert "no column 'label'" in message and "label_column_name" in message and "category (string)" in message
    assert "clip (Audio)" in message
    message = error_of(dataset_name=path, label_column_name="category")
    assert "no column 'audio'" in message and "clip (Audio)" in message
    assert "not audio" in error_of(dataset_name=path, audio_column_name="category", label_column_name="category")
    assert "no split 'test'" in error_of(dataset_name=path, audio_column_name="clip", label_column_name="category",
                                         eval_split_name="test")  # fmt: skip
    assert "drop dataset_config_name" in error_of(dataset_name=path, dataset_config_name="x")
    assert "does not exist" in error_of(dataset_name=str(tmp_path / "missing"))

    ints = saved("ints", {"train": {"clip": clips, "label": [0, 1, 0, 1]}})
    assert "holds int64" in error_of(dataset_name=ints, audio_column_name="clip")

    unlabelled = saved("unlabelled", {"train": {"clip": clips, "label": ["a", None, "b", "a"]}})
    assert "1 row(s) of split 'train' have no label" in error_of(dataset_name=unlabelled, audio_column_name="clip")

    train = Dataset.from_dict({"clip": clips, "label": [0, 1, 0, 1]}).cast_column("clip", Audio())
    train = train.cast_column("label", ClassLabel(names=["a", "b"]))
    validation = Dataset.from_dict({"clip": clips[:2], "label": [0, 1]}).cast_column("clip", Audio())
    validation = validation.cast_column("label", ClassLabel(names=["b", "a"]))
    DatasetDict(train=train, validation=validation).save_to_disk(str(tmp_path / "differ2"))
    message = error_of(dataset_name=str(tmp_path / "differ2"), audio_column_name="clip")
    assert "labels differ between the splits 'train' (['a', 'b']) and 'validation' (['b', 'a'])" in message

    unknown = saved(
        "unknown", {"train": {"clip": clips, "label": two}, "test": {"clip": clips[:3], "label": ["a", "b", "c"]}}
    )
    message = error_of(dataset_name=unknown, audio_column_name="clip")
    assert "training does not have" in message and "'c'" in message

    lacking = saved("lacking", {"train": {"clip": clips, "label": two}, "test": {"clip": clips[:1], "label": ["a"]}})
    message = error_of(dataset_name=lacking, audio_column_name="clip")
    assert "lacks" in message and "'b'" in message and "split 'test'" in message

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    bad = saved("bad", {"train": {"clip": [*clips, str(broken)], "label": [*two, "a"]}})
    message = error_of(dataset_name=bad, audio_column_name="clip")
    assert "1 clip(s)" in message and "broken.wav" in message


def test_the_error_is_a_user_error_answered_in_one_line(tmp_path):
    assert issubclass(LabelledDataError, user_errors()) and issubclass(LabelledDataError, ValueError)
    with pytest.raises(SystemExit, match=re.escape(f"error: The audio folder {tmp_path / 'x'} does not exist")):
        exit_on_user_error(load_labelled_audio, tmp_path / "x")


# --- DataArguments ---------------------------------------------------------------------------------------------------


def test_data_arguments_take_own_audio_and_refuse_contradictions(tmp_path):
    from esc50_hf.training.arguments import DataArguments, parse_args

    assert DataArguments().is_esc50() and not DataArguments(train_dir="x").is_esc50()
    assert not DataArguments(dataset_name="owner/name").is_esc50()
    contradictions = {
        "two sources of audio": {"train_dir": "a", "dataset_name": "b"},
        "--data_dir names ESC-50 and --train_dir": {"train_dir": "a", "data_dir": "b"},
        "--data_dir names ESC-50 and --dataset_name": {"dataset_name": "a", "data_dir": "b"},
        "--audio_column_name applies to --dataset_name": {"train_dir": "a", "audio_column_name": "clip"},
        "--eval_split_name applies to your own audio": {"eval_split_name": "test"},
        "--eval_fraction applies to your own audio": {"eval_fraction": 0.3},
        "--dataset_config_name applies to your own audio": {"dataset_config_name": "x"},
        "--validation_fold and --train_folds choose ESC-50 folds": {"train_dir": "a", "validation_fold": 3},
        "--eval_fraction must be between 0 and 1": {"train_dir": "a", "eval_fraction": 0.0},
    }
    for expected, options in contradictions.items():
        with pytest.raises(ValueError, match=re.escape(expected)):
            DataArguments(**options)
    with pytest.raises(SystemExit):
        parse_args(["--train_dir", "a", "--dataset_name", "b"])

    root = write_classes(tmp_path / "mine", clips=2)
    setup = parse_args(["--train_dir", str(root), "--eval_fraction", "0.5", "--output_dir", str(tmp_path / "out")])
    loaded = setup.data.load_dataset(8000)
    assert isinstance(loaded, LabelledAudio) and loaded.labels == ("bird", "cat", "dog")
    assert loaded.dataset.features["audio"] == Audio(sampling_rate=8000, num_channels=1)
    recipe = setup.recipe()
    assert recipe["train_dir"] == str(root) and recipe["eval_fraction"] == 0.5 and "features_file" not in recipe
    saved = tmp_path / "training_config.json"
    saved.write_text(json.dumps(recipe))
    assert parse_args(["--config", str(saved)]).recipe() == recipe  # a run's recipe reads back


def test_esc50_recipes_record_no_own_audio_option_and_keep_their_fingerprint():
    from esc50_hf.training.arguments import DataArguments, parse_args
    from esc50_hf.training.recipe import fingerprint

    recipe = parse_args([]).recipe()
    assert not set(DataArguments.OWN_DATA_FIELDS) & set(recipe)
    shipped = REPO / "models" / "esc50-mel-cnn" / "training_config.json"
    assert parse_args(["--config", str(shipped)]).fingerprint() == fingerprint(json.loads(shipped.read_text()))
