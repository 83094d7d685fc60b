"""Planning: which windows of which groups to export, and why the others are skipped."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from log_exporter.core.plan import NOT_READ, GroupInfo, PlanRange, SkipReason, plan_group, plan_lane
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Intervals, Window, day_window, to_ms

D = to_ms(date(2026, 11, 1))  # a Sunday; any day would do


def day(n: int) -> Window:
    return Window(D + n * MS_PER_DAY, D + (n + 1) * MS_PER_DAY - 1)


def rng(start: int | None, end: int, now: int, settle_h: int = 0, **kw: object) -> PlanRange:
    return PlanRange(
        start_ms=None if start is None else D + start * MS_PER_DAY,
        end_ms=D + end * MS_PER_DAY,
        now_ms=now,
        settle_ms=settle_h * MS_PER_HOUR,
        **kw,  # type: ignore[arg-type]
    )


NOW = D + 5 * MS_PER_DAY + 13 * MS_PER_HOUR  # day 5, 13:00 UTC


@pytest.mark.parametrize(
    ("case", "group", "covered", "r", "items", "reasons"),
    [
        (
            "from creation, settled days only",
            GroupInfo("/g", D + 2 * MS_PER_DAY + 500, NOW),
            [],
            rng(None, 5, NOW),
            [day(2), day(3), day(4)],
            set(),
        ),
        (
            "explicit start before creation skips those days",
            GroupInfo("/g", D + 2 * MS_PER_DAY, NOW),
            [],
            rng(0, 4, NOW),
            [day(2), day(3)],
            {SkipReason.BEFORE_CREATION},
        ),
        (
            "archived days are skipped",
            GroupInfo("/g", D, NOW),
            [(day(0).start, day(1).end)],
            rng(0, 4, NOW),
            [day(2), day(3)],
            {SkipReason.ARCHIVED},
        ),
        (
            "no writes after the last event",
            GroupInfo("/g", D, D + MS_PER_DAY + 5),
            [],
            rng(0, 5, NOW),
            [day(0), day(1)],
            {SkipReason.NO_WRITES},
        ),
        (
            "a last event at the very first ms of a day still exports that day",
            GroupInfo("/g", D, day(2).start),
            [],
            rng(0, 5, NOW),
            [day(0), day(1), day(2)],
            {SkipReason.NO_WRITES},
        ),
        (
            "a group without streams gets no task",
            GroupInfo("/g", D, None),
            [],
            rng(0, 5, NOW),
            [],
            {SkipReason.NO_STREAMS},
        ),
        (
            "settle holds back a day that ended too recently",
            GroupInfo("/g", D, NOW),
            [],
            rng(3, 5, D + 5 * MS_PER_DAY + 11 * MS_PER_HOUR, settle_h=12),
            [day(3)],
            {SkipReason.NOT_SETTLED},
        ),
        (
            "settle exactly elapsed: the day is exported",
            GroupInfo("/g", D, NOW),
            [],
            rng(3, 5, D + 5 * MS_PER_DAY + 12 * MS_PER_HOUR, settle_h=12),
            [day(3), day(4)],
            set(),
        ),
        (
            "a partly covered day exports only its remainder",
            GroupInfo("/g", D, NOW),
            [(day(1).start, day(1).start + 10 * MS_PER_HOUR - 1)],
            rng(1, 2, NOW),
            [Window(day(1).start + 10 * MS_PER_HOUR, day(1).end)],
            set(),
        ),
    ],
)
def test_plan_group(
    case: str,
    group: GroupInfo,
    covered: list[tuple[int, int]],
    r: PlanRange,
    items: list[Window],
    reasons: set[SkipReason],
) -> None:
    plan = plan_group(group, Intervals(covered), r)
    assert [i.window for i in plan.items] == items, case
    assert {s.reason for s in plan.skips} == reasons, case


def test_partial_runs_export_up_to_the_cutoff_and_later_the_rest() -> None:
    g = GroupInfo("/g", D, NOW)
    now1 = D + 10 * MS_PER_HOUR
    first = plan_group(g, Intervals(), PlanRange(D, D + MS_PER_DAY, now1, 0, "day", partial=True))
    assert [i.window for i in first.items] == [Window(D, now1 - 1)]
    covered = Intervals([(D, now1 - 1)])
    now2 = D + MS_PER_DAY + 1
    second = plan_group(g, covered, PlanRange(D, D + MS_PER_DAY, now2, 0, "day", partial=True))
    assert [i.window for i in second.items] == [Window(now1, D + MS_PER_DAY - 1)]
    # no overlap, no gap between the pieces
    assert second.items[0].window.start == first.items[0].window.end + 1


def test_hourly_periods() -> None:
    g = GroupInfo("/g", D, NOW)
    plan = plan_group(g, Intervals(), PlanRange(D, D + MS_PER_DAY, NOW, 0, "hour"))
    assert len(plan.items) == 24
    assert plan.items[0].window == Window(D, D + MS_PER_HOUR - 1)
    assert plan.items[-1].window.end == day(0).end


def test_plan_lane_orders_oldest_first_across_groups() -> None:
    groups = [GroupInfo("/b", D, NOW), GroupInfo("/a", D + MS_PER_DAY, NOW)]
    plan = plan_lane(groups, {"/b": Intervals([(day(0).start, day(0).end)])}, rng(0, 3, NOW))
    assert [(i.group, i.window) for i in plan.items] == [
        ("/a", day(1)),
        ("/b", day(1)),
        ("/a", day(2)),
        ("/b", day(2)),
    ]


def test_skips_are_coalesced_into_ranges() -> None:
    g = GroupInfo("/g", D + 10 * MS_PER_DAY, D + 11 * MS_PER_DAY)
    plan = plan_group(g, Intervals(), PlanRange(D, D + 12 * MS_PER_DAY, D + 20 * MS_PER_DAY))
    before = [s for s in plan.skips if s.reason == SkipReason.BEFORE_CREATION]
    assert len(before) == 1 and before[0].window == Window(D, day(9).end)


def test_whole_day_of_day_window_matches_plan() -> None:
    g = GroupInfo("/g", D, NOW)
    plan = plan_group(g, Intervals(), rng(0, 1, NOW))
    assert plan.items[0].window == day_window(date(2026, 11, 1))


@pytest.mark.parametrize(
    ("events", "window", "known"),
    [
        ((), day(0), False),  # nothing known: a probe decides
        ((day(0).start,), day(0), True),  # first millisecond of the day
        ((day(0).end,), day(0), True),  # last millisecond (windows are inclusive)
        ((day(1).start,), day(0), False),  # the next day's first millisecond
        ((day(0).start - 1, day(2).start), day(1), False),  # around the day, not in it
        ((D + 3 * MS_PER_HOUR, D + 2 * MS_PER_DAY), Window(D, D + 3 * MS_PER_HOUR), True),
    ],
)
def test_a_window_holding_a_known_event_needs_no_probe(
    events: tuple[int, ...], window: Window, known: bool
) -> None:
    assert GroupInfo("/g", D, NOW, events).holds_event(window, NOW) is known


@pytest.mark.parametrize(
    ("retention_days", "known"),
    [(None, True), (30, True), (7, True), (6, False), (1, False)],
)
def test_an_event_near_the_groups_retention_proves_nothing(
    retention_days: int | None, known: bool
) -> None:
    """Day 0's event is 5.5 days old at NOW: with 7 days of retention it counts; with 6 it is
    within a day of the limit, so it may be gone by the time the task runs."""
    g = GroupInfo("/g", D, NOW, (D + MS_PER_HOUR,), retention_days)
    assert g.holds_event(day(0), NOW) is known


@pytest.mark.parametrize(
    ("last_event", "covered", "r"),
    [
        (NOW, [], rng(0, 5, NOW)),
        (None, [], rng(0, 5, NOW)),  # no stream
        (D + MS_PER_DAY + 5, [], rng(0, 5, NOW)),  # written until day 1
        (D + 2 * MS_PER_DAY, [(day(0).start, day(1).end)], rng(0, 5, NOW)),  # day 2's first ms
        # a partly covered day whose last write is before the covered part ends
        (D + 3 * MS_PER_HOUR, [(day(0).start, D + 6 * MS_PER_HOUR - 1)], rng(0, 2, NOW)),
        (NOW, [], rng(None, 6, NOW, settle_h=2, partial=True)),  # today's settled part
        (D + 4 * MS_PER_HOUR, [], PlanRange(D, D + MS_PER_DAY, NOW, 0, "hour")),
    ],
)
def test_the_full_plan_is_the_plan_without_streams_minus_what_they_rule_out(
    last_event: int | None, covered: list[tuple[int, int]], r: PlanRange
) -> None:
    """A run plans from the group list (NOT_READ) and applies a group's full plan when its
    streams are read: the full plan's items must be among the first plan's, in its order."""
    unread = plan_group(GroupInfo("/g", D, NOT_READ), Intervals(covered), r)
    full = plan_group(GroupInfo("/g", D, last_event), Intervals(covered), r)
    keep = set(full.items)
    assert [i for i in unread.items if i in keep] == full.items


def test_a_recreated_group_is_planned_from_14_days_before_its_creation() -> None:
    """CloudWatch accepts events up to 14 days older than their ingestion: a group created again
    under an old name may hold events in days before its new creation (review12 §3)."""
    g = GroupInfo("/g", D + 20 * MS_PER_DAY + 7 * MS_PER_HOUR, D + 21 * MS_PER_DAY)
    now = D + 22 * MS_PER_DAY
    again = plan_group(g, Intervals(), PlanRange(None, D + 22 * MS_PER_DAY, now), recreated=True)
    assert [i.window for i in again.items] == [day(n) for n in range(6, 22)]
    # never before the run's start, and days before the 14 are still "before creation"
    r = PlanRange(D, D + 22 * MS_PER_DAY, now)
    since = plan_group(g, Intervals(), r, recreated=True)
    assert [i.window for i in since.items] == [day(n) for n in range(6, 22)]
    assert [(s.window, s.reason) for s in since.skips] == [
        (Window(D, day(5).end), SkipReason.BEFORE_CREATION)
    ]
    late = plan_group(g, Intervals(), replace(r, start_ms=day(18).start), recreated=True)
    assert [i.window for i in late.items] == [day(n) for n in range(18, 22)]
    # a group never recreated: from its creation, as before
    assert [i.window for i in plan_group(g, Intervals(), r).items] == [day(20), day(21)]
    lane = plan_lane([g, replace(g, name="/h")], {}, r, recreated={"/h"})
    assert sorted({(i.group, i.window.start) for i in lane.items}) == sorted(
        [("/g", day(20).start), ("/g", day(21).start)]
        + [("/h", day(n).start) for n in range(6, 22)]
    )
