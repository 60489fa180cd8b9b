"""Speed, size, memory and parity benchmark: eager PyTorch vs ONNX Runtime vs int8, and AST for scale; the
self-contained waveform ONNX graph (`esc50-hf export-onnx --waveform`) against the Python path (`edge`).

    python bench/run.py --model models/esc50-mel-cnn --data-dir /tmp/esc50/ESC-50
    python bench/run.py --limit 20 --sections backends size --output-dir /tmp/bench  # a quick check
    python bench/run.py --sections edge --merge --data-dir /tmp/esc50/ESC-50  # only the waveform graph, rest kept

Writes `results.json` (every number) and `RESULTS.md` (tables, aims) into `--output-dir` (default
`bench/`). Each backend, AST and the training step are measured in a fresh process of their own, so
that peak RSS belongs to one backend and thread pools do not interfere. The report is marked
PRELIMINARY when `--limit` is used or the CPU was already busy when the run started.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402  (the one default model folder)

SECTIONS = ("backends", "ast", "training", "size", "pipeline", "edge")
BACKENDS = ("torch", "onnx", "int8")
PACKAGES = ("torch", "onnxruntime", "onnx", "transformers", "numpy", "torchaudio", "soundfile")
# The targets this benchmark reports against (from the "Production preparation and speed" issue).
AIM_P50_MS = 10.0
AIM_AST_RATIO = 20.0
AIM_ONNX_SPEEDUP = 1.5
AIM_PIPELINE_PATH_RATIO = 1.3  # pipeline(path) p50 at most this times pipeline({"array", "sampling_rate"}) p50
AIM_WAVEFORM_TOP1 = 0.995  # the waveform graph's top-1 equals the Python path's on at least this share of clips
BUSY_LOAD = 0.5  # 1-minute load average above which the machine is not idle enough for final numbers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="saved model folder")
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--fold", type=int, default=5, help="the clips measured; the other folds calibrate int8")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips of the fold (checks)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts to time")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput pass")
    parser.add_argument("--warmup", type=int, default=5, help="untimed clips before each latency run")
    parser.add_argument("--ast-clips", type=int, default=50, help="clips timed for AST (it is slow; p50 settles)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps (after 2 warm-up steps)")
    parser.add_argument("--train-config", default=str(ROOT / "configs" / "esc50.yaml"), help="training recipe")
    parser.add_argument("--calibration-clips", type=int, default=200, help="int8 calibration clips if exported here")
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    parser.add_argument("--preliminary", action="store_true", help="mark the report PRELIMINARY whatever the load")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the sections not run now from the existing results.json (each section keeps its own date)",
    )
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- measurement helpers


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far.

    VmHWM where there is /proc: ru_maxrss survives exec on Linux, so a spawned child would
    report its parent's peak.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS: rough


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "mean_ms": float(values.mean()),
    }


def time_per_clip(paths: list[str], stages: dict[str, Callable[[Any], Any]], warmup: int, desc: str) -> dict[str, Any]:
    """Runs `stages` in order on each clip (first stage gets the path); p50/p95 of the total and of each stage."""
    return time_interleaved(paths, {desc: stages}, warmup, desc)[desc]


def time_interleaved(
    paths: list[str], pipelines: dict[str, dict[str, Callable[[Any], Any]]], warmup: int, desc: str
) -> dict[str, dict[str, Any]]:
    """`time_per_clip` for several pipelines taking turns on each clip, so that a change in machine load
    weighs on all of them alike."""
    for path in paths[:warmup]:
        for stages in pipelines.values():
            value = path
            for stage in stages.values():
                value = stage(value)
    totals = {kind: [] for kind in pipelines}
    per_stage = {kind: {name: [] for name in stages} for kind, stages in pipelines.items()}
    for path in tqdm(paths, desc=desc, unit="clip", leave=False):
        for kind, stages in pipelines.items():
            value, start = path, time.perf_counter()
            for name, stage in stages.items():
                stage_start = time.perf_counter()
                value = stage(value)
                per_stage[kind][name].append(time.perf_counter() - stage_start)
            totals[kind].append(time.perf_counter() - start)
    return {
        kind: {
            "clips": len(paths),
            **percentiles_ms(totals[kind]),
            "stages_p50_ms": {name: percentiles_ms(values)["p50_ms"] for name, values in per_stage[kind].items()},
        }
        for kind in pipelines
    }


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Runs `function(*args)` in a new (spawned) interpreter: its own peak RSS, its own thread pools."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# ---------------------------------------------------------------------------------------------- the pipeline


def measure_pipeline(model_dir: str, paths: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """p50 per clip, one thread, of this project's pipeline on a file path and on the same audio as an array,
    and of transformers' generic `AudioClassificationPipeline` on the path (it runs the `ffmpeg` binary)."""
    import soundfile as sf
    import torch
    from transformers import AudioClassificationPipeline, pipeline
    from transformers.utils import logging as hf_logging

    from esc50_hf import audio_pipeline

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    runs = {
        "ours_path": audio_pipeline(model_dir),
        "ours_array": None,  # the same pipeline, given the decoded samples
        "generic_path": pipeline("audio-classification", model=model_dir, pipeline_class=AudioClassificationPipeline),
    }
    runs["ours_array"] = runs["ours_path"]
    arrays = {}
    for path in paths:
        samples, rate = sf.read(path, dtype="float32")
        arrays[path] = {"array": samples, "sampling_rate": rate}
    inputs = {"ours_path": str, "ours_array": arrays.__getitem__, "generic_path": str}
    for path in paths[: options["warmup"]]:
        for name, classifier in runs.items():
            classifier(inputs[name](path), top_k=5)
    times: dict[str, list[float]] = {name: [] for name in runs}
    agree = 0
    for index, path in enumerate(tqdm(paths, desc="pipeline", leave=False)):
        order = list(runs)[index % 3 :] + list(runs)[: index % 3]  # rotate, so that no variant always goes first
        answers = {}
        for name in order:
            start = time.perf_counter()
            answers[name] = runs[name](inputs[name](path), top_k=5)[0]["label"]
            times[name].append((time.perf_counter() - start) * 1000)
        agree += answers["ours_path"] == answers["ours_array"]
    p50 = {name: float(np.percentile(values, 50)) for name, values in times.items()}
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": options.get("load_average"),
        "clips": len(paths),
        "threads": 1,
        "p50_ms": p50,
        "p95_ms": {name: float(np.percentile(values, 95)) for name, values in times.items()},
        "path_over_array": p50["ours_path"] / p50["ours_array"],
        "generic_path_over_ours_path": p50["generic_path"] / p50["ours_path"],
        "top1_path_equals_array": agree / len(paths),
    }


# ---------------------------------------------------------------------------------------------- the CNN backends


def _make_backend(kind: str, model_dir: str, onnx_files: dict[str, str], threads: int) -> Callable:
    import torch

    from esc50_hf.inference.backends import load_backend

    torch.set_num_threads(threads)  # the log-mel front end runs in torch whatever the backend
    if kind == "torch":
        return load_backend(model_dir, "torch", num_threads=threads)
    return load_backend(model_dir, "onnx", num_threads=threads, quantized=onnx_files[kind])


def measure_backend(
    kind: str, model_dir: str, onnx_files: dict[str, str], paths: list[str], options: dict[str, Any]
) -> dict[str, Any]:
    """Per-clip latency and batch throughput at each thread count, fold logits, peak RSS (in its own process)."""
    from esc50_hf.model.audio_io import load_audio
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    extractor = Esc50FeatureExtractor.from_pretrained(model_dir)
    rate = extractor.sampling_rate
    result: dict[str, Any] = {"rss_after_imports_mb": peak_rss_mb(), "latency": {}, "throughput": {}}
    for threads in options["threads"]:
        backend = _make_backend(kind, model_dir, onnx_files, threads)
        stages = {
            "decode": lambda path: load_audio(path, rate),
            "features": lambda waveform: extractor(waveform, sampling_rate=rate)["input_values"],
            "model": backend,
        }
        result["latency"][str(threads)] = time_per_clip(
            paths[: options["latency_clips"]], stages, options["warmup"], f"{kind} x{threads} latency"
        )
        seconds, logits = _batch_pass(backend, extractor, paths, options["batch_size"], f"{kind} x{threads} batches")
        result["throughput"][str(threads)] = {"clips_per_s": len(paths) / seconds, "batch_size": options["batch_size"]}
        del backend
    result["logits"] = logits.tolist()  # from the last thread count; logits do not depend on it
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _batch_pass(
    backend: Callable, extractor: Any, paths: list[str], batch_size: int, desc: str
) -> tuple[float, np.ndarray]:
    """Decode -> features -> model on the whole list in batches; returns (seconds, logits)."""
    from esc50_hf.model.audio_io import load_audio

    logits, start = [], time.perf_counter()
    for first in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch", leave=False):
        waveforms = [load_audio(path, extractor.sampling_rate) for path in paths[first : first + batch_size]]
        features = extractor(waveforms, sampling_rate=extractor.sampling_rate)["input_values"]
        logits.append(backend(features))
    return time.perf_counter() - start, np.concatenate(logits)


def parity_and_accuracy(results: dict[str, Any], labels: np.ndarray) -> dict[str, Any]:
    """Fold accuracy per backend; top-1 agreement and max |logit difference| of each backend against torch."""
    from esc50_hf.evaluation.metrics import classification_metrics

    logits = {kind: np.asarray(result.pop("logits")) for kind, result in results.items()}
    report: dict[str, Any] = {"clips": len(labels)}
    for kind, values in logits.items():
        report[kind] = classification_metrics(values.argmax(-1), labels)
        if kind != "torch" and "torch" in logits:
            report[kind]["top1_agreement_with_torch"] = float((values.argmax(-1) == logits["torch"].argmax(-1)).mean())
            report[kind]["max_abs_logit_diff_vs_torch"] = float(np.abs(values - logits["torch"]).max())
    if "torch" in logits and "onnx" in logits:
        report["onnx_top1_identical"] = bool(report["onnx"]["top1_agreement_with_torch"] == 1.0)
    return report


# ---------------------------------------------------------------------------------------------- AST and training


def measure_ast(paths: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """Per-clip latency of a randomly initialised default-size AST with its own 16 kHz feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    from esc50_hf.model.audio_io import load_audio
    from esc50_hf.model.labels import NUM_LABELS

    rss_after_imports = peak_rss_mb()
    torch.manual_seed(0)
    extractor = ASTFeatureExtractor()
    model = ASTForAudioClassification(ASTConfig(num_labels=NUM_LABELS)).eval()
    rate = extractor.sampling_rate
    parameters = sum(p.numel() for p in model.parameters())
    result: dict[str, Any] = {"parameters": parameters, "rss_after_imports_mb": rss_after_imports, "latency": {}}
    for threads in options["threads"]:
        torch.set_num_threads(threads)
        stages = {
            "decode": lambda path: load_audio(path, rate),  # includes resampling 22.05 -> 16 kHz
            "features": lambda waveform: extractor(waveform, sampling_rate=rate, return_tensors="pt"),
            "model": torch.inference_mode()(lambda inputs: model(**inputs).logits),
        }
        result["latency"][str(threads)] = time_per_clip(
            paths[: options["ast_clips"]], stages, min(options["warmup"], 2), f"AST x{threads} latency"
        )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def measure_training(config_path: str, train_clips: int, steps: int) -> dict[str, Any]:
    """Forward + backward + AdamW step on random features of the cached size, as the recipe sets them up.

    What the Trainer adds (data loading, SpecAugment and mixup on cached features, logging,
    checkpoints) is not measured; this is the compute cost of one optimisation step.
    """
    import torch

    from esc50_hf.training.arguments import build_feature_extractor, build_model, parse_args

    setup = parse_args(["--config", config_path, "--report_to", "none"])
    config = setup.training
    frames = build_feature_extractor(setup.model).num_frames
    torch.manual_seed(0)
    model = build_model(setup.model).train()
    # The Trainer's default on torch >= 2.8 is fused AdamW (it exempts biases and norms from decay: same cost).
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    batch = config.per_device_train_batch_size
    inputs = torch.randn(batch, setup.model.num_mel_bins, frames)
    targets = torch.softmax(torch.randn(batch, model.config.num_labels), -1)  # mixup-style soft labels

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            loss = model(input_values=inputs, labels=targets).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the Trainer's max_grad_norm
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc="training steps", leave=False):
        step()
    seconds_per_step = (time.perf_counter() - start) / steps
    return {
        "batch_size": batch,
        "input_shape": [batch, setup.model.num_mel_bins, frames],
        "bf16_autocast": config.bf16,
        "optimizer": "AdamW (fused)",
        "channels_last": all(
            p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4
        ),
        "threads": torch.get_num_threads(),
        "timed_steps": steps,
        "seconds_per_step": seconds_per_step,
        "samples_per_s": batch / seconds_per_step,
        "train_clips_per_epoch": train_clips,
        "epoch_seconds": int(np.ceil(train_clips / batch)) * seconds_per_step,
        "peak_rss_mb": peak_rss_mb(),
    }


# ---------------------------------------------------------------------------------------------- inputs


def fold_clips(data_dir: str | None, fold: int, limit: int | None) -> tuple[list[str], np.ndarray, Any]:
    """Paths and labels of the fold's clips (at most `limit`), and the training split (for calibration)."""
    from datasets import Audio

    from esc50_hf.data.esc50 import load_esc50, split_folds

    splits = split_folds(load_esc50(data_dir), fold)
    clips = splits["validation"]
    if limit is not None:
        clips = clips.select(range(min(limit, len(clips))))
    paths = [audio["path"] for audio in clips.cast_column("audio", Audio(decode=False))["audio"]]
    return paths, np.asarray(clips["label"]), splits["train"]


def onnx_files(model_dir: Path, train_split: Any, calibration_clips: int) -> dict[str, str]:
    """`model.onnx` / `model.int8.onnx` from the model folder, else exported once into bench/.cache/."""
    from esc50_hf.inference.onnx_backend import INT8_FILE, ONNX_FILE
    from esc50_hf.inference.onnx_export import calibration_features, export_onnx, quantize_int8
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    cache = cache_dir(model_dir, calibration_clips)
    files = {}
    for kind, name in (("onnx", ONNX_FILE), ("int8", INT8_FILE)):
        files[kind] = str(model_dir / name) if (model_dir / name).is_file() else str(cache / name)
    if not Path(files["onnx"]).is_file():
        export_onnx(model_dir, files["onnx"])
    if not Path(files["int8"]).is_file():
        extractor = Esc50FeatureExtractor.from_pretrained(model_dir)
        quantize_int8(files["onnx"], calibration_features(train_split, extractor, calibration_clips), files["int8"])
    return files


def cache_dir(model_dir: Path, calibration_clips: int | None = None) -> Path:
    """bench/.cache/<hash of the weights file (and calibration size)>: exports made here are reused while it holds."""
    weights = model_dir / "model.safetensors"
    stamp = f"{weights.resolve()}:{weights.stat().st_mtime_ns}:{weights.stat().st_size}:{calibration_clips}"
    return ROOT / "bench" / ".cache" / hashlib.sha1(stamp.encode()).hexdigest()[:12]


def waveform_files(model_dir: Path, train_split: Any, calibration_clips: int) -> dict[str, str]:
    """The waveform graph and its int8 twins (static, calibrated on training clips; dynamic), exported once into
    bench/.cache/ (never the model folder)."""
    from esc50_hf.inference.onnx_export import (
        WAVEFORM_FILE,
        WAVEFORM_INT8_FILE,
        calibration_waveforms,
        export_waveform_onnx,
        quantize_waveform_int8,
    )
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    cache = cache_dir(model_dir, calibration_clips)
    files = {
        "waveform": str(cache / WAVEFORM_FILE),
        "waveform int8 (static)": str(cache / WAVEFORM_INT8_FILE),
        "waveform int8 (dynamic)": str(cache / "model.waveform.int8-dynamic.onnx"),
    }
    if not Path(files["waveform"]).is_file():
        export_waveform_onnx(model_dir, files["waveform"])
    if not Path(files["waveform int8 (static)"]).is_file():
        calibration = calibration_waveforms(
            train_split, Esc50FeatureExtractor.from_pretrained(model_dir), calibration_clips
        )
        quantize_waveform_int8(files["waveform"], files["waveform int8 (static)"], calibration)
    if not Path(files["waveform int8 (dynamic)"]).is_file():
        quantize_waveform_int8(files["waveform"], files["waveform int8 (dynamic)"])
    return files


def measure_edge(
    model_dir: str, feature_onnx: str, files: dict[str, str], paths: list[str], options: dict[str, Any]
) -> dict[str, Any]:
    """The waveform graphs against the Python path (`SoundClassifier`, PyTorch) on every clip: top-1 agreement,
    max |probability difference|, accuracy; then p50 per clip on one thread beside the feature-input graph."""
    import onnxruntime as ort
    import torch

    from esc50_hf.inference.classifier import SoundClassifier
    from esc50_hf.inference.onnx_backend import OnnxBackend
    from esc50_hf.inference.onnx_export import PROBABILITIES_NAME, WAVEFORM_INPUT_NAME
    from esc50_hf.model.audio_io import load_audio

    torch.set_num_threads(1)
    classifier = SoundClassifier(model_dir, "torch", num_threads=1)
    rate, index = classifier.sampling_rate, {label: column for column, label in enumerate(classifier.labels)}
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = session_options.inter_op_num_threads = 1
    sessions = {
        kind: ort.InferenceSession(path, session_options, providers=["CPUExecutionProvider"])
        for kind, path in files.items()
    }

    def graph(kind: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda waveform: sessions[kind].run([PROBABILITIES_NAME], {WAVEFORM_INPUT_NAME: waveform[None]})[0]

    python_rows, graph_rows = [], {kind: [] for kind in files}
    for path in tqdm(paths, desc="waveform graph parity", unit="clip", leave=False):
        row = np.zeros(len(index))
        for score in classifier.predict(path, top_k=len(index)).labels:
            row[index[score.label]] = score.score
        python_rows.append(row)
        waveform = load_audio(path, rate)
        for kind in files:
            graph_rows[kind].append(graph(kind)(waveform)[0])
    python_probabilities = np.stack(python_rows)
    result: dict[str, Any] = {"python_top1": python_probabilities.argmax(-1).tolist(), "graphs": {}}
    for kind, rows in graph_rows.items():
        probabilities = np.stack(rows)
        result["graphs"][kind] = {
            "top1": probabilities.argmax(-1).tolist(),
            "top1_agreement_with_python": float((probabilities.argmax(-1) == python_probabilities.argmax(-1)).mean()),
            "max_abs_probability_diff": float(np.abs(probabilities - python_probabilities).max()),
            "size_mb": Path(files[kind]).stat().st_size / 1e6,
        }
    feature_graph = OnnxBackend(model_dir, num_threads=1, quantized=feature_onnx)
    extractor = classifier.extractor
    timed = {
        **{kind: {"decode": lambda path: load_audio(path, rate), "graph": graph(kind)} for kind in files},
        "features + feature graph": {
            "decode": lambda path: load_audio(path, rate),
            "features": lambda waveform: extractor(waveform, sampling_rate=rate)["input_values"],
            "graph": feature_graph,
        },
    }
    result["latency_1_thread"] = time_interleaved(paths, timed, options["warmup"], "edge latency")
    result["load_average_at_end"] = os.getloadavg()
    return result


def edge_report(measured: dict[str, Any], labels: np.ndarray) -> dict[str, Any]:
    """Adds each graph's accuracy (and the Python path's) and whether top-1 agreement meets the aim."""
    python_top1 = np.asarray(measured.pop("python_top1"))
    measured["python_accuracy"] = float((python_top1 == labels).mean())
    for values in measured["graphs"].values():
        values["accuracy"] = float((np.asarray(values.pop("top1")) == labels).mean())
        values["meets_top1_aim"] = values["top1_agreement_with_python"] >= AIM_WAVEFORM_TOP1
    return measured


def file_sizes_mb(model_dir: Path, files: dict[str, str]) -> dict[str, float]:
    paths = {"safetensors": model_dir / "model.safetensors", **{kind: Path(path) for kind, path in files.items()}}
    return {kind: path.stat().st_size / 1e6 for kind, path in paths.items() if path.is_file()}


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    flags: list[str] = []
    if Path("/proc/cpuinfo").is_file():
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
        flag_line = next((line for line in info if line.startswith("flags")), "")
        flags = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if flag in flag_line]
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {package: version(package) for package in PACKAGES},
        "openblas_env": {key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_")},
    }


# ---------------------------------------------------------------------------------------------- report


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers the aims are about: ONNX speed-up over eager, AST slowdown relative to ours."""
    backends, ast = results.get("backends", {}), results.get("ast")
    out: dict[str, Any] = {}
    for threads in map(str, results["settings"]["threads"]):
        p50 = {kind: backends[kind]["latency"][threads]["p50_ms"] for kind in backends}
        model_p50 = {kind: backends[kind]["latency"][threads]["stages_p50_ms"]["model"] for kind in backends}
        entry: dict[str, Any] = {}
        for kind in ("onnx", "int8"):
            if kind in p50 and "torch" in p50:
                entry[f"{kind}_speedup_vs_torch"] = p50["torch"] / p50[kind]
                entry[f"{kind}_model_only_speedup_vs_torch"] = model_p50["torch"] / model_p50[kind]
        if ast is not None:
            for kind, value in p50.items():
                entry[f"ast_over_{kind}"] = ast["latency"][threads]["p50_ms"] / value
        out[threads] = entry
    return out


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Benchmark results", ""]
    if results["preliminary"]:
        lines += [f"> **PRELIMINARY — not final numbers.** {'; '.join(results['preliminary'])}.", ""]
    settings = results["settings"]
    lines += [
        f"Run {results['date']} with `python bench/run.py {' '.join(settings['argv'])}`.",
        f"Model `{settings['model']}`; ESC-50 fold {settings['fold']}, {settings['clips']} clips. "
        "Latency is per 5-s clip, one clip at a time, from the WAV path: decode (`esc50_hf.model.audio_io.load_audio`) "
        "-> log-mel (`Esc50FeatureExtractor`) -> network. Raw numbers: `results.json`.",
        "",
    ]
    if "merged_from" in results:
        merged = results["merged_from"]
        lines += [
            f"Only `{' '.join(settings['sections'])}` was measured in this run; the other sections are from the run "
            f"of {merged['date']} (`python bench/run.py {' '.join(merged['argv'])}`), kept by `--merge`.",
            "",
        ]
    lines += _machine_table(results["machine"])
    if "backends" in results:
        lines += _latency_table(results)
        lines += _throughput_table(results)
        lines += _parity_table(results["parity"])
    if "sizes_mb" in results:
        lines += ["## Model size on disk", "", "| file | MB |", "| --- | ---: |"]
        lines += [f"| {kind} | {size:.2f} |" for kind, size in results["sizes_mb"].items()] + [""]
    if "training" in results:
        lines += _training_table(results["training"])
    if "pipeline" in results:
        lines += _pipeline_table(results["pipeline"])
    if "edge" in results:
        lines += _edge_table(results["edge"], results["settings"]["clips"], results["settings"]["calibration_clips"])
    lines += _aims_table(results)
    return "\n".join(lines) + "\n"


def _machine_table(machine: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{name} {value}" for name, value in machine["versions"].items())
    return [
        "## Machine",
        "",
        f"- CPU: {machine['cpu']} ({machine['usable_cpus']} usable of {machine['logical_cpus']} logical CPUs; "
        f"{', '.join(machine['cpu_flags']) or 'no AVX-512'}), {machine['memory_gb']} GB RAM",
        f"- load average at start: {', '.join(f'{value:.2f}' for value in machine['load_average_at_start'])}",
        f"- Python {machine['python']}, {versions}",
        f"- {machine['platform']}; OPENBLAS env: {machine['openblas_env'] or 'none'}",
        "",
    ]


def _latency_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Per-clip latency (ms)",
        "",
        "| backend | threads | p50 | p95 | decode p50 | features p50 | model p50 | RSS after imports (MB) "
        "| peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [(kind, result) for kind, result in results["backends"].items()]
    if "ast" in results:
        rows.append(("AST (random init, 16 kHz)", results["ast"]))
    for kind, result in rows:
        for threads, latency in result["latency"].items():
            stages = latency["stages_p50_ms"]
            lines.append(
                f"| {kind} | {threads} | {latency['p50_ms']:.2f} | {latency['p95_ms']:.2f} | {stages['decode']:.2f} "
                f"| {stages['features']:.2f} | {stages['model']:.2f} | {result['rss_after_imports_mb']:.0f} "
                f"| {result['peak_rss_mb']:.0f} |"
            )
    ast_clips = results["ast"]["latency"][str(results["settings"]["threads"][0])]["clips"] if "ast" in results else 0
    note = f" AST is timed on the first {ast_clips} clips." if ast_clips else ""
    rss_note = (
        "Peak RSS is that of a fresh process running one backend; most of it is the libraries every "
        "process imports (torch, transformers, datasets), shown as RSS after imports."
    )
    return lines + ["", rss_note + note, ""]


def _throughput_table(results: dict[str, Any]) -> list[str]:
    lines = ["## Batch throughput (decode -> features -> model)", "", "| backend | threads | clips/s |"]
    lines.append("| --- | ---: | ---: |")
    for kind, result in results["backends"].items():
        for threads, value in result["throughput"].items():
            lines.append(f"| {kind} | {threads} | {value['clips_per_s']:.1f} |")
    return lines + ["", f"Batches of {results['settings']['batch_size']} clips over the whole fold.", ""]


def _parity_table(parity: dict[str, Any]) -> list[str]:
    lines = [
        f"## Accuracy and parity on the {parity['clips']} clips",
        "",
        "| backend | accuracy | macro-F1 | top-1 agreement with torch | max abs logit diff vs torch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind in BACKENDS:
        if kind in parity:
            values = parity[kind]
            agreement = values.get("top1_agreement_with_torch")
            diff = values.get("max_abs_logit_diff_vs_torch")
            lines.append(
                f"| {kind} | {values['accuracy']:.4f} | {values['f1']:.4f} | "
                f"{'-' if agreement is None else f'{agreement:.4f}'} | {'-' if diff is None else f'{diff:.2e}'} |"
            )
    if "onnx_top1_identical" in parity:
        lines += ["", f"ONNX Runtime top-1 identical to PyTorch on every clip: **{parity['onnx_top1_identical']}**"]
    return lines + [""]


def _training_table(training: dict[str, Any]) -> list[str]:
    return [
        "## Training step",
        "",
        f"Forward + backward + fused AdamW step (bf16 autocast: {training['bf16_autocast']}, channels-last: "
        f"{training.get('channels_last', False)}, grad-norm clipping) on "
        f"random inputs of the cached size {training['input_shape']}, {training['threads']} threads, "
        f"{training['timed_steps']} timed steps after 2 warm-up steps. Data loading, SpecAugment/mixup, evaluation "
        "and checkpoints are not included.",
        "",
        f"| samples/s | s/step | epoch of {training['train_clips_per_epoch']} clips (s) | peak RSS (MB) |",
        "| ---: | ---: | ---: | ---: |",
        f"| {training['samples_per_s']:.1f} | {training['seconds_per_step']:.3f} | {training['epoch_seconds']:.1f} | "
        f"{training['peak_rss_mb']:.0f} |",
        "",
    ]


def _pipeline_table(pipeline: dict[str, Any]) -> list[str]:
    p50, p95 = pipeline["p50_ms"], pipeline["p95_ms"]
    load = pipeline.get("load_average_at_start") or [float("nan")]
    return [
        "## The `transformers` pipeline: file path against array input",
        "",
        f"Measured {pipeline['date']} (1-min load average at start {load[0]:.2f}), {pipeline['clips']} 5-s WAVs "
        f"(22.05 kHz), one thread, one clip at a time, the three variants in turn on each clip.",
        "",
        "| variant | p50 (ms) | p95 (ms) |",
        "| --- | ---: | ---: |",
        f"| `audio_pipeline(model)(path)`: this project's pipeline, in-process decoding | "
        f"{p50['ours_path']:.2f} | {p95['ours_path']:.2f} |",
        f"| `audio_pipeline(model)({{'array', 'sampling_rate'}})`: the same, decoded samples given | "
        f"{p50['ours_array']:.2f} | {p95['ours_array']:.2f} |",
        f"| transformers' generic `AudioClassificationPipeline(path)` (`ffmpeg` binary per call; first 5 s only) | "
        f"{p50['generic_path']:.2f} | {p95['generic_path']:.2f} |",
        "",
        f"Path over array: **{pipeline['path_over_array']:.2f}x** (aim <= {AIM_PIPELINE_PATH_RATIO}x); the generic "
        f"pipeline's path input is {pipeline['generic_path_over_ours_path']:.1f}x slower than ours. Same top-1 from "
        f"path and array on {100 * pipeline['top1_path_equals_array']:.0f} % of clips.",
        "",
    ]


def _edge_table(edge: dict[str, Any], clips: int, calibration_clips: int) -> list[str]:
    lines = [
        "## The self-contained waveform graph (`esc50-hf export-onnx --waveform`)",
        "",
        f"Waveform in, probabilities out: the log-mel front end inside the ONNX graph. Against the Python path "
        f"(`SoundClassifier`, PyTorch; accuracy {edge['python_accuracy']:.4f}) on the same {clips} decoded clips; "
        "latency per clip on one thread (ONNX Runtime CPU), one clip at a time, decode included, beside the "
        "feature-input graph (`model.onnx`, log-mel in Python), the graphs taking turns on each clip. The int8 "
        "graphs quantize the network only (the front end stays float32): static is calibrated on "
        f"{calibration_clips} training clips (`esc50-hf export-onnx --waveform --int8`), dynamic needs no data. "
        "1-min load average at the end "
        f"{edge['load_average_at_end'][0]:.2f}.",
        "",
        "| graph | MB | accuracy | top-1 identical to Python | max abs probability diff |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, values in edge["graphs"].items():
        lines.append(
            f"| {kind} | {values['size_mb']:.2f} | {values['accuracy']:.4f} | "
            f"{100 * values['top1_agreement_with_python']:.2f} % | {values['max_abs_probability_diff']:.2e} |"
        )
    lines += ["", "| one thread | p50 (ms) | p95 (ms) | decode p50 | features p50 | graph p50 |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, latency in edge["latency_1_thread"].items():
        stages = latency["stages_p50_ms"]
        features = f"{stages['features']:.2f}" if "features" in stages else "(in the graph)"
        lines.append(
            f"| {kind} | {latency['p50_ms']:.2f} | {latency['p95_ms']:.2f} | {stages['decode']:.2f} | {features} "
            f"| {stages['graph']:.2f} |"
        )
    return lines + [""]


def _aims_table(results: dict[str, Any]) -> list[str]:
    if "backends" not in results and "pipeline" not in results and "edge" not in results:
        return []
    lines = ["## Against the aims", "", "| aim | threads | measured | met |", "| --- | ---: | --- | --- |"]

    def row(aim: str, threads: str, measured: str, met: bool) -> None:
        lines.append(f"| {aim} | {threads} | {measured} | {'yes' if met else 'no'} |")

    for kind, result in results.get("backends", {}).items():
        if "1" in result["latency"]:
            p50 = result["latency"]["1"]["p50_ms"]
            row(f"p50 <= {AIM_P50_MS:.0f} ms per clip ({kind})", "1", f"{p50:.2f} ms", p50 <= AIM_P50_MS)
    if "pipeline" in results:
        ratio = results["pipeline"]["path_over_array"]
        row(f"pipeline(path) p50 <= {AIM_PIPELINE_PATH_RATIO}x pipeline(array)", "1", f"{ratio:.2f}x",
            ratio <= AIM_PIPELINE_PATH_RATIO)  # fmt: skip
    for kind, values in results.get("edge", {}).get("graphs", {}).items():
        agreement = values["top1_agreement_with_python"]
        row(f"{kind} graph: top-1 identical to Python >= {100 * AIM_WAVEFORM_TOP1:.1f} %", "-",
            f"{100 * agreement:.2f} %", values["meets_top1_aim"])  # fmt: skip
    for threads, entry in results["ratios"].items():
        for kind in BACKENDS:
            if f"ast_over_{kind}" in entry:
                value = entry[f"ast_over_{kind}"]
                row(
                    f">= {AIM_AST_RATIO:.0f}x faster than AST ({kind})",
                    threads,
                    f"{value:.1f}x",
                    value >= AIM_AST_RATIO,
                )
        for kind in ("onnx", "int8"):
            if f"{kind}_speedup_vs_torch" in entry:
                value, model_only = entry[f"{kind}_speedup_vs_torch"], entry[f"{kind}_model_only_speedup_vs_torch"]
                row(
                    f"{kind} >= {AIM_ONNX_SPEEDUP}x eager (end to end; network alone)",
                    threads,
                    f"{value:.2f}x; {model_only:.2f}x",
                    value >= AIM_ONNX_SPEEDUP,
                )
    return lines + [""]


# ---------------------------------------------------------------------------------------------- main


def preliminary_reasons(args: argparse.Namespace, load: float) -> list[str]:
    reasons = []
    if args.preliminary:
        reasons.append("marked preliminary on the command line")
    if args.limit is not None:
        reasons.append(f"--limit {args.limit}: only part of the fold was measured")
    if load > BUSY_LOAD:
        reasons.append(f"the CPU was busy when the run started (1-min load average {load:.2f})")
    return reasons


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"{model_dir} is not a saved model folder (no config.json); pass --model DIR.")
    machine = machine_facts()
    paths, labels, train_split = fold_clips(args.data_dir, args.fold, args.limit)
    for path in paths:
        Path(path).read_bytes()  # warm the page cache, so that no backend pays for the first disk read
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "preliminary": preliminary_reasons(args, machine["load_average_at_start"][0]),
        "machine": machine,
        "settings": {**vars(args), "argv": argv, "clips": len(paths)},
    }
    files = (
        onnx_files(model_dir, train_split, args.calibration_clips) if {"backends", "size"} & set(args.sections) else {}
    )
    results["onnx_files"] = files
    options = {
        "threads": args.threads,
        "warmup": args.warmup,
        "batch_size": args.batch_size,
        "latency_clips": len(paths),
        "ast_clips": min(args.ast_clips, len(paths)),
    }
    if "size" in args.sections:
        results["sizes_mb"] = file_sizes_mb(model_dir, files)
    if "backends" in args.sections:
        measured = {
            kind: in_fresh_process(measure_backend, kind, str(model_dir), files, paths, options)
            for kind in tqdm(args.backends, desc="backends")
        }
        results["parity"] = parity_and_accuracy(measured, labels)
        results["backends"] = measured
    if "ast" in args.sections:
        results["ast"] = in_fresh_process(measure_ast, paths, options)
    if "training" in args.sections:
        results["training"] = in_fresh_process(measure_training, args.train_config, len(train_split), args.train_steps)
    if "pipeline" in args.sections:
        pipeline_options = {**options, "load_average": os.getloadavg()}
        results["pipeline"] = in_fresh_process(measure_pipeline, str(model_dir), paths, pipeline_options)
    if "edge" in args.sections:
        feature_onnx = files.get("onnx") or onnx_files(model_dir, train_split, args.calibration_clips)["onnx"]
        measured = in_fresh_process(
            measure_edge,
            str(model_dir),
            feature_onnx,
            waveform_files(model_dir, train_split, args.calibration_clips),
            paths,
            options,
        )
        results["edge"] = edge_report(measured, labels)
    previous = Path(args.output_dir) / "results.json"
    if args.merge and previous.is_file():  # the sections not run now, as they were measured before
        earlier = json.loads(previous.read_text())
        kept = {"backends": ["backends", "parity", "onnx_files"], "ast": ["ast"], "training": ["training"]}
        kept |= {"size": ["sizes_mb"], "pipeline": ["pipeline"], "edge": ["edge"]}
        for section in set(SECTIONS) - set(args.sections):
            for key in kept[section]:
                if key in earlier:
                    results[key] = earlier[key]
        if "backends" not in args.sections:
            # A file that was itself merged keeps naming the run its kept sections came from.
            results["merged_from"] = earlier.get("merged_from") or {
                "date": earlier["date"],
                "argv": earlier["settings"]["argv"],
            }
    results["ratios"] = ratios(results) if "backends" in results else {}
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    results = run(args, argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (output / "RESULTS.md").write_text(render_markdown(results))
    status = "PRELIMINARY: " + "; ".join(results["preliminary"]) if results["preliminary"] else "final"
    print(f"wrote {output / 'RESULTS.md'} and {output / 'results.json'} ({status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
