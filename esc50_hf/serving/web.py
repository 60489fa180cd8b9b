"""The static browser page: `web/` (HTML + JS), the waveform ONNX graph and ONNX Runtime Web, in one folder.

The runtime is the pinned `onnxruntime-web` package from the npm registry, downloaded once (its integrity checked)
into a cache and copied into each folder written: the page fetches nothing from the internet when it runs.
"""

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from ..errors import Esc50HfError, OutputExistsError
from ..inference.classifier import ModelLoadError
from ..inference.onnx_export import (
    CLIP_SAMPLES_METADATA_KEY,
    LABELS_METADATA_KEY,
    SAMPLING_RATE_METADATA_KEY,
    UNKNOWN_QUANTILES_METADATA_KEY,
    UNKNOWN_THRESHOLD_METADATA_KEY,
    export_waveform_onnx,
    onnx_metadata,
    quantize_waveform_int8,
)
from ..model.windows import WINDOW_POWER_FLOOR
from ..paths import WEB_DIR

ONNXRUNTIME_WEB_VERSION = "1.31.1"
# `npm view onnxruntime-web@1.31.1 dist.integrity`: the tarball must hash to this.
ONNXRUNTIME_WEB_INTEGRITY = (
    "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
)
ONNXRUNTIME_WEB_URL = (
    f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ONNXRUNTIME_WEB_VERSION}.tgz"  # npm's registry
)
# The WebAssembly build alone (no WebGL/WebGPU): its loader, its module and its single-SIMD binary.
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("index.html", "app.js")
MODEL_FILE = "model.onnx"
METADATA_FILE = "model.json"


class RuntimeDownloadError(Esc50HfError):
    """ONNX Runtime Web could not be fetched from the npm registry, or its tarball failed the integrity check."""


def cache_dir() -> Path:
    """Where the runtime is kept: `$ESC50_HF_CACHE`, else `$XDG_CACHE_HOME/esc50-hf`, else `~/.cache/esc50-hf`."""
    if "ESC50_HF_CACHE" in os.environ:
        return Path(os.environ["ESC50_HF_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "esc50-hf"


def fetch_onnxruntime_web(cache: str | Path | None = None) -> Path:
    """The folder holding `RUNTIME_FILES` of the pinned onnxruntime-web, downloaded (once) if not cached.

    Args:
        cache (`str` or `Path`, *optional*): Cache folder (default `cache_dir()`).

    Raises:
        `RuntimeDownloadError`: the registry cannot be reached, or the tarball is not the pinned one.
    """
    folder = Path(cache or cache_dir()) / f"onnxruntime-web-{ONNXRUNTIME_WEB_VERSION}"
    if all((folder / name).is_file() for name in RUNTIME_FILES):
        return folder
    try:
        with urllib.request.urlopen(ONNXRUNTIME_WEB_URL, timeout=120) as response:
            tarball = response.read()
    except OSError as error:
        raise RuntimeDownloadError(
            f"Cannot download ONNX Runtime Web from {ONNXRUNTIME_WEB_URL} ({error}). Connect to the internet once "
            f"(it is cached in {folder}), or copy {', '.join(RUNTIME_FILES)} from the npm package "
            f"onnxruntime-web@{ONNXRUNTIME_WEB_VERSION} (dist/) into that folder."
        ) from None
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != ONNXRUNTIME_WEB_INTEGRITY:
        raise RuntimeDownloadError(f"{ONNXRUNTIME_WEB_URL} does not match its pinned integrity hash: not using it.")
    scratch = folder.with_name(folder.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    tarball_path = scratch / "package.tgz"
    tarball_path.write_bytes(tarball)
    with tarfile.open(tarball_path) as archive:
        for name in RUNTIME_FILES:
            (scratch / name).write_bytes(archive.extractfile(f"package/dist/{name}").read())
    tarball_path.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    return folder


def write_web(
    output: str | Path,
    model: str | Path,
    overwrite: bool = False,
    int8: bool = False,
    runtime: str | Path | None = None,
) -> Path:
    """Writes a ready static folder: the page, `model.onnx` (the waveform graph), `model.json` and `ort/`.

    Serve it with any static file server (`python -m http.server -d DIR`) and open `index.html`.

    Args:
        output (`str` or `Path`): The folder to write (new or empty, unless `overwrite`).
        model (`str` or `Path`): A saved model folder; its waveform graph is exported into `output`.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a non-empty `output`.
        int8 (`bool`, *optional*, defaults to `False`): Ship the dynamically quantized graph (about a quarter of the
            size; see bench/RESULTS.md for its parity and speed).
        runtime (`str` or `Path`, *optional*): A folder holding `RUNTIME_FILES` (default: `fetch_onnxruntime_web()`).

    Returns:
        `Path`: `output`.

    Raises:
        `ModelLoadError`: `model` is not a saved model folder.
        `OutputExistsError`: `output` is not empty and `overwrite` is false.
        `RuntimeDownloadError`: the runtime is not cached and cannot be downloaded.
    """
    output, model = Path(output), Path(model)
    if not (model / "config.json").is_file():
        raise ModelLoadError(f"{model} is not a saved model folder (no config.json): pass --model FOLDER.")
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"--output {output} is a file, not a folder; give a new or empty folder.")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{output} is not empty: give a new or empty folder, or pass --overwrite.")
        shutil.rmtree(output)
    runtime = Path(runtime) if runtime is not None else fetch_onnxruntime_web()
    output.mkdir(parents=True, exist_ok=True)
    graph = export_waveform_onnx(model, output / MODEL_FILE)
    if int8:
        quantize_waveform_int8(graph, graph.with_name("int8.onnx")).replace(graph)
    metadata = onnx_metadata(graph)  # the page reads the graph's own metadata, as a JSON file
    page_metadata = {
        "labels": json.loads(metadata[LABELS_METADATA_KEY]),
        "sampling_rate": int(metadata[SAMPLING_RATE_METADATA_KEY]),
        "clip_samples": int(metadata[CLIP_SAMPLES_METADATA_KEY]),
        "window_power_floor": WINDOW_POWER_FLOOR,  # the clip-level weighting of windows.py, in the page
        # the unknown answer (null for a model without one: the page then never says "none of these")
        "unknown_threshold": json.loads(metadata.get(UNKNOWN_THRESHOLD_METADATA_KEY, "null")),
        "unknown_quantiles": json.loads(metadata.get(UNKNOWN_QUANTILES_METADATA_KEY, "null")),
    }
    (output / METADATA_FILE).write_text(json.dumps(page_metadata, indent=1))
    for name in PAGE_FILES:
        shutil.copy2(WEB_DIR / name, output / name)
    (output / "ort").mkdir()
    for name in RUNTIME_FILES:
        shutil.copy2(runtime / name, output / "ort" / name)
    return output


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    # Module scripts and WebAssembly need their own types; some Pythons' tables lack .mjs or .wasm.
    extensions_map = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args: object) -> None:
        pass


def static_server(folder: str | Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for a folder written by `write_web` (call `serve_forever`; `port=0` picks a free port).

    `localhost` counts as a secure origin, so the page may ask for the microphone there; elsewhere serve it
    over https.

    Args:
        folder (`str` or `Path`): The page's folder.
        port (`int`, *optional*, defaults to 0): Port (0: any free one, see `server_port`).
        host (`str`, *optional*, defaults to `"127.0.0.1"`): Address to listen on.
    """
    handler = functools.partial(_StaticHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


__all__ = [
    "ONNXRUNTIME_WEB_VERSION",
    "RUNTIME_FILES",
    "RuntimeDownloadError",
    "cache_dir",
    "fetch_onnxruntime_web",
    "static_server",
    "write_web",
]
