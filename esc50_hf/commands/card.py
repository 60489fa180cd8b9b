"""`esc50-hf card`: re-render a model folder's card, adding baseline and cross-validation results."""

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "card", help="re-render a model folder's README.md, with baseline and cross-validation results beside it"
    )
    parser.add_argument("--model", required=True, help="a model folder written by train.py")
    parser.add_argument("--baseline", default=None, help="JSON written by `esc50-hf baseline --output`")
    parser.add_argument("--cv", default=None, help="cv_results.json written by `train.py --cv`")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..reporting import attach_companion_results, rerender_model_card

    folder = Path(args.model)
    if not (folder / "metrics.json").is_file():
        raise SystemExit(f"{folder} has no metrics.json: pass a model folder written by train.py")
    attach_companion_results(
        folder,
        baseline=json.loads(Path(args.baseline).read_text()) if args.baseline else None,
        cross_validation=json.loads(Path(args.cv).read_text()) if args.cv else None,
    )
    rerender_model_card(folder)
    print(f"wrote {folder / 'README.md'}")
    return 0
