"""Which windows of which log groups a lane exports, and why the others are skipped (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from log_exporter.core.windows import MS_PER_DAY, Intervals, Period, Window, periods

# `last_event_ms` of a group whose streams have not been read yet: no window is after it.
NOT_READ = 2**63 - 1

# CloudWatch Logs accepts events up to 14 days older than their ingestion: a group created again
# under an old name may get events back-dated into days before its new creation time.
BACKDATE_MS = 14 * MS_PER_DAY


@dataclass(frozen=True)
class GroupInfo:
    """What CloudWatch Logs says of a log group, as far as planning needs it."""

    name: str
    created_ms: int
    last_event_ms: int | None  # newest event or ingestion time; None when it has no stream
    # times of events known to exist (the newest stream's first and last event): a window
    # holding one needs no probe to know it is not empty
    event_ms: tuple[int, ...] = ()
    retention_days: int | None = None  # events older than this may have been deleted

    def holds_event(self, window: Window, now_ms: int) -> bool:
        """Whether an event is known to fall in `window` (False: unknown, not "empty"). An
        event within a day of the group's retention may be gone already: it proves nothing."""
        oldest = now_ms - (self.retention_days - 1) * MS_PER_DAY if self.retention_days else 0
        return any(window.start <= t <= window.end and t >= oldest for t in self.event_ms)


class SkipReason(StrEnum):
    ARCHIVED = "archived"
    BEFORE_CREATION = "before the group was created"
    NO_WRITES = "no writes since"
    NO_STREAMS = "no log streams"
    NOT_SETTLED = "not settled yet"


@dataclass(frozen=True)
class Skip:
    group: str
    window: Window
    reason: SkipReason


@dataclass(frozen=True, order=True)
class ExportItem:
    """One export task to make: `window` (a whole period or a piece of one) of `group`."""

    window: Window
    group: str


@dataclass
class LanePlan:
    items: list[ExportItem] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


@dataclass(frozen=True)
class PlanRange:
    """The UTC range a run covers and the clock it plans with.

    `start_ms` None means "from each group's creation"; `end_ms` is exclusive. A window is
    settled when it ended at least `settle_ms` before `now_ms`; with `partial`, the settled part
    of an unsettled period is exported too (inner-day runs).
    """

    start_ms: int | None
    end_ms: int
    now_ms: int
    settle_ms: int = 0
    period: Period = "day"
    partial: bool = False

    @property
    def cutoff_ms(self) -> int:
        """The first millisecond that is not settled."""
        return self.now_ms - self.settle_ms


def _coalesce(skips: Iterable[Skip]) -> list[Skip]:
    out: list[Skip] = []
    for s in skips:
        if out and out[-1].reason == s.reason and out[-1].window.end + 1 == s.window.start:
            out[-1] = Skip(s.group, Window(out[-1].window.start, s.window.end), s.reason)
        else:
            out.append(s)
    return out


def plan_group(
    group: GroupInfo, covered: Intervals, rng: PlanRange, *, recreated: bool = False
) -> LanePlan:
    """The export items and skips of one group over `rng`. A group `recreated` under the name of
    a deleted one is planned from 14 days before its creation (events back-dated into the days
    the old group had); the probe for empty windows drops those that hold nothing."""
    plan = LanePlan()
    first = group.created_ms - BACKDATE_MS if recreated else group.created_ms
    start = rng.start_ms if rng.start_ms is not None else first
    if start >= rng.end_ms:
        return plan
    if group.last_event_ms is None:
        whole = Window(start, rng.end_ms - 1)
        plan.skips.append(Skip(group.name, whole, SkipReason.NO_STREAMS))
        return plan
    skips: list[Skip] = []
    for w in periods(start, rng.end_ms, rng.period):
        if w.end < first:
            skips.append(Skip(group.name, w, SkipReason.BEFORE_CREATION))
            continue
        if w.start > group.last_event_ms:
            skips.append(Skip(group.name, w, SkipReason.NO_WRITES))
            continue
        missing = covered.missing(w)
        if not missing:
            skips.append(Skip(group.name, w, SkipReason.ARCHIVED))
            continue
        for piece in missing:
            if piece.end < rng.cutoff_ms:
                plan.items.append(ExportItem(piece, group.name))
            elif rng.partial and piece.start < rng.cutoff_ms:
                plan.items.append(ExportItem(Window(piece.start, rng.cutoff_ms - 1), group.name))
                skips.append(
                    Skip(group.name, Window(rng.cutoff_ms, piece.end), SkipReason.NOT_SETTLED)
                )
            else:
                skips.append(Skip(group.name, piece, SkipReason.NOT_SETTLED))
    plan.skips = _coalesce(skips)
    return plan


def plan_lane(
    groups: Iterable[GroupInfo],
    coverage: Mapping[str, Intervals],
    rng: PlanRange,
    recreated: Collection[str] = (),
) -> LanePlan:
    """Plan every group of a lane; items come oldest window first, so a catch-up fills in order.
    `recreated`: the groups created again under the name of a deleted one (see `plan_group`)."""
    plan = LanePlan()
    for g in groups:
        p = plan_group(g, coverage.get(g.name, Intervals()), rng, recreated=g.name in recreated)
        plan.items.extend(p.items)
        plan.skips.extend(p.skips)
    plan.items.sort()
    return plan
