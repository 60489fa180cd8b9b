"""Train the ESC-50 log-mel CNN.

    accelerate launch train.py --config configs/esc50.yaml [--option value ...] [--cv]

Options are transformers' `TrainingArguments` (`--learning_rate`, `--num_train_epochs`,
`--gradient_accumulation_steps`, `--bf16`, `--push_to_hub`, ...) and this project's data,
feature/model and augmentation ones; the YAML (or JSON) file gives their defaults and flags
override them. `python train.py --help` lists them all. `--cv` runs 5-fold cross-validation.
`--export_features FILE` writes the recipe's log-mels to a portable file, and `--features_file FILE`
trains from it where the audio is not (e.g. a GPU machine).
"""

from esc50_hf.errors import exit_on_user_error
from esc50_hf.training.arguments import parse_args


def main() -> None:
    setup = parse_args()
    from esc50_hf.training.cross_validation import cross_validate
    from esc50_hf.training.fold_features import export_features
    from esc50_hf.training.trainer import train

    if setup.export_features:
        export_features(setup)
    elif setup.cross_validate:
        cross_validate(setup)
    else:
        train(setup)


if __name__ == "__main__":
    exit_on_user_error(main)  # a wrong path or option: `error: <what to do>`, no traceback
