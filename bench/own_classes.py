"""Transfer to classes the starting model never heard: ESC-50 split into 40 known and 10 new classes, five ways.

    python bench/own_classes.py base --data-dir DIR --runs RUNS [--splits 0 1 2 3 4]
    python bench/own_classes.py ...   (the fine-tuning stages: see `main`)

Split s (0-4) holds out the 10 classes whose ESC-50 target is s modulo 5 (two of each of ESC-50's five groups:
animals, natural soundscapes, human sounds, domestic, urban); the five splits are disjoint and cover all 50
classes. The `base` stage trains, for each split, the shipped recipe (`train.py`'s defaults) on the other 40
classes, folds 1-4, into `RUNS/base-s<split>`; the held-out classes are never seen. The base models are scored on
their 40 classes' fold-5 clips, which nothing is chosen by.

Runs are independent processes; give each one thread and run two side by side on 2 cores
(`--torch-threads 1`, and start a second `base` with other `--splits`). The feature cache (all 2000 clips, the
recipe's augmented variants) is shared by every split: `--feature-cache-dir`.
"""

import argparse
import sys
from pathlib import Path

from esc50_hf.model.labels import ESC50_LABELS

NUM_SPLITS = 5


def new_classes(split: int) -> list[str]:
    """The 10 classes split `split` holds out: the ESC-50 targets equal to `split` modulo 5."""
    if not 0 <= split < NUM_SPLITS:
        raise ValueError(f"split must be in 0-{NUM_SPLITS - 1}, got {split}")
    return [name for target, name in enumerate(ESC50_LABELS) if target % NUM_SPLITS == split]


def known_classes(split: int) -> list[str]:
    """The 40 classes the base model of split `split` trains on, in ESC-50's order."""
    held_out = set(new_classes(split))
    return [name for name in ESC50_LABELS if name not in held_out]


def train_base(split: int, data_dir: str, runs: Path, feature_cache_dir: str, torch_threads: int | None) -> Path:
    """Trains the shipped recipe on the 40 known classes of `split`, folds 1-4; returns the model folder."""
    from esc50_hf.training.arguments import parse_args
    from esc50_hf.training.trainer import train

    output = runs / f"base-s{split}"
    argv = [
        "--data_dir", data_dir,
        "--output_dir", str(output),
        "--feature_cache_dir", feature_cache_dir,
        "--classes", *known_classes(split),
        "--report_to", "none",
    ]  # fmt: skip
    if any(output.glob("checkpoint-*")):  # an interrupted run goes on from its newest complete checkpoint
        argv += ["--resume_from_checkpoint", "latest"]
    if torch_threads:
        argv += ["--torch_threads", str(torch_threads)]
    if (output / "metrics.json").is_file():
        print(f"{output}: finished earlier, kept", file=sys.stderr)
        return output
    train(parse_args(argv))
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    base = stages.add_parser("base", help="train the 40-class base model of each split")
    base.add_argument("--data-dir", required=True, help="ESC-50 in the official layout")
    base.add_argument("--runs", type=Path, required=True, help="folder of the run folders")
    base.add_argument("--splits", type=int, nargs="+", default=list(range(NUM_SPLITS)))
    base.add_argument("--feature-cache-dir", default=None, help="shared log-mel cache (default: RUNS/feature_cache)")
    base.add_argument("--torch-threads", type=int, default=None, help="threads of this process (default: all)")
    args = parser.parse_args(argv)
    if args.stage == "base":
        cache = args.feature_cache_dir or str(args.runs / "feature_cache")
        for split in args.splits:
            train_base(split, args.data_dir, args.runs, cache, args.torch_threads)


if __name__ == "__main__":
    main()
