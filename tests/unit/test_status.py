"""`status`: per group, archived days, gaps, failed days and tasks in flight, from a lane state."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from log_exporter.core.plan import GroupInfo, PlanRange
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.status import (
    DaySpan,
    day_spans,
    days_touched,
    group_status,
    lane_status,
    whole_days,
)
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Intervals, Window, to_ms

DAY0 = date(2026, 11, 1)
D = to_ms(DAY0)
NOW = D + 5 * MS_PER_DAY + 13 * MS_PER_HOUR  # day 5, 13:00 UTC


def day(n: int) -> Window:
    return Window(D + n * MS_PER_DAY, D + (n + 1) * MS_PER_DAY - 1)


def hour(n: int, h: int) -> Window:
    start = D + n * MS_PER_DAY + h * MS_PER_HOUR
    return Window(start, start + MS_PER_HOUR - 1)


def days(*ns: int) -> list[DaySpan]:
    return day_spans(DAY0 + timedelta(days=n) for n in ns)


def rng(*, start: int | None = None, settle_h: int = 12, **kw: object) -> PlanRange:
    """What `status` uses: like a run without --start/--end (end: today, exclusive)."""
    return PlanRange(
        start_ms=None if start is None else D + start * MS_PER_DAY,
        end_ms=D + 5 * MS_PER_DAY,
        now_ms=NOW,
        settle_ms=settle_h * MS_PER_HOUR,
        **kw,  # type: ignore[arg-type]
    )


def state(
    covered: list[Window] = (),  # type: ignore[assignment]
    empty: list[Window] = (),  # type: ignore[assignment]
    failed: list[Window] = (),  # type: ignore[assignment]
    flying: list[Window] = (),  # type: ignore[assignment]
    group: str = "/g",
) -> LaneState:
    s = LaneState("111111111111", "us-east-1", period="day")
    for w in covered:
        s.mark_done(group, w)
    for w in empty:
        s.mark_done(group, w, empty=True)
    for w in failed:
        s.mark_failed(group, w, "task t FAILED: Export failed", NOW - 1000)
    for w in flying:
        s.add_intent(Intent(group, w, f"log-exporter-x-{w.start}", "task-1", NOW - 5000))
    return s


CREATED_DAY0 = GroupInfo("/g", D + 3 * MS_PER_HOUR, NOW)  # created day 0, written until now


@pytest.mark.parametrize(
    ("case", "info", "st", "r", "expect"),
    [
        (
            "everything settled is archived",
            CREATED_DAY0,
            state([day(0), day(1), day(2), day(3), day(4)]),
            rng(),
            dict(first=0, last=4, archived=5, empty=0, gaps=[], failed=0, ok=True),
        ),
        (
            "a missing day in the middle and at the end are gaps",
            CREATED_DAY0,
            state([day(0), day(2), day(3)]),
            rng(),
            dict(first=0, last=3, archived=3, empty=0, gaps=days(1, 4), failed=0, ok=False),
        ),
        (
            "nothing archived yet: every settled day since creation is a gap",
            CREATED_DAY0,
            state(),
            rng(),
            dict(first=None, last=None, archived=0, empty=0, gaps=days(0, 1, 2, 3, 4), ok=False),
        ),
        (
            "empty days are neither archived nor gaps",
            CREATED_DAY0,
            state([day(0), day(3), day(4)], empty=[day(1), day(2)]),
            rng(),
            dict(first=0, last=4, archived=3, empty=2, gaps=[], ok=True),
        ),
        (
            "a failed day is listed apart, not as a gap",
            CREATED_DAY0,
            state([day(0), day(1), day(3), day(4)], failed=[day(2)]),
            rng(),
            dict(archived=4, gaps=[], failed=1, ok=False),
        ),
        (
            "a day in flight is not a gap",
            CREATED_DAY0,
            state([day(0), day(1), day(2), day(3)], flying=[day(4)]),
            rng(),
            dict(archived=4, gaps=[], failed=0, flying=1, ok=True),
        ),
        (
            "days before destination.start are not gaps",
            CREATED_DAY0,
            state([day(3), day(4)]),
            rng(start=3),
            dict(first=3, archived=2, gaps=[], ok=True),
        ),
        (
            "days before the group's creation are not gaps",
            GroupInfo("/g", D + 2 * MS_PER_DAY + 1, NOW),
            state([day(2), day(3), day(4)]),
            rng(start=0),
            dict(first=2, archived=3, gaps=[], ok=True),
        ),
        (
            "days after the last write are not gaps",
            GroupInfo("/g", D, D + 1 * MS_PER_DAY + 5),
            state([day(0)]),
            rng(),
            dict(archived=1, gaps=days(1), ok=False),
        ),
        (
            "yesterday is not settled yet at 13:00 with settle 14h: not a gap",
            CREATED_DAY0,
            state([day(0), day(1), day(2), day(3)]),
            rng(settle_h=14),
            dict(archived=4, gaps=[], ok=True),
        ),
        (
            "a group without streams has no gaps",
            GroupInfo("/g", D, None),
            state(),
            rng(),
            dict(archived=0, gaps=[], ok=True),
        ),
        (
            "a group CloudWatch no longer lists: archive shown, failures do not count",
            None,
            state([day(0), day(1)], failed=[day(2)]),
            rng(),
            dict(first=0, last=1, archived=2, gaps=[], failed=1, ok=True, listed=False),
        ),
        (
            "hourly archive: a missing hour makes its day a gap",
            CREATED_DAY0,
            state([Window(day(0).start, hour(2, 9).start - 1), Window(hour(2, 10).start, NOW)]),
            rng(period="hour"),
            dict(first=0, last=5, gaps=days(2), ok=False),
        ),
    ],
)
def test_group_status(
    case: str, info: GroupInfo | None, st: LaneState, r: PlanRange, expect: dict[str, object]
) -> None:
    g = group_status(info, "/g", st, r)

    def nth(n: object) -> date | None:
        return None if n is None else DAY0 + timedelta(days=int(n))  # type: ignore[call-overload]

    got: dict[str, object] = {
        "first": g.first_archived,
        "last": g.last_archived,
        "archived": g.archived_days,
        "empty": g.empty_days,
        "gaps": g.gaps,
        "failed": g.failed_days,
        "flying": len(g.in_flight),
        "ok": g.ok,
        "listed": g.listed,
    }
    want = {k: nth(v) if k in ("first", "last") else v for k, v in expect.items()}
    assert {k: got[k] for k in want} == want, case


def test_failure_keeps_its_error_and_archived_days_clear_it() -> None:
    st = state([day(0)], failed=[day(1)])
    g = group_status(CREATED_DAY0, "/g", st, rng())
    assert [(f.window, f.error) for f in g.failures] == [(day(1), "task t FAILED: Export failed")]
    st.mark_done("/g", day(1))  # the next run filled it
    assert group_status(CREATED_DAY0, "/g", st, rng()).failures == []


def test_output_still_to_delete_is_shown_even_for_an_archived_day() -> None:
    st = state([day(0), day(1)])
    st.failures.append(Failure("/g", day(1), "task t FAILED; cannot delete", 1, 5, cleanup="t"))
    g = group_status(CREATED_DAY0, "/g", st, rng())
    assert [(f.window, f.cleanup) for f in g.failures] == [(day(1), "t")]
    assert not g.ok


def test_lane_status_lists_cloudwatch_groups_and_groups_only_in_the_state() -> None:
    st = state([day(0)], group="/gone")
    st.failures.append(Failure("/other", day(1), "boom", 1, NOW))
    out = lane_status([CREATED_DAY0], st, rng())
    assert [(g.group, g.listed) for g in out] == [("/g", True), ("/gone", False), ("/other", False)]


@pytest.mark.parametrize(
    ("windows", "touched", "whole"),
    [
        ([day(0)], {0}, {0}),
        ([Window(day(0).start, day(2).end)], {0, 1, 2}, {0, 1, 2}),
        ([Window(day(0).start + 1, day(1).end)], {0, 1}, {1}),
        ([hour(3, 23)], {3}, set()),
        ([Window(day(1).end, day(2).start)], {1, 2}, set()),  # the last and first ms
    ],
)
def test_days_touched_and_whole_days(
    windows: list[Window], touched: set[int], whole: set[int]
) -> None:
    assert days_touched(windows) == {DAY0 + timedelta(days=n) for n in touched}
    assert whole_days(windows) == {DAY0 + timedelta(days=n) for n in whole}


def test_day_spans_join_consecutive_days() -> None:
    spans = days(0, 1, 2, 4, 7, 8)
    assert [str(s) for s in spans] == [
        "2026-11-01..2026-11-03",
        "2026-11-05",
        "2026-11-08..2026-11-09",
    ]
    assert [s.days for s in spans] == [3, 1, 2]


def test_a_recreated_group_s_days_before_its_creation_are_gaps_until_archived() -> None:
    # created again at day 3 03:00: events may be back-dated up to 14 days, as `run` plans them
    info = GroupInfo("/g", D + 3 * MS_PER_DAY + 3 * MS_PER_HOUR, NOW)
    s = state([day(3)])
    s.created["/g"] = info.created_ms
    s.previous[f"/g@{D}"] = Intervals([(day(0).start, day(2).end)])
    since = [DAY0 - timedelta(days=n) for n in range(1, 12)]  # 10-21 (11-04 03:00 - 14 d)..10-31
    assert group_status(info, "/g", s, rng()).gaps == day_spans(
        [*since, *(DAY0 + timedelta(days=n) for n in (0, 1, 2, 4))]
    )
    # never before destination.start (or --start)
    assert group_status(info, "/g", s, rng(start=0)).gaps == days(0, 1, 2, 4)
    s.mark_done("/g", Window(day(0).start, day(2).end), empty=True)
    assert group_status(info, "/g", s, rng(start=0)).gaps == days(4)
    # never recreated: from its creation only
    assert group_status(info, "/g", state([day(3)]), rng()).gaps == days(4)
