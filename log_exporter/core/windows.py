"""UTC time windows (days, hours, pieces of them), interval sets, and the archive's key layout.

Everything here is pure: times are integer milliseconds since the epoch, UTC, and a window's
`end` is inclusive, like CreateExportTask's `to`. A whole UTC day D is
[D 00:00:00.000, D 23:59:59.999]; the next day starts one millisecond later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Period = Literal["day", "hour"]
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
PERIOD_MS: dict[str, int] = {"day": MS_PER_DAY, "hour": MS_PER_HOUR}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(value: datetime | date) -> int:
    """Milliseconds since the epoch; a naive datetime or a date is taken as UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of a millisecond timestamp."""
    return EPOCH + timedelta(milliseconds=ms)


def utc_day(ms: int) -> date:
    """The UTC day holding a millisecond timestamp, whatever the machine's time zone."""
    return from_ms(ms).date()


def iso_ms(ms: int) -> str:
    """`2026-11-01T23:59:59.999Z`."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True, order=True)
class Window:
    """A closed interval of milliseconds [start, end], both ends included."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window starts after it ends: {self.start} > {self.end}")

    @property
    def duration_ms(self) -> int:
        return self.end - self.start + 1

    def __str__(self) -> str:
        return f"{iso_ms(self.start)}..{iso_ms(self.end)}"


def period_start(ms: int, period: Period) -> int:
    """The start of the UTC day or hour holding `ms`."""
    size = PERIOD_MS[period]
    return ms - ms % size


def period_window(ms: int, period: Period) -> Window:
    """The whole UTC day or hour holding `ms`."""
    start = period_start(ms, period)
    return Window(start, start + PERIOD_MS[period] - 1)


def day_window(day: date) -> Window:
    """The whole UTC day `day`."""
    start = to_ms(day)
    return Window(start, start + MS_PER_DAY - 1)


def periods(start_ms: int, end_ms: int, period: Period) -> Iterator[Window]:
    """The whole periods that meet [start_ms, end_ms) (end exclusive), oldest first."""
    ms = period_start(start_ms, period)
    while ms < end_ms:
        w = period_window(ms, period)
        yield w
        ms = w.end + 1


class Intervals:
    """A set of milliseconds kept as sorted, disjoint, non-adjacent closed intervals."""

    __slots__ = ("_spans",)

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._spans: list[tuple[int, int]] = []
        for a, b in sorted(spans):
            self._append(a, b)

    def _append(self, a: int, b: int) -> None:
        if self._spans and a <= self._spans[-1][1] + 1:
            last_a, last_b = self._spans[-1]
            self._spans[-1] = (last_a, max(last_b, b))
        else:
            self._spans.append((a, b))

    def add(self, w: Window) -> None:
        spans = sorted([*self._spans, (w.start, w.end)])
        self._spans = []
        for a, b in spans:
            self._append(a, b)

    def covers(self, w: Window) -> bool:
        return any(a <= w.start and w.end <= b for a, b in self._spans)

    def overlaps(self, w: Window) -> bool:
        return any(a <= w.end and w.start <= b for a, b in self._spans)

    def missing(self, w: Window) -> list[Window]:
        """The parts of `w` not in this set, oldest first."""
        out: list[Window] = []
        cursor = w.start
        for a, b in self._spans:
            if b < cursor or a > w.end:
                continue
            if a > cursor:
                out.append(Window(cursor, a - 1))
            cursor = max(cursor, b + 1)
            if cursor > w.end:
                break
        if cursor <= w.end:
            out.append(Window(cursor, w.end))
        return out

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(self._spans)

    def __bool__(self) -> bool:
        return bool(self._spans)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intervals) and self._spans == other._spans

    def __repr__(self) -> str:
        return f"Intervals({self._spans!r})"


_ODD_SEGMENT = re.compile(r"#*\.{0,2}")  # "", ".", "..", or one of those already escaped


def group_key(group: str) -> str:
    """A log group name as key segments: without its leading '/'.

    Log group names are 1-512 of `[.-_/#A-Za-z0-9]`, safe in S3 keys, but a name may hold
    segments that tools syncing the archive to disk trip over: empty (`a//b`, `a/`), `.` and
    `..` (`/../x`). Those become `#`, `#.`, `#..`, and a segment that already looks like that
    gets one more `#`, so distinct names keep distinct folders (except `/x` and `x`: the layout
    drops the leading '/').
    """
    body = group[1:] if group.startswith("/") else group
    return "/".join("#" + s if _ODD_SEGMENT.fullmatch(s) else s for s in body.split("/"))


def destination_prefix(
    prefix: str, account_id: str, group: str, window: Window, period: Period = "day"
) -> str:
    """`<prefix>/<account_id>/<group>/<YYYY>/<MM>/<DD>[/<HH>]` for the period holding `window`.

    AWS appends `/<taskId>/<stream>/000000.gz` to this.
    """
    t = from_ms(window.start)
    folder = f"{t:%Y/%m/%d}" if period == "day" else f"{t:%Y/%m/%d/%H}"
    parts = [prefix, account_id, group_key(group), folder]
    return "/".join(p for p in parts if p)


def task_name(
    account_id: str,
    region: str,
    group: str,
    window: Window,
    *,
    created_ms: int | None = None,
    archive: str = "",
) -> str:
    """A deterministic export task name for (account, region, group, window) of an archive.

    The same window always gets the same name, so a task left by a killed run is recognised.
    A group created again under an old name passes its creation time: its tasks are not
    mistaken for the old group's. `archive` (`<bucket>/<prefix>`) goes into the digest, so two
    archives of one account (a migration, a test prefix) never give a window the same name.
    Without either, the name is the one earlier versions gave, which intents they recorded
    still hold (and are found by).
    """
    ident = (
        f"{account_id}|{region}|{group}"
        + (f"|{created_ms}" if created_ms else "")
        + (f"|{archive}" if archive else "")
    )
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return f"log-exporter-{digest}-{window.start}-{window.end}"
