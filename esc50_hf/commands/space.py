"""`esc50-hf space --output DIR [--model FOLDER_OR_HUB_ID]`: write a folder that is a complete Hugging Face Space."""

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "space", help="write a Hugging Face Space folder (Gradio app, requirements, model) for the web demo"
    )
    parser.add_argument("--output", required=True, help="the folder to write (new or empty)")
    parser.add_argument(
        "--model", default=None, help="model folder (copied in) or Hub id (default: models/esc50-mel-cnn)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import Esc50HfError
    from ..inference.classifier import resolve_model
    from ..serving.space import write_space

    try:
        folder = write_space(args.output, resolve_model(args.model), overwrite=args.overwrite)
    except Esc50HfError as error:  # a folder or model to change: a usage error (status 2)
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote the Space to {folder}. Try it: cd {folder} && python app.py")
    print(f"Publish it: hf upload OWNER/SPACE_NAME {folder} . --repo-type space")
    return 0
