"""`esc50-hf predict INPUT...`: classify audio files, folders (recursively) or datasets from the command line.

Without `--output`, on stdout: one JSON line per input (`--format json`: the record of `--output`
files, windows and events inside it; see the prediction schema in docs/inference.md), a table or
CSV with a line per input, and per window with `--windows` and per sound event with `--events`,
or an Audacity label track (`--format labels`); progress on stderr. With `--output FILE` (.jsonl,
.csv, .parquet): one row per input in FILE, on one process or many (`accelerate launch
[--multi_gpu] --num_processes N -m esc50_hf predict ...`), resumable (see
`esc50_hf.inference.batch`). A file that cannot be read is reported on stderr (and with its error
in FILE); the exit status is 1 if any input failed, 0 otherwise (with several processes, 0: see
`esc50_hf.inference.batch`).

With `--windows` the 10-minute and 128-MiB limits of uploads are lifted: local recordings of any
length are decoded block by block and classified window by window in constant memory.
"""

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="classify audio files, folders or datasets (one or many processes)")
    parser.add_argument(
        "paths", nargs="+", metavar="INPUT", help="audio files, folders searched recursively, or datasets (--split)"
    )
    parser.add_argument(
        "--model", default=None, help="model folder or Hub id (default: models/esc50-mel-cnn in the checkout)"
    )
    parser.add_argument(
        "--backend", default="torch", help="torch (default), onnx (needs model.onnx) or int8 (model.int8.onnx)"
    )
    parser.add_argument("--top-k", type=int, default=5, help="labels per record (default: 5)")
    parser.add_argument(
        "--format",
        default="table",
        choices=("table", "json", "csv", "labels"),
        help="stdout format: json is one object a line; labels is an Audacity/Raven label track of the events",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="write one row per input to this .jsonl/.csv/.parquet file (resumable; works under accelerate launch); "
        "with --format labels: a folder for one <name>.txt track per input",
    )
    parser.add_argument(
        "--windows", action="store_true", help="one record per 5-s window; no length limit for local files"
    )
    parser.add_argument("--events", action="store_true", help="merge consecutive windows with the same label")
    parser.add_argument(
        "--min-score",
        default="0",
        help="windows below this score end an event (default: 0); 'model': the per-class thresholds fitted with "
        "the model (its config's event_thresholds)",
    )
    parser.add_argument(
        "--unknown",
        nargs="?",
        const="model",
        default=None,
        metavar="THRESHOLD",
        help="say when a clip is none of the known sounds: its unknown score (docs/scores.md) is below the model's "
        "fitted threshold (or THRESHOLD, on the same scale)",
    )
    parser.add_argument("--split", default=None, help="the INPUTs are datasets (local path or Hub id): this split")
    parser.add_argument("--audio-column", default="audio", help="the dataset's audio column (default: audio)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default: 16)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from ..inference.batch import (
        OUTPUT_FORMATS,
        Inputs,
        classify_to_file,
        label_track,
        prediction_record,
        progress_bar,
        track_names,
        window_top_k,
    )
    from ..inference.classifier import ModelLoadError, SoundClassifier, resolve_model
    from ..model.audio_io import AudioInputError, AudioLimits

    if args.top_k < 1 or args.batch_size < 1:
        print("error: --top-k and --batch-size must be at least 1", file=sys.stderr)
        return 2
    if args.format == "labels":
        args.events = True
    output = Path(args.output) if args.output else None
    if output is not None and args.format != "labels" and output.suffix not in OUTPUT_FORMATS:
        print(f"error: --output must end in {', '.join(OUTPUT_FORMATS)}, got {output.name}", file=sys.stderr)
        return 2
    hf_logging.disable_progress_bar()  # our own bar is the only one on stderr
    # --windows: a local recording of any length, in constant memory (block by block, window by window)
    limits = AudioLimits(max_seconds=None, max_bytes=2**62) if args.windows else AudioLimits()
    try:
        classifier = SoundClassifier.load_or_explain(
            resolve_model(args.model), args.backend, limits=limits, batch_size=args.batch_size
        )
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        answers = answer_options(classifier.config, args.min_score, args.unknown)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    inputs = Inputs(args.paths, args.split, args.audio_column)
    for path in inputs.missing:
        print(f"error: {path}: no such file or folder", file=sys.stderr)
    options = {"top_k": args.top_k, "windows": args.windows, "events": args.events, **answers}
    if output is not None and args.format != "labels":
        return classify_to_file(classifier, inputs, output, options)  # missing paths count as failed inputs
    if args.format == "labels" and output is None and len(inputs) != 1:
        print("error: --format labels writes one track per input: give one input or --output FOLDER", file=sys.stderr)
        return 2

    writer = RecordWriter(args.format, args.top_k, sys.stdout) if args.format != "labels" else None
    failures = len(inputs.missing)
    bar, on_audio = progress_bar(len(inputs), args.windows)
    sources = (inputs[index].source for index in range(len(inputs)))
    tracks = track_names([inputs[index].name for index in range(len(inputs))]) if writer is None else []
    for index, result in enumerate(classifier.predict_many(sources, args.top_k, on_audio, window_top_k(options))):
        name = inputs[index].name
        if on_audio is None:
            bar.update(1)
        if isinstance(result, AudioInputError):
            failures += 1
            tqdm.write(f"error: {name}: {result}", file=sys.stderr)
            continue
        record = prediction_record(name, result, options)
        if writer is None:
            track = "".join(label_track(record["events"]))
            if output is None:
                sys.stdout.write(track)
            else:
                output.mkdir(parents=True, exist_ok=True)
                (output / tracks[index]).write_text(track)
            continue
        writer.write(record)
    bar.close()
    if failures:
        print(f"{failures} of {len(inputs) + len(inputs.missing)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def answer_options(config: Any, min_score: str, unknown: str | None) -> dict[str, Any]:
    """`min_score` and `unknown_threshold` of the records, from `--min-score` and `--unknown`.

    Args:
        config (`PreTrainedConfig`): The model's config (its fitted `event_thresholds` and `unknown_threshold`).
        min_score (`str`): A number, or `"model"` for the model's per-class event thresholds.
        unknown (`str`, *optional*): `None` (no unknown answer), `"model"` or a number.

    Raises:
        `ValueError`: a value is not a number in [0, 1], or the model has no fitted thresholds.
    """
    from ..model.labels import resolve_unknown_threshold

    options: dict[str, Any] = {}
    if min_score == "model":
        thresholds = getattr(config, "event_thresholds", None)
        if not thresholds:
            raise ValueError(
                "--min-score model: this model has no fitted event thresholds (its config.json has no "
                "event_thresholds); give a number"
            )
        options["min_score"] = {str(label): float(value) for label, value in thresholds.items()}
    else:
        try:
            options["min_score"] = float(min_score)
        except ValueError:
            raise ValueError(f"--min-score must be a number or 'model', got {min_score!r}") from None
        if not 0.0 <= options["min_score"] <= 1.0:  # a score above 1 finds no event; NaN would find them all
            raise ValueError(f"--min-score is a probability: give a number from 0 to 1 (or 'model'), got {min_score}")
    if unknown is not None:
        options["unknown_threshold"] = resolve_unknown_threshold(config, unknown)
    return options


class RecordWriter:
    """Writes each input's record (`esc50_hf.inference.batch.prediction_record`) in the chosen format, flushing
    as it goes: `json` prints the record as it is; `table` and `csv` give a line to the clip, then one to each
    window, with its top-k like the clip's, and one to each event, with its label."""

    def __init__(self, fmt: str, top_k: int, stream: TextIO) -> None:
        self.format = fmt
        self.top_k = top_k
        self.stream = stream
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            ranked = [f"{field}_{rank}" for rank in range(1, top_k + 1) for field in ("label", "score")]
            self._csv.writerow(["input", "window", "start_s", "end_s", *ranked])

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(self._format(record))
        self.stream.flush()

    def _format(self, record: dict[str, Any]) -> str:
        if self.format == "json":
            return json.dumps(record) + "\n"
        lines = []
        for window, start, end, labels in _spans(record):
            cells = [(label, f"{score:.4f}") for label, score in labels]
            if self._csv is not None:  # windows fill label_1/score_1 to the top-k, events label_1/score_1 only
                flat = [value for pair in cells for value in pair]
                self._csv.writerow([record["input"], "" if window is None else window, start, end, *flat])
                continue
            where = "clip" if window is None else f"window {window}"
            span = f"{start:7.2f}-{end:7.2f}s"
            ranked = "  ".join(f"{label} {score}" for label, score in cells)
            lines.append(f"{printable(record['input'])}\t{where:<10}\t{span}\t{ranked}\n")
        return "".join(lines)


def printable(name: str) -> str:
    """`name` on one table cell: characters that would break the line or the columns (newline, tab, other control
    characters) written as Python escapes (`\\n`, `\\t`, `\\x1b`); every other character as it is."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in name)


def _spans(record: dict[str, Any]) -> Iterator[tuple[int | str | None, float, float, list[tuple[str, float]]]]:
    """The record's lines as `(window, start_s, end_s, [(label, score), ...])`: the clip (window `None`), then each
    window (its number) and each event (`"event N"`)."""
    labels = [(item["label"], item["score"]) for item in record["labels"]]
    if record.get("unknown"):  # none of the known sounds: said first, the best guesses after it
        labels[0] = (f"unknown (best guess: {labels[0][0]})", labels[0][1])
    yield None, 0.0, record["duration_s"], labels
    for number, window in enumerate(record.get("windows", [])):
        ranked = [(item["label"], item["score"]) for item in window.get("labels") or [window]]  # --top-k, or the best
        yield number, window["start_s"], window["end_s"], ranked
    for number, event in enumerate(record.get("events", [])):
        yield f"event {number}", event["start_s"], event["end_s"], [(event["label"], event["mean_score"])]
