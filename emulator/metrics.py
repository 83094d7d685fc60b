"""CloudWatch's AWS/Logs metrics of each log group, as AWS publishes them and moto does not:
GetMetricData answers IncomingBytes and IncomingLogEvents from the events moto's logs backend
holds, counted at their ingestion time, whether seeded or put through PutLogEvents.

Computed when asked (nothing is stored when events are seeded): for each period from StartTime,
the Sum of the UTF-8 bytes of the messages (uncompressed, like AWS) or their number. Other
metrics, namespaces and statistics go to moto's own GetMetricData.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend
from moto.logs.models import logs_backends

NAMESPACE = "AWS/Logs"
METRICS = ("IncomingBytes", "IncomingLogEvents")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(t: datetime) -> int:
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # moto: naive UTC
    return int((aware - _EPOCH) / timedelta(milliseconds=1))


def _group_of(query: dict[str, Any]) -> str | None:
    """The log group a query asks the Sum of an AWS/Logs metric for, else None."""
    stat = query.get("MetricStat") or {}
    metric = stat.get("Metric") or {}
    dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
    if (
        metric.get("Namespace") == NAMESPACE
        and metric.get("MetricName") in METRICS
        and stat.get("Stat") == "Sum"
        and set(dims) == {"LogGroupName"}
    ):
        return str(dims["LogGroupName"])
    return None


def _answer(
    backend: CloudWatchBackend,
    query: dict[str, Any],
    group_name: str,
    start: datetime,
    end: datetime,
    desc: bool,
) -> dict[str, Any]:
    stat = query["MetricStat"]
    name = stat["Metric"]["MetricName"]
    group = logs_backends[backend.account_id][backend.region_name].groups.get(group_name)
    period_ms = int(stat["Period"]) * 1000
    start_ms, end_ms = _ms(start), _ms(end)
    sums: dict[int, int] = {}
    for stream in list(group.streams.values()) if group is not None else []:
        for e in list(stream.events):
            if start_ms <= e.ingestion_time < end_ms:
                slot = (e.ingestion_time - start_ms) // period_ms
                value = len(e.message.encode()) if name == "IncomingBytes" else 1
                sums[slot] = sums.get(slot, 0) + value
    slots = sorted(sums, reverse=desc)
    return {
        "id": query["Id"],
        "label": query.get("Label") or f"{name} Sum",
        "values": [float(sums[s]) for s in slots],
        "timestamps": [start + timedelta(milliseconds=s * period_ms) for s in slots],
        "status_code": "Complete",
    }


def get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    """moto's CloudWatchBackend.get_metric_data, with the AWS/Logs queries answered here."""
    from .patches import _originals

    ours = [(q, g) for q in queries if (g := _group_of(q)) is not None]
    others = [q for q in queries if _group_of(q) is None]
    results: list[dict[str, Any]] = []
    if others or not ours:
        original = _originals[(CloudWatchBackend, "get_metric_data")]
        results = original(self, others, start_time, end_time, scan_by)
    desc = scan_by == "TimestampDescending"
    results += [
        _answer(self, q, g, start_time, end_time, desc)
        for q, g in ours
        if q.get("ReturnData", True)
    ]
    order = {q["Id"]: i for i, q in enumerate(queries)}
    return sorted(results, key=lambda r: order.get(r["id"], len(order)))
