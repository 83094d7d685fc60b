"""Waiting well: jittered exponential backoff for retries, and polling a task where it is likely
to end, from the durations seen so far."""

from __future__ import annotations

import random
import threading


class Backoff:
    """Jittered exponential backoff: attempt n waits uniformly in [c / 2, c], c = min(cap, base * 2**n)."""

    def __init__(self, base: float = 0.2, cap: float = 20.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)


class PollSchedule:
    """When to ask again whether a task has finished.

    With an expected duration E, and the relative error `error` of past expectations (10% until
    one is known), it first asks at E * (1 - error) (at least half of E), then in steps of
    E * error / 2 (from 0.1% to 5% of E), each a fifth longer than the last: a task that ends
    when expected is noticed within about error / 2 of its end in a handful of calls, and one
    that takes far longer costs a few calls more. (E is measured by AWS's clock from the task's
    creation, and the lane counts from the answer to CreateExportTask, a little later: when
    expectations are exact, the first call comes just after the end.) Without any expectation
    it waits a quarter of the time elapsed so far: a task is noticed within 25% of its end, in
    about a dozen calls for a task of minutes. Every wait stays within [minimum, maximum]; the
    maximum keeps the lane waking up to renew its lease.
    """

    def __init__(
        self,
        expected: float | None,
        *,
        error: float = 0.1,
        minimum: float = 0.005,
        maximum: float = 30.0,
    ):
        self.minimum = minimum
        self.maximum = maximum
        self._expected = expected
        self._first = 0.0 if expected is None else expected * max(0.5, 1 - error)
        self._step = 0.0 if expected is None else expected * min(0.05, max(0.001, error / 2))

    def next(self, elapsed: float) -> float:
        if self._expected is None:
            wait = elapsed / 4
        elif elapsed < self._first:  # several calls when E is beyond the maximum wait
            wait = self._first - elapsed
        else:
            wait = self._step
            self._step *= 1.2
        return min(self.maximum, max(self.minimum, wait))


def task_seconds(created_ms: object, completed_ms: object, seconds: float) -> float:
    """How long a finished task took: by AWS's own times when the answer has both (a poll
    delayed by throttling must not teach the schedule that tasks take longer than they do);
    else `seconds`, by the lane's own clock from the answer to CreateExportTask to the answer
    that showed the task ended, since AWS documents `executionInfo` and both of its times as
    optional. The schedule learns from either: from the lane's clock an expectation is late by
    about the poll that noticed the end, and the next first poll, at E * (1 - error), makes up
    for it."""
    if isinstance(created_ms, int) and isinstance(completed_ms, int):
        return max(0.0, (completed_ms - created_ms) / 1000)
    return seconds


class DurationEstimate:
    """An exponentially smoothed mean of observed values (task durations in seconds)."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def observe(self, seconds: float) -> None:
        if self.value is None:
            self.value = seconds
        else:
            self.value = self.alpha * seconds + (1 - self.alpha) * self.value


class RunDurations:
    """What the lanes of a run have seen of their tasks, for a lane that has not seen one of its
    own yet: the smoothed mean duration, the smoothed relative error of the lanes'
    expectations, and, before any task has ended, how long one has been seen running. Lanes
    share it from their threads."""

    def __init__(self, alpha: float = 0.3) -> None:
        self._lock = threading.Lock()
        self._known = threading.Condition(self._lock)  # the first duration, or `wake`
        self._woken = False
        self._mean = DurationEstimate(alpha)
        self._error = DurationEstimate(alpha)
        self._running = 0.0
        self._earliest = float("inf")  # creation time of the run's oldest task polled blind

    def scouting(self, created: float) -> bool:
        """Whether a task created at `created` and polled blind (no duration known yet) is the
        run's oldest such task: its lane polls closely, the others mostly wait for the news of
        its end (see `wait_for_first`), which comes about when theirs end if the run's tasks
        are alike."""
        with self._lock:
            self._earliest = min(self._earliest, created)
            return created <= self._earliest

    def wait_for_first(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, less if the run learns its first task duration (or
        `wake` is called) meanwhile: a lane polling its first task blind can then poll where
        the task is likely to end."""
        with self._known:
            if self._mean.value is None and not self._woken:
                self._known.wait(timeout)

    def wake(self) -> None:
        """End every `wait_for_first`, now and later (the run is stopping)."""
        with self._known:
            self._woken = True
            self._known.notify_all()

    def still_running(self, seconds: float) -> None:
        """A task was seen still running `seconds` after it was created."""
        with self._lock:
            self._running = max(self._running, seconds)

    @property
    def running_at_least(self) -> float:
        """How long tasks of this run have been seen running (0.0 when no one has looked)."""
        return self._running

    def observe(self, seconds: float, expected: float | None) -> None:
        with self._lock:
            first = self._mean.value is None
            self._mean.observe(seconds)
            if expected:
                self._error.observe(abs(seconds - expected) / expected)
            if first:
                self._known.notify_all()

    def expect(self) -> tuple[float | None, float | None]:
        """(mean duration, relative error of expectations), None where nothing is known."""
        with self._lock:
            return self._mean.value, self._error.value


class TaskDurations:
    """What a lane expects its next task to take, and how far off such expectations have been.

    The groups of a lane can differ by orders of magnitude while a group's days are alike, so
    the expectation is the smoothed mean of the group's own past tasks, else of the lane's, else
    of the run's; the error is the lane's own, else the run's, else 10%.
    """

    DEFAULT_ERROR = 0.1

    def __init__(self, run: RunDurations | None = None, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self._run = run
        self._groups: dict[str, DurationEstimate] = {}
        self._lane = DurationEstimate(alpha)
        self._error = DurationEstimate(alpha)

    def remember(self, seconds_by_group: dict[str, float]) -> None:
        """Start from what earlier runs saw of the lane's groups (`by_group`, kept in the
        lane's state): a lane's first task is then not polled blind."""
        for group, seconds in seconds_by_group.items():
            if group not in self._groups and seconds > 0:
                self._groups[group] = DurationEstimate(self.alpha)
                self._groups[group].observe(seconds)
        if self._lane.value is None and self._groups:
            known = [e.value for e in self._groups.values() if e.value is not None]
            self._lane.observe(sum(known) / len(known))

    def by_group(self) -> dict[str, float]:
        """The smoothed duration of each group's tasks, in seconds, for the lane's state."""
        return {g: round(e.value, 3) for g, e in sorted(self._groups.items()) if e.value}

    @property
    def value(self) -> float | None:
        """The smoothed mean duration of the lane's tasks (None before the first one ends)."""
        return self._lane.value

    def expect(self, group: str) -> tuple[float | None, float]:
        """(expected seconds or None, relative error) for the next task of `group`."""
        own = self._groups.get(group)
        expected = own.value if own is not None else self._lane.value
        error = self._error.value
        if self._run is not None and (expected is None or error is None):
            run_mean, run_error = self._run.expect()
            expected = run_mean if expected is None else expected
            error = run_error if error is None else error
        return expected, self.DEFAULT_ERROR if error is None else error

    def still_running(self, seconds: float) -> None:
        """This lane's task is still running `seconds` after it was created."""
        if self._run is not None:
            self._run.still_running(seconds)

    def scouting(self, created: float) -> bool:
        """Whether this lane's task, polled blind, is the run's oldest (see RunDurations)."""
        return self._run.scouting(created) if self._run is not None else True

    def running_at_least(self) -> float:
        """How long the run's tasks have been seen running: before any has ended, a lane need
        not ask about its own task before that (0.0 when nothing is known)."""
        return self._run.running_at_least if self._run is not None else 0.0

    def observe(self, group: str, seconds: float, expected: float | None) -> None:
        """A task of `group` took `seconds`, where `expected` was expected (None: nothing was)."""
        self._groups.setdefault(group, DurationEstimate(self.alpha)).observe(seconds)
        self._lane.observe(seconds)
        if expected:
            self._error.observe(abs(seconds - expected) / expected)
        if self._run is not None:
            self._run.observe(seconds, expected)
