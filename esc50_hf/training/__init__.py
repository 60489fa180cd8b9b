"""Training through `transformers.Trainer`: the recipe's arguments and fingerprint, the training loop and
cross-validation, distillation, crash-safe output folders, and the reports written beside the weights."""
