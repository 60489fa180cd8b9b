"""F1 score as an `evaluate` metric module, shipped with the package so it loads offline by path."""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1: the harmonic mean of precision and recall, per class and averaged (macro by default)."
_INPUTS = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    average (str or None): 'macro' (default), 'micro', 'weighted', or None for one score per class.
    labels (list of int, optional): the classes to score (all classes of the task, so that a class
        never predicted still counts in the macro average).
Returns:
    f1 (float, or list of float when average is None)
"""


class F1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, average: str | None = "macro", labels=None) -> dict:
        score = f1_score(references, predictions, average=average, labels=labels, zero_division=0)
        return {"f1": score.tolist() if average is None else float(score)}
