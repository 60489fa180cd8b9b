"""Train the ESC-50 log-mel CNN.

    accelerate launch train.py --config configs/esc50.yaml [--option value ...] [--cv]

Options are transformers' `TrainingArguments` (`--learning_rate`, `--num_train_epochs`,
`--gradient_accumulation_steps`, `--bf16`, `--push_to_hub`, ...) and this project's data,
feature/model and augmentation ones; the YAML (or JSON) file gives their defaults and flags
override them. `python train.py --help` lists them all. `--cv` runs 5-fold cross-validation.
"""

from esc50_hf.train_config import parse_args


def main() -> None:
    setup = parse_args()
    from esc50_hf.training import cross_validate, train

    cross_validate(setup) if setup.cross_validate else train(setup)


if __name__ == "__main__":
    main()
