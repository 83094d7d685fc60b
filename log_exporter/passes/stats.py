"""CloudWatch's own figures for each log group beside what the archive holds, day by day: the
group's storedBytes, the IncomingBytes metric per day (GetMetricData), and the archive's objects
and bytes for that day, so an archive too small for what CloudWatch received stands out.

IncomingBytes counts uncompressed bytes by ingestion time; the archive holds gzip objects filed
by event time. The figures are comparable only roughly: a day whose archive is empty while
CloudWatch received data, or whose gzip bytes are a tiny fraction of it, is worth a look.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from log_exporter.aws.archive import PROBE_OBJECT
from log_exporter.aws.errors import bucket_error, map_client_error
from log_exporter.core.config import GroupSelector
from log_exporter.core.windows import day_window, destination_prefix

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

MAX_QUERIES = 500  # GetMetricData: metric queries per call
MAX_DATAPOINTS = 100_800  # GetMetricData: datapoints per call
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


def stored_bytes(logs: CloudWatchLogsClient, selector: GroupSelector) -> dict[str, int]:
    """storedBytes of every group the selector takes (DescribeLogGroups)."""
    found: dict[str, int] = {}
    for prefix in selector.list_prefixes():
        kwargs: dict[str, Any] = {"logGroupNamePrefix": prefix} if prefix else {}
        try:
            for page in logs.get_paginator("describe_log_groups").paginate(**kwargs):
                for g in page.get("logGroups", []):
                    if selector.matches(g["logGroupName"]):
                        found[g["logGroupName"]] = int(g.get("storedBytes", 0))
        except ClientError as exc:
            raise map_client_error(exc, "listing log groups") from None
    return dict(sorted(found.items()))


def _chunks(groups: Sequence[str], days: int) -> Iterable[Sequence[str]]:
    size = max(1, min(MAX_QUERIES, MAX_DATAPOINTS // max(days, 1)))
    for i in range(0, len(groups), size):
        yield groups[i : i + size]


def incoming_bytes(
    cloudwatch: CloudWatchClient, groups: Sequence[str], first: date, last: date
) -> dict[str, dict[date, int]]:
    """The AWS/Logs IncomingBytes Sum per UTC day `first`..`last` of each group; days without a
    datapoint are absent. As few GetMetricData calls as its limits allow."""
    days = (last - first).days + 1
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    out: dict[str, dict[date, int]] = {g: {} for g in groups}
    for chunk in _chunks(groups, days):
        ids = {f"g{i}": g for i, g in enumerate(chunk)}
        queries: list[Any] = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Logs",
                        "MetricName": "IncomingBytes",
                        "Dimensions": [{"Name": "LogGroupName", "Value": g}],
                    },
                    "Period": 86_400,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for qid, g in ids.items()
        ]
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": start + timedelta(days=days),
            "ScanBy": "TimestampAscending",
        }
        while True:
            try:
                page = cloudwatch.get_metric_data(**kwargs)
            except ClientError as exc:
                raise map_client_error(exc, "reading the IncomingBytes metric") from None
            for result in page.get("MetricDataResults", []):
                group = ids.get(result.get("Id", ""))
                if group is None:
                    continue
                for ts, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=False
                ):
                    d = ts.astimezone(UTC).date()
                    out[group][d] = out[group].get(d, 0) + round(value)
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return out


def archive_day(
    s3: S3Client, bucket: str, prefix: str, account_id: str, group: str, day: date
) -> tuple[int, int]:
    """(objects, bytes) the archive holds for `group` on `day`, probe objects left out."""
    folder = destination_prefix(prefix, account_id, group, day_window(day)) + "/"
    objects = size = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            for obj in page.get("Contents", []):
                if obj["Key"].rsplit("/", 1)[-1] == PROBE_OBJECT:
                    continue
                objects += 1
                size += int(obj.get("Size", 0))
    except ClientError as exc:
        raise bucket_error(f"list s3://{bucket}/{folder}", exc) from None
    return objects, size


def group_stats(
    *,
    logs: CloudWatchLogsClient,
    cloudwatch: CloudWatchClient,
    s3: S3Client,
    bucket: str,
    prefix: str,
    account_id: str,
    selector: GroupSelector,
    days: Sequence[date],
    only: GroupSelector | None = None,
) -> list[GroupStats]:
    """For every selected group (and, with `only`, matching it too), each day of `days`."""
    stored = {
        g: b for g, b in stored_bytes(logs, selector).items() if only is None or only.matches(g)
    }
    if not stored or not days:
        return [GroupStats(g, b) for g, b in stored.items()]
    incoming = incoming_bytes(cloudwatch, list(stored), min(days), max(days))
    out: list[GroupStats] = []
    for group, nbytes in stored.items():
        gs = GroupStats(group, nbytes)
        for d in sorted(days):
            objects, size = archive_day(s3, bucket, prefix, account_id, group, d)
            gs.days.append(DayStats(d, incoming[group].get(d), objects, size))
        out.append(gs)
    return out
