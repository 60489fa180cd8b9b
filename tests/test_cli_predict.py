"""`esc50-hf predict`: files and folders, every output format, windows, bad files skipped with exit status 1."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esc50_hf.cli import main
from esc50_hf.inference.classifier import SoundClassifier

from .conftest import synthetic_clip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder with good clips (one 12 s, one in a subfolder), a bad one, and a non-audio file ignored."""
    root = tmp_path_factory.mktemp("predict-inputs")
    (root / "nested").mkdir()
    sf.write(root / "a_short.wav", synthetic_clip(target=1, seed=1, seconds=2.0), 44100, subtype="PCM_16")
    sf.write(root / "b_long.flac", synthetic_clip(target=2, seed=2, seconds=12.0), 44100)
    sf.write(root / "nested" / "c.ogg", synthetic_clip(target=3, seed=3, seconds=3.0), 44100)
    (root / "nested" / "broken.wav").write_bytes(b"RIFF but not really a wave file")
    (root / "readme.txt").write_text("not audio; folders only pick audio suffixes")
    return root


def _run(argv, capsys) -> tuple[int, str, str]:
    status = main(["predict", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_real_command_json_lines_with_a_bad_file(inputs, saved_model_dir):
    """The installed entry point, as a user runs it: bad file on stderr, the others on stdout, status 1."""
    entry_point = Path(sys.executable).with_name("esc50-hf")  # installed by `pip install -e .`
    command = [str(entry_point), "predict", str(inputs), "--model", str(saved_model_dir)]
    result = subprocess.run([*command, "--format", "json", "--top-k", "3"], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["file"].removeprefix(str(inputs) + "/") for record in records] == [
        "a_short.wav",
        "b_long.flac",
        "nested/c.ogg",
    ]
    assert all(len(record["labels"]) == 3 and record["window"] is None for record in records)
    local = SoundClassifier(saved_model_dir).predict(inputs / "b_long.flac", top_k=3)
    assert [item["label"] for item in records[1]["labels"]] == [item.label for item in local.labels]
    assert "nested/broken.wav" in result.stderr and "could not be decoded as audio" in result.stderr
    assert "1 of 4 inputs failed" in result.stderr
    assert "classifying" in result.stderr  # the tqdm bar is on stderr, never mixed into the records


def test_windows_and_csv(inputs, saved_model_dir, capsys):
    status, out, _ = _run(
        [str(inputs / "b_long.flac"), "--model", str(saved_model_dir), "--format", "csv", "--windows"], capsys
    )
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(row["window"], row["start_s"], row["end_s"]) for row in rows] == [
        ("", "0.0", "12.0"),
        ("0", "0.0", "5.0"),
        ("1", "2.5", "7.5"),
        ("2", "5.0", "10.0"),
        ("3", "7.0", "12.0"),
    ]
    assert all(row["label_1"] and row["score_1"] for row in rows)
    assert rows[0]["label_5"] and not rows[1]["label_2"]  # windows carry their best label only


def test_table_for_explicit_files(inputs, saved_model_dir, capsys):
    files = [str(inputs / "a_short.wav"), str(inputs / "nested" / "c.ogg")]
    status, out, _ = _run([*files, "--model", str(saved_model_dir), "--top-k", "2"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(files[0]) and "clip" in lines[0]
    assert len(lines[0].split("\t")[-1].split("  ")) == 2  # top-2 "label score" pairs


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.wav", "no such file or folder"),
        (lambda folder: _write(folder / "empty.wav", b""), "empty (0 bytes)"),
        (lambda folder: _write(folder / "text.wav", b"hello\n" * 100), "could not be decoded as audio"),
    ],
)
def test_bad_file_alone_fails(tmp_path, saved_model_dir, capsys, make, message):
    status, out, err = _run([str(make(tmp_path)), "--model", str(saved_model_dir)], capsys)
    assert status == 1 and out == "" and message in err


def test_missing_model_is_a_usage_error(tmp_path, capsys):
    sf.write(tmp_path / "x.wav", np.zeros(22050, np.int16), 22050)
    status, _, err = _run([str(tmp_path / "x.wav"), "--model", str(tmp_path / "no-model")], capsys)
    assert status == 2 and "No model folder at" in err


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def test_damaged_model_file_is_one_clear_line(saved_model_dir, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(saved_model_dir, tmp_path / "model")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by an interrupted copy
    sf.write(tmp_path / "x.wav", np.zeros(22050, np.int16), 22050)
    status, out, err = _run([str(tmp_path / "x.wav"), "--model", str(folder)], capsys)
    assert status == 2 and out == ""
    assert err.startswith("error: Cannot load the model") and err.count("\n") == 1, err
    assert "Traceback" not in err
