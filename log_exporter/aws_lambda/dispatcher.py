"""The scheduled dispatcher: it discovers the lanes of the config within a time budget and sends
one SQS message per account-region lane (`handler` is the function named in template.yaml)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from log_exporter.aws.organization import account_id_of
from log_exporter.aws_lambda.app import LambdaApp
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.engine import Engine, LaneSpec, RunOptions
from log_exporter.errors import ConfigError, LogExporterError

DISPATCH_RESERVE_S = 60.0  # of the dispatcher's time, kept for regions, planning and sending


def discovery_budget(context: object) -> float | None:
    """How long the dispatcher's organization discovery may take: its invocation's remaining
    time, less what sending the lanes needs (None: no Lambda context, no limit)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(float(remaining()) / 1000 - DISPATCH_RESERVE_S, 1.0)


class Dispatcher:
    """Sends the lanes of `app`'s config to its queue, skipping (and logging) those that cannot
    run."""

    def __init__(self, app: LambdaApp) -> None:
        self.app = app
        self.logger = app.logger

    def dispatch(self, event: Mapping[str, Any] | None, context: object = None) -> dict[str, Any]:
        """Send one message per lane of the config (or of `accounts`/`regions` in the event)."""
        event = event if isinstance(event, Mapping) else {}  # the schedule sends no input
        try:
            config = self.app.config()
            engine = self.app.engine_factory(config)
            engine.discovery_budget = discovery_budget(context)
            options = RunOptions(
                accounts=_names(event, "accounts"), regions=_names(event, "regions")
            )
            specs = engine.lane_specs(options)
            regions = {bucket: engine.bucket_region(bucket) for bucket in engine.buckets(specs)}
            for bucket in regions:
                engine.check_layout(bucket)
            discovered = {a.name for a in engine.discovery().discovered}
            lanes, skipped = self._dispatchable(specs, engine, regions, discovered)
            self.app.queue().send_all(lanes)
        except LogExporterError as exc:
            self.logger.error(f"dispatch failed: {exc}", extra={"error": type(exc).__name__})
            raise
        metrics = self.app.metrics()
        metrics.add_metric(name="LanesDispatched", unit=MetricUnit.Count, value=len(lanes))
        metrics.add_metric(name="LanesMisconfigured", unit=MetricUnit.Count, value=len(skipped))
        metrics.flush_metrics()
        self.logger.info(f"dispatched {len(lanes)} lanes", extra={"lanes": len(lanes)})
        return {"dispatched": [m.name for m in lanes], "skipped": skipped}

    def _dispatchable(
        self,
        specs: Iterable[LaneSpec],
        engine: Engine,
        bucket_regions: Mapping[str, str | None],
        discovered: set[str],
    ) -> tuple[list[LaneMessage], list[str]]:
        lanes: list[LaneMessage] = []
        skipped: list[str] = []
        for spec in specs:
            bucket = engine.bucket_for(spec) if spec.error is None else None
            if spec.error is not None:
                self.logger.error(
                    f"{spec.name}: {spec.error}; lanes not dispatched", extra={"lane": spec.name}
                )
                skipped.append(spec.name)
            elif bucket is None:
                self.logger.error(
                    f"{spec.name}: {engine.config.destination.no_bucket(spec.region)}; lane not "
                    "dispatched",
                    extra={"lane": spec.name},
                )
                skipped.append(spec.name)
            elif bucket_regions[bucket] and spec.region != bucket_regions[bucket]:
                self.logger.error(
                    f"{spec.name}: archive bucket {bucket} is in {bucket_regions[bucket]}, but "
                    f"CloudWatch Logs exports only to a bucket in the log group's region "
                    f"({spec.region}); lane not dispatched",
                    extra={"lane": spec.name},
                )
                skipped.append(spec.name)
            else:
                account_id = (
                    account_id_of(spec.account) if spec.account.name in discovered else None
                )
                lanes.append(LaneMessage(spec.account.name, spec.region, account_id=account_id))
        return lanes, skipped


def _names(event: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = event.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"event.{key}: expected a name or a list of names, got {value!r}")
    return tuple(value)


def lambda_handler(app: LambdaApp) -> Callable[[Mapping[str, Any] | None, Any], dict[str, Any]]:
    """`app`'s dispatcher as Lambda calls it, with the invocation's context in its log lines."""
    return app.lambda_handler(Dispatcher(app).dispatch)


@functools.cache
def _from_env() -> Callable[[Mapping[str, Any] | None, Any], dict[str, Any]]:
    return lambda_handler(LambdaApp.from_env())


def handler(event: Mapping[str, Any] | None, context: Any) -> dict[str, Any]:
    """EventBridge Scheduler target: one SQS message per lane (the app is built from the
    environment at the first invocation)."""
    return _from_env()(event, context)
