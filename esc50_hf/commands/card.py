"""`esc50-hf card`: re-render a model card with baseline, cross-validation, repeated-run and selection results."""

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
    parser.add_argument(
        "--repeated-runs",
        nargs="+",
        default=None,
        metavar="FOLDER",
        help="other training folders of the same recipe and validation fold (run-to-run spread of the score)",
    )
    parser.add_argument(
        "--selection",
        default=None,
        metavar="RECIPES_JSON",
        help="recipes.json written by bench/recipes.py: the candidates compared without fold 5",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.reports import attach_companion_results, rerender_model_card

    folder = Path(args.model)
    if not (folder / "metrics.json").is_file():
        raise SystemExit(f"{folder} has no metrics.json: pass a model folder written by train.py")
    try:
        attach_companion_results(
            folder,
            baseline=json.loads(Path(args.baseline).read_text()) if args.baseline else None,
            cross_validation=json.loads(Path(args.cv).read_text()) if args.cv else None,
            repeated_runs=[Path(run) for run in args.repeated_runs] if args.repeated_runs else None,
            selection=json.loads(Path(args.selection).read_text()) if args.selection else None,
        )
    except ValueError as error:
        raise SystemExit(f"esc50-hf card: {error}") from None
    rerender_model_card(folder)
    print(f"wrote {folder / 'README.md'}")
    return 0
