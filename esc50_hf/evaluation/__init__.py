"""Scoring saved models: accuracy and macro-F1 through `evaluate` (metric modules shipped here), the
`evaluate` evaluator shim, and the classical baseline."""
