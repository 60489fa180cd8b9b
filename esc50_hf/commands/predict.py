"""`esc50-hf predict INPUT...`: classify audio files, folders (recursively) or datasets from the command line.

Without `--output`: one record per file (and per window with `--windows`, per sound event with
`--events`) on stdout as a table, JSON Lines or CSV, or an Audacity label track (`--format
labels`); progress on stderr. With `--output FILE` (.jsonl, .csv, .parquet): one row per input in
FILE, on one process or many (`accelerate launch [--multi_gpu] --num_processes N -m esc50_hf
predict ...`), resumable (see `esc50_hf.inference.batch`). A file that cannot be read is reported on
stderr (and with its error in FILE); the exit status is 1 if any input failed, 0 otherwise.

With `--windows` the 10-minute and 128-MiB limits of uploads are lifted: local recordings of any
length are decoded block by block and classified window by window in constant memory.
"""

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..inference.classifier import Prediction


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
    parser.add_argument("--min-score", type=float, default=0.0, help="windows below this score end an event (0)")
    parser.add_argument("--split", default=None, help="the INPUTs are datasets (local path or Hub id): this split")
    parser.add_argument("--audio-column", default="audio", help="the dataset's audio column (default: audio)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default: 16)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from ..inference.batch import OUTPUT_FORMATS, Inputs, classify_to_file, label_track, progress_bar
    from ..inference.classifier import ModelLoadError, SoundClassifier, resolve_model
    from ..model.audio_io import AudioInputError, AudioLimits
    from ..model.windows import events_from_windows

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
    inputs = Inputs(args.paths, args.split, args.audio_column)
    for path in inputs.missing:
        print(f"error: {path}: no such file or folder", file=sys.stderr)
    if output is not None and args.format != "labels":
        options = {"top_k": args.top_k, "windows": args.windows, "events": args.events, "min_score": args.min_score}
        return max(classify_to_file(classifier, inputs, output, options), 1 if inputs.missing else 0)
    if args.format == "labels" and output is None and len(inputs) != 1:
        print("error: --format labels writes one track per input: give one input or --output FOLDER", file=sys.stderr)
        return 2

    writer = RecordWriter(args.format, args.top_k, sys.stdout) if args.format != "labels" else None
    failures = len(inputs.missing)
    bar, on_audio = progress_bar(len(inputs), args.windows)
    sources = (inputs[index].source for index in range(len(inputs)))
    for index, result in enumerate(classifier.predict_many(sources, args.top_k, on_audio)):
        name = inputs[index].name
        if on_audio is None:
            bar.update(1)
        if isinstance(result, AudioInputError):
            failures += 1
            tqdm.write(f"error: {name}: {result}", file=sys.stderr)
            continue
        events = events_from_windows(result.windows, args.min_score) if args.events else []
        if writer is None:
            track = "".join(label_track(events))
            if output is None:
                sys.stdout.write(track)
            else:
                output.mkdir(parents=True, exist_ok=True)
                (output / f"{Path(name).stem}.txt").write_text(track)
            continue
        writer.write(clip_record(name, result))
        if args.windows:
            for record in window_records(name, result):
                writer.write(record)
        for number, event in enumerate(events):
            labels = [{"label": event["label"], "score": round(event["mean_score"], 6)}]
            writer.write({"file": name, "window": f"event {number}", "start_s": event["start_s"],
                          "end_s": event["end_s"], "labels": labels})  # fmt: skip
    bar.close()
    if failures:
        print(f"{failures} of {len(inputs) + len(inputs.missing)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def clip_record(file: str, prediction: "Prediction") -> dict[str, Any]:
    labels = [{"label": item.label, "score": round(item.score, 6)} for item in prediction.labels]
    return {"file": file, "window": None, "start_s": 0.0, "end_s": prediction.duration, "labels": labels}


def window_records(file: str, prediction: "Prediction") -> list[dict[str, Any]]:
    """One record per window, with the window's best label (the timeline of long files)."""
    return [
        {
            "file": file,
            "window": index,
            "start_s": window.start,
            "end_s": window.end,
            "labels": [{"label": window.label, "score": round(window.score, 6)}],
        }
        for index, window in enumerate(prediction.windows)
    ]


class RecordWriter:
    """Writes one record per file or window in the chosen format, flushing as it goes."""

    def __init__(self, fmt: str, top_k: int, stream: TextIO) -> None:
        self.format = fmt
        self.top_k = top_k
        self.stream = stream
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            ranked = [f"{field}_{rank}" for rank in range(1, top_k + 1) for field in ("label", "score")]
            self._csv.writerow(["file", "window", "start_s", "end_s", *ranked])

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(self._format(record))
        self.stream.flush()

    def _format(self, record: dict[str, Any]) -> str:
        if self.format == "json":
            return json.dumps(record) + "\n"
        cells = [(item["label"], f"{item['score']:.4f}") for item in record["labels"]]
        if self._csv is not None:  # windows fill label_1/score_1 only
            flat = [value for pair in cells for value in pair]
            window = "" if record["window"] is None else record["window"]
            self._csv.writerow([record["file"], window, record["start_s"], record["end_s"], *flat])
            return ""
        where = "clip" if record["window"] is None else f"window {record['window']}"
        span = f"{record['start_s']:7.2f}-{record['end_s']:7.2f}s"
        ranked = "  ".join(f"{label} {score}" for label, score in cells)
        return f"{record['file']}\t{where:<10}\t{span}\t{ranked}\n"
