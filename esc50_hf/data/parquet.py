"""ESC-50 as a Hub-ready dataset folder: parquet shards per fold (audio bytes embedded) and a dataset card.

`datasets.load_dataset(folder)` (or the Hub id it is pushed to) then gives the rows, features and label
order of `load_esc50(<official folder>)`; configurations `fold1` ... `fold5` give the fold splits.
"""

import math
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
from datasets import DatasetInfo
from datasets.info import DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCard, DatasetCardData
from tqdm.auto import tqdm

from ..errors import OutputExistsError
from ..model.labels import ESC50_LABELS, SAMPLING_RATE
from ..paths import TEMPLATES_DIR
from .esc50 import (
    DEFAULT_HUB_DATASET_ID,
    ESC50_CITATION,
    ESC50_DESCRIPTION,
    ESC50_HOMEPAGE,
    ESC50_LICENSE,
    FOLDS,
    download_esc50,
    esc50_features,
    fold_config_name,
    metadata_columns,
    read_metadata,
)

DATASET_CARD_TEMPLATE = TEMPLATES_DIR / "dataset_card.md"
# Shards stay below this size (the Hub's guidance: a few hundred MB per parquet file).
MAX_SHARD_BYTES = 500 * 2**20
# Clips per parquet row group: what a reader holds in memory at once (datasets writes audio in groups of 100).
ROWS_PER_GROUP = 100


def write_esc50_parquet(
    data_dir: str | os.PathLike | None,
    output: str | os.PathLike,
    repo_id: str = DEFAULT_HUB_DATASET_ID,
    sampling_rate: int = SAMPLING_RATE,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Writes `output/data/fold{k}-*.parquet` and `output/README.md` (the dataset card); returns `output`.

    The folder appears complete or not at all (it is assembled beside `output`, then renamed).

    Args:
        data_dir: ESC-50 in the official layout (`meta/esc50.csv`, `audio/*.wav`); `None` downloads it.
        output: A folder that does not exist yet, or is empty.
        repo_id: The Hub id the card's examples load (where the folder is, or will be, published).
        sampling_rate: Rate the `audio` feature decodes to (the WAV bytes are stored as they are).
        max_shard_bytes: Largest audio payload per parquet file; a fold is split into more shards above it.

    Raises:
        OutputExistsError: `output` exists and is not empty (a `FileExistsError`).
        Esc50DataError: `data_dir` is not a complete ESC-50 folder.
    """
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise OutputExistsError(f"{output} already exists and is not empty: choose a new folder (nothing was written).")
    root = Path(data_dir) if data_dir is not None else download_esc50()
    rows = read_metadata(root)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        counts, rates = _write_shards(root, rows, staging / "data", sampling_rate, max_shard_bytes)
        _dataset_card(staging, counts, rates, repo_id, sampling_rate).save(staging / "README.md")
        if output.exists():
            output.rmdir()
        staging.replace(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _write_shards(
    root: Path, rows: list[dict[str, str]], data: Path, sampling_rate: int, max_shard_bytes: int
) -> tuple[dict[int, int], set[int]]:
    """One or more shards per fold, rows in `meta/esc50.csv` order; returns clips per fold and the WAV rates."""
    features = esc50_features(sampling_rate)
    schema = features.arrow_schema  # carries the features (ClassLabel names, Audio) as metadata
    data.mkdir(parents=True)
    counts, rates = {}, set()
    with tqdm(total=len(rows), unit="clip", desc="Writing ESC-50 parquet") as progress:
        for fold in FOLDS:
            fold_rows = [row for row in rows if int(row["fold"]) == fold]
            if not fold_rows:
                continue
            counts[fold] = len(fold_rows)
            payload = sum((root / "audio" / row["filename"]).stat().st_size for row in fold_rows)
            shards = max(1, math.ceil(payload / max_shard_bytes))
            for index in range(shards):
                shard = fold_rows[index * len(fold_rows) // shards : (index + 1) * len(fold_rows) // shards]
                with pq.ParquetWriter(data / f"fold{fold}-{index:05d}-of-{shards:05d}.parquet", schema) as writer:
                    for start in range(0, len(shard), ROWS_PER_GROUP):
                        group = shard[start : start + ROWS_PER_GROUP]
                        audio = []
                        for row in group:
                            path = root / "audio" / row["filename"]
                            rates.add(sf.info(path).samplerate)
                            audio.append({"bytes": path.read_bytes(), "path": row["filename"]})
                        columns = features.encode_batch({"audio": audio, **metadata_columns(group)})
                        writer.write_table(pa.Table.from_pydict(columns, schema=schema))
                        progress.update(len(group))
    return counts, rates


def dataset_configs(folds: list[int]) -> list[dict]:
    """`default`: every fold in `train`; `fold{k}`: `train` = the other folds, `validation` = fold k.

    Args:
        folds (`list[int]`): The folds the dataset holds.

    Returns:
        `list[dict]`: The `configs` of the dataset card's metadata (`config_name`, `data_files`).
    """
    every_fold = [{"split": "train", "path": "data/*.parquet"}]
    configs = [{"config_name": "default", "default": True, "data_files": every_fold}]
    for fold in folds:
        others = [f"data/fold{other}-*.parquet" for other in folds if other != fold]
        configs.append(
            {
                "config_name": fold_config_name(fold),
                "data_files": [
                    {"split": "train", "path": others},
                    {"split": "validation", "path": f"data/fold{fold}-*.parquet"},
                ],
            }
        )
    return configs


def _dataset_card(
    folder: Path, counts: dict[int, int], rates: set[int], repo_id: str, sampling_rate: int
) -> DatasetCard:
    folds = sorted(counts)
    total = sum(counts.values())
    features = esc50_features(sampling_rate)

    def info(name: str, splits: dict[str, list[int]]) -> DatasetInfo:
        split_dict = SplitDict()
        for split, split_folds in splits.items():
            split_dict.add(SplitInfo(name=split, num_examples=sum(counts[fold] for fold in split_folds)))
        used = sorted({fold for split_folds in splits.values() for fold in split_folds})
        shards = [path for fold in used for path in folder.glob(f"data/fold{fold}-*")]
        return DatasetInfo(
            features=features,
            config_name=name,
            splits=split_dict,
            download_size=sum(path.stat().st_size for path in shards),
        )

    infos = {"default": info("default", {"train": folds})}
    for fold in folds:
        name = fold_config_name(fold)
        infos[name] = info(name, {"train": [other for other in folds if other != fold], "validation": [fold]})
    card_data = DatasetCardData(
        license=ESC50_LICENSE,
        task_categories=["audio-classification"],
        pretty_name="ESC-50",
        size_categories=["n<1K" if total < 1000 else "1K<n<10K"],
        tags=["audio", "environmental-sound", "esc50"],
        configs=dataset_configs(folds),
    )
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    return DatasetCard.from_template(
        card_data,
        template_path=str(DATASET_CARD_TEMPLATE),
        description=ESC50_DESCRIPTION,
        citation=ESC50_CITATION,
        homepage=ESC50_HOMEPAGE,
        repo_id=repo_id,
        num_rows=total,
        num_classes=len(ESC50_LABELS),
        labels=ESC50_LABELS,
        folds=folds,
        fold_sizes=[counts[fold] for fold in folds],
        source_sampling_rates=sorted(rates),
        sampling_rate=sampling_rate,
    )


__all__ = ["MAX_SHARD_BYTES", "dataset_configs", "write_esc50_parquet"]
