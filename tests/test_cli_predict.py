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
from esc50_hf.model.prediction import Prediction

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


@pytest.mark.slow
def test_real_command_json_lines_with_a_bad_file(inputs, saved_model_dir):
    """The installed entry point, as a user runs it: bad file on stderr, the others on stdout, status 1."""
    entry_point = Path(sys.executable).with_name("esc50-hf")  # installed by `pip install -e .`
    command = [str(entry_point), "predict", str(inputs), "--model", str(saved_model_dir)]
    result = subprocess.run([*command, "--format", "json", "--top-k", "3"], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["input"].removeprefix(str(inputs) + "/") for record in records] == [
        "a_short.wav",
        "b_long.flac",
        "nested/c.ogg",
    ]
    assert all(len(record["labels"]) == 3 and "windows" not in record for record in records)
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
    assert {row["input"] for row in rows} == {str(inputs / "b_long.flac")}
    assert [(row["window"], row["start_s"], row["end_s"]) for row in rows] == [
        ("", "0.0", "12.0"),
        ("0", "0.0", "5.0"),
        ("1", "2.5", "7.5"),
        ("2", "5.0", "10.0"),
        ("3", "7.0", "12.0"),
    ]
    assert all(row["label_5"] and row["score_5"] for row in rows)  # the clip and each window: the top-5 (default)


def test_top_k_applies_to_each_window_in_every_format(inputs, saved_model_dir, tmp_path, capsys):
    """Issue 26: `--top-k` was ignored for `--windows` records (each window had its best label only). Each window
    now carries its top-k in `labels`, the first its `label` and `score`, the same in JSON, CSV, the table and the
    `--output` files."""
    path = inputs / "b_long.flac"
    common = [str(path), "--model", str(saved_model_dir), "--windows", "--top-k", "3"]
    [record] = [json.loads(line) for line in _run([*common, "--format", "json"], capsys)[1].splitlines()]
    assert len(record["windows"]) == 4
    for window in record["windows"]:
        assert [list(item) for item in window["labels"]] == [["label", "score"]] * 3
        assert window["labels"][0] == {"label": window["label"], "score": window["score"]}
        assert window["labels"][0]["score"] >= window["labels"][1]["score"] >= window["labels"][2]["score"]
    assert Prediction.from_row(record).windows[0].labels[2].label == record["windows"][0]["labels"][2]["label"]
    rows = list(csv.DictReader(io.StringIO(_run([*common, "--format", "csv"], capsys)[1])))
    assert [[(row[f"label_{rank}"], float(row[f"score_{rank}"])) for rank in (1, 2, 3)] for row in rows[1:]] == [
        [(item["label"], round(item["score"], 4)) for item in window["labels"]] for window in record["windows"]
    ]
    table = _run([*common, "--format", "table"], capsys)[1].splitlines()
    assert all(len(line.split("\t")[3].split("  ")) == 3 for line in table)  # the clip's line and each window's
    for suffix in (".jsonl", ".parquet"):
        output = tmp_path / f"windows{suffix}"
        assert _run([*common, "--output", str(output)], capsys)[0] == 0
        if suffix == ".jsonl":
            [row] = [json.loads(line) for line in output.read_text().splitlines()]
        else:
            from datasets import load_dataset

            [row] = list(load_dataset("parquet", data_files=str(output), split="train"))
        assert row["windows"] == record["windows"]


@pytest.mark.parametrize("options", [[], ["--windows", "--events", "--unknown", "0.5"]])
def test_json_on_stdout_is_the_jsonl_row(inputs, saved_model_dir, tmp_path, capsys, options):
    """`--format json` and `--output x.jsonl` give the same record for the same input (the prediction schema's row
    and `input`); only the file's rows have `error`, since they stand for every input, failed ones included."""
    path = inputs / "b_long.flac"
    common = [str(path), "--model", str(saved_model_dir), "--top-k", "3", *options]
    status, out, _ = _run([*common, "--format", "json"], capsys)
    assert status == 0
    [printed] = [json.loads(line) for line in out.splitlines()]
    output = tmp_path / "predictions.jsonl"
    assert _run([*common, "--output", str(output)], capsys)[0] == 0
    [row] = [json.loads(line) for line in output.read_text().splitlines()]
    assert row.pop("error") is None
    assert printed == row
    [prediction] = SoundClassifier(saved_model_dir).predict_many([path], top_k=3, window_top_k=3 if options else 0)
    if options:
        prediction = prediction.with_events().with_unknown(0.5)
    assert printed == {"input": str(path), **prediction.to_row(windows=bool(options))}
    assert set(printed) == {"input", *Prediction.row_keys()} if options else {"input", "labels", "duration_s"}
    assert len(printed.get("windows", [])) == (4 if options else 0)  # 12 s: windows at 0, 2.5, 5 and 7 s


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_failed_input_in_a_table_with_windows(inputs, saved_model_dir, tmp_path, capsys, suffix):
    """A failed input has no windows or events: its row gets empty cells, the other rows keep theirs (the failed
    one first: the columns are not taken from the first row)."""
    output = tmp_path / f"predictions{suffix}"
    files = [str(inputs / "nested" / "broken.wav"), str(inputs / "b_long.flac")]
    args = [*files, "--model", str(saved_model_dir), "--windows", "--events", "--output", str(output)]
    assert _run(args, capsys)[0] == 1
    if suffix == ".csv":
        rows = list(csv.DictReader(output.open(newline="")))
    else:
        from datasets import load_dataset

        rows = list(load_dataset("parquet", data_files=str(output), split="train"))
    by_name = {Path(row["input"]).name: row for row in rows}
    assert by_name["broken.wav"]["error"] and not by_name["broken.wav"]["windows"]
    windows = by_name["b_long.flac"]["windows"]
    windows = json.loads(windows) if suffix == ".csv" else windows
    assert [(window["start_s"], window["end_s"]) for window in windows] == [(0.0, 5.0), (2.5, 7.5), (5.0, 10.0),
                                                                             (7.0, 12.0)]  # fmt: skip


def test_table_for_explicit_files(inputs, saved_model_dir, capsys):
    files = [str(inputs / "a_short.wav"), str(inputs / "nested" / "c.ogg")]
    status, out, _ = _run([*files, "--model", str(saved_model_dir), "--top-k", "2"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(files[0]) and "clip" in lines[0]
    assert len(lines[0].split("\t")[-1].split("  ")) == 2  # top-2 "label score" pairs


@pytest.mark.slow
def test_a_newline_or_tab_in_a_file_name_keeps_the_table_one_line_per_row(saved_model_dir, tmp_path, capsys):
    path = tmp_path / "two\nlines\tand a tab.wav"
    sf.write(path, synthetic_clip(target=1, seed=1, seconds=2.0), 22050)
    status, out, _ = _run([str(path), "--model", str(saved_model_dir), "--format", "table"], capsys)
    assert status == 0
    (line,) = out.splitlines()
    assert line.split("\t")[0] == str(tmp_path / "two\\nlines\\tand a tab.wav") and len(line.split("\t")) == 4


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


@pytest.mark.parametrize("value", ["5", "-0.1", "nan"])
def test_a_min_score_that_is_not_a_probability_is_a_usage_error(tmp_path, saved_model_dir, capsys, value):
    sf.write(tmp_path / "x.wav", np.zeros(22050, np.int16), 22050)
    status, out, err = _run([str(tmp_path / "x.wav"), "--model", str(saved_model_dir), "--min-score", value], capsys)
    assert status == 2 and not out and "--min-score is a probability: give a number from 0 to 1" in err


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
