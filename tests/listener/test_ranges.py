"""AdaptiveRange: grows on full successes, obeys a provider's suggestion, halves otherwise."""

from __future__ import annotations

from listener.ranges import AdaptiveRange


def test_grows_after_full_size_successes_up_to_the_maximum():
    r = AdaptiveRange(size=100, maximum=500)
    r.succeeded(span=100, results=3)
    assert r.size == 200
    r.succeeded(span=200, results=0)
    r.succeeded(span=400, results=0)
    assert r.size == 500


def test_a_short_tail_range_or_a_crowded_answer_does_not_grow_it():
    r = AdaptiveRange(size=100, maximum=5000)
    r.succeeded(span=40, results=0)
    assert r.size == 100
    r.succeeded(span=100, results=5_000)
    assert r.size == 100


def test_refusal_takes_the_suggested_span_or_halves():
    r = AdaptiveRange(size=1000, maximum=5000)
    r.refused(span=1000, suggested_span=250)
    assert r.size == 250
    r.refused(span=250)
    assert r.size == 125
    # A "suggestion" wider than what was refused is no help: halve instead.
    r.refused(span=125, suggested_span=900)
    assert r.size == 62


def test_never_below_the_minimum_and_end_is_clamped():
    r = AdaptiveRange(size=2, minimum=2, maximum=10)
    r.refused(span=2)
    assert r.size == 2
    assert r.end(start=100, limit=1000) == 101
    assert r.end(start=100, limit=100) == 100
