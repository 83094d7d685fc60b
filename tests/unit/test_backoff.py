"""Backoff and polling schedules."""

from __future__ import annotations

import random

import pytest

from log_exporter.backoff import Backoff, DurationEstimate, PollSchedule


def test_backoff_grows_jittered_and_capped() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    waits = [b.next() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    for w, c in zip(waits, ceilings, strict=True):
        assert c / 2 <= w <= c
    assert len(set(waits)) == len(waits)  # jittered


def test_poll_without_history_starts_sub_second_and_doubles() -> None:
    p = PollSchedule(None, minimum=0.05, maximum=1.0)
    assert [p.next(0) for _ in range(6)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])


@pytest.mark.parametrize("expected", [0.25, 5.0, 600.0])
def test_poll_with_history_finds_the_end_quickly_and_with_few_calls(expected: float) -> None:
    """Simulate a task lasting `actual`: the first poll after its end comes within 15% of it (or
    of the 30 s ceiling, which keeps the lane waking up to renew its lease), with few calls."""
    for actual in (expected * 0.5, expected, expected * 1.3):
        p = PollSchedule(expected, minimum=0.02, maximum=30.0)
        t, calls = 0.0, 0
        while t < actual:
            t += p.next(t)
            calls += 1
        assert calls <= 10 + actual / 30
        if actual >= expected * 0.8:
            assert t - actual <= min(max(0.15 * actual, 0.05), 30)


def test_duration_estimate_smooths() -> None:
    d = DurationEstimate(alpha=0.5)
    assert d.value is None
    d.observe(1.0)
    d.observe(3.0)
    assert d.value == pytest.approx(2.0)
