"""`evaluate` metric modules shipped with the package, loaded by path (no Hub access), and the spread of scores over
runs. `evaluate` (which loads torch) is imported on the first metric, so reports and benchmarks can use the spread
without it."""

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...model.labels import NUM_LABELS

if TYPE_CHECKING:
    import evaluate

_HERE = Path(__file__).parent
# The metric modules in this folder, by the name `evaluate.load` knows them under on the Hub.
SHIPPED_METRICS = ("accuracy", "f1")


@cache
def load_metric(name: str) -> "evaluate.EvaluationModule":
    """`load_metric("accuracy")` or `load_metric("f1")`, from the module folder next to this file."""
    import evaluate

    return evaluate.load(str(_HERE / name))


def classification_metrics(
    predictions: np.ndarray, references: np.ndarray, num_labels: int = NUM_LABELS
) -> dict[str, float]:
    """Accuracy and macro-F1 over all `num_labels` classes (a class never predicted nor present counts as F1 0).

    Args:
        predictions (`np.ndarray`): Predicted class ids.
        references (`np.ndarray`): True class ids.
        num_labels (`int`, *optional*, defaults to 50, ESC-50's): The model's number of classes.
    """
    labels = list(range(num_labels))
    return {
        **load_metric("accuracy").compute(predictions=predictions, references=references),
        **load_metric("f1").compute(predictions=predictions, references=references, average="macro", labels=labels),
    }


def mean_and_std(values: Iterable[float]) -> dict[str, float]:
    """`{"mean", "std"}` of a non-empty series: the population std (`ddof=0`), as every report of this project states.

    Args:
        values (`Iterable[float]`): One score per run (fold, seed or training).
    """
    array = np.asarray(list(values), dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=0))}


def spread(runs: Iterable[dict[str, float]]) -> dict[str, dict[str, float] | None]:
    """Mean and population std of accuracy and macro-F1 over several runs (folds or repeated trainings)."""
    runs = list(runs)
    return {metric: mean_and_std(run[metric] for run in runs) if runs else None for metric in ("accuracy", "f1")}
