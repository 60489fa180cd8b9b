"""`esc50-hf space --output DIR [--model FOLDER_OR_HUB_ID]`: write a folder that is a complete Hugging Face Space."""

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "space", help="write a Hugging Face Space folder (Gradio app, requirements, model) for the web demo"
    )
    parser.add_argument("--output", required=True, help="the folder to write (new or empty)")
    parser.add_argument(
        "--model", default=None, help="model folder (copied in) or Hub id (default: models/esc50-mel-cnn)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    parser.add_argument(
        "--web", action="store_true", help="also write the static browser page (esc50-hf web) into web/"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Writes the Space; a missing model, a non-empty `--output` or one that is a file, or a folder that cannot be
    written is answered with one `error: ...` line on stderr and exit status 2 (a usage error), never a traceback."""
    from ..errors import Esc50HfError, OutputExistsError
    from ..inference.classifier import resolve_model
    from ..serving.space import write_space

    output = Path(args.output)
    try:
        if output.exists() and not output.is_dir():
            raise OutputExistsError(f"--output {output} is a file, not a folder; give a new or empty folder.")
        folder = write_space(output, resolve_model(args.model), overwrite=args.overwrite, web=args.web)
    except Esc50HfError as error:  # a folder or model to change: a usage error (status 2)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. no permission to write there, or a full disk
        print(f"error: cannot write the Space to {output}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"Wrote the Space to {folder}. Try it: cd {folder} && python app.py")
    print(f"Publish it: hf upload OWNER/SPACE_NAME {folder} . --repo-type space")
    return 0
