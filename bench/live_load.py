"""Load test of the app's live mode: N microphone streams at once against `python app.py`.

    python bench/live_load.py --streams 1 4 8 12 16 --seconds 30
    python bench/live_load.py --streams 8 --seconds 600 --rss-only   # the RSS over 10 live minutes

Each stream is a client thread that behaves as Gradio's page does: it records in real time (a 48-kHz
16-bit mono WAV of noise and tones, new audio every 0.1 s) and, whenever the server has answered its
previous chunk, uploads what it recorded since then (POST /gradio_api/upload) and hands it to the
stream event (queue/join for the first chunk, POST /gradio_api/stream/<event> after), reading the
answers from the session's event stream. The server classifies the last 5 s once per second of new
audio; an update is an answer that carries a label. Counted per level: updates per stream per second
of audio (1.0 = none dropped), the gaps between a stream's updates (p50/p95/max; "late" = a gap over
2 s), chunks refused, and the server's CPU and RSS. Writes `bench/live_load.json` and
`bench/LIVE_LOAD.md` (with `--rss-only`, the RSS samples only, to `bench/live_rss.json`).
The client threads share the machine with the server.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import requests
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402
from tests.app_server import app_subprocess  # noqa: E402

RATE = 48000
TICK = 0.1  # the page's recorder hands over audio this often
LATE_GAP_S = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 12, 16])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio each stream sends per level")
    parser.add_argument("--rss-only", action="store_true", help="one level, RSS sampled every 10 s")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench")
    return parser.parse_args(argv)


class Stream(threading.Thread):
    """One simulated page: records in real time, sends what it has whenever the previous chunk was answered."""

    def __init__(self, url: str, fn_index: int, trigger: int, seconds: float, folder: Path, seed: int) -> None:
        super().__init__(daemon=True)
        self.url, self.fn_index, self.trigger, self.seconds, self.folder = url, fn_index, trigger, seconds, folder
        self.session = uuid.uuid4().hex[:10]
        self.http = requests.Session()
        self.rng = np.random.default_rng(seed)
        self.updates: list[float] = []
        self.refused = 0
        self.errors: list[str] = []
        self.answered = threading.Event()
        self.answered.set()
        self.event_id: str | None = None

    def _audio(self, samples: int) -> np.ndarray:
        noise = 0.05 * self.rng.standard_normal(samples)
        tone = 0.2 * np.sin(2 * np.pi * self.rng.uniform(200, 2000) * np.arange(samples) / RATE)
        return (noise + tone).astype(np.float32)

    def _listen(self) -> None:
        with self.http.get(
            f"{self.url}/gradio_api/queue/data", params={"session_hash": self.session}, stream=True, timeout=60
        ) as response:
            for line in response.iter_lines():
                if not line.startswith(b"data:"):
                    continue
                message = json.loads(line[5:])
                kind = message.get("msg")
                if kind in ("process_streaming", "process_generating", "process_completed"):
                    output = message.get("output") or {}
                    data = output.get("data") or []
                    if data and isinstance(data[0], dict) and "label" in data[0]:
                        self.updates.append(time.monotonic())
                    if kind == "process_completed" and not message.get("success", True):
                        self.errors.append(str(output.get("error"))[:1000])
                    self.answered.set()
                    if kind == "process_completed":
                        return

    def _send(self, samples: np.ndarray) -> None:
        path = self.folder / f"{self.session}-{time.monotonic_ns()}.wav"
        sf.write(path, samples, RATE, subtype="PCM_16")
        with path.open("rb") as handle:
            uploaded = self.http.post(f"{self.url}/gradio_api/upload", files={"files": ("audio.wav", handle)}).json()
        path.unlink()
        body = {
            "data": [{"path": uploaded[0], "meta": {"_type": "gradio.FileData"}}],
            "fn_index": self.fn_index,
            "trigger_id": self.trigger,
            "session_hash": self.session,
            "event_data": None,
        }
        self.answered.clear()
        if self.event_id is None:
            self.event_id = self.http.post(f"{self.url}/gradio_api/queue/join", json=body).json()["event_id"]
            threading.Thread(target=self._listen, daemon=True).start()
        elif self.http.post(f"{self.url}/gradio_api/stream/{self.event_id}", json=body).status_code != 200:
            self.refused += 1
            self.answered.set()

    def run(self) -> None:
        start = time.monotonic()
        pending = np.zeros(0, np.float32)
        recorded = 0
        while recorded < self.seconds * RATE:
            time.sleep(max(0.0, start + (recorded / RATE + TICK) - time.monotonic()))
            pending = np.concatenate([pending, self._audio(int(TICK * RATE))])
            recorded += int(TICK * RATE)
            if self.answered.is_set() and not self.errors:
                self._send(pending)
                pending = np.zeros(0, np.float32)
        self.answered.wait(10)
        if self.event_id:
            self.http.post(f"{self.url}/gradio_api/stream/{self.event_id}/close")


def stream_endpoint(url: str) -> tuple[int, int]:
    """`(fn_index, trigger id)` of the page's stream event."""
    config = requests.get(f"{url}/config", timeout=10).json()
    for index, dependency in enumerate(config["dependencies"]):
        for target, event in dependency["targets"]:
            if event == "stream":
                return dependency.get("id", index), target
    raise SystemExit("the app has no live stream event (was it started with --max-live-streams 0?)")


def run_level(url: str, count: int, seconds: float, process: psutil.Process, folder: Path) -> dict:
    fn_index, trigger = stream_endpoint(url)
    streams = [Stream(url, fn_index, trigger, seconds, folder, seed) for seed in range(count)]
    rss_before = process.memory_info().rss
    cpu_before = process.cpu_times()
    began = time.monotonic()
    for stream in streams:
        stream.start()
    samples = []
    while any(stream.is_alive() for stream in streams):
        time.sleep(10 if seconds > 60 else 1)
        samples.append((round(time.monotonic() - began, 1), round(process.memory_info().rss / 2**20, 1)))
    wall = time.monotonic() - began
    cpu = process.cpu_times()
    gaps = np.concatenate([np.diff(stream.updates) for stream in streams if len(stream.updates) > 1] or [[np.nan]])
    expected = seconds / 1.0  # one update per second of audio
    return {
        "streams": count,
        "audio_seconds_each": seconds,
        "updates_per_audio_second": round(float(np.mean([len(s.updates) for s in streams]) / expected), 3),
        "gap_p50_s": round(float(np.nanpercentile(gaps, 50)), 2),
        "gap_p95_s": round(float(np.nanpercentile(gaps, 95)), 2),
        "gap_max_s": round(float(np.nanmax(gaps)), 2),
        "late_gaps_pct": round(100 * float(np.mean(gaps > LATE_GAP_S)), 1),
        "refused_chunks": sum(stream.refused for stream in streams),
        "errors": sorted({error for stream in streams for error in stream.errors})[:3],
        "server_cpu_pct": round(100 * ((cpu.user + cpu.system) - (cpu_before.user + cpu_before.system)) / wall, 1),
        "rss_mib_before": round(rss_before / 2**20, 1),
        "rss_mib_after": round(process.memory_info().rss / 2**20, 1),
        "rss_samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        app_args = ["--model", args.model, "--max-live-streams", str(max(args.streams) + 1)]
        env = {"GRADIO_TEMP_DIR": str(folder / "gradio")}
        with app_subprocess(app_args, folder / "server.log", env) as (url, server):
            process = psutil.Process(server.pid)
            run_level(url, 1, 5.0, process, folder)  # warm-up
            levels = []
            for count in args.streams:
                levels.append(run_level(url, count, args.seconds, process, folder))
                print(json.dumps({k: v for k, v in levels[-1].items() if k != "rss_samples"}), flush=True)
                time.sleep(12)  # the previous level's streams are dropped as idle
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip(),
        "cpus": psutil.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_end": [round(value, 2) for value in psutil.getloadavg()],
        "model": args.model,
        "levels": levels,
    }
    if args.rss_only:
        (args.output_dir / "live_rss.json").write_text(json.dumps(report, indent=1) + "\n")
        return 0
    (args.output_dir / "live_load.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.output_dir / "LIVE_LOAD.md").write_text(markdown(report))
    return 0


HEADER = (
    "| streams | updates per audio second | gap p50 (s) | gap p95 (s) | gap max (s) | late gaps (%) | refused chunks "
    "| server CPU (%) | server RSS (MiB) before -> after |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def markdown(report: dict) -> str:
    rows = "\n".join(
        f"| {level['streams']} | {level['updates_per_audio_second']:.2f} | {level['gap_p50_s']:.2f} | "
        f"{level['gap_p95_s']:.2f} | {level['gap_max_s']:.2f} | {level['late_gaps_pct']:.1f} | "
        f"{level['refused_chunks']} | {level['server_cpu_pct']:.0f} | "
        f"{level['rss_mib_before']:.0f} -> {level['rss_mib_after']:.0f} |"
        for level in report["levels"]
    )
    return f"""# Load test of the live mode: microphone streams at once

`python bench/live_load.py`

{report["date"]}, commit `{report["commit"]}`, {report["cpus"]} CPUs, {report["platform"]}; load average at the end
{report["load_average_at_end"]} (1-min, 5-min, 15-min: whether other jobs shared
the machine).

Model `{report["model"]}`, backend `torch`, app.py's defaults but `--max-live-streams` above the level. Each stream
records in real time and, as Gradio's page does, sends what it recorded (48 kHz mono WAV) whenever its previous chunk
was answered, at most every 0.1 s, for {report["levels"][0]["audio_seconds_each"]:g} s of audio. The server
classifies the last 5 s once per second of new audio. "Updates per audio second": 1.00 means no update was dropped;
"late": gaps over {LATE_GAP_S:g} s between a stream's updates (nominal: 1 s).

{HEADER}
{rows}

Server CPU: 100 % is one core. The client threads run on the same machine and take the rest of its cores. RSS grows
with the number of streams at once (Gradio's per-session state and worker threads); whether it stays flat over
time is the `--rss-only` run (`bench/live_rss.json`). Raw numbers: `bench/live_load.json`.
"""


if __name__ == "__main__":
    sys.exit(main())
