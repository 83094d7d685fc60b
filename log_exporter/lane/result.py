"""What one run of a lane did (`LaneResult`): its windows by outcome, and its counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from log_exporter.core.plan import ExportItem, Skip


@dataclass
class LaneResult:
    account: str
    account_id: str
    region: str
    archived: list[ExportItem] = field(default_factory=list)
    empty: list[ExportItem] = field(default_factory=list)
    failed: list[tuple[ExportItem, str]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    error: str | None = None  # the lane stopped early for this reason
    remaining: int = 0  # windows left for a later run (deadline reached)
    busy: bool = False  # another runner holds (or took over) the lane: not a failure, try later
    groups: int = 0  # log groups the selector matched
    tasks_created: int = 0
    read: int = 0  # windows archived by reading their events directly
    read_requests: int = 0  # FilterLogEvents of those reads
    read_throttled: int = 0  # of them, answered ThrottlingException (and asked again)
    retries: int = 0
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.account}/{self.region}"

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed
