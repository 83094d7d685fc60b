"""The lane state: what it records, and that it survives a JSON round trip unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from log_exporter.core.state import STATE_VERSION, Intent, LaneState, parse_state, state_key
from log_exporter.core.windows import Intervals, Window, task_name
from log_exporter.errors import StateTooNewError, StateUnreadableError


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


# --- a state object that cannot be used (issue 12, point 8) -------------------------------
WHERE = "s3://archive/logs/.log-exporter/111111111111/us-east-1.json"


def test_bad_json_is_refused_naming_the_key() -> None:
    with pytest.raises(StateUnreadableError) as err:
        parse_state(b"\x00garbage{", WHERE, etag='"bad"')
    message = str(err.value)
    assert message.startswith(f"{WHERE}: not a lane state (not JSON")
    assert "\n" not in message and "sync --config FILE --account NAME" in message
    assert (err.value.key, err.value.etag) == (WHERE, '"bad"')


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"version": 1, "region": "r"}, "account_id: is required"),
        ({"account_id": "1", "region": "r", "covered": {"/g": [[0, "x"]]}}, "covered./g.0.1"),
        (
            {
                "account_id": "1",
                "region": "r",
                "failures": [
                    {
                        "group": "/g",
                        "from": 0,
                        "to": 9,
                        "error": "e",
                        "attempts": "many",
                        "at_ms": 1,
                    }
                ],
            },
            "failures.0.attempts",
        ),
        ({"account_id": "1", "region": "r", "lease": {"expires_ms": "soon"}}, "lease.expires_ms"),
        ({"account_id": "1", "region": "r", "period": "week"}, "period"),
        ([1, 2], "(top level)"),
    ],
)
def test_a_wrong_field_is_named(data: Any, field: str) -> None:
    with pytest.raises(StateUnreadableError) as err:
        parse_state(json.dumps(data).encode(), WHERE)
    assert str(err.value).startswith(f"{WHERE}: not a lane state ({field}")


def test_the_line_says_how_to_rebuild_the_state_of_this_account() -> None:
    with pytest.raises(StateUnreadableError) as err:
        parse_state(b"{", WHERE, account="prod-eu")
    assert "`log-exporter sync --config FILE --account prod-eu` rebuilds it" in str(err.value)
    with pytest.raises(StateUnreadableError) as err:
        parse_state(b"[]", WHERE, account="prod-eu")
    assert "`log-exporter sync --config FILE --account prod-eu` rebuilds it" in str(err.value)


@pytest.mark.parametrize("version", ["2", "1", 1.0, True, None])
def test_a_version_that_is_not_a_whole_number_is_unreadable(version: object) -> None:
    """Not coerced (pydantic's lax mode would read "2" as 2, then as this version's state)."""
    body = json.dumps({"version": version, "account_id": "1", "region": "r"})
    with pytest.raises(StateUnreadableError) as err:
        parse_state(body.encode(), WHERE)
    assert str(err.value).startswith(f"{WHERE}: not a lane state (version: ")


def test_a_newer_version_is_refused() -> None:
    body = json.dumps({"version": STATE_VERSION + 1, "account_id": "1", "region": "r"})
    with pytest.raises(StateTooNewError) as err:
        parse_state(body.encode(), WHERE)
    assert str(err.value) == (
        f"{WHERE}: version {STATE_VERSION + 1} was written by a newer log-exporter "
        f"(this one reads version {STATE_VERSION}): upgrade log-exporter"
    )
    # whatever else the newer shape holds: the version is what is refused
    with pytest.raises(StateTooNewError):
        parse_state(json.dumps({"version": 99, "covered": "?"}).encode(), WHERE)


def test_an_existing_state_object_reads_and_writes_back_the_same_bytes() -> None:
    """What earlier versions wrote is read as before, and written back byte for byte."""
    body = (
        '{"version":1,"account_id":"111111111111","region":"us-east-1","period":"day",'
        '"lease":{"owner":null,"expires_ms":0},"covered":{"/g":[[0,199]]},'
        '"empty":{"/g":[[100,199]]},"failures":[{"group":"/h","from":0,"to":99,'
        '"error":"task x FAILED","attempts":2,"at_ms":5}],"durations":{"/g":312.5},'
        '"intents":[{"group":"/h","from":100,"to":199,"name":"n","task_id":null,"since_ms":7}]}'
    )
    state = parse_state(body.encode(), WHERE)
    assert json.dumps(state.to_json(), separators=(",", ":")) == body


# --- a log group created again under the same name (issue 12, point 6) --------------------
def test_a_group_created_again_starts_over_and_keeps_the_old_coverage_aside() -> None:
    s = LaneState("1", "r")
    assert s.observe_groups({"/g": 1000, "/h": 5}) == []  # first seen: recorded
    s.mark_done("/g", Window(0, 99))
    s.mark_done("/g", Window(100, 199), empty=True)
    s.mark_failed("/g", Window(200, 299), "boom", 1)
    s.mark_failed("/g", Window(300, 399), "left output", 1, cleanup="t-1")
    s.mark_done("/h", Window(0, 99))
    assert s.incarnation("/g") is None
    assert s.observe_groups({"/g": 1000, "/h": 5}) == []  # the same group: nothing changes

    assert s.observe_groups({"/g": 2000, "/h": 5}) == ["/g"]

    assert s.created == {"/g": 2000, "/h": 5}
    assert "/g" not in s.covered and "/g" not in s.empty
    assert s.previous == {"/g@1000": Intervals([(0, 199)])}
    # the old group's failure is gone; output still to delete is not forgotten
    assert [(f.window, f.cleanup) for f in s.failures] == [(Window(300, 399), "t-1")]
    assert s.covered["/h"] == Intervals([(0, 99)])
    assert s.incarnation("/g") == 2000 and s.incarnation("/h") is None
    back = LaneState.from_json(json.loads(json.dumps(s.to_json())))
    assert (back.created, back.previous, back.failures) == (s.created, s.previous, s.failures)


def test_task_names_of_a_group_created_again_differ() -> None:
    w = Window(0, 99)
    assert task_name("1", "r", "/g", w) == task_name("1", "r", "/g", w, created_ms=None)
    assert task_name("1", "r", "/g", w, created_ms=2000) != task_name("1", "r", "/g", w)


# --- partial output that could not be deleted (issue 12, point 2) -------------------------
def test_output_to_delete_outlives_the_window_being_archived_and_new_failures() -> None:
    s = LaneState("1", "r")
    s.mark_failed("/g", Window(0, 9), "task t FAILED; cannot delete", 1, cleanup="t")
    assert s.mark_failed("/g", Window(0, 9), "again", 2).cleanup == "t"
    s.mark_done("/g", Window(0, 9))
    assert [f.cleanup for f in s.uncleaned()] == ["t"]
