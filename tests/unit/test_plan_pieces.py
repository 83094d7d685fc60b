"""Pieces of periods (inner-day runs), hourly periods and the settle delay, edge by edge; and how
`--through`, `destination.through` and `destination.period` shape a run's range."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest

from log_exporter.cli.options import through_range
from log_exporter.core.config import Config, parse_config
from log_exporter.core.plan import GroupInfo, PlanRange, SkipReason, plan_group
from log_exporter.core.windows import (
    MS_PER_DAY,
    MS_PER_HOUR,
    Intervals,
    Period,
    Window,
    period_window,
    to_ms,
)
from log_exporter.engine import RunOptions, plan_range
from log_exporter.errors import ConfigError, UsageError

D = to_ms(date(2026, 11, 1))  # day 0, 00:00 UTC
H = MS_PER_HOUR
M = 60_000


def at(day: int, hour: int = 0, minute: int = 0) -> int:
    return D + day * MS_PER_DAY + hour * H + minute * M


def w(a: int, b_exclusive: int) -> Window:
    return Window(a, b_exclusive - 1)


def rng(
    now: int,
    *,
    settle: int = 0,
    period: Period = "day",
    partial: bool = True,
    start: int = D,
    end: int | None = None,
) -> PlanRange:
    return PlanRange(start, end if end is not None else at(3), now, settle, period, partial)


GROUP = GroupInfo("/g", D, at(9))  # created at day 0 00:00, written until well after the runs


@pytest.mark.parametrize(
    ("case", "covered", "r", "items", "not_settled"),
    [
        (
            "first inner-day run: the day from its start up to the cutoff",
            [],
            rng(at(0, 6), end=at(1)),
            [w(D, at(0, 6))],
            [Window(at(0, 6), at(1) - 1)],
        ),
        (
            "second run: fromTime is the previous `to` + 1 ms, up to the new cutoff",
            [(D, at(0, 6) - 1)],
            rng(at(0, 12), end=at(1)),
            [w(at(0, 6), at(0, 12))],
            [Window(at(0, 12), at(1) - 1)],
        ),
        (
            "once the day is settled, its remainder is one piece to its last ms",
            [(D, at(0, 12) - 1)],
            rng(at(1, 1), settle=H, end=at(1)),
            [Window(at(0, 12), at(1) - 1)],
            [],
        ),
        (
            "the remainder is exported by a run without --through too",
            [(D, at(0, 12) - 1)],
            rng(at(1, 1), settle=H, partial=False, end=at(1)),
            [Window(at(0, 12), at(1) - 1)],
            [],
        ),
        (
            "pieces that cover the day whole make it archived",
            [(D, at(0, 6) - 1), (at(0, 6), at(1) - 1)],
            rng(at(1, 6), end=at(1)),
            [],
            [],
        ),
        (
            "without --through the unsettled remainder waits, nothing is cut",
            [(D, at(0, 6) - 1)],
            rng(at(0, 12), partial=False, end=at(1)),
            [],
            [Window(at(0, 6), at(1) - 1)],
        ),
        (
            "settle reaches into yesterday: yesterday's settled part, nothing of today",
            [],
            rng(at(1, 6), settle=12 * H, start=at(1), end=at(2)),
            [],
            [Window(at(1), at(2) - 1)],
        ),
        (
            "settle reaches into yesterday: yesterday is cut at now - settle",
            [],
            rng(at(1, 6), settle=12 * H, end=at(2)),
            [w(D, at(0, 18))],
            [Window(at(0, 18), at(2) - 1)],
        ),
        (
            "cutoff exactly at midnight: yesterday whole, today nothing",
            [],
            rng(at(1, 1), settle=H, end=at(2)),
            [w(D, at(1))],
            [Window(at(1), at(2) - 1)],
        ),
        (
            "cutoff one ms after midnight: today's piece is that single ms",
            [],
            rng(at(1) + 1, start=at(1), end=at(2)),
            [Window(at(1), at(1))],
            [Window(at(1) + 1, at(2) - 1)],
        ),
        (
            "a hole left between pieces (a failed piece) is filled, and the tail too",
            [(D, at(0, 6) - 1), (at(0, 12), at(0, 18) - 1)],
            rng(at(0, 20), end=at(1)),
            [w(at(0, 6), at(0, 12)), w(at(0, 18), at(0, 20))],
            [Window(at(0, 20), at(1) - 1)],
        ),
        (
            "a settle longer than a day",
            [],
            rng(at(2, 6), settle=36 * H, end=at(3)),
            [w(D, at(0, 18))],
            [Window(at(0, 18), at(3) - 1)],
        ),
        (
            "hours: whole settled hours, then the current hour up to the cutoff",
            [],
            rng(at(0, 2, 25), settle=10 * M, period="hour", end=at(1)),
            [w(D, at(0, 1)), w(at(0, 1), at(0, 2)), w(at(0, 2), at(0, 2, 15))],
            [Window(at(0, 2, 15), at(1) - 1)],
        ),
        (
            "hours: the remainder of a cut hour, across the day boundary",
            [(D, at(0, 22, 15) - 1)],
            rng(at(1, 0, 40), settle=10 * M, period="hour", end=at(2)),
            [w(at(0, 22, 15), at(0, 23)), w(at(0, 23), at(1)), w(at(1), at(1, 0, 30))],
            [Window(at(1, 0, 30), at(2) - 1)],
        ),
        (
            "hours without --through: only whole settled hours",
            [],
            rng(at(0, 2, 25), settle=10 * M, period="hour", partial=False, end=at(1)),
            [w(D, at(0, 1)), w(at(0, 1), at(0, 2))],
            [Window(at(0, 2), at(1) - 1)],
        ),
        (
            "hours: settle exactly elapsed exports the hour",
            [],
            rng(at(0, 1, 10), settle=10 * M, period="hour", partial=False, end=at(0, 2)),
            [w(D, at(0, 1))],
            [Window(at(0, 1), at(0, 2) - 1)],
        ),
        (
            "hours: one ms short of the settle delay holds the hour back",
            [],
            rng(at(0, 1, 10) - 1, settle=10 * M, period="hour", partial=False, end=at(0, 2)),
            [],
            [Window(D, at(0, 2) - 1)],
        ),
        (
            "an explicit --end before today: no piece beyond it",
            [],
            rng(at(2, 6), end=at(1)),
            [w(D, at(1))],
            [],
        ),
    ],
)
def test_pieces(
    case: str,
    covered: list[tuple[int, int]],
    r: PlanRange,
    items: list[Window],
    not_settled: list[Window],
) -> None:
    plan = plan_group(GROUP, Intervals(covered), r)
    assert [i.window for i in plan.items] == items, case
    held = [s.window for s in plan.skips if s.reason == SkipReason.NOT_SETTLED]
    assert held == not_settled, case
    for item in plan.items:  # a piece never leaves its period (its folder)
        assert period_window(item.window.start, r.period) == period_window(
            item.window.end, r.period
        ), case
        assert item.window.end < r.cutoff_ms, case  # every piece is settled


def test_a_group_idle_today_gets_no_piece_of_today() -> None:
    idle = GroupInfo("/idle", D, at(0, 20))  # last write yesterday evening
    plan = plan_group(idle, Intervals([(D, at(1) - 1)]), rng(at(1, 9), start=at(1), end=at(2)))
    assert plan.items == []
    assert {s.reason for s in plan.skips} == {SkipReason.NO_WRITES}


def test_a_group_created_during_the_day_is_cut_from_the_period_start() -> None:
    young = GroupInfo("/young", at(0, 5), at(0, 9))
    plan = plan_group(young, Intervals(), rng(at(0, 10), start=at(0, 5), end=at(1)))
    assert [i.window for i in plan.items] == [w(D, at(0, 10))]


def run_sequence(nows: Sequence[int], period: Period, settle: int, final: int) -> list[Window]:
    """Inner-day runs at `nows`, then a plain run at `final`; the windows exported, in order."""
    covered = Intervals()
    exported: list[Window] = []
    for now, partial in [*((n, True) for n in nows), (final, False)]:
        plan = plan_group(GROUP, covered, rng(now, settle=settle, period=period, partial=partial))
        for item in plan.items:
            exported.append(item.window)
            covered.add(item.window)
    return exported


@pytest.mark.parametrize(
    ("period", "settle", "nows", "final"),
    [
        ("day", 0, [at(0, 6), at(0, 12), at(0, 18)], at(1, 0)),
        ("day", 12 * H, [at(0, 6), at(0, 19), at(1, 7), at(1, 11, 59)], at(2, 12)),
        ("day", 5 * M, [at(0, 0, 1), at(0, 0, 2), at(0, 23, 59)], at(1, 0, 5)),
        ("hour", 10 * M, [at(0, 22, 30), at(1, 0, 45), at(1, 1, 20)], at(1, 2, 10)),
        ("hour", 0, [at(0, 0, 0) + 1, at(0, 0, 59), at(0, 3, 1)], at(0, 4)),
    ],
)
def test_successive_runs_cover_each_period_once_without_gap_or_overlap(
    period: Period, settle: int, nows: list[int], final: int
) -> None:
    exported = run_sequence(nows, period, settle, final)
    ordered = sorted(exported)
    assert ordered[0].start == D
    for a, b in pairwise(ordered):
        assert b.start == a.end + 1  # fromTime = previous `to` + 1 ms: no gap, no overlap
    cut = final - settle
    assert ordered[-1].end == cut - cut % (MS_PER_DAY if period == "day" else H) - 1
    for x in exported:
        assert period_window(x.start, period) == period_window(x.end, period)
    # the cut inner-day runs made more than one piece of some period
    assert len(exported) > len({period_window(x.start, period) for x in exported})


def test_adjacent_pieces_are_recorded_as_one_interval() -> None:
    covered = Intervals()
    for piece in (w(D, at(0, 6)), w(at(0, 6), at(0, 12)), w(at(0, 12), at(1))):
        covered.add(piece)
    assert covered.spans == [(D, at(1) - 1)]
    assert covered.missing(Window(D, at(1) - 1)) == []


# --- how the range of a run is chosen -------------------------------------------------------------

NOW_S = to_ms(datetime(2026, 11, 5, 13, 30)) / 1000
TODAY = date(2026, 11, 5)


def config(**destination: object) -> Config:
    return parse_config(
        {
            "destination": {"bucket": "archive-bucket", **destination},
            "accounts": [{"name": "a", "groups": ["*"]}],
        }
    )


@pytest.mark.parametrize(
    ("case", "dest", "options", "end", "partial", "settle_ms"),
    [
        ("defaults: whole days through yesterday", {}, RunOptions(), TODAY, False, 12 * H),
        (
            "destination.through: now takes today in",
            {"through": "now"},
            RunOptions(),
            TODAY + timedelta(days=1),
            True,
            12 * H,
        ),
        (
            "a date on the command line beats destination.through",
            {"through": "now"},
            RunOptions(partial=False, end=TODAY),
            TODAY,
            False,
            12 * H,
        ),
        (
            "--through now with the config silent",
            {"settle": "15m"},
            RunOptions(partial=True),
            TODAY + timedelta(days=1),
            True,
            15 * M,
        ),
        (
            "hourly archives include today's settled hours",
            {"period": "hour", "settle": 0},
            RunOptions(),
            TODAY + timedelta(days=1),
            False,
            0,
        ),
        (
            "--settle beats destination.settle; --end is kept",
            {"settle": "2h", "through": "now"},
            RunOptions(settle_seconds=0, end=date(2026, 11, 3)),
            date(2026, 11, 3),
            True,
            0,
        ),
    ],
)
def test_plan_range(
    case: str,
    dest: dict[str, object],
    options: RunOptions,
    end: date,
    partial: bool,
    settle_ms: int,
) -> None:
    r = plan_range(config(**dest), options, NOW_S)
    assert r.end_ms == to_ms(end), case
    assert r.partial is partial, case
    assert r.settle_ms == settle_ms, case
    assert r.now_ms == to_ms(datetime(2026, 11, 5, 13, 30)), case
    assert r.period == dest.get("period", "day"), case


def test_through_range() -> None:
    d = date(2020, 2, 28)
    assert through_range(None, None) == (None, None)
    assert through_range(d, None) == (d, None)
    assert through_range(None, "now") == (None, True)
    assert through_range(None, d) == (date(2020, 2, 29), False)  # --through D is --end D+1
    with pytest.raises(UsageError, match="--end or --through, not both"):
        through_range(d, "now")
    with pytest.raises(UsageError, match="is in the future"):
        through_range(None, date(2999, 1, 1))


def test_config_through_accepts_only_now() -> None:
    assert config(through="now").destination.through == "now"
    assert config().destination.through is None
    with pytest.raises(ConfigError, match=r"^config: destination\.through: Input should be 'now'"):
        config(through="today")
