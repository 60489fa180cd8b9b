"""Scoring saved models: accuracy and macro-F1 through `evaluate` (metric modules shipped here), the
`evaluate` evaluator shim, and the classical baseline.

The public names of the modules below are also importable from here, as before the package was cut into layers
(`from esc50_hf.evaluation import evaluator_compatible, score_predictions`). They load on first access (PEP 562),
so importing this subpackage stays free of torch.
"""

from ..lazy import lazy_exports

# The public names of each module of this subpackage (its `__all__`, or its own classes and functions).
_EXPORTS = {
    "scoring": "evaluate_model most_confused_pairs predict_feature_logits predict_logits score_predictions",
    "evaluator": "CompatibleAudioClassificationEvaluator evaluator_compatible",
    "baseline": "FEATURE_NAMES build_classifier clip_features extract_features run_baseline",
    "metrics": "SHIPPED_METRICS classification_metrics load_metric mean_and_std spread",
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
