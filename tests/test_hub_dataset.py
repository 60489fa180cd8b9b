"""`esc50-hf dataset`: ESC-50 as parquet with a card; `load_dataset` and `load_esc50` read it alike; Hub push."""

import os
import subprocess
import sys
from collections import Counter

import datasets
import numpy as np
import pytest
import torch
from huggingface_hub import DatasetCard

from esc50_hf import ESC50_LABELS, Esc50DataError, load_esc50
from esc50_hf.data.esc50 import ESC50_CITATION, ESC50_LICENSE

from .local_hub import TOKEN, LocalHub

CLI = [sys.executable, "-m", "esc50_hf.cli", "dataset"]


def test_load_dataset_gives_the_rows_features_and_label_order_of_load_esc50(parquet_dir, esc50_dir):
    loaded = datasets.load_dataset(str(parquet_dir), split="train")
    reference = load_esc50(esc50_dir)
    assert loaded.features == reference.features
    assert loaded.features["label"].names == list(ESC50_LABELS)
    assert Counter(loaded["fold"]) == {fold: 50 for fold in range(1, 6)}
    assert loaded.remove_columns("audio").to_list() == reference.remove_columns("audio").to_list()
    for index in (0, 137, 249):  # the embedded bytes decode to the very samples of the WAV files
        ours, theirs = loaded[index]["audio"], reference[index]["audio"]
        assert ours["sampling_rate"] == theirs["sampling_rate"] == 22050
        np.testing.assert_array_equal(np.asarray(ours["array"]), np.asarray(theirs["array"]))


@pytest.mark.parametrize("fold", [5, 2])
def test_fold_configurations_split_train_and_validation(parquet_dir, fold):
    splits = datasets.load_dataset(str(parquet_dir), f"fold{fold}")
    assert set(splits) == {"train", "validation"}
    assert set(splits["validation"]["fold"]) == {fold} and len(splits["validation"]) == 50
    assert fold not in set(splits["train"]["fold"]) and len(splits["train"]) == 200
    assert splits["train"].features["label"].names == list(ESC50_LABELS)


def test_shards_embed_the_original_wav_bytes(parquet_dir, esc50_dir):
    assert sorted(path.name for path in parquet_dir.iterdir()) == ["README.md", "data"]
    assert sorted(path.name for path in (parquet_dir / "data").iterdir()) == [
        f"fold{fold}-00000-of-00001.parquet" for fold in range(1, 6)
    ]
    raw = datasets.load_dataset(str(parquet_dir), split="train").cast_column("audio", datasets.Audio(decode=False))
    for row in raw.select(range(0, 250, 50)):
        assert row["audio"]["path"] == row["filename"]
        assert row["audio"]["bytes"] == (esc50_dir / "audio" / row["filename"]).read_bytes()


def test_dataset_card(parquet_dir):
    card = DatasetCard.load(parquet_dir / "README.md")
    assert card.data.license == ESC50_LICENSE == "cc-by-nc-3.0"
    assert card.data.task_categories == ["audio-classification"]
    assert [config["config_name"] for config in card.data.configs] == ["default", *(f"fold{k}" for k in range(1, 6))]
    assert "audiofolder" in card.text and "alphabetically" in card.text
    assert "fold protocol" in card.text.lower() and ESC50_CITATION in card.text
    assert "{{ " not in card.text and "{%" not in card.text  # rendered (the BibTeX has its own braces)


def test_load_esc50_reads_the_parquet_folder_with_licence_citation_description(parquet_dir, esc50_dir):
    for dataset in (load_esc50(parquet_dir), load_esc50(esc50_dir)):
        assert len(dataset) == 250 and dataset.features["label"].names == list(ESC50_LABELS)
        assert dataset.info.license == "cc-by-nc-3.0"
        assert "Piczak" in dataset.info.citation and "2,000" in dataset.info.description
    resampled = load_esc50(parquet_dir, sampling_rate=16000)[0]["audio"]
    assert resampled["sampling_rate"] == 16000 and np.asarray(resampled["array"]).size == 16000


def test_audiofolder_label_order_is_refused(esc50_dir, tmp_path):
    """The trap the card warns about: `audiofolder` sorts class names, so label ids name other classes."""
    folder = tmp_path / "audiofolder"
    for row in load_esc50(esc50_dir).remove_columns("audio").to_list():  # train/<class>/<clip>.wav
        target = folder / "train" / ESC50_LABELS[row["label"]] / row["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(esc50_dir / "audio" / row["filename"], target)
    rebuilt = datasets.load_dataset("audiofolder", data_dir=str(folder), split="train")
    assert rebuilt.features["label"].names[:2] == ["airplane", "breathing"]
    published = tmp_path / "published"
    rebuilt.to_parquet(str(published / "data" / "train.parquet"))
    with pytest.raises(Esc50DataError, match="another order.*audiofolder"):
        load_esc50(published)


def test_unknown_hub_id_offline_is_explained():
    with pytest.raises(Esc50DataError, match="Hub dataset 'nobody/no-such-esc50'"):
        load_esc50("nobody/no-such-esc50")


def test_output_must_be_new_or_empty(esc50_dir, tmp_path):
    from esc50_hf.cli import main

    (tmp_path / "keep.txt").write_text("earlier work")
    with pytest.raises(SystemExit, match="already exists and is not empty"):
        main(["dataset", "--data-dir", str(esc50_dir), "--output", str(tmp_path)])
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_push_without_token_fails_before_writing(esc50_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path / "home")}
    command = [*CLI, "--data-dir", str(esc50_dir), "--output", str(tmp_path / "out"), "--push-to-hub", "a/b"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert completed.returncode != 0 and "needs a Hugging Face token" in completed.stderr
    assert not (tmp_path / "out").exists()


# Run against the stand-in Hub (HF_ENDPOINT is read when huggingface_hub is imported, hence a subprocess).
LOAD_FROM_HUB = """
import collections, datasets
from esc50_hf import load_esc50
dataset = load_esc50("tester/esc50")
fold5 = datasets.load_dataset("tester/esc50", "fold5")
folds = dict(collections.Counter(dataset["fold"]))
print(len(dataset), dataset.features["label"].names[:2], dataset.info.license, folds)
print(len(fold5["train"]), sorted(set(fold5["validation"]["fold"])), fold5["validation"][0]["audio"]["array"].shape)
"""


@pytest.mark.slow
def test_push_to_hub_publishes_a_dataset_that_loads_by_its_id(esc50_dir, tmp_path):
    """Against the local stand-in Hub: the repository holds the folder byte for byte, and loads by its id."""
    output = tmp_path / "esc50"
    with LocalHub(tmp_path / "hub") as hub:
        env = {
            **os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0"
        }  # fmt: skip
        command = [*CLI, "--data-dir", str(esc50_dir), "--output", str(output), "--push-to-hub", "tester/esc50"]
        pushed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        loaded = subprocess.run(
            [sys.executable, "-c", LOAD_FROM_HUB], capture_output=True, text=True, timeout=300, env=env, check=False
        )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.splitlines() == [
        "250 ['dog', 'rooster'] cc-by-nc-3.0 {1: 50, 2: 50, 3: 50, 4: 50, 5: 50}",
        "200 [5] (22050,)",
    ]
    assert ("POST", "/api/datasets/tester/esc50/commit/main") in hub.requests
    assert any(path.startswith("/datasets/tester/esc50/resolve/") for _, path in hub.requests)
    published = tmp_path / "hub" / "datasets" / "tester" / "esc50"
    local_files = sorted(path.relative_to(output) for path in output.rglob("*") if path.is_file())
    assert sorted(path.relative_to(published) for path in published.rglob("*") if path.is_file()) == local_files
    for name in local_files:
        assert (published / name).read_bytes() == (output / name).read_bytes(), name
    assert 'load_dataset("tester/esc50"' in (published / "README.md").read_text()


def test_training_feature_cache_reads_the_parquet_folder(parquet_dir, esc50_dir, tmp_path):
    """train.py's `--data_dir` may be the parquet folder: the cache keys embedded clips by their bytes."""
    from esc50_hf import Esc50FeatureExtractor
    from esc50_hf.data.features import cached_log_mels

    extractor = Esc50FeatureExtractor(num_mel_bins=32)
    from_parquet = cached_log_mels(load_esc50(parquet_dir).select(range(4)), extractor, tmp_path, workers=0)
    from_wavs = cached_log_mels(load_esc50(esc50_dir).select(range(4)), extractor, tmp_path, workers=0)
    assert torch.equal(from_parquet[0], from_wavs[0]) and torch.equal(from_parquet[1], from_wavs[1])
    assert len(list(tmp_path.glob("features-*.pt"))) == 2  # two sources, two keys
