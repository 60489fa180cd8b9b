"""Scoring sound event detection against annotated recordings: event-based and segment-based F1.

The two usual measures of DCASE-style detection, written here (small, numpy only):

* **event-based**: an estimated event is a hit when a reference event of the same label starts within
  `onset_collar` seconds of it (each reference event matched at most once, matched so that the most pairs
  count); the rest are false alarms, the unmatched references misses;
* **segment-based**: the recording cut into `segment` seconds; in each segment a label is active in the
  reference (estimate) when an event of it overlaps the segment; hits, false alarms and misses are counted per
  segment and label.

Both are micro-averaged: counts are summed over labels and recordings (`Counts` add up), then F1 is computed once.
Events are `(onset_s, offset_s, label)` triples.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

SpanLabel = tuple[float, float, str]


@dataclass(frozen=True)
class Counts:
    """Hits, false alarms and misses; `+` sums them, `f1`/`precision`/`recall` read them."""

    hits: int = 0
    false_alarms: int = 0
    misses: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.hits + other.hits, self.false_alarms + other.false_alarms, self.misses + other.misses)

    @property
    def precision(self) -> float:
        return self.hits / max(1, self.hits + self.false_alarms)

    @property
    def recall(self) -> float:
        return self.hits / max(1, self.hits + self.misses)

    @property
    def f1(self) -> float:
        return 2 * self.hits / max(1, 2 * self.hits + self.false_alarms + self.misses)

    def to_dict(self) -> dict[str, float]:
        return {
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "hits": self.hits,
            "false_alarms": self.false_alarms,
            "misses": self.misses,
        }


def event_counts(reference: Sequence[SpanLabel], estimated: Sequence[SpanLabel], onset_collar: float = 1.0) -> Counts:
    """Event-based hits, false alarms and misses of one recording.

    Args:
        reference (`Sequence[tuple]`): The annotated events, `(onset_s, offset_s, label)`.
        estimated (`Sequence[tuple]`): The detected events, the same way.
        onset_collar (`float`, *optional*, defaults to 1.0): Largest onset difference of a hit, seconds.
    """
    hits = 0
    for label in {event[2] for event in reference} | {event[2] for event in estimated}:
        true_onsets = np.array([event[0] for event in reference if event[2] == label])
        found_onsets = np.array([event[0] for event in estimated if event[2] == label])
        if len(true_onsets) and len(found_onsets):
            distance = np.abs(true_onsets[:, None] - found_onsets[None, :])
            allowed = distance <= onset_collar
            rows, columns = linear_sum_assignment(np.where(allowed, 0.0, 1.0) + distance * 1e-6)
            hits += int(allowed[rows, columns].sum())
    return Counts(hits, len(estimated) - hits, len(reference) - hits)


def segment_counts(
    reference: Sequence[SpanLabel], estimated: Sequence[SpanLabel], duration_s: float, segment: float = 1.0
) -> Counts:
    """Segment-based hits, false alarms and misses of one recording.

    Args:
        reference (`Sequence[tuple]`): The annotated events, `(onset_s, offset_s, label)`.
        estimated (`Sequence[tuple]`): The detected events.
        duration_s (`float`): The recording's length.
        segment (`float`, *optional*, defaults to 1.0): Segment length, seconds.
    """
    count = int(np.ceil(duration_s / segment))

    def activity(events: Iterable[SpanLabel]) -> set[tuple[int, str]]:
        active = set()
        for onset, offset, label in events:
            first = max(0, int(np.floor(onset / segment)))
            last = min(count - 1, int(np.ceil(offset / segment)) - 1)
            active.update((index, label) for index in range(first, last + 1))
        return active

    truth, found = activity(reference), activity(estimated)
    return Counts(len(truth & found), len(found - truth), len(truth - found))


__all__ = ["Counts", "event_counts", "segment_counts"]
