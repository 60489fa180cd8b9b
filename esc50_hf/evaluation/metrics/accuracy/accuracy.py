"""Accuracy as an `evaluate` metric module, shipped with the package so it loads offline by path."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = "Accuracy: the fraction of predictions equal to the reference label."
_INPUTS = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    normalize (bool): if False, return the number of correct predictions instead of the fraction.
Returns:
    accuracy (float)
"""


class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, normalize: bool = True) -> dict[str, float]:
        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize))}
