"""Training through `transformers.Trainer`: the recipe's arguments and fingerprint, the training loop and
cross-validation, distillation, crash-safe output folders, and the reports written beside the weights."""


def print_main_process(message: str) -> None:
    """Prints `message` once, from the main process of a (possibly multi-process) run."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(message, flush=True)
