"""The user's own labelled audio as one `datasets.Dataset` in the shape training consumes for ESC-50.

Two sources, each given as train.py gives them (`DataArguments`):

- a folder with one subfolder per class, the `audiofolder` layout: `my_sounds/<label>/*.wav`, optionally under
  `train/` and `validation/` or `test/` (`--train_dir my_sounds`);
- any `datasets` dataset: a folder written by `save_to_disk`, a local dataset folder or a Hub id, with the flags of
  transformers' audio-classification example (`--dataset_name`, `--dataset_config_name`, `--audio_column_name`,
  `--label_column_name`, `--train_split_name`, `--eval_split_name`).

The result has ESC-50's four common columns: `audio` (mono `Audio` at the training rate, as `esc50_features()` casts
it), `label` (`ClassLabel`, the user's names in the kept order: a `ClassLabel`'s own order, else sorted names),
`fold` (`TRAINING_FOLD` = 1 trains, `EVALUATION_FOLD` = 2 evaluates: `split_folds(dataset, validation_fold=2,
train_folds=[1])` splits it) and `filename`. Without an evaluation split, a stratified hold-out with a fixed seed
evaluates.

Folders are walked here rather than read with `load_dataset("audiofolder", data_dir=...)`, which works offline but
guesses in ways that lose clips without a word (datasets 5.2, checked): a class folder whose name contains a split
keyword (`train`, an ESC-50 class; `steam_train`; `test_tone`) is read as a split and the other classes are dropped;
one audio file beside the class folders drops the `label` column; a single class yields no labels; other files are
skipped silently; and the whole table is copied into the HF cache. The walk keeps `audiofolder`'s conventions (its
audio extensions, sorted class names, hidden files ignored) and says what it skips.
"""

import io
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import soundfile
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
from datasets.packaged_modules.audiofolder.audiofolder import AudioFolder

from ..errors import Esc50HfError
from ..model.labels import SAMPLING_RATE

logger = logging.getLogger(__name__)

TRAINING_FOLD = 1
EVALUATION_FOLD = 2
DEFAULT_EVAL_FRACTION = 0.2
HOLDOUT_SEED = 0
# The evaluation split used when none is named, in this order of preference.
EVAL_SPLIT_NAMES = ("validation", "test")
# What `audiofolder` takes for audio (by extension, case-insensitive).
AUDIO_EXTENSIONS = frozenset(extension.lower() for extension in AudioFolder.EXTENSIONS)
_SHOWN = 5  # files named in one message; the rest are counted


class LabelledDataError(Esc50HfError, ValueError):
    """The user's own labelled audio (`--train_dir`, `--dataset_name`) cannot be trained on as given."""


@dataclass(frozen=True)
class LabelledAudio:
    """The user's labelled audio, ready to train on, and where it came from (for the model card).

    Attributes:
        dataset (`Dataset`): Columns `audio` (mono `Audio` at the requested rate), `label` (`ClassLabel` of `labels`),
            `fold` (1 trains, 2 evaluates) and `filename` (a folder's clips: the path relative to the folder; a
            dataset's: the audio's stored path, or `<split>/<index>` when paths are missing or not unique).
        labels (`tuple[str, ...]`): The class names, in label-id order.
        source (`str`): The folder or dataset as given (with its configuration, if any).
        evaluation (`str`): How the evaluation clips were chosen, in words.
        skipped (`tuple[str, ...]`): Files of the folder that are not clips and were left out (warned about).
    """

    dataset: Dataset
    labels: tuple[str, ...]
    source: str
    evaluation: str
    skipped: tuple[str, ...] = ()

    def splits(self) -> DatasetDict:
        """`train` (fold 1) and `validation` (fold 2)."""
        folds = self.dataset["fold"]
        train = [index for index, fold in enumerate(folds) if fold == TRAINING_FOLD]
        validation = [index for index, fold in enumerate(folds) if fold == EVALUATION_FOLD]
        return DatasetDict(train=self.dataset.select(train), validation=self.dataset.select(validation))


def labelled_features(labels: Sequence[str], sampling_rate: int = SAMPLING_RATE) -> Features:
    """The features of `LabelledAudio.dataset`: ESC-50's `audio`, `label`, `fold` and `filename` (`esc50_features`)."""
    return Features(
        {
            "audio": Audio(sampling_rate=sampling_rate, num_channels=1),
            "label": ClassLabel(names=list(labels)),
            "fold": Value("int8"),
            "filename": Value("string"),
        }
    )


def load_labelled_audio(
    train_dir: str | os.PathLike | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    audio_column_name: str = "audio",
    label_column_name: str = "label",
    train_split_name: str = "train",
    eval_split_name: str | None = None,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    sampling_rate: int = SAMPLING_RATE,
    seed: int = HOLDOUT_SEED,
) -> LabelledAudio:
    """The user's labelled audio, from a folder of class subfolders or a `datasets` dataset (give exactly one).

    A folder is either `<train_dir>/<label>/...` (class layout) or `<train_dir>/<train_split_name>/<label>/...` with
    `<train_dir>/validation/<label>/...` and/or `<train_dir>/test/<label>/...` beside it (split layout: chosen when
    `<train_split_name>/` holds folders; then any other subfolder than those, or `eval_split_name`, is refused, so
    that `train/` beside `val/` is never read as two classes). A class is a subfolder's name, also when it has no
    clips; its clips are the audio files anywhere below it. Files that are no audio by extension (`AUDIO_EXTENSIONS`, as
    `audiofolder`), and files outside any class folder, are skipped with a warning that names them (listed in
    `LabelledAudio.skipped`); hidden files and folders (`.name`) are ignored.

    Every clip's header is read (soundfile, else torchcodec, which `datasets` decodes with): a clip that cannot be
    decoded, or holds no samples, is refused with an error naming it (up to 5, then a count), nothing is skipped
    silently; fix or delete it.

    Labels keep their order: a `ClassLabel`'s names as the dataset has them, else the sorted names (folders,
    strings). Without an evaluation split (none named, and no `validation` or `test` one), each class gives
    `round(eval_fraction * clips)` clips to evaluation, at least 1, and keeps at least 1 for training, drawn with
    `seed` (a stratified hold-out, the same on every run and machine).

    Args:
        train_dir (`str` or `os.PathLike`, *optional*): The folder of class subfolders.
        dataset_name (`str`, *optional*): A folder written by `Dataset(Dict).save_to_disk`, or what
            `datasets.load_dataset` loads (a local dataset folder, a Hub id).
        dataset_config_name (`str`, *optional*): The configuration passed to `load_dataset`.
        audio_column_name (`str`, *optional*, defaults to `"audio"`): The dataset's `Audio` column.
        label_column_name (`str`, *optional*, defaults to `"label"`): The dataset's label column (`ClassLabel` or
            strings).
        train_split_name (`str`, *optional*, defaults to `"train"`): The split (or split folder) that trains.
        eval_split_name (`str`, *optional*): The split (or split folder) that evaluates; unset: `validation`, else
            `test`, else the hold-out.
        eval_fraction (`float`, *optional*, defaults to 0.2): The hold-out's share of each class, in (0, 1).
        sampling_rate (`int`, *optional*, defaults to 22050): The rate `audio` decodes to (mono).
        seed (`int`, *optional*, defaults to 0): The hold-out's seed.

    Returns:
        `LabelledAudio`: the dataset (fold 1 trains, fold 2 evaluates), its labels and its provenance.

    Raises:
        `LabelledDataError`: no source or two; a folder or dataset that is missing or cannot be loaded; a missing
            split, audio or label column (the message lists what there is); labels that are neither strings nor a
            `ClassLabel`, or missing; fewer than 2 classes; a class with too few clips (named, with its folder or
            split); a class missing from the evaluation split, or evaluation labels training does not have, or
            `ClassLabel`s that differ between splits; clips that cannot be decoded (named).
    """
    if (train_dir is None) == (dataset_name is None):
        raise LabelledDataError("Give either a folder of class subfolders (train_dir) or a dataset (dataset_name).")
    if not 0.0 < eval_fraction < 1.0:
        raise LabelledDataError(f"eval_fraction must be between 0 and 1 (exclusive), got {eval_fraction}")
    if train_dir is not None:
        return _load_folder(Path(train_dir), train_split_name, eval_split_name, eval_fraction, sampling_rate, seed)
    return _load_dataset(
        dataset_name, dataset_config_name, audio_column_name, label_column_name, train_split_name, eval_split_name,
        eval_fraction, sampling_rate, seed,
    )  # fmt: skip


# --- folders ------------------------------------------------------------------------------------------------------


def _load_folder(
    root: Path, train_split: str, eval_split: str | None, fraction: float, sampling_rate: int, seed: int
) -> LabelledAudio:
    if not root.is_dir():
        raise LabelledDataError(f"The audio folder {root} does not exist or is not a folder.")
    given, root = str(root), Path(os.path.abspath(root))  # clips are stored by absolute path
    top = _visible_dirs(root)
    split_names = {train_split, *EVAL_SPLIT_NAMES, *([eval_split] if eval_split else [])}
    split_layout = train_split in top and bool(_visible_dirs(root / train_split))
    skipped: list[str] = []
    if split_layout:
        others = [name for name in top if name not in split_names]
        if others:  # e.g. train/ beside val/: not read as classes train and val, which would mislabel every clip
            raise LabelledDataError(
                f"{root} has a {train_split}/ folder of class folders, so its folders are read as splits, but "
                f"{', '.join(f'{name}/' for name in others)} is none of {train_split}/, validation/, test/: name the "
                "evaluation split with eval_split_name, or put each class folder directly in the folder."
            )
        if eval_split is None:
            eval_split = next((name for name in EVAL_SPLIT_NAMES if name in top), None)
        elif eval_split not in top:
            raise LabelledDataError(
                f"{root} has no {eval_split}/ folder (the evaluation split named by eval_split_name); it has "
                f"{', '.join(f'{name}/' for name in top)}."
            )
        unused = [name for name in top if name not in (train_split, eval_split)]
        if unused:
            logger.warning("Not using %s in %s: %s/ evaluates.", ", ".join(f"{n}/" for n in unused), root, eval_split)
        skipped += _loose_files(root, root)
        train, classes = _walk_classes(root, root / train_split, skipped)
        evaluation, eval_classes = _walk_classes(root, root / eval_split, skipped) if eval_split else (None, [])
        where = {"train": f"{root / train_split}", "eval": f"{root / eval_split}" if eval_split else ""}
    else:
        if eval_split is not None:
            raise LabelledDataError(
                f"{root} has no split folders ({train_split}/ beside {eval_split}/, each holding class folders), "
                "so it cannot have the evaluation split named by eval_split_name; drop it for a hold-out."
            )
        (train, classes), (evaluation, eval_classes) = _walk_classes(root, root, skipped), (None, [])
        where = {"train": str(root), "eval": ""}
    if skipped:
        logger.warning(
            "Skipped %d file(s) in %s that are no audio clip in a class folder (extensions: those of "
            "`audiofolder`, e.g. .wav, .flac, .mp3, .ogg): %s",
            len(skipped), root, _listed(skipped),
        )  # fmt: skip

    describe = {
        "train": lambda label: f"{where['train']}{os.sep}{label}{os.sep}",
        "eval": lambda label: f"{where['eval']}{os.sep}{label}{os.sep}",
        "what": "class folder",
    }
    train_labels = [label for _, label in train]
    eval_labels = [label for _, label in evaluation] if evaluation is not None else None
    names = sorted(set(classes) | set(eval_classes))  # every class folder, even one without clips
    _check_classes(names, train_labels, eval_labels, describe, eval_split)
    clips = train + (evaluation or [])
    _refuse_unreadable(
        [f"{path.relative_to(root).as_posix()} ({reason})" for path, _ in clips if (reason := _unreadable(path))],
        str(root),
    )

    index = {name: number for number, name in enumerate(names)}
    labels = [index[label] for _, label in clips]
    if evaluation is None:
        folds = _holdout_folds(labels, len(names), fraction, seed)
        how = _holdout_words(fraction, seed)
    else:
        folds = [TRAINING_FOLD] * len(train) + [EVALUATION_FOLD] * len(evaluation)
        how = f"the folder's {eval_split}/ split"
    columns = {
        "audio": [str(path) for path, _ in clips],
        "label": labels,
        "fold": folds,
        "filename": [path.relative_to(root).as_posix() for path, _ in clips],
    }
    dataset = Dataset.from_dict(columns, features=labelled_features(names, sampling_rate))
    return LabelledAudio(dataset, tuple(names), given, how, tuple(skipped))


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def _loose_files(root: Path, folder: Path) -> list[str]:
    """Files directly in `folder` (not in a class folder), relative to `root`."""
    return sorted(
        entry.relative_to(root).as_posix()
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    )


def _walk_classes(root: Path, folder: Path, skipped: list[str]) -> tuple[list[tuple[Path, str]], list[str]]:
    """`(path, label)` of every audio file below `folder`'s class subfolders (sorted), and the class folders' names;
    other files go to `skipped` (relative to `root`)."""
    skipped += _loose_files(root, folder)
    rows, classes = [], _visible_dirs(folder)
    for label in classes:
        for directory, subdirs, files in os.walk(folder / label, followlinks=True):
            subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                path = Path(directory) / name
                if path.suffix.lower() in AUDIO_EXTENSIONS:
                    rows.append((path, label))
                else:
                    skipped.append(path.relative_to(root).as_posix())
    return sorted(rows), classes


# --- datasets -----------------------------------------------------------------------------------------------------


def _load_dataset(
    name: str,
    config: str | None,
    audio_column: str,
    label_column: str,
    train_split: str,
    eval_split: str | None,
    fraction: float,
    sampling_rate: int,
    seed: int,
) -> LabelledAudio:
    source = name if config is None else f"{name} ({config})"
    splits = _read_dataset(name, config, train_split)
    if train_split not in splits:
        raise LabelledDataError(f"{source} has no split {train_split!r} (train_split_name); it has {list(splits)}.")
    if eval_split is None:
        eval_split = next((split for split in EVAL_SPLIT_NAMES if split in splits), None)
    elif eval_split not in splits:
        raise LabelledDataError(f"{source} has no split {eval_split!r} (eval_split_name); it has {list(splits)}.")
    used = [train_split] + ([eval_split] if eval_split else [])
    for split in used:
        _check_columns(splits[split], split, source, audio_column, label_column)
    label_values = {split: _label_strings(splits[split], split, source, label_column) for split in used}

    class_labels = {
        split: splits[split].features[label_column].names
        for split in used
        if isinstance(splits[split].features[label_column], ClassLabel)
    }
    if eval_split and len(class_labels) == 2 and class_labels[train_split] != class_labels[eval_split]:
        raise LabelledDataError(
            f"{source}: the labels differ between the splits {train_split!r} ({class_labels[train_split]}) and "
            f"{eval_split!r} ({class_labels[eval_split]}); both must have the same ClassLabel names in the same order."
        )
    named_by = next((split for split in used if split in class_labels), None)
    # The order the dataset gives (a ClassLabel's), else sorted names.
    names = list(class_labels[named_by]) if named_by else sorted(set().union(*label_values.values()))
    for split in used:
        unknown = sorted(set(label_values[split]) - set(names))
        if unknown:
            raise LabelledDataError(
                f"{source}: split {split!r} has labels that are not among the ClassLabel names of split {named_by!r} "
                f"({names}): {unknown}."
            )
    describe = {
        "train": lambda label: f"split {train_split!r}",
        "eval": lambda label: f"split {eval_split!r}",
        "what": "class",
    }
    _check_classes(names, label_values[train_split], label_values.get(eval_split), describe, eval_split)

    parts = {split: _audio_part(splits[split], audio_column, sampling_rate) for split in used}
    scans = {split: _scan_audio(part) for split, part in parts.items()}
    filenames = _filenames({split: paths for split, (paths, _) in scans.items()})
    bad = [f"{filenames[split][row]} ({reason})" for split, (_, problems) in scans.items() for row, reason in problems]
    _refuse_unreadable(bad, source)

    index = {label: number for number, label in enumerate(names)}
    built = []
    for split, part in parts.items():
        labels = [index[label] for label in label_values[split]]
        if eval_split is None:
            folds = _holdout_folds(labels, len(names), fraction, seed)
        else:
            folds = [TRAINING_FOLD if split == train_split else EVALUATION_FOLD] * len(labels)
        part = part.add_column("label", labels, feature=ClassLabel(names=names))
        part = part.add_column("fold", folds, feature=Value("int8"))
        built.append(part.add_column("filename", filenames[split], feature=Value("string")))
    dataset = datasets.concatenate_datasets(built) if len(built) > 1 else built[0]
    how = f"the dataset's {eval_split!r} split" if eval_split else _holdout_words(fraction, seed)
    return LabelledAudio(dataset, tuple(names), source, how)


def _read_dataset(name: str, config: str | None, train_split: str) -> DatasetDict:
    path = Path(name)
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        if config is not None:
            raise LabelledDataError(
                f"{name} was written by save_to_disk and has no configurations; drop dataset_config_name {config!r}."
            )
        loaded = datasets.load_from_disk(str(path))
        return DatasetDict({train_split: loaded}) if isinstance(loaded, Dataset) else loaded
    if not path.exists() and (path.is_absolute() or name.startswith(".") or name.count("/") > 1):
        raise LabelledDataError(f"The dataset {name} does not exist (a folder, or a Hub id owner/name).")
    try:
        loaded = datasets.load_dataset(name, config)
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as error:  # not found, offline, bad config
        message = " ".join(str(error).split())
        raise LabelledDataError(f"Could not load the dataset {name} ({type(error).__name__}: {message})") from None
    if not isinstance(loaded, DatasetDict):
        raise LabelledDataError(f"{name} loaded as {type(loaded).__name__}, not a dataset with splits.")
    return loaded


def _check_columns(split: Dataset, name: str, source: str, audio_column: str, label_column: str) -> None:
    there = ", ".join(f"{column} ({_feature_words(feature)})" for column, feature in split.features.items())
    for flag, column in (("audio_column_name", audio_column), ("label_column_name", label_column)):
        if column not in split.features:
            raise LabelledDataError(
                f"{source}: split {name!r} has no column {column!r} ({flag}); its columns are: {there}."
            )
    if not isinstance(split.features[audio_column], Audio):
        raise LabelledDataError(
            f"{source}: column {audio_column!r} of split {name!r} is {_feature_words(split.features[audio_column])}, "
            f"not audio; name the Audio column with audio_column_name (columns: {there})."
        )


def _feature_words(feature: Any) -> str:
    if isinstance(feature, Value):
        return feature.dtype
    return type(feature).__name__


def _label_strings(split: Dataset, name: str, source: str, column: str) -> list[str]:
    feature = split.features[column]
    values = list(split.with_format(None)[column])
    if isinstance(feature, ClassLabel):
        missing = [row for row, value in enumerate(values) if value is None or value < 0]
        strings = [feature.names[value] if value is not None and value >= 0 else None for value in values]
    elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        missing = [row for row, value in enumerate(values) if value is None or not value.strip()]
        strings = values
    else:
        raise LabelledDataError(
            f"{source}: the label column {column!r} of split {name!r} holds {_feature_words(feature)}; labels must be "
            f"strings or a ClassLabel (e.g. dataset.cast_column({column!r}, ClassLabel(names=[...])))."
        )
    if missing:
        rows = ", ".join(str(row) for row in missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else "")
        raise LabelledDataError(
            f"{source}: {len(missing)} row(s) of split {name!r} have no label in column {column!r} (rows {rows})."
        )
    return strings


def _audio_part(split: Dataset, column: str, sampling_rate: int) -> Dataset:
    """The split's audio column alone, named `audio`, decoding mono at `sampling_rate` (a cast, not a copy)."""
    part = split.with_format(None).select_columns([column])
    if column != "audio":
        part = part.rename_column(column, "audio")
    return part.cast_column("audio", Audio(sampling_rate=sampling_rate, num_channels=1))


def _scan_audio(part: Dataset) -> tuple[list[str | None], list[tuple[int, str]]]:
    """Each clip's stored path, and `(row, reason)` of the clips whose header cannot be decoded; batch by batch,
    without decoding the samples or holding all the bytes."""
    paths, problems = [], []
    for batch in part.cast_column("audio", Audio(decode=False)).iter(batch_size=64):
        for item in batch["audio"]:
            reason = _unreadable(item)
            if reason:
                problems.append((len(paths), reason))
            paths.append(item.get("path"))
    return paths, problems


def _filenames(paths: dict[str, list[str | None]]) -> dict[str, list[str]]:
    """Each clip's stored audio path when every clip has one and they are unique, else `<split>/<index>`."""
    flat = [path for values in paths.values() for path in values]
    if all(flat) and len(set(flat)) == len(flat):
        return paths
    return {split: [f"{split}/{index}" for index in range(len(values))] for split, values in paths.items()}


# --- shared checks ------------------------------------------------------------------------------------------------


def _check_classes(
    names: list[str],
    train_labels: list[str],
    eval_labels: list[str] | None,
    describe: dict[str, Any],
    eval_split: str | None,
) -> None:
    """At least 2 classes; with a hold-out, at least 2 clips per class; with an evaluation split, at least 1 clip of
    each class in each split and no evaluation label that training lacks."""
    if len(names) < 2:
        raise LabelledDataError(
            f"A classifier needs at least 2 classes; found {len(names)} ({', '.join(map(repr, names)) or 'none'}) in "
            f"{describe['train']('').rstrip(os.sep)}."
        )
    train_counts = Counter(train_labels)
    if eval_labels is None:
        few = [name for name in names if train_counts[name] < 2]
        if few:
            listed = _listed([f"{name!r} has {train_counts[name]} ({describe['train'](name)})" for name in few], "; ")
            raise LabelledDataError(
                f"Every class needs at least 2 clips, 1 to train and 1 to evaluate (a stratified hold-out): {listed}. "
                f"Add clips, or remove the {describe['what']}."
            )
        return
    eval_counts = Counter(eval_labels)
    unknown = [name for name in names if eval_counts[name] and not train_counts[name]]
    if unknown:
        listed = _listed([f"{name!r} ({describe['eval'](name)})" for name in unknown])
        raise LabelledDataError(
            f"The evaluation split {eval_split!r} has labels that training does not have (no clip in "
            f"{describe['train'](unknown[0])}): {listed}."
        )
    empty_train = [name for name in names if not train_counts[name]]
    if empty_train:
        listed = _listed([f"{name!r} ({describe['train'](name)})" for name in empty_train])
        raise LabelledDataError(f"Some classes have no training clip: {listed}. Add clips, or drop the class.")
    missing = [name for name in names if not eval_counts[name]]
    if missing:
        listed = _listed([f"{name!r} (nothing in {describe['eval'](name)})" for name in missing])
        raise LabelledDataError(
            f"The evaluation split {eval_split!r} lacks class(es) that training has: {listed}. Every class needs at "
            "least 1 evaluation clip; add some, or drop the evaluation split for a stratified hold-out."
        )


def _refuse_unreadable(bad: list[str], source: str) -> None:
    """Raises naming the clips (`name (reason)`) whose header cannot be decoded, if any."""
    if bad:
        shown = _listed(bad, "; ")
        raise LabelledDataError(
            f"{len(bad)} clip(s) in {source} cannot be decoded as audio: {shown}. Fix or delete them."
        )


def _listed(items: list[str], separator: str = ", ") -> str:
    """The first few items, and how many more there are."""
    more = len(items) - _SHOWN
    return separator.join(items[:_SHOWN]) + (f"{separator}and {more} more" if more > 0 else "")


def _unreadable(clip: Any) -> str | None:
    """None for a clip whose header decodes and announces samples; else why not, in a few words."""
    if isinstance(clip, dict):
        if clip.get("bytes") is not None:
            clip = clip["bytes"]
        elif clip.get("path"):
            clip = clip["path"]
        else:
            return "no audio stored"
    if isinstance(clip, (str, Path)) and not Path(clip).is_file():
        return "no such file"
    try:
        info = soundfile.info(io.BytesIO(clip) if isinstance(clip, bytes) else str(clip))
    except (soundfile.SoundFileError, RuntimeError, TypeError):
        return _unreadable_by_torchcodec(clip)
    return None if info.frames > 0 else "no samples"


def _unreadable_by_torchcodec(clip: Any) -> str | None:
    """What `datasets` decodes with (FFmpeg): formats libsndfile lacks (m4a, aac, wma, ...)."""
    try:
        from torchcodec.decoders import AudioDecoder

        metadata = AudioDecoder(clip if isinstance(clip, bytes) else str(clip)).metadata
    except Exception as error:  # torchcodec raises RuntimeError/ValueError, or its import fails without FFmpeg
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return first.split(", ")[-1][:120]
    duration = metadata.duration_seconds_from_header
    return "no samples" if duration is not None and duration <= 0 else None


# --- the hold-out -------------------------------------------------------------------------------------------------


def _holdout_folds(labels: Sequence[int], num_labels: int, fraction: float, seed: int) -> list[int]:
    """Per class, `round(fraction * clips)` clips evaluate (at least 1, at most all but 1), chosen with `seed`.

    Not `Dataset.train_test_split(stratify_by_column=...)`: it allots the evaluation clips to classes by proportion
    overall, so a class of 2-4 clips can get none, and it refuses a test size below the number of classes.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    folds = np.full(len(labels), TRAINING_FOLD, dtype=np.int64)
    for label in range(num_labels):
        members = np.flatnonzero(labels == label)
        count = min(max(1, int(fraction * len(members) + 0.5)), len(members) - 1)
        folds[rng.permutation(members)[:count]] = EVALUATION_FOLD
    return folds.tolist()


def _holdout_words(fraction: float, seed: int) -> str:
    return f"a stratified {fraction:.0%} hold-out of each class (at least 1 clip), seed {seed}"


__all__ = [
    "DEFAULT_EVAL_FRACTION",
    "EVALUATION_FOLD",
    "EVAL_SPLIT_NAMES",
    "TRAINING_FOLD",
    "LabelledAudio",
    "LabelledDataError",
    "labelled_features",
    "load_labelled_audio",
]
