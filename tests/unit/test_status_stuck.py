"""`status`: an intent in flight longer than `destination.stuck_after` is shown as stuck."""

from __future__ import annotations

from log_exporter.core.state import Intent, LaneState
from log_exporter.core.status import group_status

from .test_status import CREATED_DAY0, NOW, day, rng


def flying(since_ms: int) -> LaneState:
    s = LaneState("111111111111", "us-east-1", period="day")
    s.add_intent(Intent("/g", day(4), "log-exporter-x", "task-1", since_ms))
    return s


def test_an_intent_older_than_the_limit_is_stuck_and_not_ok() -> None:
    g = group_status(CREATED_DAY0, "/g", flying(NOW - 7_200_001), rng(), stuck_ms=7_200_000)
    assert [i.task_id for i in g.stuck] == ["task-1"] and g.in_flight == g.stuck
    assert not g.ok


def test_an_intent_within_the_limit_or_without_one_is_only_in_flight() -> None:
    for stuck_ms in (7_200_000, None):
        g = group_status(CREATED_DAY0, "/g", flying(NOW - 7_199_000), rng(), stuck_ms=stuck_ms)
        assert g.stuck == [] and len(g.in_flight) == 1
