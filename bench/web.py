"""The browser page of `esc50-hf web` in headless Chromium (ONNX Runtime Web, WebAssembly, one thread): time per
5-s window and top-1 agreement with the Python path on fold-5 clips given through the page's file input.

    python bench/web.py --data-dir /tmp/esc50/ESC-50            # 50 clips -> bench/WEB.md, bench/web.json
    python bench/web.py --data-dir DIR --clips 400 --output-dir /tmp/bench

Needs Chromium at /usr/bin/chromium and Playwright (`make test-deps`).
"""

import argparse
import json
import os
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from run import fold_clips, machine_facts  # noqa: E402  (bench/run.py: the same fold and machine facts)

from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="saved model folder")
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--fold", type=int, default=5)
    parser.add_argument("--clips", type=int, default=50, help="first N clips of the fold")
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    return parser.parse_args(argv)


def measure(model: str, paths: list[str]) -> dict:
    from playwright.sync_api import sync_playwright

    from esc50_hf.inference.classifier import SoundClassifier
    from esc50_hf.serving.web import static_server, write_web

    classifier = SoundClassifier(model)
    python_top1 = [classifier.predict(path).labels[0].label for path in paths]
    with tempfile.TemporaryDirectory() as scratch:
        site = write_web(Path(scratch) / "site", model)
        onnx_mb = (site / "model.onnx").stat().st_size / 1e6
        server = static_server(site)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
                page.wait_for_function("window.esc50.ready || window.esc50.error", timeout=60_000)
                page_top1 = []
                for path in paths:
                    page.evaluate("window.esc50.result = null")
                    page.set_input_files("#file", path)
                    page.wait_for_function("window.esc50.result !== null || window.esc50.error", timeout=60_000)
                    page_top1.append(page.evaluate("window.esc50.result.labels[0].label"))
                window_ms = page.evaluate("window.esc50.windowMs")
                user_agent = page.evaluate("navigator.userAgent")
                browser.close()
        finally:
            server.shutdown()
    ms = np.asarray(window_ms[1:])  # the first window pays for the runtime's warm-up
    return {
        "clips": len(paths),
        "windows_timed": len(ms),
        "first_window_ms": window_ms[0],
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "top1_agreement_with_python": float(np.mean([a == b for a, b in zip(page_top1, python_top1)])),
        "browser": user_agent,
        "onnx_mb": onnx_mb,
    }


def render(results: dict) -> str:
    machine, web = results["machine"], results["web"]
    return "\n".join(
        [
            "# The browser page: ONNX Runtime Web (WebAssembly)",
            "",
            f"Run {results['date']} with `python bench/web.py {' '.join(results['argv'])}`. Raw numbers: `web.json`.",
            "",
            f"Headless Chromium ({web['browser']}) on {machine['cpu']} ({machine['usable_cpus']} usable CPUs; "
            f"1-min load average at start {machine['load_average_at_start'][0]:.2f}, other work running beside it "
            f"when above 0.5). The page of `esc50-hf web` (the fp32 waveform graph, ONNX Runtime Web's WASM backend, "
            f"one thread) classifies the first {web['clips']} ESC-50 fold-{results['fold']} clips given through its "
            "file input (decoded and resampled by WebAudio; one 5-s window each).",
            "",
            "| per 5-s window | ms |",
            "| --- | ---: |",
            f"| p50 | {web['p50_ms']:.1f} |",
            f"| p95 | {web['p95_ms']:.1f} |",
            f"| first window (runtime warm-up) | {web['first_window_ms']:.1f} |",
            "",
            f"Top-1 identical to the Python path (`SoundClassifier`) on "
            f"**{100 * web['top1_agreement_with_python']:.1f} %** of the {web['clips']} clips.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    machine = machine_facts()
    paths, _, _ = fold_clips(args.data_dir, args.fold, args.clips)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": argv,
        "fold": args.fold,
        "machine": machine,
        "web": measure(args.model, paths),
    }
    results["machine"]["load_average_at_end"] = os.getloadavg()
    output = Path(args.output_dir)
    (output / "web.json").write_text(json.dumps(results, indent=2, default=str))
    (output / "WEB.md").write_text(render(results))
    print(f"wrote {output / 'WEB.md'} and {output / 'web.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
