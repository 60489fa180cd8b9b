"""`esc50-hf web --output DIR [--model FOLDER]`: a static folder that classifies sounds in the browser, no server."""

import argparse
import contextlib
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "web", help="write a static browser page (HTML + JS, waveform ONNX model, ONNX Runtime Web): no server"
    )
    parser.add_argument("--output", required=True, help="the folder to write (new or empty)")
    parser.add_argument("--model", default=None, help="saved model folder (default: models/esc50-mel-cnn)")
    parser.add_argument("--int8", action="store_true", help="ship the int8 waveform graph (smaller; see docs/edge.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    parser.add_argument(
        "--runtime-dir", default=None, help="folder with the onnxruntime-web files (default: download once, cached)"
    )
    parser.add_argument(
        "--serve", type=int, default=None, metavar="PORT", help="then serve the folder on http://localhost:PORT"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.classifier import resolve_model
    from ..serving.web import static_server, write_web

    output = write_web(
        Path(args.output), resolve_model(args.model), args.overwrite, int8=args.int8, runtime=args.runtime_dir
    )
    print(f"Wrote the page to {output}: serve it with any static file server.")
    if args.serve is None:
        print(f"Try it: esc50-hf web --output {output} --overwrite --serve 8000, then open http://localhost:8000")
        return 0
    with static_server(output, args.serve) as server:
        print(f"Serving on http://localhost:{server.server_port}/ (Ctrl+C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0
