"""`esc50-hf card`: re-render a model card with baseline, cross-validation, repeated-run and selection results."""

import argparse
import json
from pathlib import Path
from typing import Any


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
    from ..training.model_folder import METRICS_FILE, RECIPE_FILE, read_model_folder
    from ..training.reports import attach_companion_results, rerender_model_card

    folder = read_model_folder(args.model, require=(METRICS_FILE, RECIPE_FILE)).path  # before writing anything there
    attach_companion_results(
        folder,
        baseline=_results_file(args.baseline, "--baseline"),
        cross_validation=_results_file(args.cv, "--cv"),
        repeated_runs=[Path(run) for run in args.repeated_runs] if args.repeated_runs else None,
        selection=_results_file(args.selection, "--selection"),
    )
    rerender_model_card(folder)
    print(f"wrote {folder / 'README.md'}")
    return 0


def _results_file(path: str | None, option: str) -> dict[str, Any] | None:
    """The results in the JSON file `option` names; None when the option is not given."""
    from ..training.reports import CompanionResultsError

    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:  # missing, unreadable, not JSON
        raise CompanionResultsError(f"{option} {path}: not a readable JSON file ({error})") from None
