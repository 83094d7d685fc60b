"""Which days a shorter retention would delete, and when it may be set (pure)."""

from __future__ import annotations

from datetime import date, timedelta

from log_exporter.core.plan import GroupInfo, PlanRange
from log_exporter.core.retention import (
    Outcome,
    apply_retention,
    decide,
    missing_days,
    shortest_days,
    too_short,
)
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.status import DaySpan
from log_exporter.core.windows import day_window, to_ms

TODAY = date(2026, 11, 20)
NOW = to_ms(TODAY) + 15 * 3_600_000  # 15:00 UTC
CREATED = date(2026, 11, 1)
G = "/aws/lambda/api"


def info(retention: int | None = None, created: date = CREATED) -> GroupInfo:
    return GroupInfo(G, to_ms(created) + 3_600_000, NOW - 1000, retention_days=retention)


def rng(start: date | None = None) -> PlanRange:
    return PlanRange(
        start_ms=to_ms(start) if start else None,
        end_ms=to_ms(TODAY),
        now_ms=NOW,
        settle_ms=12 * 3_600_000,
    )


def archived(first: date, last: date, *, skip: tuple[date, ...] = ()) -> LaneState:
    state = LaneState("111111111111", "us-east-1")
    d = first
    while d <= last:
        if d not in skip:
            state.mark_done(G, day_window(d))
        d += timedelta(days=1)
    return state


def span(a: date, b: date | None = None) -> DaySpan:
    return DaySpan(a, b or a)


def test_the_days_at_risk_end_with_the_day_of_now_minus_n_days() -> None:
    # 7 days: the newest day losing events is 11-13 (now - 7 days is 11-13 15:00)
    state = archived(CREATED, date(2026, 11, 12))
    assert missing_days(info(), state, 7, rng()) == [span(date(2026, 11, 13))]
    assert missing_days(info(), archived(CREATED, date(2026, 11, 13)), 7, rng()) == []


def test_days_before_destination_start_are_at_risk() -> None:
    state = archived(date(2026, 11, 5), date(2026, 11, 19))
    got = missing_days(info(), state, 7, rng(start=date(2026, 11, 5)))
    assert got == [span(date(2026, 11, 1), date(2026, 11, 4))]


def test_days_known_empty_and_days_before_creation_are_not_missing() -> None:
    state = archived(date(2026, 11, 2), date(2026, 11, 19))
    state.mark_done(G, day_window(CREATED), empty=True)
    assert missing_days(info(), state, 7, rng()) == []
    # nothing before the group's creation, nothing to lose at all for a group created since
    assert missing_days(info(created=date(2026, 11, 18)), LaneState("a", "r"), 7, rng()) == []


def test_failed_days_and_tasks_in_flight_are_missing() -> None:
    d5, d6 = date(2026, 11, 5), date(2026, 11, 6)
    state = archived(CREATED, date(2026, 11, 19), skip=(d5, d6))
    state.failures.append(Failure(G, day_window(d5), "boom", 1, NOW))
    state.add_intent(Intent(G, day_window(d6), "name", "task", NOW))
    assert missing_days(info(), state, 7, rng()) == [span(d5, d6)]


def test_days_the_current_retention_already_deleted_do_not_count() -> None:
    # retention 14: events before 11-06 15:00 are gone already; 11-06 still holds some
    state = archived(date(2026, 11, 10), date(2026, 11, 19))
    got = missing_days(info(retention=14), state, 7, rng())
    assert got == [span(date(2026, 11, 6), date(2026, 11, 9))]


def test_decide() -> None:
    complete = archived(CREATED, date(2026, 11, 19))
    assert decide(info(), complete, 7, rng(), dry_run=False).outcome is Outcome.SET
    assert decide(info(), complete, 7, rng(), dry_run=True).outcome is Outcome.WOULD_SET
    assert decide(info(retention=7), LaneState("a", "r"), 7, rng(), dry_run=False).outcome is (
        Outcome.ALREADY
    )
    assert decide(info(retention=5), LaneState("a", "r"), 7, rng(), dry_run=False).outcome is (
        Outcome.ALREADY
    )
    refused = decide(info(retention=30), LaneState("a", "r"), 7, rng(), dry_run=False)
    assert refused.outcome is Outcome.REFUSED
    assert refused.missing == [span(CREATED, date(2026, 11, 13))]
    assert refused.missing_days == 13


def test_apply_calls_put_only_for_the_groups_to_set() -> None:
    calls: list[tuple[str, int]] = []

    def put(group: str, n: int) -> str | None:
        calls.append((group, n))
        return "AccessDeniedException: not allowed"

    complete = archived(CREATED, date(2026, 11, 19))
    out = apply_retention([info()], complete, 7, rng(), put, dry_run=False)
    assert calls == [(G, 7)]
    assert out[0].outcome is Outcome.FAILED and not out[0].ok
    assert apply_retention([info()], complete, 7, rng(), put, dry_run=True)[0].ok
    assert calls == [(G, 7)]  # a dry run calls nothing
    refused = apply_retention([info()], LaneState("a", "r"), 7, rng(), put, dry_run=False)
    assert refused[0].outcome is Outcome.REFUSED and calls == [(G, 7)]


def test_a_retention_must_outlast_period_settle_and_a_day_of_schedule() -> None:
    assert shortest_days("day", 12 * 3600) == 3  # 1 day + 12 h + 1 day
    assert shortest_days("hour", 0) == 3  # 1 h + 1 day: 1 is too short, 3 is the next value
    assert shortest_days("day", 3 * 86_400) == 5
    assert too_short(3, "day", 12 * 3600) is None
    assert too_short(1, "day", 12 * 3600) == (
        "--days 1 is shorter than a day takes to be archived (the day itself, settle 12h and a "
        "day of schedule margin): its first events could expire before they are archived; "
        "the smallest N allowed is 3"
    )
    assert too_short(1, "hour", 0) is not None


def test_a_recreated_group_s_back_dated_days_are_at_risk() -> None:
    # created again on 11-18 (an older group of the name existed): its events back-dated into
    # the days before are at risk too, and not archived
    state = LaneState("111111111111", "us-east-1", created={G: to_ms(date(2026, 11, 18))})
    state.previous[f"{G}@{to_ms(CREATED)}"] = archived(CREATED, date(2026, 11, 13)).covered[G]
    got = missing_days(info(created=date(2026, 11, 18)), state, 7, rng())
    assert got == [span(date(2026, 11, 4), date(2026, 11, 13))]
    assert missing_days(info(created=date(2026, 11, 18)), LaneState("a", "r"), 7, rng()) == []
