"""The prediction schema: what classifying one recording gives, and its one row format.

Four frozen dataclasses, each with `to_row()`, a plain dict of JSON types whose keys are the
dataclass's field names (so every key is named once, here) and whose scores are rounded in one
place (`to_row`'s `digits`):

* `LabelScore` (`label`, `score`): a label and its probability;
* `WindowPrediction` (`start_s`, `end_s`, `label`, `score`, `labels`): one analysis window, its best label
  and, when asked for, its top-k (`labels`, as the clip's);
* `Event` (`start_s`, `end_s`, `label`, `mean_score`): consecutive windows that agree on their best label;
* `Prediction` (`labels`, `windows`, `duration_s`, `events`, `unknown`): the clip-level top-k, the
  windows, the input's length and, when asked for, the events (`with_events`) and whether the clip
  is none of the known sounds (`with_unknown`: its `unknown_score` is below the model's threshold).

Every output is made from these rows: the pipeline's lists and `return_timeline=True` dict,
`SoundClassifier`'s results, `esc50-hf predict` (table, JSON, CSV, label tracks, `--output` files)
and the app's `/predict`. Label names are whatever the classifier gives (`WindowPool`'s `labels`).

Copied next to the model code when a model is saved: standard library and numpy only.
"""

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

import numpy as np

SCORE_DIGITS = 6  # what `to_row` rounds scores to unless told otherwise
# Field metadata: "score" marks a probability (rounded by `to_row`), "items" the class of a list's elements.
_SCORE = {"score": True}
_PRE_SCHEMA_KEYS = {"start_s": "start", "end_s": "end", "duration_s": "duration"}  # `Prediction.to_dict` only


def _row_fields(cls: type) -> list:
    """The dataclass fields of `cls` that are part of its row (all but those marked `{"row": False}`)."""
    return [item for item in fields(cls) if item.metadata.get("row", True)]  # type: ignore[arg-type]


class _Row:
    """`to_row()` and `row_keys()` for the schema's dataclasses."""

    def to_row(self, digits: int | None = SCORE_DIGITS) -> dict[str, Any]:
        """The object as a dict of JSON types, keyed by field name; fields that are `None` are left out.

        Args:
            digits (`int` or `None`, *optional*, defaults to `SCORE_DIGITS` (6)): Decimal digits scores are
                rounded to; `None` keeps them exact.
        """
        row: dict[str, Any] = {}
        for item in _row_fields(type(self)):
            value = getattr(self, item.name)
            if value is None:
                continue
            if item.metadata.get("items"):
                value = [element.to_row(digits) for element in value]
            elif item.metadata.get("score"):
                value = float(value) if digits is None else round(float(value), digits)
            row[item.name] = value
        return row

    @classmethod
    def row_keys(cls) -> tuple[str, ...]:
        """The keys of `to_row()`, in order (optional ones included)."""
        return tuple(item.name for item in _row_fields(cls))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Any:
        """The object a row describes (`to_row()`'s output, or a line of `esc50-hf predict`'s JSON); keys that are
        not fields (`input`, `error`) are ignored, and a list the row leaves out is empty (or `None`, if optional).

        Args:
            row (`dict`): The row, e.g. `json.loads(line)`.
        """
        values: dict[str, Any] = {}
        for item in _row_fields(cls):
            kind = item.metadata.get("items")
            if item.name in row:
                value = row[item.name]
                values[item.name] = [kind.from_row(element) for element in value] if kind else value
            elif kind is not None and item.default is MISSING:
                values[item.name] = []
        return cls(**values)


@dataclass(frozen=True)
class LabelScore(_Row):
    """A label and its probability."""

    label: str
    score: float = field(metadata=_SCORE)


@dataclass(frozen=True)
class _Span(_Row):
    """A stretch of the input (seconds from its start) and the label it was given."""

    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class WindowPrediction(_Span):
    """One analysis window: where it is in the input (seconds), its best label and, when asked for
    (`WindowPool.prediction(window_top_k=k)`, `esc50-hf predict --windows --top-k k`), its top-k in `labels`."""

    score: float = field(metadata=_SCORE)
    labels: list[LabelScore] | None = field(default=None, metadata={"items": LabelScore})

    @property
    def start(self) -> float:
        """`start_s` under its name from before the schema."""
        return self.start_s

    @property
    def end(self) -> float:
        """`end_s` under its name from before the schema."""
        return self.end_s


@dataclass(frozen=True)
class Event(_Span):
    """A sound event: consecutive windows with the same best label, over the stretch they are nearest to
    (`find_events`)."""

    mean_score: float = field(metadata=_SCORE)


@dataclass(frozen=True)
class Prediction(_Row):
    """The clip-level top-k (mean of window probabilities), the per-window timeline and, on request, the events."""

    labels: list[LabelScore] = field(metadata={"items": LabelScore})
    windows: list[WindowPrediction] = field(metadata={"items": WindowPrediction})
    duration_s: float
    events: list[Event] | None = field(default=None, metadata={"items": Event})
    unknown: bool | None = None
    # How much the clip looks like the known sounds (`unknown_score`), when the model's config has the tables it
    # needs; otherwise the top score is used. Not part of the row.
    unknown_score: float | None = field(default=None, compare=False, metadata={"row": False})

    @property
    def label(self) -> str:
        return self.labels[0].label

    @property
    def duration(self) -> float:
        """`duration_s` under its name from before the schema."""
        return self.duration_s

    @property
    def best_guess(self) -> LabelScore:
        """The top label and its score, whether or not the clip was found to be unknown."""
        return self.labels[0]

    def with_events(self, min_score: float | Mapping[str, float] = 0.0) -> "Prediction":
        """This prediction with its `events` (see `find_events`)."""
        return replace(self, events=find_events(self.windows, min_score))

    def with_unknown(self, threshold: float) -> "Prediction":
        """This prediction with `unknown` set: true when its `unknown_score` (its top score, for a model without
        `unknown_quantiles`) is below `threshold` (the model's `config.unknown_threshold`, fitted on held-out
        clips), i.e. the clip is none of the known sounds."""
        score = self.labels[0].score if self.unknown_score is None else self.unknown_score
        return replace(self, unknown=bool(score < threshold))

    def to_row(self, digits: int | None = SCORE_DIGITS, *, windows: bool = True) -> dict[str, Any]:
        """The prediction as a dict of JSON types: `labels`, `windows` (unless `windows=False`), `duration_s`,
        and `events` and `unknown` when they were asked for.

        Args:
            digits (`int` or `None`, *optional*, defaults to `SCORE_DIGITS` (6)): Decimal digits scores are
                rounded to; `None` keeps them exact.
            windows (`bool`, *optional*, defaults to `True`): Include the per-window timeline.
        """
        row = super().to_row(digits)
        if not windows:
            del row["windows"]
        return row

    def confidences(self) -> dict[str, float]:
        """`{label: score}` for the top-k, exact scores: the format `gr.Label` takes."""
        return {row["label"]: row["score"] for row in (item.to_row(digits=None) for item in self.labels)}

    def to_dict(self) -> dict[str, Any]:
        """The dict from before the schema (`start`, `end`, `duration`, exact scores, no events), kept for code
        that reads it; new code: `to_row()`."""
        row = self.to_row(digits=None)
        row.pop("events", None)
        row.pop("unknown", None)
        return _renamed(row, _PRE_SCHEMA_KEYS)


def atypicality_tail(quantiles: Mapping[str, Any]) -> float:
    """The share of most atypical known clips in which the atypicality counts (`unknown_quantiles["atypicality_tail"]`);
    1 (all of them: the plain product) for tables fitted before the key existed."""
    return float(quantiles.get("atypicality_tail", 1.0))


def unknown_score(
    top_score: float, atypicality: float | None, quantiles: Mapping[str, Sequence[float]] | None
) -> float:
    """How much a clip looks like the sounds a model knows, in [0, 1] (bench/unknown_choice.md): the share of held-out
    known clips with a top score at most this one's times the share at least as atypical (`unknown_quantiles`),
    that share divided by `"atypicality_tail"` and capped at 1 (so it counts only in that tail; default 1);
    without quantiles or an atypicality, the top score itself.

    Args:
        top_score (`float`): The clip's calibrated top score.
        atypicality (`float`, *optional*): The model's `atypicality` of the clip (`Esc50CnnOutput`).
        quantiles (`Mapping`, *optional*): `config.unknown_quantiles`: `"top_score"` and `"atypicality"`, each
            the sorted quantiles of the held-out known clips' values.
    """
    if quantiles is None or atypicality is None:
        return float(top_score)
    typical = (1.0 - _share_at_most(quantiles["atypicality"], atypicality)) / atypicality_tail(quantiles)
    return _share_at_most(quantiles["top_score"], top_score) * min(1.0, typical)


def _share_at_most(table: Sequence[float], value: float) -> float:
    """The share of `table` (sorted) below `value`, ties counted half (so the share above is one minus it)."""
    ordered = np.asarray(table, dtype=np.float64)
    below = np.searchsorted(ordered, value, side="left")
    return float((below + np.searchsorted(ordered, value, side="right")) / (2 * len(ordered)))


def find_events(windows: list[WindowPrediction], min_score: float | Mapping[str, float] = 0.0) -> list[Event]:
    """Runs of consecutive windows whose best label agrees, each window's score at least `min_score`. Windows
    overlap, so an event covers the stretch of the input its windows are the nearest to: each window stands for
    the time between the midpoints of its centre and its neighbours' centres (the first from the input's start,
    the last to its end). With the default hop (half a window) an event's edges are then within a quarter of a
    window of where the sound starts and stops, not a whole window early or late. Windows below `min_score` end the
    current event and start none.

    Args:
        windows (`list[WindowPrediction]`): The timeline, in order.
        min_score (`float` or `Mapping[str, float]`, *optional*, defaults to 0): The lowest window score that joins
            an event: one number for every label, or one per label (e.g. the model's `config.event_thresholds`;
            a label it does not name needs 0).
    """
    centres = [(window.start_s + window.end_s) / 2 for window in windows]
    edges = [windows[0].start_s if windows else 0.0]
    edges += [round((left + right) / 2, 3) for left, right in zip(centres[:-1], centres[1:])]
    edges += [windows[-1].end_s] if windows else []
    runs: list[list[int]] = []
    current: list[int] = []
    for index, window in enumerate(windows):
        lowest = min_score.get(window.label, 0.0) if isinstance(min_score, Mapping) else min_score
        if window.score < lowest:
            current = []
        elif current and windows[current[-1]].label == window.label:
            current.append(index)
        else:
            current = [index]
            runs.append(current)
    return [
        Event(
            edges[run[0]],
            edges[run[-1] + 1],
            windows[run[0]].label,
            float(np.mean([windows[index].score for index in run])),
        )
        for run in runs
    ]


def events_from_windows(
    windows: list[WindowPrediction], min_score: float | Mapping[str, float] = 0.0
) -> list[dict[str, Any]]:
    """`find_events` as rows with exact scores (`{"start_s", "end_s", "label", "mean_score"}`), the form this
    function returned before the schema; new code: `Prediction.with_events`."""
    return [event.to_row(digits=None) for event in find_events(windows, min_score)]


def _renamed(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {names.get(key, key): _renamed(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    return value


__all__ = [
    "SCORE_DIGITS",
    "Event",
    "LabelScore",
    "Prediction",
    "WindowPrediction",
    "events_from_windows",
    "find_events",
    "unknown_score",
]
