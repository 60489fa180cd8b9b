"""Log-mel features of a dataset split, computed once (with augmented variants) and cached on disk.

Decoding and waveform augmentation dominate the cost on a 2-core machine, so they run once per
(clip, variant) in DataLoader worker processes, through the same `Esc50FeatureExtractor.log_mel`
that serves inference; training then only reads from memory.

The cache is private to one machine (its key names the clips' files). `write_feature_file` stores
the same features as a portable safetensors file that says what they are (feature parameters,
waveform augmentation, variants, seed, folds, clip names), so a recipe can train where the audio
is not (`train.py --features_file`), e.g. on a GPU machine.
"""

import errno
import hashlib
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Audio, Dataset
from tqdm.auto import tqdm

from ..errors import Esc50HfError
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from .augmentation import WaveformAugmentations
from .esc50 import decoded_mono


class _ClipFeaturizer(torch.utils.data.Dataset):
    """Item i: the unnormalised log-mel of clip i and of `variants` augmented copies of it."""

    def __init__(
        self,
        dataset: Dataset,
        feature_extractor: Esc50FeatureExtractor,
        augmenter: WaveformAugmentations | None,
        variants: int,
        seed: int,
    ) -> None:
        self.dataset = dataset
        self.feature_extractor = feature_extractor
        self.augmenter = augmenter
        self.variants = variants if augmenter is not None else 0
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        example = self.dataset[index]
        waveform = decoded_mono(example["audio"])
        # Seeded per clip, so the cache is the same whatever the number of workers.
        random.seed(self.seed + index)
        np.random.seed((self.seed + index) % 2**32)
        rate = self.feature_extractor.sampling_rate
        clips = [waveform] + [self.augmenter(waveform, sampling_rate=rate) for _ in range(self.variants)]
        batch = torch.cat([self.feature_extractor.fix_length(torch.from_numpy(clip)[None]) for clip in clips])
        return self.feature_extractor.log_mel(batch).to(torch.float16), example["label"]


def cached_log_mels(
    dataset: Dataset,
    feature_extractor: Esc50FeatureExtractor,
    cache_dir: str | Path,
    augmenter: WaveformAugmentations | None = None,
    variants: int = 0,
    seed: int = 0,
    workers: int = 2,
    description: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns `(features, labels)`: float16 `(clips, 1 + variants, mels, frames)` and int64 `(clips,)`.

    Variant 0 is the clean clip. The cache key covers the clips, the feature parameters and what
    decides the variants (the waveform transforms' parameters, their count and the seed), so
    changing any of them recomputes, and nothing else does.

    Args:
        dataset (`Dataset`): The clips (an ESC-50 split with `audio` and `label`).
        feature_extractor (`Esc50FeatureExtractor`): Computes the log-mels (`log_mel`, without normalisation).
        cache_dir (`str` or `Path`): The folder of the cache files; created if needed, shared by any runs.
        augmenter (`WaveformAugmentations`, *optional*): The waveform transforms of the augmented variants; without
            it, only the clean clips.
        variants (`int`, *optional*, defaults to 0): Augmented copies per clip (ignored without `augmenter`).
        seed (`int`, *optional*, defaults to 0): Seeds each clip's variants (clip i draws from `seed + i`).
        workers (`int`, *optional*, defaults to 2): DataLoader worker processes that decode and augment.
        description (`str`, *optional*, defaults to `"features"`): Names the cache file and the progress bar.
    """
    settings = variant_settings(augmenter, variants, seed)
    key = _cache_key(dataset, feature_extractor, settings["augmentation"], variants, seed)
    path = Path(cache_dir) / f"{description}-{key}.pt"
    if path.is_file():
        cached = torch.load(path)
        return cached["features"], cached["labels"]
    featurizer = _ClipFeaturizer(dataset, feature_extractor, augmenter, variants, seed)
    # An own generator: starting the workers draws a seed from it, and drawing from torch's global one would give a
    # run that computes the cache other initial weights than the same recipe reading the cache (or a feature file).
    loader = torch.utils.data.DataLoader(
        featurizer, batch_size=None, num_workers=workers, worker_init_fn=_single_threaded_worker,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    features, labels = [], []
    for clip_features, label in tqdm(loader, total=len(featurizer), desc=f"Computing {description}"):
        features.append(clip_features)
        labels.append(label)
    result = torch.stack(features), torch.tensor(labels, dtype=torch.long)
    path.parent.mkdir(parents=True, exist_ok=True)
    needed = result[0].nbytes + result[1].nbytes
    # atomic: another process never reads a half-written cache
    save_atomically(
        lambda temporary: torch.save({"features": result[0], "labels": result[1]}, temporary),
        path,
        needed,
        elsewhere="set --feature_cache_dir to a folder on another disk",
    )
    return result


class FeatureWriteError(Esc50HfError, OSError):
    """A feature cache or feature file could not be written because its disk is full; nothing was left behind."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def save_atomically(save: Callable[[Path], None], path: Path, needed_bytes: int, elsewhere: str) -> None:
    """Writes `path` through `save(temporary)` then renames it, so that no reader sees a half-written file; if the
    write fails, the temporary file is removed, and a full disk is reported as `FeatureWriteError`.

    A full disk shows as `OSError(ENOSPC)` from Python, but torch and safetensors wrap it in their own errors
    (`RuntimeError: [enforce fail at inline_container.cc...]`): any failure while the disk has less room than
    `needed_bytes` counts as a full disk. Other failures are raised as they are.

    Args:
        save (`Callable[[Path], None]`): Writes the file's content to the path it is given.
        path (`Path`): The file to write; its folder must exist.
        needed_bytes (`int`): About the size of the file (its tensors' bytes).
        elsewhere (`str`): How the user writes it to another disk (the option), for the message.

    Raises:
        `FeatureWriteError`: the disk is full; the message says where and how much room is needed.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        save(temporary)
        temporary.replace(path)
    except Exception as error:
        temporary.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free
        if getattr(error, "errno", None) in DISK_FULL_ERRNOS or free < needed_bytes:
            raise FeatureWriteError(
                f"Cannot write {path}: the disk is full ({free / 2**20:.0f} MB free, about "
                f"{needed_bytes / 2**20:.0f} MB needed). Free some space, or {elsewhere}."
            ) from None
        raise


def _single_threaded_worker(_: int) -> None:
    torch.set_num_threads(1)


def _cache_key(
    dataset: Dataset,
    feature_extractor: Esc50FeatureExtractor,
    augmentation: list[dict] | None,
    variants: int,
    seed: int,
) -> str:
    fingerprint = {
        "clips": _clip_fingerprints(dataset),
        "labels": dataset["label"],
        "features": feature_parameters(feature_extractor),
        "augmentation": augmentation,
        "variants": variants if augmentation is not None else 0,
        "seed": seed,
    }
    return hashlib.sha1(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]


def variant_settings(augmenter: WaveformAugmentations | None, variants: int, seed: int) -> dict[str, Any]:
    """What decides the augmented variants of a cache or a feature file: their count, the waveform transforms'
    parameters and the seed that drew them; with no variants, none of it (the clean clips depend on no seed).

    Args:
        augmenter (`WaveformAugmentations`, *optional*): The waveform transforms, or None for none.
        variants (`int`): Augmented copies per clip.
        seed (`int`): The seed that draws them.

    Returns:
        `dict`: `augmented_variants`, `augmentation` (the transforms' parameters) and `seed`.
    """
    if augmenter is None or variants <= 0:
        return {"augmented_variants": 0, "augmentation": None, "seed": None}
    return {"augmented_variants": variants, "augmentation": augmenter.parameters(), "seed": seed}


def feature_parameters(feature_extractor: Esc50FeatureExtractor) -> dict[str, Any]:
    """What decides the log-mels: the extractor's settings without the normalisation a run computes later.

    Args:
        feature_extractor (`Esc50FeatureExtractor`): The extractor whose settings (`to_dict`, less `mean`/`std`)
            are returned.
    """
    return {key: value for key, value in feature_extractor.to_dict().items() if key not in ("mean", "std")}


def _clip_fingerprints(dataset: Dataset) -> list:
    """Per clip: path, modification time and size of a WAV file, or a digest of audio bytes embedded in parquet."""
    fingerprints = []
    for batch in dataset.select_columns("audio").cast_column("audio", Audio(decode=False)).iter(batch_size=100):
        for item in batch["audio"]:
            if item["bytes"] is not None:
                fingerprints.append(hashlib.sha1(item["bytes"]).hexdigest())
            else:
                stat = Path(item["path"]).stat()
                fingerprints.append((item["path"], stat.st_mtime_ns, stat.st_size))
    return fingerprints
