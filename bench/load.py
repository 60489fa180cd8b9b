"""Load test of the web app's REST API: N concurrent clients against `python app.py` on 127.0.0.1.

    python bench/load.py --model models/esc50-mel-cnn --clients 8 --requests 400 --max-time 120

Starts the real app (its own subprocess, the given model and backend), warms it up, then runs
`--clients` threads that each repeat the README's two-step REST call (upload the WAV, POST
/gradio_api/call/predict, read the event stream) until `--requests` calls are done or
`--max-time` seconds have passed. A request's latency is the whole exchange, upload included.
Writes `bench/load.json` and `bench/LOAD.md` (throughput, p50/p95/p99 latency, failures).
The client threads share the machine with the server: on a small CPU they take some of it.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from esc50_hf.demo import app_subprocess  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model folder or Hub id, passed to app.py")
    parser.add_argument("--backend", default="torch", help="torch or onnx, passed to app.py")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=400, help="requests to complete (after warm-up)")
    parser.add_argument("--max-time", type=float, default=120.0, help="stop after this many seconds anyway")
    parser.add_argument("--warmup", type=int, default=4, help="untimed requests first")
    parser.add_argument("--audio-seconds", type=float, default=5.0, help="length of the test clip (44.1 kHz WAV)")
    parser.add_argument("--server-concurrency", type=int, default=2, help="app.py --concurrency")
    parser.add_argument("--max-queue", type=int, default=64, help="app.py --max-queue")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench")
    parser.add_argument("--preliminary", action="store_true", help="mark the report as not final (busy machine)")
    return parser.parse_args(argv)


def write_clip(path: Path, seconds: float, rate: int = 44100) -> Path:
    """A 16-bit WAV like a phone upload: a warbling tone in noise (the content does not matter for timing)."""
    rng = np.random.default_rng(0)
    time_axis = np.arange(int(seconds * rate)) / rate
    samples = 0.3 * np.sin(2 * np.pi * (600 + 200 * np.sin(2 * np.pi * 3 * time_axis)) * time_axis)
    sf.write(path, samples + 0.05 * rng.standard_normal(time_axis.size), rate, subtype="PCM_16")
    return path


def rest_predict(session: requests.Session, url: str, path: Path) -> str:
    """One full REST exchange; returns the top label, raises on any failure."""
    api = f"{url}/gradio_api"
    with path.open("rb") as handle:
        upload = session.post(f"{api}/upload", files={"files": (path.name, handle)}, timeout=60)
    upload.raise_for_status()
    payload = {"data": [{"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}]}
    call = session.post(f"{api}/call/predict", json=payload, timeout=60)
    call.raise_for_status()
    stream = session.get(f"{api}/call/predict/{call.json()['event_id']}", timeout=120)
    stream.raise_for_status()
    event = None
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "complete":
            return json.loads(line.split(":", 1)[1])[0]["label"]
        elif line.startswith("data:") and event == "error":
            raise RuntimeError(f"server error: {line[5:].strip()}")
    raise RuntimeError(f"no result in the event stream: {stream.text[:200]!r}")


class LoadRun:
    """Client threads sharing a request budget and a deadline; collects per-request latencies."""

    def __init__(self, url: str, clip: Path, total: int, max_time: float) -> None:
        self.url, self.clip, self.total, self.max_time = url, clip, total, max_time
        self.lock = threading.Lock()
        self.started = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _claim(self, deadline: float) -> bool:
        with self.lock:
            if self.started >= self.total or time.monotonic() >= deadline:
                return False
            self.started += 1
            return True

    def _client(self, deadline: float) -> None:
        with requests.Session() as session:
            while self._claim(deadline):
                start = time.perf_counter()
                try:
                    rest_predict(session, self.url, self.clip)
                except Exception as error:  # a failed request is a result to report, not a crash
                    with self.lock:
                        self.errors.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                elapsed = time.perf_counter() - start
                with self.lock:
                    self.latencies.append(elapsed)

    def run(self, clients: int) -> float:
        """Runs the clients to completion; returns the wall time in seconds."""
        start = time.perf_counter()
        deadline = time.monotonic() + self.max_time
        threads = [threading.Thread(target=self._client, args=(deadline,)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start


def summarise(run: LoadRun, wall: float, args: argparse.Namespace) -> dict:
    latencies_ms = np.array(run.latencies) * 1000
    percentile = (lambda q: round(float(np.percentile(latencies_ms, q)), 1)) if latencies_ms.size else (lambda q: None)
    return {
        "preliminary": args.preliminary,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": str(args.model),
        "backend": args.backend,
        "server_concurrency": args.server_concurrency,
        "clients": args.clients,
        "audio_seconds": args.audio_seconds,
        "requests_planned": args.requests,
        "max_time_s": args.max_time,
        "requests_ok": len(run.latencies),
        "requests_failed": len(run.errors),
        "first_errors": run.errors[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(run.latencies) / wall, 2) if wall > 0 else None,
        "latency_ms": {
            "p50": percentile(50),
            "p95": percentile(95),
            "p99": percentile(99),
            "mean": round(float(latencies_ms.mean()), 1) if latencies_ms.size else None,
            "max": round(float(latencies_ms.max()), 1) if latencies_ms.size else None,
        },
    }


def markdown(result: dict, command: str) -> str:
    latency = result["latency_ms"]
    status = (
        "**PRELIMINARY** — measured on a busy machine (training running); not a final figure.\n\n"
        if result["preliminary"]
        else ""
    )
    return (
        "# Load test of the web app's REST API\n\n"
        f"{status}"
        f"`{command}`\n\n"
        f"{result['date']}, commit `{result['commit']}`, {result['machine']['cpus']} CPUs, "
        f"{result['machine']['platform']}.\n\n"
        f"Model `{result['model']}`, backend `{result['backend']}`, server concurrency "
        f"{result['server_concurrency']}; {result['clients']} concurrent clients, each request a "
        f"{result['audio_seconds']:g}-s 44.1 kHz WAV through the two-step REST call (upload, call, event stream).\n\n"
        "| requests ok | failed | wall (s) | throughput (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['requests_ok']} | {result['requests_failed']} | {result['wall_s']} | {result['throughput_rps']} "
        f"| {latency['p50']} | {latency['p95']} | {latency['p99']} | {latency['max']} |\n\n"
        "Latency is the whole exchange as a client sees it, queueing included; the client threads run on the "
        "same machine as the server. Raw numbers: `bench/load.json`.\n"
    )


def _git_commit() -> str:
    try:
        output = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return output.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="esc50-load-"))
    clip = write_clip(work / "load_clip.wav", args.audio_seconds)
    app_args = ["--model", str(args.model), "--backend", args.backend, "--no-examples"]
    app_args += ["--concurrency", str(args.server_concurrency), "--max-queue", str(args.max_queue)]
    env = {"GRADIO_TEMP_DIR": str(work / "gradio-tmp")}
    with app_subprocess(app_args, work / "server.log", env) as (url, _):
        with requests.Session() as session:
            for _ in range(args.warmup):
                rest_predict(session, url, clip)
        run = LoadRun(url, clip, args.requests, args.max_time)
        wall = run.run(args.clients)
    result = summarise(run, wall, args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.output_dir / "LOAD.md").write_text(markdown(result, command))
    print(json.dumps(result, indent=2))
    return 0 if result["requests_ok"] and not result["requests_failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
