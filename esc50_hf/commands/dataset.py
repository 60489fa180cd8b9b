"""`esc50-hf dataset`: ESC-50 as parquet shards with a dataset card, optionally published to the Hub."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="write ESC-50 as a Hub-ready parquet dataset (official label order, fold configurations)",
        description=(
            "Writes ESC-50 as parquet shards (audio embedded) and a dataset card, so that "
            "datasets.load_dataset(OUTPUT) gives the rows, features and label order of load_esc50(DATA_DIR); "
            "configurations fold1..fold5 split train/validation by fold."
        ),
    )
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--output", required=True, help="new (or empty) folder to write")
    parser.add_argument(
        "--push-to-hub", default=None, metavar="OWNER/NAME", help="also publish the folder as this Hub dataset"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub dataset as private")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..data.esc50 import DEFAULT_HUB_DATASET_ID
    from ..data.parquet import write_esc50_parquet
    from ..publish import check_can_push, push_folder

    if args.push_to_hub is not None:
        check_can_push(args.push_to_hub, option="--push-to-hub needs", what="dataset")  # before minutes of work
    folder = write_esc50_parquet(args.data_dir, args.output, repo_id=args.push_to_hub or DEFAULT_HUB_DATASET_ID)
    print(f"wrote {folder} (load it with datasets.load_dataset({str(folder)!r}))")
    if args.push_to_hub is not None:
        url = push_folder(folder, args.push_to_hub, private=args.private, repo_type="dataset")
        print(f"published to {args.push_to_hub}: {url}")
    return 0
