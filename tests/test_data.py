"""ESC-50 loading: the official layout at any sample rate, fold splits, downloads and broken folders."""

import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from datasets import Audio, ClassLabel

import esc50_hf.data.esc50 as data_module
from esc50_hf import ESC50_LABELS, Esc50DataError, download_esc50, load_esc50, split_folds


def test_load_esc50_columns_and_types(esc50_dir):
    dataset = load_esc50(esc50_dir)
    assert len(dataset) == 250
    assert set(dataset.column_names) == {"audio", "label", "fold", "filename", "esc10", "src_file", "take"}
    assert isinstance(dataset.features["audio"], Audio)
    assert isinstance(dataset.features["label"], ClassLabel)
    assert dataset.features["label"].names == list(ESC50_LABELS)
    assert sorted(set(dataset["fold"])) == [1, 2, 3, 4, 5]
    first = dataset[0]
    assert first["label"] == int(first["filename"].rsplit("-", 1)[1].split(".")[0])
    assert first["esc10"] == (first["label"] < 10)


@pytest.mark.parametrize("rate", [22050, 16000])
def test_audio_decodes_mono_at_requested_rate(esc50_dir, rate):
    audio = load_esc50(esc50_dir, sampling_rate=rate)[3]["audio"]
    samples = np.asarray(audio["array"]).reshape(-1)
    assert audio["sampling_rate"] == rate
    assert samples.size == rate  # the 1-s, 44.1 kHz fixture clip, resampled
    assert np.isfinite(samples).all() and 0.2 < np.abs(samples).max() < 1.0


@pytest.mark.parametrize("fold", [5, 2])
def test_split_folds(esc50_dir, fold):
    splits = split_folds(load_esc50(esc50_dir), validation_fold=fold)
    assert set(splits["validation"]["fold"]) == {fold}
    assert fold not in set(splits["train"]["fold"])
    assert len(splits["train"]) == 200 and len(splits["validation"]) == 50


def test_split_folds_rejects_unknown_fold(esc50_dir):
    with pytest.raises(ValueError, match="validation_fold"):
        split_folds(load_esc50(esc50_dir), validation_fold=6)


@pytest.fixture
def broken_copy(esc50_dir, tmp_path) -> Path:
    copy = tmp_path / "ESC-50"
    shutil.copytree(esc50_dir, copy)
    return copy


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(Esc50DataError, match="does not exist.*data_dir"):
        load_esc50(tmp_path / "nowhere")


def test_missing_csv_is_explained(broken_copy):
    (broken_copy / "meta" / "esc50.csv").unlink()
    with pytest.raises(Esc50DataError, match=r"meta/esc50.csv is missing"):
        load_esc50(broken_copy)


def test_missing_clips_are_named(broken_copy):
    clips = sorted((broken_copy / "audio").glob("*.wav"))
    for clip in clips[:7]:
        clip.unlink()
    with pytest.raises(Esc50DataError, match="7 clip") as error:
        load_esc50(broken_copy)
    assert clips[0].name in str(error.value) and "..." in str(error.value)


def test_wrong_columns_are_named(broken_copy):
    csv_path = broken_copy / "meta" / "esc50.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0].replace("category", "kind"), *lines[1:]]) + "\n")
    with pytest.raises(Esc50DataError, match="category"):
        load_esc50(broken_copy)


def test_labels_that_disagree_with_esc50_are_refused(broken_copy):
    csv_path = broken_copy / "meta" / "esc50.csv"
    lines = csv_path.read_text().splitlines()
    lines[1] = lines[1].replace(",dog,", ",cat,")
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Esc50DataError, match="line 2"):
        load_esc50(broken_copy)


@pytest.fixture
def archive_server(esc50_dir, tmp_path):
    """A real HTTP server on 127.0.0.1 serving the fixture as a GitHub-style `ESC-50-master.zip`."""
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "master.zip", "w") as bundle:
        for path in sorted(esc50_dir.rglob("*")):
            bundle.write(path, Path("ESC-50-master") / path.relative_to(esc50_dir))
    (served / "broken.zip").write_bytes(b"this is not a zip archive")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(data_module.hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(data_module.datasets.config, "HF_DATASETS_OFFLINE", False)


def test_download_then_reuse_offline(archive_server, online, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    root = download_esc50(url=f"{archive_server}/master.zip", cache_dir=cache)
    assert (root / "meta" / "esc50.csv").is_file() and len(list((root / "audio").glob("*.wav"))) == 250
    assert not (cache / "ESC-50-master.zip").exists()  # the archive is removed once unpacked
    monkeypatch.setattr(data_module.hub_constants, "HF_HUB_OFFLINE", True)
    assert download_esc50(url="http://127.0.0.1:9/unreachable", cache_dir=cache) == root


def test_download_of_a_corrupt_archive_is_explained(archive_server, online, tmp_path):
    with pytest.raises(Esc50DataError, match="not a valid zip"):
        download_esc50(url=f"{archive_server}/broken.zip", cache_dir=tmp_path / "cache")


def test_download_failure_is_explained(archive_server, online, tmp_path):
    with pytest.raises(Esc50DataError, match="Could not download.*data_dir"):
        download_esc50(url=f"{archive_server}/missing.zip", cache_dir=tmp_path / "cache")


def test_offline_without_cache_says_how_to_pass_data_dir(tmp_path):
    with pytest.raises(Esc50DataError, match="offline.*data_dir"):
        download_esc50(cache_dir=tmp_path / "empty-cache")
