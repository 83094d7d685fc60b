"""Direct reads' writer (the bytes an export task writes), marker, pacer and state fields."""

from __future__ import annotations

import gzip
import json
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.tasks import render_objects
from log_exporter.aws.reads import ReadRate
from log_exporter.core.direct import (
    Event,
    format_line,
    marker_body,
    parse_marker,
    render,
    window_bytes,
)
from log_exporter.core.state import Intent, LaneState
from log_exporter.core.windows import Intervals, Window

DAY = 1_793_664_000_000  # 2026-11-03T00:00:00Z


def fake_group(events: list[Event]) -> Any:
    """What emulator.tasks.render_objects reads of a moto LogGroup."""
    streams: dict[str, Any] = {}
    for e in events:
        streams.setdefault(e.stream, SimpleNamespace(events=[]))
        streams[e.stream].events.append(SimpleNamespace(timestamp=e.timestamp, message=e.message))
    return SimpleNamespace(streams=streams)


EVENTS = [
    Event("2026/11/03/[$LATEST]abc", DAY + 14 * 3_600_000 + 123, "START RequestId: 1"),
    Event("2026/11/03/[$LATEST]abc", DAY, "first ms of the day"),
    Event("2026/11/03/[$LATEST]abc", DAY + 86_399_999, "last ms; ünïcode"),
    Event("eni-0abc-all", DAY + 5, "x" * 300),
    Event("eni-0abc-all", DAY + 6, "y" * 300),
    Event("eni-0abc-all", DAY + 7, "z" * 300),
]


@pytest.mark.parametrize("max_bytes", [1 << 20, 700, 1])
def test_render_writes_exactly_what_an_export_task_writes(max_bytes: int) -> None:
    folder = "logs/111111111111/aws/lambda/api/2026/11/03/0f8fad5b-d9cb-469f-a165-70867728950e"
    ours = render(folder, EVENTS, max_bytes)

    theirs = render_objects(
        fake_group(EVENTS),
        prefix="logs/111111111111/aws/lambda/api/2026/11/03",
        task_id="0f8fad5b-d9cb-469f-a165-70867728950e",
        from_ms=DAY,
        to_ms=DAY + 86_399_999,
        stream_prefix=None,
        max_object_bytes=max_bytes,
    )

    assert [(o.key, o.body) for o in theirs] == ours  # keys, split and gzip bytes alike
    if max_bytes == 700:  # the flow log's three 300-byte lines: two objects
        assert [k.rsplit("/", 2)[1:] for k, _ in ours if "eni" in k] == [
            ["eni-0abc-all", "000000.gz"],
            ["eni-0abc-all", "000001.gz"],
        ]


def test_line_format_and_stream_names_keep_their_slashes() -> None:
    (key, body), *_ = render("f", EVENTS[:1])
    assert key == "f/2026/11/03/[$LATEST]abc/000000.gz"
    assert gzip.decompress(body) == b"2026-11-03T14:00:00.123Z START RequestId: 1\n"
    assert format_line(DAY, "m") == "2026-11-03T00:00:00.000Z m"


def test_marker_round_trip_and_refusals() -> None:
    body = marker_body("/g", Window(1, 2), ["f/s/000000.gz", "f/s/000001.gz"], "f", 7)
    data = parse_marker(body)
    assert data is not None
    assert (data["from"], data["to"], data["objects"]) == (1, 2, ["s/000000.gz", "s/000001.gz"])
    assert parse_marker(b"not json") is None
    assert parse_marker(json.dumps({"kind": "other", "from": 1, "to": 2}).encode()) is None


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_keeps_to_its_rate() -> None:
    t = FakeTime()
    pacer = ReadRate(2.5, clock=t.clock, sleep=t.sleep)
    for _ in range(11):
        pacer.take()
    assert t.now == pytest.approx(10 / 2.5)  # the first at once, then one every 0.4 s
    assert max(t.slept) == pytest.approx(0.4)


def test_pacer_lets_an_idle_time_pass_without_a_burst_beyond_its_size() -> None:
    t = FakeTime()
    pacer = ReadRate(5.0, burst=2, clock=t.clock, sleep=t.sleep)
    pacer.take()
    t.now += 60.0  # idle for a minute: at most `burst` tokens saved up
    for _ in range(4):
        pacer.take()
    assert sum(t.slept) == pytest.approx(2 / 5)


def test_pacer_shared_by_threads_hands_out_one_token_each() -> None:
    t = FakeTime()
    pacer = ReadRate(10.0, clock=t.clock, sleep=t.sleep)
    waits = sorted(pacer.delay() for _ in range(5))
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_state_keeps_direct_intents_and_read_windows() -> None:
    s = LaneState("111111111111", "us-east-1", period="day")
    s.add_intent(Intent("/g", Window(0, 99), "name", "folder-uuid", 7, direct=True))
    s.mark_done("/h", Window(0, 99), read=True)

    back = LaneState.from_json(json.loads(json.dumps(s.to_json())))

    assert back.intents == s.intents and back.intents[0].direct
    assert back.read == {"/h": Intervals([(0, 99)])}
    assert back.covered["/h"] == Intervals([(0, 99)])
    plain = LaneState("111111111111", "us-east-1")
    plain.add_intent(Intent("/g", Window(0, 99), "name", "task", 7))
    assert "read" not in plain.to_json()  # a state without direct reads keeps its old bytes
    assert "direct" not in plain.to_json()["intents"][0]


D = 86_400_000


@pytest.mark.parametrize(
    ("stored", "created", "retention", "window", "now", "expected"),
    [
        (7_000, 0 + 1, None, Window(0, D - 1), 7 * D + 1, 1_000),  # 7 days old: a seventh
        (7_000, 5 * D, 3, Window(5 * D, 6 * D - 1), 35 * D, 7_000 / 3),  # retention: 3 days
        (7_000, 5 * D, None, Window(5 * D, 5 * D + 3_600_000 - 1), 5 * D + 60_000, 7_000 / 24),
        (7_000, 0, None, Window(0, D - 1), 9 * D, 7_000),  # age unknown: all of it
        (7_000, 0, 10, Window(0, D - 1), 9 * D, 700),  # age unknown, retention known
    ],
    ids=["age", "retention", "hour-of-a-new-group", "unknown", "unknown-age-retention"],
)
def test_window_bytes_spreads_stored_bytes_over_the_groups_days(
    stored: int, created: int, retention: int | None, window: Window, now: int, expected: float
) -> None:
    assert window_bytes(stored, created, retention, window, now) == pytest.approx(expected)
