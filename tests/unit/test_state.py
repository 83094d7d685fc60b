"""The lane state: what it records, and that it survives a JSON round trip unchanged."""

from __future__ import annotations

import json

from log_exporter.state import Intent, LaneState, state_key
from log_exporter.windows import Intervals, Window


def test_round_trip_keeps_everything() -> None:
    s = LaneState("111111111111", "us-east-1", period="day")
    s.mark_done("/g", Window(0, 99))
    s.mark_done("/g", Window(100, 199), empty=True)
    s.mark_failed("/h", Window(0, 99), "task x FAILED", now_ms=5)
    s.add_intent(Intent("/h", Window(100, 199), "name", "task-1", 7))
    s.lease_owner, s.lease_expires_ms = "me", 1234
    s.durations = {"/g": 312.5, "/h": 4.25}

    back = LaneState.from_json(json.loads(json.dumps(s.to_json())), etag='"e"')

    assert back.covered == {"/g": Intervals([(0, 199)])}
    assert back.empty == {"/g": Intervals([(100, 199)])}
    assert back.failures == s.failures
    assert back.intents == s.intents
    assert back.durations == {"/g": 312.5, "/h": 4.25}
    assert (back.lease_owner, back.lease_expires_ms, back.period, back.etag) == (
        "me",
        1234,
        "day",
        '"e"',
    )


def test_failures_count_attempts_and_clear_when_the_window_is_done() -> None:
    s = LaneState("1", "r")
    s.add_intent(Intent("/g", Window(0, 9), "n"))
    assert s.mark_failed("/g", Window(0, 9), "boom", 1).attempts == 1
    assert s.intents == []  # a failed window has no task in flight any more
    assert s.mark_failed("/g", Window(0, 9), "boom again", 2).attempts == 2
    assert len(s.failures) == 1
    s.mark_done("/g", Window(0, 9))
    assert s.failures == []
    assert s.coverage("/g").covers(Window(0, 9))


def test_intents_are_unique_per_window() -> None:
    s = LaneState("1", "r")
    s.add_intent(Intent("/g", Window(0, 9), "n"))
    s.add_intent(Intent("/g", Window(0, 9), "n", "task-2"))
    s.add_intent(Intent("/g", Window(10, 19), "m"))
    assert [(i.window, i.task_id) for i in s.intents] == [
        (Window(0, 9), "task-2"),
        (Window(10, 19), None),
    ]
    s.mark_done("/g", Window(0, 9))
    assert [i.window for i in s.intents] == [Window(10, 19)]


def test_lease_held_by_someone_else_only_until_it_expires() -> None:
    s = LaneState("1", "r", lease_owner="other", lease_expires_ms=1000)
    assert s.leased_by_other("me", 999)
    assert not s.leased_by_other("me", 1000)
    assert not s.leased_by_other("other", 999)


def test_state_key() -> None:
    assert (
        state_key("logs", "111111111111", "us-east-1")
        == "logs/.log-exporter/111111111111/us-east-1.json"
    )
    assert state_key("", "111111111111", "eu-west-1") == ".log-exporter/111111111111/eu-west-1.json"


def test_a_state_written_before_durations_were_kept_reads_without_them() -> None:
    old = {"account_id": "1", "region": "r", "covered": {"/g": [[0, 9]]}}
    assert LaneState.from_json(old).durations == {}
    assert LaneState.from_json({**old, "durations": {"/g": "x", "/h": 3}}).durations == {"/h": 3.0}
