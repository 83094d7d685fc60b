"""Waiting well: jittered exponential backoff for retries, and adaptive polling of a task."""

from __future__ import annotations

import random


class Backoff:
    """Full-jitter exponential backoff: attempt n waits uniformly in [0, min(cap, base * 2**n)]."""

    def __init__(self, base: float = 0.2, cap: float = 20.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class PollSchedule:
    """When to ask again whether a task has finished.

    With no history it starts sub-second and doubles. Once the lane has seen tasks finish, it
    first asks at 80% of the expected duration (a smoothed mean of past ones), then every
    twentieth of it, growing by half each time, so a task is noticed within a few percent of
    its end with a handful of calls.
    """

    def __init__(self, expected: float | None, *, minimum: float = 0.02, maximum: float = 30.0):
        self.minimum = minimum
        self.maximum = maximum
        self._expected = expected
        self._calls = 0
        self._step = max(minimum, (expected or 0.0) * 0.05)

    def next(self, elapsed: float) -> float:
        self._calls += 1
        if self._expected is None:
            return min(self.maximum, self.minimum * 2.0 ** (self._calls - 1))
        if self._calls == 1 and elapsed < self._expected * 0.8:
            return min(self.maximum, max(self.minimum, self._expected * 0.8 - elapsed))
        step = self._step
        self._step = min(self.maximum, self._step * 1.5)
        return min(self.maximum, step)


class DurationEstimate:
    """An exponentially smoothed mean of observed task durations (seconds)."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def observe(self, seconds: float) -> None:
        if self.value is None:
            self.value = seconds
        else:
            self.value = self.alpha * seconds + (1 - self.alpha) * self.value
