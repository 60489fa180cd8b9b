"""Load test of the web app's REST API: bursts of 1, 50 and 100 concurrent clients against `python app.py`, then
bursts of long uploads against a fresh server.

    python bench/load.py --model models/esc50-mel-cnn

Starts the real app with its default serving settings (queue, concurrency, dynamic batching,
upload cleanup), warms it up, then for each level of `--clients` runs that many client threads
at once; each sends `--requests-per-client` requests, one after another, each the README's
two-step REST call (upload a WAV, POST /gradio_api/call/predict, read the event stream), with
no retries. Every request uploads a different 5-s clip (the same sound with its own dither), as
real users would, so the upload folder grows as it would in service. Counted per level:
requests/s, p50/p95 latency (the whole exchange, queueing included), refused (HTTP 503: queue
full), failed (any other error), and the server's RSS before and after. At the end: the disk
the uploads use after all requests, and again once `--keep-uploads` has passed.

Long uploads: a fresh server, warmed up the same way, gets `--long-bursts` bursts of `--long-clients`
concurrent requests, each uploading the same M4A (AAC) of `--long-seconds` (just under the 10-min limit; made
with ffmpeg from a synthetic tone and pink noise) and waiting for its answer; the next burst starts when
the last one has ended. Its RSS is sampled every 0.1 s: idle (after the warm-up), peak, and after the last
burst, which is what memory held by FFmpeg decoding, once not returned, shows in.

Writes `bench/load.json` and `bench/LOAD.md`. The client threads share the machine with the server.
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
import psutil
import requests
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402  (the one default model folder)
from tests.app_server import app_subprocess  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder or Hub id")
    parser.add_argument("--backend", default="torch", help="torch or onnx, passed to app.py")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 100], help="concurrent clients per level")
    parser.add_argument("--requests-per-client", type=int, nargs="+", default=[50, 6, 6], help="per level")
    parser.add_argument("--warmup", type=int, default=4, help="untimed requests first")
    parser.add_argument("--keep-uploads", type=float, default=20.0, help="app.py --keep-uploads for this run")
    parser.add_argument("--long-bursts", type=int, default=10, help="bursts of long uploads (0: none)")
    parser.add_argument("--long-clients", type=int, default=8, help="concurrent long uploads per burst")
    parser.add_argument("--long-seconds", type=float, default=599.0, help="length of the long M4A upload")
    parser.add_argument("--output-dir", type=Path, default=REPO / "bench")
    parser.add_argument("--preliminary", action="store_true", help="mark the report as not final (busy machine)")
    args = parser.parse_args(argv)
    if len(args.requests_per_client) != len(args.clients):
        parser.error("give one --requests-per-client per --clients level")
    return args


class Clips:
    """Distinct 5-s 16-bit WAVs at 44.1 kHz: one warbling tone with a different dither each (unique uploads)."""

    def __init__(self, folder: Path, seconds: float = 5.0, rate: int = 44100) -> None:
        self.folder, self.rate = folder, rate
        time_axis = np.arange(int(seconds * rate)) / rate
        self.tone = 0.3 * np.sin(2 * np.pi * (600 + 200 * np.sin(2 * np.pi * 3 * time_axis)) * time_axis)
        self.count = 0
        self.lock = threading.Lock()

    def next(self) -> Path:
        with self.lock:
            self.count += 1
            index = self.count
        rng = np.random.default_rng(index)
        path = self.folder / f"clip{index:05d}.wav"
        sf.write(path, self.tone + 0.05 * rng.standard_normal(self.tone.size), self.rate, subtype="PCM_16")
        return path


class Refused(Exception):
    """HTTP 503: the queue is full."""


def rest_predict(session: requests.Session, url: str, path: Path) -> str:
    """One full REST exchange; returns the top label; raises `Refused` on 503, anything else on other failures."""
    api = f"{url}/gradio_api"
    with path.open("rb") as handle:
        upload = session.post(f"{api}/upload", files={"files": (path.name, handle)}, timeout=120)
    if upload.status_code == 503:
        raise Refused("upload")
    upload.raise_for_status()
    payload = {"data": [{"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}]}
    call = session.post(f"{api}/call/predict", json=payload, timeout=120)
    if call.status_code == 503:
        raise Refused("call")
    call.raise_for_status()
    stream = session.get(f"{api}/call/predict/{call.json()['event_id']}", timeout=600)
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


def run_level(url: str, clips: Clips, clients: int, per_client: int, server: psutil.Process) -> dict:
    """`clients` threads start together, each sending `per_client` requests in a row."""
    latencies: list[float] = []
    refused: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    paths = [[clips.next() for _ in range(per_client)] for _ in range(clients)]

    def client(own: list[Path]) -> None:
        with requests.Session() as session:
            barrier.wait()
            for path in own:
                start = time.perf_counter()
                try:
                    rest_predict(session, url, path)
                except Refused as error:
                    with lock:
                        refused.append(str(error))
                    continue
                except Exception as error:  # a failed request is a result to report, not a crash
                    with lock:
                        errors.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

    rss_before = server_rss(server)
    threads = [threading.Thread(target=client, args=(own,)) for own in paths]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies_ms = np.array(latencies) * 1000
    percentile = (lambda q: round(float(np.percentile(latencies_ms, q)), 1)) if latencies_ms.size else (lambda q: None)
    return {
        "clients": clients,
        "requests": clients * per_client,
        "ok": len(latencies),
        "refused": len(refused),
        "failed": len(errors),
        "first_errors": errors[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "max_ms": round(float(latencies_ms.max()), 1) if latencies_ms.size else None,
        "server_rss_mb_before": rss_before,
        "server_rss_mb_after": server_rss(server),
    }


def long_m4a(path: Path, seconds: float) -> Path:
    """An M4A (AAC, 96 kbit/s, 44.1 kHz stereo) of `seconds`: a 440-Hz tone on the left, pink noise on the right."""
    sources = [f"sine=frequency=440:sample_rate=44100:duration={seconds:g}"]
    sources.append(f"anoisesrc=color=pink:sample_rate=44100:amplitude=0.2:duration={seconds:g}")
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    for source in sources:
        command += ["-f", "lavfi", "-i", source]
    command += ["-filter_complex", "[0][1]amerge=inputs=2[a]", "-map", "[a]", "-c:a", "aac", "-aac_coder", "fast"]
    subprocess.run([*command, "-b:a", "96k", str(path)], check=True)
    return path


def media_seconds(path: Path) -> float:
    """The length ffprobe reads from a media file's container, seconds."""
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


class RssSampler:
    """Samples the server's RSS (`server_rss`) every `interval` seconds in a thread; `peak` is the highest seen."""

    def __init__(self, server: psutil.Process, interval: float = 0.1) -> None:
        self.server, self.interval, self.peak = server, interval, server_rss(server)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, server_rss(self.server))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_long_uploads(url: str, path: Path, bursts: int, clients: int, server: psutil.Process) -> dict:
    """`bursts` times: `clients` threads each send `path` through the REST call at once; the server's RSS idle
    (before the first burst), after each burst and at its peak."""
    idle = server_rss(server)
    sampler = RssSampler(server)
    latencies: list[float] = []
    errors: list[str] = []
    after: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        start = time.perf_counter()
        try:
            with requests.Session() as session:
                rest_predict(session, url, path)
        except Exception as error:  # a failed request is a result to report
            with lock:
                errors.append(f"{type(error).__name__}: {error}"[:300])
            return
        with lock:
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(bursts):
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after.append(server_rss(server))
    wall = time.perf_counter() - start
    peak = sampler.stop()
    return {
        "bursts": bursts,
        "clients": clients,
        "file_seconds": round(media_seconds(path), 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "requests": bursts * clients,
        "ok": len(latencies),
        "failed": len(errors),
        "first_errors": errors[:5],
        "wall_s": round(wall, 1),
        "p50_s": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "server_rss_mb_idle": idle,
        "server_rss_mb_peak": peak,
        "server_rss_mb_after": after[-1] if after else idle,
        "server_rss_mb_after_each_burst": after,
    }


def server_rss(server: psutil.Process) -> float:
    """RSS of the app process and its children, MiB."""
    processes = [server, *server.children(recursive=True)]
    return round(sum(process.memory_info().rss for process in processes) / 2**20, 1)


def folder_mb(folder: Path) -> tuple[float, int]:
    files = [path for path in folder.rglob("*") if path.is_file()]
    return round(sum(path.stat().st_size for path in files) / 2**20, 1), len(files)


def markdown(result: dict, command: str) -> str:
    status = "**PRELIMINARY** — measured on a busy machine; not a final figure.\n\n" if result["preliminary"] else ""
    rows = "".join(
        f"| {level['clients']} | {level['requests']} | {level['ok']} | {level['refused']} | {level['failed']} "
        f"| {level['throughput_rps']} | {level['p50_ms']} | {level['p95_ms']} | {level['max_ms']} "
        f"| {level['server_rss_mb_before']:.0f} -> {level['server_rss_mb_after']:.0f} |\n"
        for level in result["levels"]
    )
    disk = result["disk"]
    return (
        "# Load test of the web app's REST API\n\n"
        f"{status}"
        f"`{command}`\n\n"
        f"{result['date']}, commit `{result['commit']}`, {result['machine']['cpus']} CPUs, "
        f"{result['machine']['platform']}.\n\n"
        f"Model `{result['model']}`, backend `{result['backend']}`, app.py's default serving settings "
        f"(`{result['server_settings']}`). Each level starts its clients at once; each client sends its requests "
        "one after another, each a different 5-s 44.1 kHz WAV through the two-step REST call (upload, call, "
        "event stream), no retries.\n\n"
        "| clients | requests | ok | refused (503) | failed | throughput (req/s) | p50 (ms) | p95 (ms) | max (ms) "
        "| server RSS (MiB) before -> after |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{rows}\n"
        f"Disk: after {disk['requests']} requests the upload folder held {disk['after_mb']} MiB in "
        f"{disk['after_files']} files; {disk['wait_s']:g} s later (`--keep-uploads {disk['keep_uploads_s']:g}`) "
        f"{disk['later_mb']} MiB in {disk['later_files']} files.\n\n"
        f"{long_uploads_markdown(result['long_uploads'])}"
        "Latency is the whole exchange as a client sees it, queueing included; the client threads run on the "
        "same machine as the server and take part of its 2 cores. Raw numbers: `bench/load.json`.\n"
    )


def long_uploads_markdown(long: dict | None) -> str:
    """The "long uploads" table: the server's RSS idle, at its peak and after bursts of concurrent long M4As."""
    if not long:
        return ""
    return (
        f"Long uploads, on a fresh server warmed up the same way: {long['bursts']} bursts of {long['clients']} "
        f"concurrent requests, each uploading the same {long['file_seconds']:g}-s M4A (AAC 96 kbit/s, 44.1 kHz "
        f"stereo, {long['file_mb']:g} MiB, made with ffmpeg from a tone and pink noise), the next burst once the "
        "last one has ended; RSS sampled every 0.1 s.\n\n"
        "| run | requests | ok | failed | p50 (s) | server RSS idle (MiB) | peak (MiB) | after (MiB) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| long uploads ({long['bursts']} x {long['clients']} x {long['file_seconds'] / 60:.0f}-min M4A) "
        f"| {long['requests']} | {long['ok']} | {long['failed']} | {long['p50_s']} "
        f"| {long['server_rss_mb_idle']:.0f} | {long['server_rss_mb_peak']:.0f} "
        f"| {long['server_rss_mb_after']:.0f} |\n\n"
        f"RSS after each burst (MiB): {', '.join(f'{mib:.0f}' for mib in long['server_rss_mb_after_each_burst'])}.\n\n"
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
    (work / "clips").mkdir()
    clips = Clips(work / "clips")
    uploads = work / "gradio-tmp"
    app_args = ["--model", str(args.model), "--backend", args.backend, "--no-examples"]
    app_args += ["--keep-uploads", str(args.keep_uploads)]
    with app_subprocess(app_args, work / "server.log", {"GRADIO_TEMP_DIR": str(uploads)}) as (url, process):
        server = psutil.Process(process.pid)
        warm_up(url, clips, args.warmup)
        levels = [
            run_level(url, clips, clients, per_client, server)
            for clients, per_client in zip(args.clients, args.requests_per_client)
        ]
        after_mb, after_files = folder_mb(uploads)
        wait = 2 * args.keep_uploads + 5
        time.sleep(wait)
        later_mb, later_files = folder_mb(uploads)
    long_uploads = None
    if args.long_bursts > 0:
        m4a = long_m4a(work / "long.m4a", args.long_seconds)
        with app_subprocess(app_args, work / "server-long.log", {"GRADIO_TEMP_DIR": str(uploads)}) as (url, process):
            warm_up(url, clips, args.warmup)
            long_uploads = run_long_uploads(url, m4a, args.long_bursts, args.long_clients, psutil.Process(process.pid))
    from esc50_hf.serving.server import DEFAULT_CONCURRENCY, DEFAULT_MAX_QUEUE

    result = {
        "preliminary": args.preliminary,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": str(Path(args.model).resolve().relative_to(REPO)) if Path(args.model).is_dir() else args.model,
        "backend": args.backend,
        "server_settings": f"--concurrency {DEFAULT_CONCURRENCY} --max-queue {DEFAULT_MAX_QUEUE}, dynamic batching",
        "levels": levels,
        "disk": {
            "requests": args.warmup + sum(level["requests"] for level in levels),
            "after_mb": after_mb,
            "after_files": after_files,
            "keep_uploads_s": args.keep_uploads,
            "wait_s": wait,
            "later_mb": later_mb,
            "later_files": later_files,
        },
        "long_uploads": long_uploads,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.output_dir / "LOAD.md").write_text(markdown(result, command.strip()))
    print(json.dumps(result, indent=2))
    runs = [*levels, *([long_uploads] if long_uploads else [])]
    return 0 if all(run["ok"] == run["requests"] for run in runs) else 1


def warm_up(url: str, clips: Clips, requests_count: int) -> None:
    """Untimed short requests, so that the first measured ones do not pay for the server's lazy set-up."""
    with requests.Session() as session:
        for _ in range(requests_count):
            rest_predict(session, url, clips.next())


if __name__ == "__main__":
    sys.exit(main())
