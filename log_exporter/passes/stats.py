"""CloudWatch's own figures for each log group beside what the archive holds, day by day: the
group's storedBytes, the IncomingBytes metric per day (GetMetricData), and the archive's objects
and bytes for that day, so an archive too small for what CloudWatch received stands out.

IncomingBytes counts uncompressed bytes by ingestion time; the archive holds gzip objects filed
by event time. The figures are comparable only roughly: a day whose archive is empty while
CloudWatch received data, or whose gzip bytes are a tiny fraction of it, is worth a look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.metrics import LogMetrics
from log_exporter.core.config import GroupSelector
from log_exporter.core.windows import day_window, destination_prefix

SMALL_RATIO = 0.02  # gzip rarely shrinks log text 50 times: below this, the day looks too small


@dataclass(frozen=True)
class DayStats:
    day: date
    incoming_bytes: int | None  # None: CloudWatch has no datapoint for the day
    objects: int
    archived_bytes: int

    @property
    def note(self) -> str:
        """`missing` (CloudWatch received data, the archive has nothing), `small` (the archive
        holds less than SMALL_RATIO of it), else ""."""
        if not self.incoming_bytes:
            return ""
        if self.objects == 0:
            return "missing"
        if self.archived_bytes < self.incoming_bytes * SMALL_RATIO:
            return "small"
        return ""


@dataclass
class GroupStats:
    group: str
    stored_bytes: int
    days: list[DayStats] = field(default_factory=list)


def group_stats(
    *,
    groups: LogGroups,
    metrics: LogMetrics,
    archive: ArchiveBucket,
    prefix: str,
    account_id: str,
    selector: GroupSelector,
    days: Sequence[date],
    only: GroupSelector | None = None,
) -> list[GroupStats]:
    """For every selected group (and, with `only`, matching it too), each day of `days`: its
    IncomingBytes from `metrics`, the (objects, bytes) of its folder in `archive`."""
    stored = {g: b for g, b in groups.stored(selector).items() if only is None or only.matches(g)}
    if not stored or not days:
        return [GroupStats(g, b) for g, b in stored.items()]
    incoming = metrics.incoming_bytes(list(stored), min(days), max(days))
    out: list[GroupStats] = []
    for group, nbytes in stored.items():
        gs = GroupStats(group, nbytes)
        for d in sorted(days):
            folder = destination_prefix(prefix, account_id, group, day_window(d)) + "/"
            objects, size = archive.sizes(folder)
            gs.days.append(DayStats(d, incoming[group].get(d), objects, size))
        out.append(gs)
    return out
