"""`esc50-hf predict PATH...`: classify audio files and folders (recursively) from the command line.

One record per file (and per window with `--windows`) on stdout as a table, JSON Lines or CSV;
progress on stderr. A file that cannot be read is reported on stderr and skipped; the exit
status is 1 if any file failed, 0 otherwise.
"""

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..inference import Prediction

# Suffixes picked up inside folders; files named explicitly are tried whatever their suffix.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".au", ".webm", ".wma"}
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="classify audio files or folders")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, or folders searched recursively")
    parser.add_argument(
        "--model", default=None, help="model folder or Hub id (default: models/esc50-mel-cnn in the checkout)"
    )
    parser.add_argument("--backend", default="torch", help="torch (default) or onnx (needs model.onnx)")
    parser.add_argument("--top-k", type=int, default=5, help="labels per record (default: 5)")
    parser.add_argument("--format", default="table", choices=("table", "json", "csv"), help="json: one object a line")
    parser.add_argument("--windows", action="store_true", help="also one record per 5-s window of long files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from ..audio_io import AudioInputError
    from ..inference import ModelLoadError, SoundClassifier, resolve_model

    if args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    hf_logging.disable_progress_bar()  # our own bar is the only one on stderr
    try:
        classifier = SoundClassifier.load_or_explain(resolve_model(args.model), args.backend)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    files, missing = collect_files(args.paths)
    for path in missing:
        print(f"error: {path}: no such file or folder", file=sys.stderr)
    writer = RecordWriter(args.format, args.top_k, sys.stdout)
    failures = len(missing)
    for path in tqdm(files, desc="classifying", unit="file", file=sys.stderr, dynamic_ncols=True):
        try:
            prediction = classifier.predict(path, top_k=args.top_k)
        except AudioInputError as error:
            failures += 1
            tqdm.write(f"error: {path}: {error}", file=sys.stderr)
            continue
        writer.write(clip_record(str(path), prediction))
        if args.windows:
            for record in window_records(str(path), prediction):
                writer.write(record)
    if failures:
        print(f"{failures} of {len(files) + len(missing)} inputs failed", file=sys.stderr)
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


def collect_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Explicit files as given, audio files found recursively in folders (sorted); and the paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(found for found in path.rglob("*") if _is_audio_file(found)))
        elif path.exists():
            files.append(path)
        else:
            missing.append(raw)
    return files, missing


def _is_audio_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES


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
