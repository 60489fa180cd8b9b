"""Scale-out figures: `esc50-hf predict` over ESC-50's 2,000 clips on 1 and 2 processes, and a 3-hour recording.

    python bench/scale.py --data-dir /tmp/esc50/ESC-50

1. Collections: `accelerate launch [--multi_gpu --num_processes 2] -m esc50_hf predict AUDIO_DIR
   --output FILE` over all 2,000 clips, with the eager PyTorch and the int8 ONNX backends (exported
   here into a scratch copy of the model folder), timed from launch to the merged file (process
   start, model load and merge included). Files/s = 2000 / wall time.
2. A long recording: 3 hours built by concatenating clips (FLAC, 22.05 kHz mono) through
   `esc50-hf predict --windows --events --output`: wall time, real-time factor, peak RSS.

Writes `bench/scale.json` and `bench/SCALE.md`; run it on an otherwise idle machine.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402  (the one default model folder)

PEAK_RSS_CHILD = """
import resource, subprocess, sys, json, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
print(json.dumps({"rc": done.returncode, "wall_s": wall, "stderr": done.stderr[-2000:],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--data-dir", required=True, help="ESC-50 in the official layout (meta/, audio/)")
    parser.add_argument("--hours", type=float, default=3.0, help="length of the long recording")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench")
    return parser.parse_args(argv)


def timed(command: list[str]) -> dict:
    """Runs `command` as the only child of a wrapper process: wall time, exit status, peak RSS."""
    result = subprocess.run([sys.executable, "-c", PEAK_RSS_CHILD, *command], capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="esc50-scale-"))
    audio = Path(args.data_dir) / "audio"
    clips = sorted(audio.glob("*.wav"))
    model = work / "model"
    shutil.copytree(args.model, model)
    export = [sys.executable, "-m", "esc50_hf", "export-onnx", "--model", str(model), "--int8"]
    subprocess.run([*export, "--data-dir", str(args.data_dir)], check=True, capture_output=True)

    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    collections = []
    for backend in ("torch", "int8"):
        for processes in (1, 2):
            spread = ["--multi_gpu", "--num_processes", "2"] if processes == 2 else ["--num_processes", "1"]
            output = work / f"{backend}-{processes}.jsonl"
            command = [*launch, *spread, "-m", "esc50_hf", "predict", str(audio), "--model", str(model)]
            run = timed([*command, "--backend", backend, "--output", str(output)])
            rows = output.read_text().splitlines() if output.is_file() else []
            collections.append({
                "backend": backend, "processes": processes, "files": len(rows), "wall_s": round(run["wall_s"], 1),
                "files_per_s": round(len(rows) / run["wall_s"], 1), "rc": run["rc"],
            })  # fmt: skip
            print(collections[-1], file=sys.stderr)

    long_path = work / "long.flac"
    needed = int(args.hours * 3600 / 5)
    with sf.SoundFile(long_path, "w", 22050, 1, format="FLAC", subtype="PCM_16") as sound:
        for index in range(needed):
            samples, _ = sf.read(clips[index % len(clips)], dtype="int16")
            sound.write(samples)
    seconds = sf.info(long_path).duration
    long_out = work / "long.jsonl"
    command = [sys.executable, "-m", "esc50_hf", "predict", str(long_path), "--model", str(model), "--windows"]
    run = timed([*command, "--events", "--output", str(long_out)])
    row = json.loads(long_out.read_text())
    long_run = {
        "audio_s": round(seconds, 1),
        "file_mb": round(long_path.stat().st_size / 2**20, 1),
        "wall_s": round(run["wall_s"], 1),
        "real_time_factor": round(run["wall_s"] / seconds, 5),
        "peak_rss_mb": round(run["peak_rss_mb"], 0),
        "windows": len(row["windows"]),
        "events": len(row["events"]),
        "rc": run["rc"],
    }
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),  # fmt: skip
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "collections": collections,
        "long_recording": long_run,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.output_dir / "SCALE.md").write_text(markdown(result, argv if argv is not None else sys.argv[1:]))
    shutil.rmtree(work, ignore_errors=True)
    print((args.output_dir / "SCALE.md").read_text())
    return 0 if all(entry["files"] == len(clips) for entry in collections) else 1


def markdown(result: dict, argv: list[str]) -> str:
    rows = "".join(
        f"| {entry['backend']} | {entry['processes']} | {entry['files']} | {entry['wall_s']} "
        f"| {entry['files_per_s']} |\n"
        for entry in result["collections"]
    )
    long_run = result["long_recording"]
    return (
        "# Scale-out: collections on 1 and 2 processes, a long recording\n\n"
        f"`python bench/scale.py {' '.join(argv)}` — {result['date']}, commit `{result['commit']}`, "
        f"{result['machine']['cpus']} CPUs, {result['machine']['platform']}, 1-min load at the end "
        f"{result['machine']['load_average'][0]:.2f}.\n\n"
        "## ESC-50's 2,000 clips through `accelerate launch ... -m esc50_hf predict AUDIO_DIR --output FILE`\n\n"
        "Wall time from launch to the merged file (process start, model load, merge included).\n\n"
        "| backend | processes | files | wall (s) | files/s |\n| --- | ---: | ---: | ---: | ---: |\n"
        f"{rows}\n"
        "## A long recording through `esc50-hf predict --windows --events --output`\n\n"
        f"{long_run['audio_s'] / 3600:.1f} hours (ESC-50 clips end to end, FLAC {long_run['file_mb']} MB, "
        f"22.05 kHz mono): {long_run['windows']} windows, {long_run['events']} events; wall "
        f"{long_run['wall_s']} s, real-time factor {long_run['real_time_factor']} "
        f"({1 / long_run['real_time_factor']:.0f}x faster than real time), peak RSS {long_run['peak_rss_mb']:.0f} MB "
        "(the whole process: Python, torch, the model).\n\n"
        "Raw numbers: `bench/scale.json`.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
