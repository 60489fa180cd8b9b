"""Train the ESC-50 log-mel CNN.

    accelerate launch train.py --config configs/esc50.yaml [--key value ...] [--cv]

Every hyper-parameter lives in the YAML file; any of them can be overridden on the command
line (`--data_dir D --output_dir O --num_train_epochs 1`). `--cv` runs 5-fold cross-validation.
"""

import argparse

from esc50_hf.train_config import TrainConfig, parse_overrides
from esc50_hf.training import cross_validate, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML file with the recipe, e.g. configs/esc50.yaml")
    parser.add_argument("--cv", action="store_true", help="train and evaluate all five folds")
    args, rest = parser.parse_known_args()
    config = TrainConfig.from_yaml(args.config, parse_overrides(rest))
    cross_validate(config) if args.cv else train(config)


if __name__ == "__main__":
    main()
