"""`evaluate` metric modules shipped with the package, loaded by path (no Hub access)."""

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import evaluate
import numpy as np

from ...model.labels import ESC50_LABELS

_HERE = Path(__file__).parent
# The metric modules in this folder, by the name `evaluate.load` knows them under on the Hub.
SHIPPED_METRICS = ("accuracy", "f1")


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """`load_metric("accuracy")` or `load_metric("f1")`, from the module folder next to this file."""
    return evaluate.load(str(_HERE / name))


def classification_metrics(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 over all 50 ESC-50 classes."""
    labels = list(range(len(ESC50_LABELS)))
    return {
        **load_metric("accuracy").compute(predictions=predictions, references=references),
        **load_metric("f1").compute(predictions=predictions, references=references, average="macro", labels=labels),
    }


def spread(runs: Iterable[dict[str, float]]) -> dict[str, dict[str, float] | None]:
    """Mean and population std of accuracy and macro-F1 over several runs (folds or repeated trainings)."""
    runs = list(runs)
    summary: dict[str, dict[str, float] | None] = {}
    for metric in ("accuracy", "f1"):
        values = np.array([run[metric] for run in runs])
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=0))} if len(values) else None
    return summary
