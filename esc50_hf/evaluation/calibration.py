"""Scores a user can read as probabilities, and an honest "none of these".

A network trained with mixup and label smoothing is under-confident: its top score is well below how often it is
right. One number fixes most of that: a temperature `T` that divides the logits before the softmax (temperature
scaling), fitted by minimising the negative log-likelihood of predictions the model did not train on. It never
changes which label wins, only how sure the scores say the model is.

The "none of these" answer is a threshold on the unknown score (`prediction.unknown_score`): the calibrated top score
read against its distribution over held-out known clips, times the network's atypicality (`Esc50CnnOutput`) read
against its own (bench/unknown_choice.md); both distributions are stored as quantiles (`UNKNOWN_QUANTILES` of each).
A clip scoring below the threshold is not one of the known sounds. The threshold is fitted for a stated share of
known sounds accepted (`DEFAULT_ACCEPT`) on the same held-out predictions. Without the atypicality (predictions
made without it), the unknown score is the top score itself.

All of it is stored in the model's config (`calibration_temperature`, `unknown_threshold`, `unknown_quantiles`,
and the provenance in `calibration`), so every path that runs the model (pipeline, `SoundClassifier`, CLI, app,
ONNX) reports calibrated scores, and the unknown answer is there for whoever asks for it.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

from ..model.configuration_esc50_cnn import check_quantiles
from ..model.prediction import atypicality_tail, unknown_score
from ..model.windows import softmax
from .plots import save_compact_png

NUM_BINS = 15  # bins of the expected calibration error and of the reliability diagram
DEFAULT_ACCEPT = 0.95  # share of known sounds the fitted unknown threshold accepts
# Where the fitted temperature is searched: a held-out set the model gets all right pulls the temperature towards 0
# (every score towards 1); the bounds keep a few lucky clips from making the model certain of everything.
TEMPERATURE_RANGE = (0.2, 5.0)
UNKNOWN_QUANTILES = 51  # quantiles of each held-out distribution the unknown score reads (0 %, 2 %, ..., 100 %)
# The most atypical share of held-out known clips in which the atypicality counts in the unknown score
# (`prediction.unknown_score`; bench/unknown_choice.md round 3): less atypical clips are judged by their top score.
ATYPICALITY_TAIL = 0.2
MIN_CALIBRATION_CLIPS = 20  # fewer held-out clips than this: training leaves the model uncalibrated
REJECTION_SCORES = ("max_probability", "energy")
RELIABILITY_PLOT = "reliability.png"  # in a model folder


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of `logits / temperature`, `(clips, num_labels)`: the model path's own softmax."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature)


def negative_log_likelihood(logits: np.ndarray, references: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under `softmax(logits / temperature)`."""
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)
    return float(-log_probabilities[np.arange(len(references)), references].mean())


def reliability_bins(probs: np.ndarray, references: np.ndarray, num_bins: int = NUM_BINS) -> list[dict[str, float]]:
    """The top-1 predictions grouped by confidence into `num_bins` equal-width bins: for each non-empty bin, its
    `confidence` (mean top score), `accuracy` and `count`."""
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == references
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, num_bins - 1)
    bins = []
    for index in range(num_bins):
        members = which == index
        if members.any():
            bins.append(
                {
                    "lower": float(edges[index]),
                    "upper": float(edges[index + 1]),
                    "confidence": float(confidence[members].mean()),
                    "accuracy": float(correct[members].mean()),
                    "count": int(members.sum()),
                }
            )
    return bins


def expected_calibration_error(probs: np.ndarray, references: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """The expected calibration error of the top-1 predictions: the count-weighted mean gap between confidence
    and accuracy over `num_bins` equal-width confidence bins (15, the usual choice)."""
    bins = reliability_bins(probs, references, num_bins)
    return float(sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in bins) / len(references))


def fit_temperature(logits: np.ndarray, references: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `references` (searched on a log scale
    within `TEMPERATURE_RANGE`)."""
    if len(references) == 0:
        raise ValueError("Fitting a calibration needs at least one held-out clip")
    low, high = np.log(TEMPERATURE_RANGE)
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, references, float(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))


def rejection_score(logits: np.ndarray, temperature: float = 1.0, kind: str = "max_probability") -> np.ndarray:
    """How much a clip looks like one of the known sounds (higher: more), from its logits.

    Args:
        logits (`np.ndarray`): `(clips, num_labels)` logits before calibration.
        temperature (`float`, *optional*, defaults to 1.0): The calibration temperature.
        kind (`str`, *optional*, defaults to `"max_probability"`): `"max_probability"` (the calibrated top score)
            or `"energy"` (`T * logsumexp(logits / T)`, the negative free energy).
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if kind == "max_probability":
        return np.exp(log_softmax(scaled, axis=-1)).max(axis=-1)
    if kind == "energy":
        return temperature * logsumexp(scaled, axis=-1)
    raise ValueError(f"Unknown rejection score {kind!r}: choose one of {', '.join(REJECTION_SCORES)}")


def fit_unknown_quantiles(
    top_scores: np.ndarray,
    atypicality: np.ndarray,
    count: int = UNKNOWN_QUANTILES,
    atypicality_tail: float = ATYPICALITY_TAIL,
) -> dict[str, Any]:
    """The quantiles (`count` of each, 0 to 100 %) of held-out known clips' calibrated top scores and atypicality,
    and the tail in which the atypicality counts: the model's `config.unknown_quantiles`.

    Args:
        top_scores (`np.ndarray`): `(clips,)` calibrated top scores of held-out clips of the known sounds.
        atypicality (`np.ndarray`): `(clips,)` the model's atypicality of the same clips.
        count (`int`, *optional*, defaults to `UNKNOWN_QUANTILES` (51)): Quantiles of each.
        atypicality_tail (`float`, *optional*, defaults to `ATYPICALITY_TAIL`): The most atypical share of those
            clips in which the atypicality counts (1: everywhere, the plain product of the two shares).
    """
    levels = np.linspace(0.0, 1.0, count)
    return {
        "top_score": [round(float(value), 6) for value in np.quantile(np.asarray(top_scores, np.float64), levels)],
        "atypicality": [round(float(value), 5) for value in np.quantile(np.asarray(atypicality, np.float64), levels)],
        "atypicality_tail": atypicality_tail,
    }


def unknown_scores(
    logits: np.ndarray, temperature: float, atypicality: np.ndarray | None, quantiles: dict | None
) -> np.ndarray:
    """`(clips,)` unknown scores (`prediction.unknown_score`) of raw logits at `temperature`; the top scores when
    `atypicality` or `quantiles` is `None`."""
    top = rejection_score(logits, temperature)
    if atypicality is None or quantiles is None:
        return top
    return np.array([unknown_score(score, value, quantiles) for score, value in zip(top, atypicality)])


def fit_unknown_threshold(known_scores: np.ndarray, accept: float = DEFAULT_ACCEPT) -> float:
    """The highest threshold that still accepts at least `accept` of `known_scores` (a clip is accepted when its
    score is at least the threshold)."""
    if not 0.0 < accept <= 1.0:
        raise ValueError(f"accept must be a share in (0, 1], got {accept}")
    ordered = np.sort(np.asarray(known_scores, dtype=np.float64))
    rejected = int(np.floor((1.0 - accept) * len(ordered) + 1e-9))  # at most this many known clips below it
    return float(ordered[min(rejected, len(ordered) - 1)])


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling known (positive, higher score) from unknown clips."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.ones(len(known_scores)), np.zeros(len(unknown_scores))]
    return float(roc_auc_score(truth, np.r_[known_scores, unknown_scores]))


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration and its provenance, as a model's config stores it.

    Args:
        temperature (`float`): Divides the logits before the softmax.
        unknown_threshold (`float`): Unknown scores below this are "none of these".
        accept (`float`): The share of the held-out known clips the threshold was fitted to accept.
        fitted_on (`str`): What the held-out predictions were, in words: clips the network did not train on (a
            training fits its own evaluation split, whose accuracy the temperature does not change; the shipped
            model's calibration is fitted on out-of-fold runs, never on the test fold).
        num_clips (`int`): How many held-out clips.
        before (`dict`): `ece` and `nll` of the held-out clips at temperature 1.
        after (`dict`): `ece` and `nll` after calibration, cross-fitted (each half of the clips scored with the
            temperature fitted on the other half), so the figure is not scored on what it was fitted on.
        unknown_quantiles (`dict`, *optional*): `fit_unknown_quantiles` of the held-out clips, when their
            atypicality was given; the unknown score is then read against them (`None`: the top score).
    """

    temperature: float
    unknown_threshold: float
    accept: float
    fitted_on: str
    num_clips: int
    before: dict[str, float]
    after: dict[str, float]
    unknown_quantiles: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The provenance (`config.calibration`): everything but the quantiles, which the config holds once."""
        record = asdict(self)
        del record["unknown_quantiles"]
        if self.unknown_quantiles is None:
            record["unknown_score"] = "top score"
        else:
            tail = atypicality_tail(self.unknown_quantiles)
            record["unknown_score"] = f"top score x atypicality (in its {tail:.0%} tail)"
        return record

    def apply_to(self, config: Any) -> None:
        """Writes the calibration into a model's config (`calibration_temperature`, `unknown_threshold`,
        `unknown_quantiles`, `calibration`).

        Raises:
            `ValueError`: the quantiles are not finite and sorted (e.g. a network whose atypicality is NaN).
        """
        if self.unknown_quantiles is not None:
            check_quantiles(self.unknown_quantiles)
        config.calibration_temperature = self.temperature
        config.unknown_threshold = self.unknown_threshold
        config.unknown_quantiles = self.unknown_quantiles
        config.calibration = self.to_dict()


def fit_calibration(
    logits: np.ndarray,
    references: np.ndarray,
    fitted_on: str,
    accept: float = DEFAULT_ACCEPT,
    seed: int = 0,
    atypicality: np.ndarray | None = None,
) -> Calibration:
    """Fits the temperature and the unknown threshold on held-out predictions, and measures what calibration does
    to them by cross-fitting (two halves, each scored with the other's temperature).

    Args:
        logits (`np.ndarray`): `(clips, num_labels)` logits of clips the model did not train on, at temperature 1.
        references (`np.ndarray`): The true class ids, in the model's label order.
        fitted_on (`str`): What those clips are, in words (goes into the config and the card).
        accept (`float`, *optional*, defaults to `DEFAULT_ACCEPT` (0.95)): Share of known clips the threshold accepts.
        seed (`int`, *optional*, defaults to 0): Seed of the halves' shuffle.
        atypicality (`np.ndarray`, *optional*): The model's atypicality of the same clips: the unknown score then
            reads it too (`fit_unknown_quantiles`); without it, the unknown score is the top score.
    """
    logits = np.asarray(logits, dtype=np.float64)
    return _fitted(logits, np.asarray(references), fitted_on, accept, seed, atypicality)[0]


def _fitted(
    logits: np.ndarray,
    references: np.ndarray,
    fitted_on: str,
    accept: float,
    seed: int,
    atypicality: np.ndarray | None = None,
) -> tuple["Calibration", np.ndarray]:
    """`fit_calibration`, and the cross-fitted probabilities its `after` figures come from."""
    temperature = round(fit_temperature(logits, references), 6)  # as the config stores it: what every path uses
    held_out_probs = cross_fitted_probabilities(logits, references, seed)
    after_nll = float(-np.log(np.maximum(held_out_probs[np.arange(len(references)), references], 1e-300)).mean())
    quantiles = None
    if atypicality is not None:
        quantiles = fit_unknown_quantiles(rejection_score(logits, temperature), atypicality)
    known = unknown_scores(logits, temperature, atypicality, quantiles)
    calibration = Calibration(
        temperature=temperature,
        # Rounded down: a rounded-up threshold would reject the clips that score exactly the fitted value.
        unknown_threshold=float(np.floor(fit_unknown_threshold(known, accept) * 1e6) / 1e6),
        accept=accept,
        fitted_on=fitted_on,
        num_clips=int(len(references)),
        before={
            "ece": round(expected_calibration_error(probabilities(logits), references), 6),
            "nll": round(negative_log_likelihood(logits, references), 6),
        },
        after={"ece": round(expected_calibration_error(held_out_probs, references), 6), "nll": round(after_nll, 6)},
        unknown_quantiles=quantiles,
    )
    return calibration, held_out_probs


def measure_calibration(
    logits: np.ndarray, references: np.ndarray, calibration: Calibration, atypicality: np.ndarray | None = None
) -> dict[str, Any]:
    """What a fitted calibration does on other clips (e.g. the test fold): accuracy, expected calibration error,
    negative log-likelihood and mean top score before and after, and the share of clips the unknown threshold
    accepts (all of them are known sounds).

    Args:
        logits (`np.ndarray`): `(clips, num_labels)` raw logits (temperature 1).
        references (`np.ndarray`): The true class ids.
        calibration (`Calibration`): The fitted calibration.
        atypicality (`np.ndarray`, *optional*): The clips' atypicality, for a calibration with unknown quantiles.
    """
    before, after = probabilities(logits), probabilities(logits, calibration.temperature)
    known = unknown_scores(logits, calibration.temperature, atypicality, calibration.unknown_quantiles)
    accepted = known >= calibration.unknown_threshold

    def figures(probs: np.ndarray, temperature: float) -> dict[str, float]:
        return {
            "ece": expected_calibration_error(probs, references),
            "nll": negative_log_likelihood(logits, references, temperature),
            "mean_top_score": float(probs.max(axis=-1).mean()),
        }

    return {
        "num_clips": int(len(references)),
        "accuracy": float((after.argmax(axis=-1) == references).mean()),
        "ece_of_a_calibrated_model": chance_calibration_error(after),
        "before": figures(before, 1.0),
        "after": figures(after, calibration.temperature),
        "known_accepted": float(accepted.mean()),
    }


def chance_calibration_error(probs: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """The expected calibration error a perfectly calibrated model would still show on this many clips: the mean
    ECE when each clip's true class is drawn from `probs` itself (what counting on a few hundred clips adds)."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(probs, axis=-1)
    values = []
    for _ in range(draws):
        drawn = (rng.random((len(probs), 1)) > cumulative).sum(axis=-1).clip(max=probs.shape[1] - 1)
        values.append(expected_calibration_error(probs, drawn))
    return float(np.mean(values))


def cross_fitted_probabilities(logits: np.ndarray, references: np.ndarray, seed: int = 0) -> np.ndarray:
    """Calibrated probabilities of held-out clips, each half of them (a seeded shuffle) calibrated with the
    temperature fitted on the other half: what calibration does to clips it was not fitted on."""
    logits = np.asarray(logits, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(references))
    halves = [order[: len(order) // 2], order[len(order) // 2 :]]
    calibrated = np.zeros_like(logits)
    for fit_half, score_half in (halves, halves[::-1]):
        if len(fit_half) == 0:  # a single clip: nothing to fit on but itself
            fit_half = score_half
        temperature = fit_temperature(logits[fit_half], references[fit_half])
        calibrated[score_half] = probabilities(logits[score_half], temperature)
    return calibrated


def calibrate_model_folder(
    folder: str | Path,
    config: Any,
    logits: np.ndarray,
    references: np.ndarray,
    fitted_on: str,
    accept: float = DEFAULT_ACCEPT,
    atypicality: np.ndarray | None = None,
) -> Calibration:
    """Fits the calibration of a saved model on held-out predictions, writes it into the folder's `config.json`
    (and into `config`), and plots `reliability.png` (before, and after as cross-fitted).

    Args:
        folder (`str` or `Path`): The model folder.
        config (`Esc50CnnConfig`): The model's config; updated and saved to `folder`.
        logits (`np.ndarray`): `(clips, num_labels)` logits at temperature 1 of clips the model did not train on.
        references (`np.ndarray`): Their true class ids, in the model's label order.
        fitted_on (`str`): What those clips are, in words.
        accept (`float`, *optional*, defaults to `DEFAULT_ACCEPT` (0.95)): Share of known clips the unknown
            threshold accepts.
        atypicality (`np.ndarray`, *optional*): The clips' atypicality (see `fit_calibration`).
    """
    logits, references = np.asarray(logits, dtype=np.float64), np.asarray(references)
    calibration, cross_fitted = _fitted(logits, references, fitted_on, accept, 0, atypicality)
    calibration.apply_to(config)
    config.save_pretrained(folder)
    plot_reliability(
        {
            "as trained": (probabilities(logits), references),
            "calibrated (cross-fitted)": (cross_fitted, references),
        },
        Path(folder) / RELIABILITY_PLOT,
        title=f"Reliability on {fitted_on}",
    )
    return calibration


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> None:
    """A reliability diagram: accuracy against confidence per bin, one line per named `(probabilities, references)`
    (e.g. before and after calibration), with the diagonal of perfect calibration and each curve's ECE.

    Args:
        curves (`dict[str, tuple]`): Name -> `(probabilities, references)`.
        path (`str` or `Path`): Where the PNG goes.
        title (`str`, *optional*): The plot's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (probs, references) in curves.items():
        bins = reliability_bins(probs, references)
        ece = expected_calibration_error(probs, references)
        axis.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            markersize=3,
            label=f"{name} (ECE {ece:.3f})",
        )
    axis.set_xlabel("top score (confidence)")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.legend(loc="upper left", fontsize=8)
    if title:
        axis.set_title(title, fontsize=9)
    save_compact_png(figure, Path(path), bbox_inches="tight")
    plt.close(figure)


__all__ = [
    "ATYPICALITY_TAIL",
    "DEFAULT_ACCEPT",
    "NUM_BINS",
    "REJECTION_SCORES",
    "Calibration",
    "MIN_CALIBRATION_CLIPS",
    "UNKNOWN_QUANTILES",
    "auroc",
    "calibrate_model_folder",
    "chance_calibration_error",
    "cross_fitted_probabilities",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "fit_unknown_quantiles",
    "fit_unknown_threshold",
    "measure_calibration",
    "negative_log_likelihood",
    "plot_reliability",
    "probabilities",
    "rejection_score",
    "reliability_bins",
    "unknown_scores",
]
