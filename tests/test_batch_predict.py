"""`esc50-hf predict --output`: one process or two (accelerate, gloo), resumable shards, datasets, events,
label tracks, and long recordings in constant memory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esc50_hf.cli import main
from esc50_hf.inference.batch import read_shards
from esc50_hf.model.windows import WindowPrediction, events_from_windows

from .conftest import synthetic_clip

pytestmark = pytest.mark.slow
MB = 2**20


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """Eleven clips (one 12 s long, one in a subfolder) and one broken file."""
    root = tmp_path_factory.mktemp("collection")
    (root / "sub").mkdir()
    for index in range(10):
        rate = (16000, 22050, 44100)[index % 3]
        sf.write(root / f"clip{index:02d}.wav", synthetic_clip(target=index * 4, seed=index, rate=rate), rate)
    sf.write(root / "sub" / "long.flac", synthetic_clip(target=7, seed=99, seconds=12.0), 44100)
    (root / "sub" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nothing useful")
    return root


def _predict(args: list[str], processes: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    launcher += ["--multi_gpu", "--num_processes", str(processes)] if processes > 1 else ["--num_processes", "1"]
    return subprocess.run(
        [*launcher, "-m", "esc50_hf", "predict", *args], capture_output=True, text=True, timeout=600, env=os.environ
    )


def test_two_processes_write_what_one_process_writes(collection, saved_model_dir, tmp_path):
    common = [str(collection), "--model", str(saved_model_dir), "--windows", "--events"]
    one = _predict([*common, "--output", str(tmp_path / "one.jsonl")])
    two = _predict([*common, "--output", str(tmp_path / "two.jsonl")], processes=2)
    assert one.returncode == 1, one.stderr[-3000:]  # the broken file
    # two processes: 0, or the launcher reports the run as a crash (ChildFailedError and its traceback)
    assert two.returncode == 0 and "Traceback" not in two.stderr and "ChildFailed" not in two.stderr, two.stderr[-3000:]
    for completed in (one, two):
        assert "broken.wav" in completed.stderr and "1 of 12 inputs failed" in completed.stderr
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()
    rows = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [Path(row["input"]).name for row in rows] == [*[f"clip{i:02d}.wav" for i in range(10)], "broken.wav",
                                                          "long.flac"]  # fmt: skip
    assert rows[10]["error"] and not rows[10]["labels"]
    assert [(w["start_s"], w["end_s"]) for w in rows[11]["windows"]] == [(0.0, 5.0), (2.5, 7.5), (5.0, 10.0),
                                                                          (7.0, 12.0)]  # fmt: skip
    shards = read_shards(tmp_path / "two.jsonl.shards")
    assert len(shards) == 12 and len(list((tmp_path / "two.jsonl.shards").glob("rank-*.jsonl"))) == 2


def test_a_killed_run_resumes_without_repeating_finished_inputs(collection, saved_model_dir, tmp_path, capsys):
    output = tmp_path / "out.csv"
    args = ["predict", str(collection), "--model", str(saved_model_dir), "--output", str(output)]
    assert main(args) == 1
    complete = output.read_text()
    shards = output.with_name("out.csv.shards")
    # as a kill -9 leaves it: 5 rows written, the 6th torn mid-line; one of the 5 marked to show it is kept
    lines = (shards / "rank-0.jsonl").read_text().splitlines()
    kept = [json.loads(line) for line in lines[:5]]
    kept[0]["duration_s"] = 123.0
    (shards / "rank-0.jsonl").write_text("".join(json.dumps(row) + "\n" for row in kept) + lines[5][:25])
    output.unlink()
    capsys.readouterr()
    assert main(args) == 1
    assert "resuming: 5 of 12 inputs already classified" in capsys.readouterr().err
    resumed = output.read_text().splitlines()
    assert resumed[1].split(",")[1] == "123.0"  # not classified again
    assert resumed[2:] == complete.splitlines()[2:]  # the rest, redone, is the same
    assert len(read_shards(shards)) == 12


def test_a_changed_input_set_is_reconciled_by_identity(collection, saved_model_dir, tmp_path, capsys):
    """Between two runs into the same output a file is added (sorting first), one removed and one rewritten: the
    second run classifies the new and the changed one, leaves the removed one out, and writes what a fresh run
    writes, each input once."""
    import shutil

    folder = tmp_path / "inputs"
    folder.mkdir()
    for index in range(4):
        shutil.copy(collection / f"clip{index:02d}.wav", folder)
    output = tmp_path / "out.jsonl"
    args = ["predict", str(folder), "--model", str(saved_model_dir), "--output", str(output)]
    assert main(args) == 0
    shutil.copy(collection / "clip05.wav", folder / "a_new.wav")  # first in order: every later position shifts
    (folder / "clip01.wav").unlink()
    shutil.copy(collection / "clip06.wav", folder / "clip02.wav")  # same name, another sound
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "resuming: 2 of 4 inputs already classified" in err and "2 earlier results are left out" in err, err
    assert (
        main(["predict", str(folder), "--model", str(saved_model_dir), "--output", str(tmp_path / "fresh.jsonl")]) == 0
    )
    assert output.read_text() == (tmp_path / "fresh.jsonl").read_text()
    names = [Path(json.loads(line)["input"]).name for line in output.read_text().splitlines()]
    assert names == ["a_new.wav", "clip00.wav", "clip02.wav", "clip03.wav"]


def test_a_dataset_input(parquet_dir, saved_model_dir, tmp_path):
    output = tmp_path / "rows.parquet"
    args = ["predict", str(parquet_dir), "--split", "train", "--model", str(saved_model_dir), "--output", str(output)]
    assert main(args) == 0
    from datasets import load_dataset

    rows = load_dataset("parquet", data_files=str(output), split="train")
    assert len(rows) == 250 and rows[0]["input"].startswith(f"{parquet_dir}[0]")
    assert all(row["error"] is None and len(row["labels"]) == 5 for row in rows)


def test_events_merge_agreeing_windows_and_respect_min_score():
    windows = [
        WindowPrediction(0.0, 5.0, "rain", 0.9),
        WindowPrediction(2.5, 7.5, "rain", 0.7),
        WindowPrediction(5.0, 10.0, "dog", 0.8),
        WindowPrediction(7.5, 12.5, "dog", 0.2),
        WindowPrediction(10.0, 15.0, "dog", 0.6),
    ]
    assert events_from_windows(windows, min_score=0.5) == [
        {"start_s": 0.0, "end_s": 6.25, "label": "rain", "mean_score": pytest.approx(0.8)},
        {"start_s": 6.25, "end_s": 8.75, "label": "dog", "mean_score": pytest.approx(0.8)},
        {"start_s": 11.25, "end_s": 15.0, "label": "dog", "mean_score": pytest.approx(0.6)},
    ]


def test_label_track_for_audacity(collection, saved_model_dir, capsys):
    status = main(["predict", str(collection / "sub" / "long.flac"), "--model", str(saved_model_dir), "--windows",
                   "--format", "labels"])  # fmt: skip
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    starts, ends, labels = zip(*(line.split("\t") for line in lines))
    assert float(starts[0]) == 0.0 and float(ends[-1]) == 12.0 and all(label for label in labels)


def test_label_tracks_of_inputs_with_the_same_name_do_not_overwrite_each_other():
    from esc50_hf.inference.batch import track_names

    names = ["a/dog.wav", "b/dog.wav", "c/dog.flac", "rain.wav", "/abs/x/cat.wav"]
    tracks = track_names(names)
    assert tracks == ["a__dog.wav.txt", "b__dog.wav.txt", "c__dog.flac.txt", "rain.txt", "cat.txt"]
    assert track_names(["a/b/c.wav", "a__b/c.wav"]) == ["a__b__c.wav-1.txt", "a__b__c.wav-2.txt"]  # still equal


MEMORY_RUN = """
import json, resource, sys
from esc50_hf.cli import main
status = main(["predict", sys.argv[1], "--model", sys.argv[2], "--windows", "--events", "--output", sys.argv[3]])
print(json.dumps({"status": status, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _write_long(path: Path, seconds: int, rate: int = 8000) -> Path:
    """A long 8-kHz recording written block by block: a minute of tone and noise, repeated."""
    minute = (0.3 * synthetic_clip(target=20, seed=5, rate=rate, seconds=60.0) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sound:
        for _ in range(seconds // 60):
            sound.write(minute)
    return path


def test_an_hour_takes_the_memory_of_a_minute(saved_model_dir, tmp_path):
    peaks = {}
    for name, seconds in (("minute", 60), ("hour", 3600)):
        audio = _write_long(tmp_path / f"{name}.wav", seconds)
        completed = subprocess.run(
            [sys.executable, "-c", MEMORY_RUN, str(audio), str(saved_model_dir), str(tmp_path / f"{name}.jsonl")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-3000:]
        report = json.loads(completed.stdout.splitlines()[-1])
        assert report["status"] == 0
        peaks[name] = report["peak"]
    row = json.loads((tmp_path / "hour.jsonl").read_text())
    assert row["duration_s"] == 3600.0 and len(row["windows"]) == 1439 and row["events"]
    assert peaks["hour"] - peaks["minute"] < 200 * MB, {name: peak / MB for name, peak in peaks.items()}
