"""Backoff and polling schedules."""

from __future__ import annotations

import random
import threading
import time

import pytest

from log_exporter.core.polling import (
    Backoff,
    DurationEstimate,
    PollSchedule,
    RunDurations,
    TaskDurations,
    task_seconds,
)


def test_backoff_grows_jittered_and_capped() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    waits = [b.next() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    for w, c in zip(waits, ceilings, strict=True):
        assert c / 2 <= w <= c
    assert len(set(waits)) == len(waits)  # jittered


def test_poll_without_history_starts_sub_second_and_waits_a_quarter_of_the_time_so_far() -> None:
    p = PollSchedule(None, minimum=0.05, maximum=1.0)
    assert [p.next(t) for t in (0, 0.1, 0.4, 2.0, 10.0)] == pytest.approx(
        [0.05, 0.05, 0.1, 0.5, 1.0]
    )


@pytest.mark.parametrize("actual", [0.3, 5.0, 100.0])
def test_poll_without_history_notices_the_end_within_a_quarter(actual: float) -> None:
    p = PollSchedule(None, minimum=0.01, maximum=30.0)
    t, calls = 0.0, 0
    while t < actual:
        t += p.next(t)
        calls += 1
    assert t - actual <= max(0.25 * actual, 0.01)
    assert calls <= 40


def test_poll_learning_a_small_error_polls_close_to_the_expected_end() -> None:
    """Once expectations have proved right (1% off), a task ending on time is noticed within
    about 1% of its end, in a few calls."""
    p = PollSchedule(5.0, error=0.01, minimum=0.01, maximum=30.0)
    t, calls = 0.0, 0
    while t < 5.0:
        t += p.next(t)
        calls += 1
    assert t - 5.0 <= 0.05
    assert calls <= 5


@pytest.mark.parametrize(
    ("expected", "error", "actual", "within", "max_calls"),
    [
        (5.0, 0.0005, 5.0, 0.01, 2),  # exact expectations: asked right at the end
        (5.0, 0.0005, 4.99, 0.01, 2),  # the lane's clock starts a little after AWS's
        (5.0, 0.0005, 5.05, 0.015, 9),  # a task 1% longer than ever seen: a few more calls
        (300.0, 0.02, 300.0, 3.0, 12),  # minutes: within 1%, one call per 30 s before
        (0.25, 0.0005, 0.25, 0.006, 2),  # short tasks: the 5 ms minimum wait
    ],
)
def test_poll_with_exact_expectations_notices_the_end_within_milliseconds(
    expected: float, error: float, actual: float, within: float, max_calls: int
) -> None:
    p = PollSchedule(expected, error=error, minimum=0.005, maximum=30.0)
    t, calls = 0.0, 0
    while t < actual:
        t += p.next(t)
        calls += 1
    assert 0 <= t - actual <= within
    assert calls <= max_calls


def test_task_durations_expect_the_group_then_the_lane_then_the_run() -> None:
    run = RunDurations()
    lane = TaskDurations(run)
    assert lane.expect("/a") == (None, TaskDurations.DEFAULT_ERROR)
    other = TaskDurations(run)
    other.observe("/x", 10.0, None)
    assert lane.expect("/a") == (10.0, TaskDurations.DEFAULT_ERROR)  # the run's
    lane.observe("/a", 2.0, 10.0)
    assert lane.expect("/a") == (2.0, pytest.approx(0.8))  # its own, and how far off 10 s was
    assert lane.expect("/b")[0] == 2.0  # the lane's, for a group it has not seen
    lane.observe("/b", 100.0, 2.0)
    assert lane.expect("/a")[0] == 2.0  # a big group does not skew a small one


def test_run_durations_remember_how_long_a_task_was_seen_running() -> None:
    run = RunDurations()
    lane, other = TaskDurations(run), TaskDurations(run)
    assert lane.running_at_least() == 0.0
    other.still_running(12.0)
    other.still_running(3.0)
    assert lane.running_at_least() == 12.0


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


def test_a_lane_remembers_its_groups_durations_from_earlier_runs() -> None:
    lane = TaskDurations(RunDurations())
    lane.remember({"/big": 300.0, "/small": 10.0, "/never": 0.0})
    assert lane.expect("/big")[0] == 300.0
    assert lane.expect("/small")[0] == 10.0
    assert lane.expect("/new")[0] == 155.0  # the lane's: the mean of what it remembers
    lane.observe("/small", 20.0, 10.0)
    assert lane.by_group() == {"/big": 300.0, "/small": 13.0}
    assert lane.expect("/small")[1] == pytest.approx(1.0)  # 20 s where 10 s was expected


def test_only_the_runs_oldest_blind_task_scouts() -> None:
    run = RunDurations()
    assert run.scouting(100.0)
    assert not run.scouting(100.5)  # younger: waits for the news of the oldest's end
    assert run.scouting(100.0)  # the oldest asks again
    assert run.scouting(99.0)  # an even older one (its lane was slower to ask)
    assert TaskDurations(None).scouting(5.0)  # alone, a lane scouts for itself


def test_waiting_for_the_first_duration_ends_when_one_is_learned_or_on_wake() -> None:
    run = RunDurations()
    started = time.monotonic()
    threading.Timer(0.05, run.observe, args=(3.0, None)).start()
    run.wait_for_first(5.0)
    assert time.monotonic() - started < 2.0
    run.wait_for_first(5.0)  # known already: no wait at all
    assert time.monotonic() - started < 2.0

    other = RunDurations()
    threading.Timer(0.05, other.wake).start()
    other.wait_for_first(5.0)
    assert time.monotonic() - started < 4.0


def test_task_seconds_are_awss_when_given_else_the_lanes() -> None:
    assert task_seconds(1_000, 3_500, 9.0) == 2.5
    assert task_seconds(None, None, 9.0) == 9.0  # no executionInfo
    assert task_seconds(1_000, None, 9.0) == 9.0  # one of its optional times missing
    assert task_seconds(3_500, 1_000, 9.0) == 0.0  # clocks that disagree: never negative


def _poll_task(durations: TaskDurations, actual: float, info: bool) -> tuple[int, float]:
    """One task of `actual` seconds (by AWS's clock) polled as `Lane._wait` does; the lane's
    clock starts 5 ms after AWS's (the answer to CreateExportTask). Returns the calls made and
    how late the end was noticed."""
    lag = 0.005
    expected, error = durations.expect("/g")
    schedule = PollSchedule(expected, error=error, minimum=0.005, maximum=30.0)
    t, calls = 0.0, 0
    while t < actual - lag:
        t += schedule.next(t)
        calls += 1
    created_ms, completed_ms = (0, int(actual * 1000)) if info else (None, None)
    durations.observe("/g", task_seconds(created_ms, completed_ms, t), expected)
    return calls, t - (actual - lag)


@pytest.mark.parametrize("actual", [0.25, 5.0, 300.0])
def test_the_expected_duration_is_learned_without_execution_info(actual: float) -> None:
    """Without AWS's times the lane learns from its own clock: after a few tasks it notices
    their ends about as soon, and in about as few calls, as with them, instead of polling
    blind (a quarter of the elapsed time: a dozen calls or more, the end noticed late)."""
    calls, _ = _poll_task(TaskDurations(), actual, info=False)  # nothing known: blind
    assert calls >= 10
    for info in (True, False):
        durations = TaskDurations()
        polls = [_poll_task(durations, actual, info) for _ in range(12)][-6:]
        expected, _ = durations.expect("/g")
        assert expected is not None and 0.98 * actual <= expected <= 1.02 * actual
        assert max(c for c, _ in polls) <= actual / 30 + 3  # (a wait is at most 30 s)
        assert max(late for _, late in polls) <= 0.02 * actual + 0.01
