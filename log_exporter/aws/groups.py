"""Log groups of one account and region: which match, when they were written, how much they store,
whether a window holds any event, and setting their retention."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from log_exporter.aws.errors import map_client_error
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import GroupInfo
from log_exporter.core.windows import Window
from log_exporter.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

MAX_PROBE_PAGES = 5


class LogGroups:
    def __init__(self, logs: CloudWatchLogsClient) -> None:
        self._logs = logs
        self.retention_days: dict[str, int] = {}  # of the groups `matching` saw, when set
        self.stored_bytes: dict[str, int] = {}  # of the groups `matching` saw

    def _listed(self, selector: GroupSelector) -> Iterator[Any]:
        """DescribeLogGroups' entry of every group the selector takes, prefix by prefix."""
        for prefix in selector.list_prefixes():
            kwargs: dict[str, Any] = {"logGroupNamePrefix": prefix} if prefix else {}
            try:
                for page in self._logs.get_paginator("describe_log_groups").paginate(**kwargs):
                    for g in page.get("logGroups", []):
                        if selector.matches(g["logGroupName"]):
                            yield g
            except ClientError as exc:
                raise map_client_error(exc, "listing log groups") from None

    def matching(self, selector: GroupSelector) -> list[tuple[str, int]]:
        """(name, creationTime) of every group the selector takes, sorted by name."""
        found: dict[str, int] = {}
        for g in self._listed(selector):
            name = g["logGroupName"]
            found[name] = int(g.get("creationTime", 0))
            self.stored_bytes[name] = int(g.get("storedBytes", 0))
            if g.get("retentionInDays"):
                self.retention_days[name] = int(g["retentionInDays"])
        return sorted(found.items())

    def stored(self, selector: GroupSelector) -> dict[str, int]:
        """storedBytes of every group the selector takes, by name (for `stats`)."""
        found = {g["logGroupName"]: int(g.get("storedBytes", 0)) for g in self._listed(selector)}
        return dict(sorted(found.items()))

    def describe(self, group: str, created_ms: int) -> GroupInfo:
        """A group's planning facts: its newest stream says when it was last written (event or
        ingestion time; `last_event_ms` None when it has no stream), and its first and last
        event times are events known to exist."""
        try:
            out = self._logs.describe_log_streams(
                logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
            )
        except ClientError as exc:
            raise map_client_error(exc, f"reading streams of {group}") from None
        streams = out.get("logStreams", [])
        retention = self.retention_days.get(group)
        if not streams:
            return GroupInfo(group, created_ms, None, retention_days=retention)
        s = streams[0]
        events = tuple(
            int(t) for t in (s.get("firstEventTimestamp"), s.get("lastEventTimestamp")) if t
        )
        known = [
            int(t)
            for t in (s.get("lastEventTimestamp"), s.get("lastIngestionTime"))
            if t is not None
        ]
        # A stream without event times yet: be safe and assume it is being written now.
        return GroupInfo(group, created_ms, max(known) if known else None, events, retention)

    def info(self, selector: GroupSelector) -> list[GroupInfo]:
        return [self.describe(name, created) for name, created in self.matching(selector)]

    def has_events(self, group: str, window: Window) -> bool:
        """Whether any event falls in `window` (FilterLogEvents' ends are inclusive).

        An empty page with a token does not prove emptiness, so a few pages are followed; when
        the answer stays unknown, or the probe is not allowed, this says True (export it)."""
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": window.start,
            "endTime": window.end,
            "limit": 1,
        }
        for _ in range(MAX_PROBE_PAGES):
            try:
                out = self._logs.filter_log_events(**kwargs)
            except ClientError as exc:
                mapped = map_client_error(exc, f"probing {group}")
                if isinstance(mapped, ResourceNotFoundError):
                    raise mapped from None
                return True
            if out.get("events"):
                return True
            token = out.get("nextToken")
            if not token:
                return False
            kwargs["nextToken"] = token
        return True

    def set_retention(self, group: str, days: int) -> None:
        """PutRetentionPolicy: keep `group`'s events `days` days. AWS's refusal is raised mapped
        (`REFUSED` holds what it may be)."""
        try:
            self._logs.put_retention_policy(logGroupName=group, retentionInDays=days)
        except ClientError as exc:
            raise map_client_error(exc, f"setting the retention of {group}") from None
