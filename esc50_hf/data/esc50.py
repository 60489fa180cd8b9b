"""ESC-50 as a `datasets.Dataset`: from the official layout, a parquet copy (folder or Hub id), or downloaded."""

import csv
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
from datasets import Audio, ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, Value
from huggingface_hub import constants as hub_constants
from tqdm.auto import tqdm

from ..errors import Esc50HfError
from ..model.labels import ESC50_LABELS, SAMPLING_RATE
from ..publish import is_hub_id

ESC50_ARCHIVE_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
ESC50_HOMEPAGE = "https://github.com/karolpiczak/ESC-50"
# The Hub dataset this project publishes with `esc50-hf dataset --push-to-hub` (parquet, official label order).
DEFAULT_HUB_DATASET_ID = "esc50-hf/esc50"
ESC50_LICENSE = "cc-by-nc-3.0"
ESC50_DESCRIPTION = (
    "ESC-50: 2,000 five-second environmental sound recordings from freesound.org, 40 per class in 50 "
    "classes (animals, natural soundscapes, human non-speech sounds, domestic and urban sounds), in 5 "
    "folds of 400 clips. Clips from one source recording share a fold: evaluate by cross-validation over "
    "the 5 folds, or train on 4 and validate on the remaining one. `label` ids follow the official "
    "`target` order (0 dog ... 49 hand_saw)."
)
ESC50_CITATION = """@inproceedings{piczak2015dataset,
  title = {{ESC}: {Dataset} for {Environmental Sound Classification}},
  author = {Piczak, Karol J.},
  booktitle = {Proceedings of the 23rd {Annual ACM Conference} on {Multimedia}},
  date = {2015-10-13},
  url = {http://dl.acm.org/citation.cfm?doid=2733373.2806390},
  doi = {10.1145/2733373.2806390},
  isbn = {978-1-4503-3459-4},
  publisher = {{ACM Press}},
  pages = {1015--1018}
}"""
META_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
# The fold this project reports as its test score; no recipe, epoch or model is chosen by it.
TEST_FOLD = 5
FOLDS = (1, 2, 3, 4, 5)
_HOW_TO_PASS_DATA_DIR = (
    "Pass a local copy instead: load_esc50(data_dir=...) / --data-dir DIR, where DIR holds "
    "meta/esc50.csv and audio/*.wav (the official layout), or is a folder written by `esc50-hf dataset`."
)


class Esc50DataError(Esc50HfError, ValueError):
    """The ESC-50 folder or archive is missing, incomplete or malformed."""


def esc50_features(sampling_rate: int = SAMPLING_RATE) -> Features:
    """The columns of ESC-50 as every source gives them: `audio` (mono), `label` (`ClassLabel`, official order),
    `fold`, `filename`, `esc10`, `src_file`, `take`.

    Args:
        sampling_rate (`int`, *optional*, defaults to 22050): Rate the `audio` column decodes to.
    """
    return Features(
        {
            "audio": Audio(sampling_rate=sampling_rate, num_channels=1),
            "label": ClassLabel(names=list(ESC50_LABELS)),
            "fold": Value("int8"),
            "filename": Value("string"),
            "esc10": Value("bool"),
            "src_file": Value("string"),
            "take": Value("string"),
        }
    )


def fold_config_name(fold: int) -> str:
    """The configuration of the parquet dataset whose `validation` split is `fold` (the others are `train`).

    Args:
        fold (`int`): A fold, 1 to 5.
    """
    return f"fold{fold}"


def esc50_info(sampling_rate: int = SAMPLING_RATE) -> DatasetInfo:
    """Description, citation, licence, homepage and features of ESC-50, as `datasets` records them.

    Args:
        sampling_rate (`int`, *optional*, defaults to 22050): Rate of the `audio` feature (see `esc50_features`).
    """
    return DatasetInfo(
        description=ESC50_DESCRIPTION,
        citation=ESC50_CITATION,
        homepage=ESC50_HOMEPAGE,
        license=ESC50_LICENSE,
        features=esc50_features(sampling_rate),
    )


def load_esc50(data_dir: str | os.PathLike | None = None, sampling_rate: int = SAMPLING_RATE) -> Dataset:
    """ESC-50 as one `Dataset` (2000 rows for the official data) with a `fold` column.

    Whatever the source, the rows, columns and features are the same: `audio` (mono), `label`
    (`ClassLabel` in the official `target` order), `fold`, `filename`, `esc10`, `src_file`, `take`;
    `dataset.info` carries ESC-50's description, citation and licence.

    Args:
        data_dir (`str` or `os.PathLike`, *optional*): One of
            - a folder in the official layout (`meta/esc50.csv`, `audio/*.wav`) at any sampling rate;
            - a folder written by `esc50-hf dataset` (parquet shards and a dataset card);
            - a Hub dataset id (`owner/name`) published by `esc50-hf dataset --push-to-hub`;
            - `None` (default): downloads the official archive into the Hugging Face cache (or reuses the
              cached copy, which also works offline).
        sampling_rate (`int`, *optional*, defaults to 22050): Rate the `audio` column decodes to (mono).

    Raises:
        `Esc50DataError`: the source is missing, incomplete, or a dataset whose labels are not ESC-50's
            in the official order (e.g. one built with `audiofolder`, which sorts class names).
    """
    if data_dir is not None and _is_prepared_dataset(data_dir):
        return load_prepared_esc50(str(data_dir), sampling_rate)
    root = Path(data_dir) if data_dir is not None else download_esc50()
    rows = read_metadata(root)
    columns = {"audio": [str(root / "audio" / row["filename"]) for row in rows], **metadata_columns(rows)}
    return Dataset.from_dict(columns, info=esc50_info(sampling_rate))


def metadata_columns(rows: list[dict[str, str]]) -> dict[str, list]:
    """Every column but `audio`, typed, from rows of `meta/esc50.csv` (see `read_metadata`).

    Args:
        rows (`list[dict[str, str]]`): Rows of `meta/esc50.csv` as `csv.DictReader` reads them, already checked.
    """
    return {
        "label": [int(row["target"]) for row in rows],
        "fold": [int(row["fold"]) for row in rows],
        "filename": [row["filename"] for row in rows],
        "esc10": [row["esc10"].strip().lower() == "true" for row in rows],
        "src_file": [row["src_file"] for row in rows],
        "take": [row["take"] for row in rows],
    }


def _is_prepared_dataset(data_dir: str | os.PathLike) -> bool:
    """A folder of parquet shards with a card (no `meta/esc50.csv`), or an `owner/name` that is no local path."""
    path = Path(data_dir)
    if path.is_dir():
        return not (path / "meta" / "esc50.csv").is_file() and (
            (path / "README.md").is_file() or any(path.rglob("*.parquet"))
        )
    return not path.exists() and is_hub_id(str(data_dir))


def load_prepared_esc50(source: str, sampling_rate: int = SAMPLING_RATE) -> Dataset:
    """The `train` split (all 5 folds) of ESC-50 as written by `esc50-hf dataset`: a folder or a Hub id.

    The dataset's `info` gets ESC-50's description, citation, homepage and licence, as `load_esc50` gives them.

    Args:
        source (`str`): A folder written by `esc50-hf dataset`, or the Hub id (`owner/name`) it was published as.
        sampling_rate (`int`, *optional*, defaults to 22050): Rate the `audio` column decodes to (mono).

    Raises:
        `Esc50DataError`: the source cannot be loaded (missing, offline, unreadable shards), or is not ESC-50 with its
            labels in the official order (`check_esc50_features`).
    """
    where = "folder" if Path(source).is_dir() else "Hub dataset"
    try:
        dataset = datasets.load_dataset(source, split="train")
    except (OSError, ValueError) as error:  # not found, offline (ConnectionError), unreadable shards
        raise Esc50DataError(
            f"Could not load ESC-50 from the {where} {source!r} ({type(error).__name__}: {error}). "
            f"{_HOW_TO_PASS_DATA_DIR}"
        ) from error
    check_esc50_features(dataset.features, source)
    if dataset.features["audio"] != Audio(sampling_rate=sampling_rate, num_channels=1):
        dataset = dataset.cast_column("audio", Audio(sampling_rate=sampling_rate, num_channels=1))
    info = esc50_info(sampling_rate)
    for field in ("description", "citation", "homepage", "license"):
        setattr(dataset.info, field, getattr(info, field))
    return dataset


def check_esc50_features(features: Features, source: str) -> None:
    """Raises `Esc50DataError` unless `features` has ESC-50's columns and its labels in the official order.

    Args:
        features (`Features`): The features of a loaded dataset.
        source (`str`): Where it came from, for the message.
    """
    names = getattr(features.get("label"), "names", None)
    if names is not None and names != list(ESC50_LABELS) and sorted(names) == sorted(ESC50_LABELS):
        raise Esc50DataError(
            f"{source} has the ESC-50 classes in another order ({names[0]!r}, {names[1]!r}, ... instead of "
            f"{ESC50_LABELS[0]!r}, {ESC50_LABELS[1]!r}, ...): label ids would name the wrong classes. "
            "`audiofolder` sorts class names alphabetically; write the dataset with `esc50-hf dataset` instead."
        )
    if names != list(ESC50_LABELS):
        raise Esc50DataError(
            f"{source}: `label` must be a ClassLabel with the 50 ESC-50 names, got {features.get('label')}."
        )
    missing = [name for name in esc50_features() if name not in features]
    if missing:
        raise Esc50DataError(
            f"{source} is not an ESC-50 dataset written by `esc50-hf dataset`: it lacks the column(s) {missing}."
        )


def training_folds(validation_fold: int, train_folds: Sequence[int] | None = None) -> list[int]:
    """The folds that train when `validation_fold` validates: `train_folds`, checked, or every other fold.

    Args:
        validation_fold (`int`): The held-out fold, 1 to 5.
        train_folds (`Sequence[int]`, *optional*): The folds that train; default: every fold but `validation_fold`.

    Returns:
        `list[int]`: The training folds, sorted, without repeats.

    Raises:
        `ValueError`: a fold outside 1-5, or `train_folds` empty or holding the validation fold.
    """
    if validation_fold not in FOLDS:
        raise ValueError(f"validation_fold must be one of {FOLDS}, got {validation_fold}")
    if train_folds is None:
        return [fold for fold in FOLDS if fold != validation_fold]
    if not train_folds or validation_fold in train_folds or not set(train_folds) <= set(FOLDS):
        raise ValueError(
            f"train_folds must be one or more folds among {FOLDS} other than the validation fold {validation_fold}, "
            f"got {list(train_folds)}"
        )
    return sorted(set(train_folds))


def clips_per_class_and_fold(dataset: Dataset, limit: int) -> Dataset:
    """The first `limit` rows (in the dataset's order) of each class in each fold: a smaller ESC-50 with every
    class in every fold, for a quick run of the whole training path (`--max_clips_per_class_and_fold`).

    Args:
        dataset (`Dataset`): With `label` and `fold` columns (`load_esc50`).
        limit (`int`): Rows kept per class and fold (the official data has 8).
    """
    seen: dict[tuple[int, int], int] = {}
    kept = []
    for index, key in enumerate(zip(dataset["fold"], dataset["label"])):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            kept.append(index)
    return dataset if len(kept) == len(dataset) else dataset.select(kept)


def split_folds(
    dataset: Dataset, validation_fold: int = TEST_FOLD, train_folds: Sequence[int] | None = None
) -> DatasetDict:
    """`validation` = `validation_fold`; `train` = `train_folds` (default: every other fold).

    Args:
        dataset (`Dataset`): ESC-50 as `load_esc50` gives it (a `fold` column).
        validation_fold (`int`, *optional*, defaults to 5): The held-out fold.
        train_folds (`Sequence[int]`, *optional*): The folds that train; default: every fold but `validation_fold`.

    Returns:
        `DatasetDict`: `train` and `validation` splits.

    Raises:
        `ValueError`: a fold outside 1-5, or `train_folds` that include the validation fold.
    """
    train_folds = training_folds(validation_fold, train_folds)
    folds = dataset["fold"]
    validation = [index for index, fold in enumerate(folds) if fold == validation_fold]
    train = [index for index, fold in enumerate(folds) if fold in train_folds]
    return DatasetDict(train=dataset.select(train), validation=dataset.select(validation))


def keep_classes(dataset: Dataset, names: Sequence[str]) -> Dataset:
    """The clips of `names` only, their `label` a `ClassLabel` of `names` (in that order): ESC-50's clips of a
    model of some of its classes (`train.py --classes`)."""
    old, names = dataset.features["label"].names, list(names)
    kept = dataset.filter(lambda label: old[label] in names, input_columns="label")
    kept = kept.map(lambda label: {"label": names.index(old[label])}, input_columns="label")
    return kept.cast_column("label", ClassLabel(names=names))


def fold_clips(dataset: Dataset, fold: int, labels: Sequence[str] = ESC50_LABELS) -> Dataset:
    """The clips of ESC-50 `fold` that a model of `labels` is scored on: all of them, or, for a model of some of
    ESC-50's classes (`train.py --classes`), those classes' clips (`keep_classes`).

    Args:
        dataset (`Dataset`): ESC-50 as `load_esc50` gives it.
        fold (`int`): The fold, 1-5.
        labels (`Sequence[str]`, *optional*): The model's labels (`model_labels(config)`); default ESC-50's.
    """
    clips = split_folds(dataset, fold)["validation"]
    return keep_classes(clips, labels) if some_esc50_classes(labels) else clips  # other labels: refused by scoring


def some_esc50_classes(labels: Sequence[str]) -> bool:
    """Whether `labels` are some of ESC-50's classes, not all (a model trained with `train.py --classes`)."""
    return set(labels) < set(ESC50_LABELS)


def read_metadata(root: Path) -> list[dict[str, str]]:
    """Rows of `meta/esc50.csv`, after checking columns, labels, folds and that each clip exists.

    Args:
        root (`Path`): A folder in the official layout (`meta/esc50.csv`, `audio/*.wav`).

    Raises:
        `Esc50DataError`: the folder or the CSV is missing, a column, target, category or fold is wrong, or a listed
            clip is not in `audio/`.
    """
    csv_path = root / "meta" / "esc50.csv"
    if not root.is_dir():
        raise Esc50DataError(f"ESC-50 folder {root} does not exist. {_HOW_TO_PASS_DATA_DIR}")
    if not csv_path.is_file():
        raise Esc50DataError(f"{root} is not an ESC-50 folder: {csv_path} is missing. {_HOW_TO_PASS_DATA_DIR}")
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing_columns = [column for column in META_COLUMNS if column not in (reader.fieldnames or [])]
        if missing_columns:
            raise Esc50DataError(f"{csv_path} lacks the column(s) {missing_columns}; expected {list(META_COLUMNS)}.")
        rows = list(reader)
    if not rows:
        raise Esc50DataError(f"{csv_path} lists no clips.")
    for line, row in enumerate(rows, start=2):
        _check_row(row, csv_path, line)
    _check_clips_exist(root, rows)
    return rows


def _check_row(row: dict[str, str], csv_path: Path, line: int) -> None:
    where = f"{csv_path}, line {line}"
    try:
        target, fold = int(row["target"]), int(row["fold"])
    except ValueError as error:
        raise Esc50DataError(f"{where}: target and fold must be integers ({error}).") from None
    if fold not in FOLDS:
        raise Esc50DataError(f"{where}: fold {fold} is not one of {FOLDS}.")
    if not 0 <= target < len(ESC50_LABELS) or ESC50_LABELS[target] != row["category"]:
        raise Esc50DataError(
            f"{where}: target {target} / category {row['category']!r} do not match the ESC-50 label set."
        )


def _check_clips_exist(root: Path, rows: list[dict[str, str]]) -> None:
    missing = [row["filename"] for row in rows if not (root / "audio" / row["filename"]).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise Esc50DataError(
            f"{len(missing)} clip(s) listed in meta/esc50.csv are missing from {root / 'audio'}: {shown}"
        )


def default_cache_dir() -> Path:
    """Where `download_esc50` keeps the archive's contents: `esc50/` in the `datasets` cache."""
    return Path(datasets.config.HF_DATASETS_CACHE) / "esc50"


def download_esc50(url: str = ESC50_ARCHIVE_URL, cache_dir: str | os.PathLike | None = None) -> Path:
    """Downloads and unpacks the official archive once; returns the folder in the official layout.

    A complete cached copy is reused without touching the network, so it also works offline.

    Args:
        url (`str`, *optional*, defaults to `ESC50_ARCHIVE_URL`): The zip archive of the official release (GitHub).
        cache_dir (`str` or `os.PathLike`, *optional*): Where to keep it; default: `esc50/` in the `datasets` cache
            (`HF_DATASETS_CACHE`).

    Returns:
        `Path`: The unpacked folder in the official layout (`meta/esc50.csv`, `audio/`).

    Raises:
        `Esc50DataError`: not cached and offline mode is on, the download fails, or the archive is corrupt or not
            a complete ESC-50 release.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    marker = cache / ".complete"
    if marker.is_file():
        return Path(marker.read_text().strip())
    if hub_constants.HF_HUB_OFFLINE or datasets.config.HF_DATASETS_OFFLINE:
        raise Esc50DataError(
            f"ESC-50 is not in the cache ({cache}) and offline mode is on (HF_HUB_OFFLINE / "
            f"HF_DATASETS_OFFLINE), so it cannot be downloaded. {_HOW_TO_PASS_DATA_DIR}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / "ESC-50-master.zip"
    _download(url, archive)
    root = _extract(archive, cache)
    read_metadata(root)  # the archive must hold a complete, well-formed copy
    marker.write_text(str(root))
    archive.unlink()
    return root


def _download(url: str, destination: Path) -> None:
    import requests

    partial = destination.with_suffix(".part")
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with (
                partial.open("wb") as handle,
                tqdm(total=total, unit="B", unit_scale=True, desc="Downloading ESC-50") as progress,
            ):
                for chunk in response.iter_content(chunk_size=1 << 20):
                    handle.write(chunk)
                    progress.update(len(chunk))
    except requests.RequestException as error:
        partial.unlink(missing_ok=True)
        raise Esc50DataError(f"Could not download ESC-50 from {url}: {error}. {_HOW_TO_PASS_DATA_DIR}") from error
    partial.replace(destination)


def _extract(archive: Path, cache: Path) -> Path:
    """Unpacks the archive (checking every member's CRC) and returns the folder holding meta/."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            csv_members = [name for name in bundle.namelist() if name.endswith("meta/esc50.csv")]
            if not csv_members:
                raise Esc50DataError(f"{archive} holds no meta/esc50.csv: not an ESC-50 archive.")
            corrupt = bundle.testzip()
            if corrupt is not None:
                raise Esc50DataError(f"{archive} is corrupt (bad CRC in {corrupt}); delete it and try again.")
            extracted = cache / "extracted"
            shutil.rmtree(extracted, ignore_errors=True)
            bundle.extractall(extracted)
    except zipfile.BadZipFile as error:
        archive.unlink(missing_ok=True)
        raise Esc50DataError(f"The downloaded ESC-50 archive is not a valid zip file ({error}).") from error
    return (extracted / csv_members[0]).parent.parent


def decoded_mono(audio: dict) -> np.ndarray:
    """A `datasets.Audio` value (decoded with num_channels=1) as a 1-D float32 array.

    Args:
        audio (`dict`): A decoded row of the `audio` column (its `array`).
    """
    return np.asarray(audio["array"], dtype=np.float32).reshape(-1)


__all__ = [
    "DEFAULT_HUB_DATASET_ID",
    "ESC50_ARCHIVE_URL",
    "Esc50DataError",
    "check_esc50_features",
    "clips_per_class_and_fold",
    "decoded_mono",
    "download_esc50",
    "esc50_info",
    "fold_config_name",
    "load_esc50",
    "load_prepared_esc50",
    "read_metadata",
    "split_folds",
]
