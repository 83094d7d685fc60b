"""Day and hour windows, interval sets and keys: tables with time zones and the edges of a day."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from log_exporter.core.windows import (
    MS_PER_DAY,
    Intervals,
    Window,
    day_window,
    destination_prefix,
    iso_ms,
    period_window,
    periods,
    task_name,
    to_ms,
    utc_day,
)

NOV1 = to_ms(date(2026, 11, 1))


@pytest.fixture(params=["UTC", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati"])
def machine_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test under several machine time zones: nothing here may depend on them."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    ("ms", "day"),
    [
        (NOV1, date(2026, 11, 1)),  # first millisecond of the day
        (NOV1 + MS_PER_DAY - 1, date(2026, 11, 1)),  # last millisecond
        (NOV1 + MS_PER_DAY, date(2026, 11, 2)),  # next day starts 1 ms later
        (NOV1 - 1, date(2026, 10, 31)),
        (to_ms(datetime(2026, 11, 1, 7, 59, 59, 999000, tzinfo=UTC)), date(2026, 11, 1)),
        # 23:30 in Los Angeles on Oct 31 is Nov 1 in UTC
        (
            to_ms(datetime(2026, 10, 31, 23, 30, tzinfo=timezone(timedelta(hours=-7)))),
            date(2026, 11, 1),
        ),
        # 02:00 in Kolkata on Nov 1 is still Oct 31 in UTC
        (
            to_ms(datetime(2026, 11, 1, 2, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
            date(2026, 10, 31),
        ),
    ],
)
def test_utc_day_ignores_machine_time_zone(machine_tz: str, ms: int, day: date) -> None:
    assert utc_day(ms) == day
    w = day_window(day)
    assert w.start <= ms <= w.end


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2026, 11, 1), "2026-11-01T00:00:00.000Z", "2026-11-01T23:59:59.999Z"),
        (date(2024, 2, 29), "2024-02-29T00:00:00.000Z", "2024-02-29T23:59:59.999Z"),
        (date(2026, 12, 31), "2026-12-31T00:00:00.000Z", "2026-12-31T23:59:59.999Z"),
        # the day US clocks fall back is still 24 UTC hours
        (date(2026, 11, 1), "2026-11-01T00:00:00.000Z", "2026-11-01T23:59:59.999Z"),
    ],
)
def test_day_window_is_inclusive_and_whole(
    machine_tz: str, day: date, start: str, end: str
) -> None:
    w = day_window(day)
    assert (iso_ms(w.start), iso_ms(w.end)) == (start, end)
    assert w.duration_ms == MS_PER_DAY
    assert day_window(day + timedelta(days=1)).start == w.end + 1


def test_consecutive_periods_tile_without_gap_or_overlap() -> None:
    for period in ("day", "hour"):
        ws = list(periods(NOV1 + 5, NOV1 + 3 * MS_PER_DAY, period))  # type: ignore[arg-type]
        assert ws[0].start == NOV1
        for a, b in itertools.pairwise(ws):
            assert b.start == a.end + 1
        assert ws[-1].end == NOV1 + 3 * MS_PER_DAY - 1
    assert len(list(periods(NOV1, NOV1 + MS_PER_DAY, "hour"))) == 24


@pytest.mark.parametrize(
    ("ms", "period", "expected"),
    [
        (NOV1 + 3_600_000 * 5 + 7, "hour", Window(NOV1 + 3_600_000 * 5, NOV1 + 3_600_000 * 6 - 1)),
        (NOV1 + MS_PER_DAY - 1, "day", Window(NOV1, NOV1 + MS_PER_DAY - 1)),
        (NOV1 + MS_PER_DAY - 1, "hour", Window(NOV1 + 23 * 3_600_000, NOV1 + MS_PER_DAY - 1)),
    ],
)
def test_period_window(ms: int, period: str, expected: Window) -> None:
    assert period_window(ms, period) == expected  # type: ignore[arg-type]


def test_window_rejects_reversed_bounds() -> None:
    with pytest.raises(ValueError, match="starts after it ends"):
        Window(10, 9)


@pytest.mark.parametrize(
    ("spans", "window", "missing"),
    [
        ([], Window(0, 99), [Window(0, 99)]),
        ([(0, 99)], Window(0, 99), []),
        ([(0, 49)], Window(0, 99), [Window(50, 99)]),
        ([(10, 19), (30, 39)], Window(0, 49), [Window(0, 9), Window(20, 29), Window(40, 49)]),
        ([(0, 9), (10, 19)], Window(0, 19), []),  # adjacent spans merge
        ([(200, 300)], Window(0, 99), [Window(0, 99)]),
        ([(50, 300)], Window(0, 99), [Window(0, 49)]),
    ],
)
def test_intervals_missing(
    spans: list[tuple[int, int]], window: Window, missing: list[Window]
) -> None:
    iv = Intervals(spans)
    assert iv.missing(window) == missing
    assert iv.covers(window) == (missing == [])


def test_intervals_add_coalesces_pieces_of_a_day() -> None:
    iv = Intervals()
    iv.add(Window(NOV1, NOV1 + 999))
    iv.add(Window(NOV1 + 2000, NOV1 + MS_PER_DAY - 1))
    assert not iv.covers(day_window(date(2026, 11, 1)))
    iv.add(Window(NOV1 + 1000, NOV1 + 1999))
    assert iv.covers(day_window(date(2026, 11, 1)))
    assert iv.spans == [(NOV1, NOV1 + MS_PER_DAY - 1)]


@pytest.mark.parametrize(
    ("prefix", "group", "period", "expected"),
    [
        ("logs2", "/aws/lambda/api", "day", "logs2/111111111111/aws/lambda/api/2026/11/01"),
        ("logs2", "vpc-flow-logs", "day", "logs2/111111111111/vpc-flow-logs/2026/11/01"),
        ("a/b", "/x", "hour", "a/b/111111111111/x/2026/11/01/00"),
        ("", "g#1.x_y", "day", "111111111111/g#1.x_y/2026/11/01"),
    ],
)
def test_destination_prefix(
    machine_tz: str, prefix: str, group: str, period: str, expected: str
) -> None:
    w = day_window(date(2026, 11, 1))
    assert destination_prefix(prefix, "111111111111", group, w, period) == expected  # type: ignore[arg-type]


def test_task_names_are_deterministic_and_distinct() -> None:
    w1, w2 = day_window(date(2026, 11, 1)), day_window(date(2026, 11, 2))
    a = task_name("111111111111", "us-east-1", "/g", w1)
    assert a == task_name("111111111111", "us-east-1", "/g", w1)
    others = {
        task_name("111111111111", "us-east-1", "/g", w2),
        task_name("222222222222", "us-east-1", "/g", w1),
        task_name("111111111111", "eu-west-1", "/g", w1),
        task_name("111111111111", "us-east-1", "/h", w1),
    }
    assert a not in others and len(others) == 4
    assert len(task_name("1" * 12, "us-east-1", "/" + "g" * 511, w1)) <= 512


def test_task_names_differ_between_archives_and_keep_the_old_form_without_one() -> None:
    w = day_window(date(2026, 11, 1))
    old = task_name("111111111111", "us-east-1", "/g", w)
    # the name earlier versions gave this window (their recorded intents still hold it)
    assert old == "log-exporter-0f2ec9fd1d03c120-1793491200000-1793577599999"
    names = {
        task_name("111111111111", "us-east-1", "/g", w, archive=archive)
        for archive in ("bucket/logs", "bucket/logs-v2", "other/logs", "bucket/")
    }
    assert old not in names and len(names) == 4
    assert task_name("111111111111", "us-east-1", "/g", w, archive="bucket/logs") == task_name(
        "111111111111", "us-east-1", "/g", w, archive="bucket/logs"
    )
    # a recreated group's creation time and the archive both count, each on its own
    both = task_name("111111111111", "us-east-1", "/g", w, created_ms=5, archive="bucket/logs")
    assert both not in names | {old, task_name("111111111111", "us-east-1", "/g", w, created_ms=5)}
    assert all(n.endswith(f"-{w.start}-{w.end}") for n in names)
