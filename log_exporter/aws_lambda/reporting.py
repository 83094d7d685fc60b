"""What the Lambda functions tell CloudWatch about a lane: its log lines (`LambdaReporter`, the
CLI's own but for busy and stopped lanes) and one embedded-metrics record per advance."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from log_exporter.cli.render.console import LogReporter
from log_exporter.core.windows import Intervals
from log_exporter.lane.result import LaneResult


class LambdaReporter(LogReporter):
    """The CLI's log lines, except that a busy lane or one stopped at its deadline is no error."""

    def lane_finished(self, result: LaneResult) -> None:
        if result.busy:
            logging.getLogger("log_exporter").info(
                "%s: held by another runner: %s",
                result.name,
                result.error,
                extra={"lane": result.name, "status": "BUSY"},
            )
        elif result.error is None and result.remaining:
            logging.getLogger("log_exporter").info(
                "%s: stopped before the deadline: %d archived, %d empty, %d failed, %d left",
                result.name,
                len(result.archived),
                len(result.empty),
                len(result.failed),
                result.remaining,
                extra={"lane": result.name, "status": "STOPPED", "remaining": result.remaining},
            )
        else:
            super().lane_finished(result)


def lag_seconds(covered: Mapping[str, Intervals], now: float) -> float | None:
    """Age of the newest archived window of a lane: now minus the end of the latest covered
    window (None when nothing is archived yet)."""
    ends = [iv.spans[-1][1] for iv in covered.values() if iv.spans]
    if not ends:
        return None
    return max(0.0, now - (max(ends) + 1) / 1000)


def emit_lane_metrics(metrics: EphemeralMetrics, result: LaneResult, lag: float | None) -> None:
    """One embedded-metrics record per lane advance. The lane is metadata, not a dimension:
    thousands of lanes as dimensions would be thousands of billed metrics."""
    count = MetricUnit.Count
    metrics.add_metric(name="TasksCreated", unit=count, value=result.tasks_created)
    metrics.add_metric(name="DaysArchived", unit=count, value=len(result.archived))
    metrics.add_metric(name="DaysEmpty", unit=count, value=len(result.empty))
    metrics.add_metric(name="DaysFailed", unit=count, value=len(result.failed))
    if result.error is None:
        metrics.add_metric(name="Backlog", unit=count, value=result.remaining)
    elif not result.busy:
        metrics.add_metric(name="LaneErrors", unit=count, value=1)
    if lag is not None:
        metrics.add_metric(name="LagSeconds", unit=MetricUnit.Seconds, value=round(lag, 3))
    metrics.add_metadata(key="lane", value=result.name)
    metrics.add_metadata(key="account_id", value=result.account_id)
    metrics.flush_metrics()
