"""The emulator's AWS/Logs metrics: GetMetricData's IncomingBytes per group and day, counted at
ingestion time from the events the logs backend holds; other metrics are moto's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emulator import Emulator, seed

from .conftest import Aws

A = "111111111111"
DAY = datetime(2026, 11, 1, tzinfo=UTC)
DAY_MS = int(DAY.timestamp() * 1000)
H = 3_600_000


def query(qid: str, metric: str, group: str) -> dict[str, object]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Logs",
                "MetricName": metric,
                "Dimensions": [{"Name": "LogGroupName", "Value": group}],
            },
            "Period": 86_400,
            "Stat": "Sum",
        },
    }


def test_incoming_bytes_per_day_from_the_events_at_their_ingestion_time(
    emu: Emulator, aws: Aws
) -> None:
    seed.put_events(A, "us-east-1", "/g", "s1", [(DAY_MS + H, "héllo"), (DAY_MS + 2 * H, "abc")])
    seed.put_events(A, "us-east-1", "/g", "s2", [(DAY_MS + 30 * H, "next day")])
    # an event of day 0 ingested late, on day 2: AWS counts it when it arrives
    seed.put_events(
        A, "us-east-1", "/g", "s3", [(DAY_MS + 5, "late")], ingestion_ms=DAY_MS + 50 * H
    )
    seed.put_events(A, "us-east-1", "/other", "s", [(DAY_MS, "x" * 100)])
    cw = aws.client("cloudwatch", A)
    cw.put_metric_data(
        Namespace="Custom", MetricData=[{"MetricName": "M", "Value": 7.0, "Timestamp": DAY}]
    )

    out = cw.get_metric_data(
        MetricDataQueries=[
            query("b", "IncomingBytes", "/g"),
            query("n", "IncomingLogEvents", "/g"),
            {
                "Id": "c",
                "MetricStat": {
                    "Metric": {"Namespace": "Custom", "MetricName": "M"},
                    "Period": 86_400,
                    "Stat": "Sum",
                },
            },
            query("none", "IncomingBytes", "/nope"),
        ],
        StartTime=DAY,
        EndTime=DAY + timedelta(days=3),
        ScanBy="TimestampAscending",
    )

    got = {r["Id"]: r for r in out["MetricDataResults"]}
    assert [r["Id"] for r in out["MetricDataResults"]] == ["b", "n", "c", "none"]
    days = [t.astimezone(UTC).date().day for t in got["b"]["Timestamps"]]
    assert (days, got["b"]["Values"]) == ([1, 2, 3], [9.0, 8.0, 4.0])  # "héllo" is 6 bytes
    assert got["n"]["Values"] == [2.0, 1.0, 1.0]
    assert got["c"]["Values"] == [7.0]  # moto's own metrics still answer
    assert got["none"]["Values"] == []
    # storedBytes agrees with what came in
    logs = aws.client("logs", A)
    (g,) = logs.describe_log_groups(logGroupNamePrefix="/g")["logGroups"]
    assert g["storedBytes"] == 9 + 8 + 4
