"""Where each log group's archive stands: archived days, gaps, failed days, tasks in flight (pure).

A gap is a settled day a default run would export but that is neither archived, known to be
empty, failed (failures are listed apart, with their error) nor in flight: the days between the
group's first possible day (its creation, 14 days before it for a group created again under the
name of a deleted one, or `destination.start`) and the last settled day, up to the group's last
write. Planning is the same function `run` uses, so `status` and `run` agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from log_exporter.core.plan import GroupInfo, PlanRange, plan_group
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.windows import Intervals, Window, to_ms, utc_day


@dataclass(frozen=True, order=True)
class DaySpan:
    """Whole UTC days `first` through `last`, both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


def day_spans(days: Iterable[date]) -> list[DaySpan]:
    """Runs of consecutive days, oldest first."""
    out: list[DaySpan] = []
    for d in sorted(set(days)):
        if out and out[-1].last + timedelta(days=1) == d:
            out[-1] = DaySpan(out[-1].first, d)
        else:
            out.append(DaySpan(d, d))
    return out


def days_touched(windows: Iterable[Window]) -> set[date]:
    """Every UTC day holding some millisecond of `windows`."""
    out: set[date] = set()
    for w in windows:
        d, last = utc_day(w.start), utc_day(w.end)
        while d <= last:
            out.add(d)
            d += timedelta(days=1)
    return out


def whole_days(windows: Iterable[Window]) -> set[date]:
    """Every UTC day that lies entirely inside one of `windows`."""
    out: set[date] = set()
    for w in windows:
        for d in days_touched([w]):
            if w.start <= to_ms(d) and to_ms(d + timedelta(days=1)) - 1 <= w.end:
                out.add(d)
    return out


def _windows(iv: Intervals) -> list[Window]:
    return [Window(a, b) for a, b in iv.spans]


def _minus(a: Intervals, b: Intervals) -> list[Window]:
    return [piece for w in _windows(a) for piece in b.missing(w)]


@dataclass(frozen=True)
class GroupStatus:
    """One group's archive. `listed`: CloudWatch still has the group and the config selects it;
    a group that is only in the state (deleted, or no longer selected) has no gaps, and its
    failures are shown but do not count against the archive."""

    group: str
    listed: bool
    first_archived: date | None = None
    last_archived: date | None = None
    archived_days: int = 0  # days with exported data
    empty_days: int = 0  # days known to hold no event
    gaps: list[DaySpan] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    in_flight: list[Intent] = field(default_factory=list)
    stuck: list[Intent] = field(default_factory=list)  # in flight longer than stuck_after

    @property
    def gap_days(self) -> int:
        return sum(g.days for g in self.gaps)

    @property
    def failed_days(self) -> int:
        return len(days_touched(f.window for f in self.failures))

    @property
    def ok(self) -> bool:
        return not self.listed or (not self.gaps and not self.failures and not self.stuck)


def group_status(
    info: GroupInfo | None,
    name: str,
    state: LaneState,
    rng: PlanRange,
    stuck_ms: int | None = None,
) -> GroupStatus:
    """The status of group `name`; `info` is None when CloudWatch does not list it (any more).
    An intent recorded more than `stuck_ms` before `rng.now_ms` is stuck."""
    covered = state.covered.get(name, Intervals())
    empty = state.empty.get(name, Intervals())
    data_days = days_touched(_minus(covered, empty))
    empty_days = whole_days(_windows(empty)) - data_days
    failures = [  # one whose output is still to be deleted is shown even for an archived day
        f for f in state.failures if f.group == name and (f.cleanup or not covered.covers(f.window))
    ]
    in_flight = [i for i in state.intents if i.group == name]
    gaps: list[DaySpan] = []
    if info is not None:
        busy = Intervals((f.window.start, f.window.end) for f in failures)
        for i in in_flight:
            busy.add(i.window)
        again = state.incarnation(name) is not None
        planned = plan_group(info, covered, rng, recreated=again).items
        gaps = day_spans(days_touched(p for it in planned for p in busy.missing(it.window)))
    return GroupStatus(
        group=name,
        listed=info is not None,
        first_archived=min(data_days, default=None),
        last_archived=max(data_days, default=None),
        archived_days=len(data_days),
        empty_days=len(empty_days),
        gaps=gaps,
        failures=sorted(failures, key=lambda f: f.window),
        in_flight=sorted(in_flight, key=lambda i: i.window),
        stuck=sorted(
            (i for i in in_flight if stuck_ms is not None and rng.now_ms - i.since_ms > stuck_ms),
            key=lambda i: i.window,
        ),
    )


def lane_status(
    infos: Iterable[GroupInfo], state: LaneState, rng: PlanRange, stuck_ms: int | None = None
) -> list[GroupStatus]:
    """Every group CloudWatch lists for the lane, and every group its state still mentions."""
    by_name: Mapping[str, GroupInfo] = {g.name: g for g in infos}
    names = set(by_name) | {g for g, iv in state.covered.items() if iv}
    names |= {f.group for f in state.failures}
    names |= {i.group for i in state.intents}
    return [group_status(by_name.get(n), n, state, rng, stuck_ms) for n in sorted(names)]
