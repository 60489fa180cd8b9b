"""The event-based and segment-based scorers of sound event detection."""

import pytest

from esc50_hf.evaluation.sound_events import Counts, event_counts, segment_counts

REFERENCE = [(2.0, 6.0, "dog"), (10.0, 14.0, "dog"), (20.0, 25.0, "siren")]


def test_event_hits_need_the_label_and_an_onset_within_the_collar():
    estimated = [(2.8, 7.0, "dog"), (11.5, 14.0, "dog"), (20.2, 21.0, "rain")]
    counts = event_counts(REFERENCE, estimated, onset_collar=1.0)
    assert counts == Counts(hits=1, false_alarms=2, misses=2)
    assert counts.f1 == pytest.approx(2 / 6) and counts.precision == pytest.approx(1 / 3)


def test_each_reference_event_is_matched_once_and_the_most_pairs_count():
    # the estimate at 9.4 could take either reference; matching it to 10.0 leaves 9.0 for the one at 8.8
    reference = [(9.0, 12.0, "dog"), (10.0, 13.0, "dog")]
    estimated = [(8.8, 12.0, "dog"), (9.4, 12.0, "dog"), (9.5, 12.0, "dog")]
    assert event_counts(reference, estimated) == Counts(hits=2, false_alarms=1, misses=0)
    assert event_counts([], estimated) == Counts(0, 3, 0) and event_counts(reference, []) == Counts(0, 0, 2)


def test_segments_count_per_second_and_label():
    estimated = [(2.5, 6.0, "dog"), (20.0, 22.0, "rain")]
    counts = segment_counts(REFERENCE, estimated, duration_s=30.0)
    # reference segments: dog 2-5 (4), dog 10-13 (4), siren 20-24 (5); estimated: dog 2-5 (4), rain 20-21 (2)
    assert counts == Counts(hits=4, false_alarms=2, misses=9)
    assert (counts + counts).to_dict()["hits"] == 8
