"""Whether a log group's CloudWatch retention may be shortened to N days without losing an
event the archive does not hold (pure), and the lane pass that sets it (`log-exporter retention`).

The days at risk are those the new retention deletes and the current one keeps: every day from
the group's creation (not `destination.start`: days before it are not archived and would be lost)
through the day of `now - N days`, and no older than the current retention's own horizon (days it
already deleted cannot be saved). Each of them must be archived or known to be empty, as `status`
sees it: the same `group_status` is asked, over that range, with no settle delay (a day at risk
has ended more than a day ago). A failed day or a task in flight is missing too. Days before the
group's creation and after its last write hold no event, as for `run` and `status`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from log_exporter.core.plan import BACKDATE_MS, GroupInfo, PlanRange
from log_exporter.core.state import LaneState
from log_exporter.core.status import DaySpan, day_spans, days_touched, group_status
from log_exporter.core.windows import MS_PER_DAY, PERIOD_MS, Period, to_ms, utc_day

# The values PutRetentionPolicy accepts for retentionInDays.
AWS_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


class Outcome(StrEnum):
    SET = "set"
    WOULD_SET = "would set"
    ALREADY = "already"  # current retention <= N: left alone
    REFUSED = "refused"  # some day at risk is not archived
    FAILED = "failed"  # PutRetentionPolicy was refused


@dataclass
class RetentionDecision:
    """One group's verdict: `old` None means "never expire"."""

    group: str
    old: int | None
    new: int
    outcome: Outcome
    missing: list[DaySpan] = field(default_factory=list)
    error: str = ""

    @property
    def missing_days(self) -> int:
        return sum(s.days for s in self.missing)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SET, Outcome.WOULD_SET, Outcome.ALREADY)

    @property
    def why(self) -> str:
        if self.outcome is Outcome.ALREADY:
            return f"retention is already {days_label(self.old)} (<= {self.new}): left alone"
        if self.outcome is Outcome.REFUSED:
            n = self.missing_days
            return f"{days_label(n)} it would delete {'is' if n == 1 else 'are'} not archived"
        if self.outcome is Outcome.FAILED:
            return self.error
        return "every day it deletes is archived or known empty"


def shortest_days(period: Period, settle_s: int) -> int:
    """The shortest retention (a value AWS accepts) that keeps every event until its period can
    have been archived: the period, the settle delay and a day of schedule margin. Shorter, each
    later period's first events may expire (CloudWatch deletes them when it gets to it) before
    the run that archives them."""
    need_ms = PERIOD_MS[period] + settle_s * 1000 + MS_PER_DAY
    return next(
        (d for d in AWS_RETENTION_DAYS if d * MS_PER_DAY >= need_ms), AWS_RETENTION_DAYS[-1]
    )


def too_short(days: int, period: Period, settle_s: int) -> str | None:
    """The one-line reason `days` is refused as a retention, or None when it is long enough."""
    least = shortest_days(period, settle_s)
    if days >= least:
        return None
    return (
        f"--days {days} is shorter than a {period} takes to be archived "
        f"(the {period} itself, settle {settle_s / 3600:g}h and a day of schedule margin): "
        f"its first events could expire before they are archived; the smallest N allowed is {least}"
    )


def days_label(n: int | None) -> str:
    """`1 day`, `30 days`; None is CloudWatch's "never expire"."""
    return "never expire" if n is None else f"{n} day" if n == 1 else f"{n} days"


def at_risk_last_day(days: int, now_ms: int) -> date:
    """The newest UTC day a retention of `days` days deletes events of (some or all)."""
    return utc_day(now_ms - days * MS_PER_DAY)


def missing_days(info: GroupInfo, state: LaneState, days: int, rng: PlanRange) -> list[DaySpan]:
    """The days a retention of `days` would delete that the archive neither holds nor knows
    empty: the gaps, failed days and days in flight `status` sees over the days at risk (not
    those the group's current retention deleted already)."""
    last = at_risk_last_day(days, rng.now_ms)
    end_ms = to_ms(last + timedelta(days=1))
    again = BACKDATE_MS if state.incarnation(info.name) is not None else 0
    if end_ms <= info.created_ms - again:
        return []
    # From the group's creation (not destination.start), whole days, no settle delay.
    risk = replace(rng, start_ms=None, end_ms=end_ms, settle_ms=0, partial=False)
    st = group_status(info, info.name, state, risk)
    out: set[date] = {d for span in st.gaps for d in _span_days(span)}
    out |= days_touched(f.window for f in st.failures)
    out |= days_touched(i.window for i in st.in_flight)
    old = info.retention_days
    first = at_risk_last_day(old, rng.now_ms) if old is not None else None
    return day_spans(d for d in out if d <= last and (first is None or d >= first))


def _span_days(span: DaySpan) -> Iterable[date]:
    return (span.first + timedelta(days=i) for i in range(span.days))


def decide(
    info: GroupInfo, state: LaneState, days: int, rng: PlanRange, *, dry_run: bool
) -> RetentionDecision:
    """What to do with one group (nothing is called here)."""
    old = info.retention_days
    if old is not None and old <= days:
        return RetentionDecision(info.name, old, days, Outcome.ALREADY)
    missing = missing_days(info, state, days, rng)
    if missing:
        return RetentionDecision(info.name, old, days, Outcome.REFUSED, missing)
    return RetentionDecision(info.name, old, days, Outcome.WOULD_SET if dry_run else Outcome.SET)


def apply_retention(
    infos: Sequence[GroupInfo],
    state: LaneState,
    days: int,
    rng: PlanRange,
    put: Callable[[str, int], str | None],
    *,
    dry_run: bool,
) -> list[RetentionDecision]:
    """Decide every group, and call `put(group, days)` for those to set (not in a dry run);
    `put` returns None on success, else the one-line error."""
    out: list[RetentionDecision] = []
    for info in sorted(infos, key=lambda i: i.name):
        d = decide(info, state, days, rng, dry_run=dry_run)
        if d.outcome is Outcome.SET:
            error = put(info.name, days)
            if error is not None:
                d.outcome, d.error = Outcome.FAILED, error
        out.append(d)
    return out
