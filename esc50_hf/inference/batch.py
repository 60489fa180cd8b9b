"""Batch classification over collections, on one process or many (`accelerate`), resumable, into one file.

`esc50-hf predict INPUTS... --output FILE` (see `commands/predict.py`) runs `classify_to_file`:

* the inputs (audio files, folders searched recursively, or the rows of `datasets` datasets) are
  numbered in a fixed order and split across the processes `accelerate launch` started
  (`PartialState.split_between_processes`); one process is the plain case;
* each process appends one JSON line per input to its own shard, `FILE.shards/rank-<r>.jsonl`,
  flushed as it goes, with the input's identity (`Inputs.key`: its resolved path, size and
  modification time; a dataset row's name, index and content); an input whose identity is in a
  shard is not classified again, so the same command resumes a killed run (a half-written last
  line is ignored and redone), and a changed input set is reconciled: files added or changed since
  are classified, rows of files removed or changed are left out of `FILE`, none twice;
* once every process is done, the main process merges the shards into `FILE` in input order
  (`.jsonl`, `.csv` or `.parquet`, by extension): the same file whatever the number of processes.
  The shards stay, so running the command again only re-merges; delete `FILE.shards` to start over.

Unreadable inputs get a row with their `error` (and no labels) and a line on stderr. The exit status
is 1 when any input failed, on one process; on several it is 0 all the same (with the count on
stderr), because the launcher reports a process's non-zero status as a crash, with a traceback.
"""

import csv
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Esc50HfError
from ..model.audio_io import AudioInputError
from ..model.prediction import Prediction

# Suffixes picked up inside folders; files named explicitly are tried whatever their suffix.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".au", ".webm", ".wma"}
)
OUTPUT_FORMATS = (".jsonl", ".csv", ".parquet")


class BatchPredictionError(Esc50HfError, RuntimeError):
    """A batch run that cannot go on: an input dataset without the audio column, or inputs left without a result."""


@dataclass(frozen=True)
class Input:
    """One thing to classify: its name in the output and what `SoundClassifier` reads (a path or bytes)."""

    name: str
    source: Any


class Inputs:
    """The numbered inputs: files and folders, or the rows of datasets (`split` given); `missing` paths apart."""

    def __init__(self, paths: list[str], split: str | None = None, audio_column: str = "audio") -> None:
        self.missing: list[str] = []
        if split is None:
            files: list[Path] = []
            for raw in paths:
                path = Path(raw)
                if path.is_dir():
                    found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
                    files.extend(sorted(found))
                elif path.exists():
                    files.append(path)
                else:
                    self.missing.append(raw)
            self._files, self._rows = files, []
        else:
            self._files, self._rows = [], [self._dataset(raw, split, audio_column) for raw in paths]

    @staticmethod
    def _dataset(name: str, split: str, audio_column: str) -> tuple[str, Any]:
        from datasets import Audio, load_dataset

        dataset = load_dataset(name, split=split)
        if audio_column not in dataset.column_names:
            raise BatchPredictionError(f"{name} has no column {audio_column!r} (columns: {dataset.column_names})")
        # The encoded file, not datasets' decoding: every input goes through the same decoding and limits.
        return name, dataset.cast_column(audio_column, Audio(decode=False)).select_columns([audio_column])

    def __len__(self) -> int:
        return len(self._files) + sum(len(rows) for _, rows in self._rows)

    def key(self, index: int) -> str:
        """The input's identity for resuming: a file's resolved path, size and modification time (ns); a dataset
        row's name and a hash of its content (its bytes, else its path). A file changed since it was classified
        has another identity, so it is classified again."""
        if index < len(self._files):
            path = self._files[index]
            try:
                stat = path.stat()
            except OSError:  # gone since it was listed: its row will say so
                return f"{path.resolve()}|missing"
            return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        item = self[index]
        content = item.source if isinstance(item.source, bytes) else str(item.source).encode()
        return f"{item.name}|{hashlib.blake2b(content, digest_size=16).hexdigest()}"

    def __getitem__(self, index: int) -> Input:
        if index < len(self._files):
            return Input(str(self._files[index]), self._files[index])
        index -= len(self._files)
        for name, rows in self._rows:
            if index < len(rows):
                audio = rows[index][rows.column_names[0]]
                source = audio["bytes"] if audio.get("bytes") else audio["path"]
                return Input(f"{name}[{index}]" + (f" {audio['path']}" if audio.get("path") else ""), source)
            index -= len(rows)
        raise IndexError(index)


def prediction_record(name: str, prediction: Prediction, options: dict[str, Any]) -> dict[str, Any]:
    """One input's record, as `--format json` prints it and `--output` files hold it: `input` (its name) and the
    prediction's row (`Prediction.to_row`), with its windows and events only when `options` ask for them.

    Args:
        name (`str`): The input's name (a path, or a dataset row's).
        prediction (`Prediction`): What the classifier said.
        options (`dict`): `windows` and `events` (`bool`), `min_score` (`float`, or one per label, for the events),
            `unknown_threshold` (`float`: say whether the clip is none of the known sounds).
    """
    if options.get("events"):
        prediction = prediction.with_events(options.get("min_score", 0.0))
    if options.get("unknown_threshold") is not None:
        prediction = prediction.with_unknown(options["unknown_threshold"])
    return {"input": name, **prediction.to_row(windows=bool(options.get("windows")))}


def window_top_k(options: dict[str, Any]) -> int:
    """Labels each window's record carries (`WindowPrediction.labels`): `--top-k` with `--windows`, else none.

    Args:
        options (`dict`): `top_k` and `windows`, as `esc50-hf predict` sets them.
    """
    return options["top_k"] if options.get("windows") else 0


SHARD_ONLY_FIELDS = ("key", "index")  # in a shard's rows, not in the merged file


def record(key: str, item: Input, result: Prediction | AudioInputError, options: dict[str, Any]) -> dict[str, Any]:
    """One input's row in a shard: its identity `key` (`Inputs.key`, dropped on merging), its record, and `error`
    (`None`, or the reason it could not be read, with no labels)."""
    if isinstance(result, AudioInputError):
        return {"key": key, "input": item.name, "duration_s": None, "labels": [], "error": str(result)}
    return {"key": key, **prediction_record(item.name, result, options), "error": None}


def read_shards(folder: Path) -> dict[str, dict[str, Any]]:
    """Every complete row in the shards, by input identity (`Inputs.key`); a torn last line from a kill, and rows
    of an earlier version of this format (without identity), are skipped: their inputs are classified again."""
    rows: dict[str, dict[str, Any]] = {}
    for shard in sorted(folder.glob("rank-*.jsonl")):
        for line in shard.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                rows[row["key"]] = row
    return rows


def classify_to_file(classifier: Any, inputs: Inputs, output: Path, options: dict[str, Any]) -> int:
    """Runs this process's share of `inputs` into its shard, then (main process) merges; returns the exit status.

    Args:
        classifier (`SoundClassifier`): The loaded model.
        inputs (`Inputs`): Everything to classify, numbered.
        output (`Path`): The merged file (`.jsonl`, `.csv` or `.parquet`); the shards go to `<output>.shards/`.
        options (`dict`): `top_k` (required), and `windows`, `events`, `min_score` as `esc50-hf predict` sets them.

    Returns:
        `int`: 1 if any input failed, else 0.

    Raises:
        `BatchPredictionError`: inputs were left without a result (a process died); running again resumes.
    """
    import torch
    from accelerate import PartialState
    from tqdm import tqdm

    # cpu=True when there is no GPU: without it, processes started by `accelerate launch --multi_gpu` on a
    # CPU machine each take themselves for the only one (gloo then joins them)
    state = PartialState(cpu=not torch.cuda.is_available())
    shards = output.with_name(output.name + ".shards")
    if state.is_main_process:
        shards.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    finished = read_shards(shards)
    keys = [inputs.key(index) for index in range(len(inputs))]
    todo = [index for index, key in enumerate(keys) if key not in finished]
    if state.is_main_process and finished:
        done = len(inputs) - len(todo)
        stale = len(set(finished) - set(keys))
        left_out = (
            f"; {stale} earlier results are left out (their files were removed or have changed since)" if stale else ""
        )
        print(f"resuming: {done} of {len(inputs)} inputs already classified in {shards}{left_out}", file=sys.stderr)
    with state.split_between_processes(todo) as mine:
        desc = f"classifying (process {state.process_index})" if state.num_processes > 1 else "classifying"
        bar, on_audio = progress_bar(len(mine), options.get("windows", False), desc, state.process_index)
        shard_path = shards / f"rank-{state.process_index}.jsonl"
        torn = shard_path.is_file() and shard_path.stat().st_size and not shard_path.read_bytes().endswith(b"\n")
        with shard_path.open("a") as shard:
            if torn:  # a kill mid-line: end it, so the next row starts on its own line
                shard.write("\n")
            sources = (inputs[i].source for i in mine)
            results = classifier.predict_many(sources, options["top_k"], on_audio, window_top_k(options))
            for index, result in zip(mine, results):
                item = inputs[index]
                if isinstance(result, AudioInputError):
                    tqdm.write(f"error: {item.name}: {result}", file=sys.stderr)
                shard.write(json.dumps(record(keys[index], item, result, options)) + "\n")
                shard.flush()
                if on_audio is None:
                    bar.update(1)
        bar.close()
    state.wait_for_everyone()
    rows = read_shards(shards)
    if state.is_main_process:
        missing = [key for key in keys if key not in rows]
        if missing:  # only if a process died between its last write and here
            raise BatchPredictionError(f"{len(missing)} inputs have no result in {shards}; run the command again")
        # this run's inputs, in order, each once, under the name it has now
        write_rows(
            [{**rows[key], "input": inputs[index].name} for index, key in enumerate(keys)], output, options["top_k"]
        )
    failed = sum(1 for key in keys if rows.get(key, {}).get("error")) + len(inputs.missing)
    if state.is_main_process and failed:
        print(f"{failed} of {len(inputs) + len(inputs.missing)} inputs failed", file=sys.stderr)
    # Several processes: a non-zero status from any of them is reported by the launcher as a crash (ChildFailedError
    # and its traceback), so failed inputs, which the output and stderr report, do not set it.
    return 1 if failed and state.num_processes == 1 else 0


def progress_bar(files: int, windows: bool, desc: str = "classifying", position: int = 0) -> tuple[Any, Any]:
    """A bar on stderr: in files, or with `windows` in seconds of audio; returns it and the `on_audio` callback
    for `SoundClassifier.predict_many` (`None` in files: the caller counts each input)."""
    from tqdm import tqdm

    bar = tqdm(
        total=None if windows else files,
        unit="s" if windows else "file",
        desc=desc,
        file=sys.stderr,
        dynamic_ncols=True,
        position=position,
    )
    return bar, bar.update if windows else None


def write_rows(rows: list[dict[str, Any]], output: Path, top_k: int) -> None:
    """Writes the merged rows (without the shards' own fields) atomically, in the format of `output`'s extension."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    rows = [{key: value for key, value in row.items() if key not in SHARD_ONLY_FIELDS} for row in rows]
    # asked-for windows and events: a failed input's row has none (an empty cell in CSV, null in Parquet)
    nested = [key for key in ("windows", "events") if any(key in row for row in rows)]
    if output.suffix == ".jsonl":
        partial.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif output.suffix == ".csv":
        with partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            ranked = [f"{field}_{rank}" for rank in range(1, top_k + 1) for field in ("label", "score")]
            writer.writerow(["input", "duration_s", *ranked, "error", *nested])
            for row in rows:
                cells = [value for entry in row["labels"] for value in (entry["label"], entry["score"])]
                cells += [""] * (len(ranked) - len(cells))
                extra = [json.dumps(row[key]) if key in row else "" for key in nested]
                writer.writerow([row["input"], row["duration_s"], *cells, row["error"] or "", *extra])
    else:
        from datasets import Dataset

        # from_list takes its columns from the first row: every row gets every column
        Dataset.from_list([{**row, **{key: row.get(key) for key in nested}} for row in rows]).to_parquet(str(partial))
    os.replace(partial, output)


def label_track(events: list[dict[str, Any]]) -> Iterator[str]:
    """Audacity's label-track format (Raven reads it too): `start<TAB>end<TAB>label` per event row
    (`Event.to_row()`), seconds."""
    for event in events:
        yield f"{event['start_s']:.3f}\t{event['end_s']:.3f}\t{event['label']}\n"


def track_names(names: list[str]) -> list[str]:
    """One label-track file name per input, none the same: `<stem>.txt`, or where two inputs share a stem (`a/dog.wav`,
    `b/dog.flac`), the input's path with `__` for each separator (`a__dog.wav.txt`).

    Args:
        names (`list[str]`): The inputs' names, as the records give them.
    """
    stems = [Path(name).stem for name in names]
    stem_counts = Counter(stems)
    tracks = [
        f"{stem}.txt" if stem_counts[stem] == 1 else "__".join(Path(name).parts).lstrip("/_") + ".txt"
        for name, stem in zip(names, stems)
    ]
    track_counts = Counter(tracks)
    clashing = {track for track in tracks if track_counts[track] > 1}  # paths that flatten onto each other: numbered
    return [f"{Path(track).stem}-{index + 1}.txt" if track in clashing else track for index, track in enumerate(tracks)]


__all__ = [
    "AUDIO_SUFFIXES",
    "BatchPredictionError",
    "OUTPUT_FORMATS",
    "Input",
    "Inputs",
    "classify_to_file",
    "label_track",
    "prediction_record",
    "progress_bar",
    "read_shards",
    "track_names",
    "window_top_k",
]
