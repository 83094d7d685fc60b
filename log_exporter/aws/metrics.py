"""CloudWatch metrics of log groups: the AWS/Logs IncomingBytes per UTC day (GetMetricData), in
as few calls as its limits allow."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from log_exporter.aws.errors import map_client_error

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES = 500  # GetMetricData: metric queries per call
MAX_DATAPOINTS = 100_800  # GetMetricData: datapoints per call


def _chunks(groups: Sequence[str], days: int) -> Iterable[Sequence[str]]:
    size = max(1, min(MAX_QUERIES, MAX_DATAPOINTS // max(days, 1)))
    for i in range(0, len(groups), size):
        yield groups[i : i + size]


class LogMetrics:
    """The CloudWatch metrics of one account and region's log groups."""

    def __init__(self, cloudwatch: CloudWatchClient) -> None:
        self._cloudwatch = cloudwatch

    def incoming_bytes(
        self, groups: Sequence[str], first: date, last: date
    ) -> dict[str, dict[date, int]]:
        """The IncomingBytes Sum per UTC day `first`..`last` of each group; days without a
        datapoint are absent."""
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
                    page = self._cloudwatch.get_metric_data(**kwargs)
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
