"""Scoring saved models: accuracy and macro-F1 through `evaluate` (metric modules shipped here), the
`evaluate` evaluator shim, and the classical baseline.

The public names of the modules below are also importable from here, as before the package was cut into layers
(`from esc50_hf.evaluation import evaluator_compatible, score_predictions`). They load on first access (PEP 562),
so importing this subpackage stays free of torch.
"""

import importlib
from typing import Any

# The public names of each module of this subpackage (its `__all__`, or its own classes and functions).
_EXPORTS = {
    "scoring": "evaluate_model most_confused_pairs predict_feature_logits predict_logits score_predictions",
    "evaluator": "CompatibleAudioClassificationEvaluator evaluator_compatible",
    "baseline": "FEATURE_NAMES build_classifier clip_features extract_features run_baseline",
    "metrics": "SHIPPED_METRICS classification_metrics load_metric mean_and_std spread",
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
