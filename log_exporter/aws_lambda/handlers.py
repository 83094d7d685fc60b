"""The Lambda deployment's two handlers: a scheduled dispatcher that sends one SQS message per
account-region lane, and a worker that advances one lane per message and sends it back to the
queue when work remains.

Both are thin: parse the event, build the engine through a factory, run the core, log (JSON, with
aws-lambda-powertools' Logger) and emit CloudWatch embedded metrics. Only this module imports
powertools (the `lambda` extra); the CLI never imports it. Two workers never work one lane at once
because the lane's lease in its state object (S3 conditional writes) is the mutual exclusion: the
queue is a standard one, since SQS FIFO queues have no per-message delay.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from log_exporter.aws.organization import account_id_of, member_account
from log_exporter.aws.sessions import SessionFactory
from log_exporter.cli.render.console import LogReporter
from log_exporter.core.config import Config, load_config, parse_config_text
from log_exporter.core.policy import bucket_pattern, bucket_patterns
from log_exporter.core.windows import Intervals
from log_exporter.engine import Engine, LaneSpec, RunOptions, plan_range
from log_exporter.errors import AWSError, ConfigError, LogExporterError
from log_exporter.lane.lane import LaneResult
from log_exporter.settings import ENV_PREFIX, of_type, resolve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SERVICE = "log-exporter"
NAMESPACE = "LogExporter"
PACKAGED_CONFIG = "config.yml"
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
SQS_BATCH = 10  # SQS's limit for SendMessageBatch


# --- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LambdaSettings:
    """How the handlers behave. Each field can come from `LOG_EXPORTER_<FIELD>` in the
    environment (the template sets them); an explicit argument wins over the environment."""

    config: str = PACKAGED_CONFIG  # s3://bucket/key, or a file packaged with the function
    queue_url: str = ""
    bucket: str = ""  # the archive bucket the stack's IAM allows; the config must name it
    prefix: str | None = None  # likewise for destination.prefix (None: not checked)
    stop_before_seconds: float = 60.0  # stop this long before the invocation's own deadline
    requeue_delay_seconds: int = 10  # delay of a lane sent back because work remains
    busy_delay_seconds: int = 300  # delay of a lane sent back because another runner holds it
    max_busy_requeues: int = 6  # then the runner holding the lane is left to finish it

    def __post_init__(self) -> None:
        for name in ("requeue_delay_seconds", "busy_delay_seconds"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_DELAY_SECONDS:
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()}: {value} is not between 0 and "
                    f"{MAX_DELAY_SECONDS} (the SQS limit for a message's delay)"
                )
        if self.stop_before_seconds < 0 or self.max_busy_requeues < 0:
            raise ConfigError(
                f"{ENV_PREFIX}STOP_BEFORE_SECONDS and {ENV_PREFIX}MAX_BUSY_REQUEUES cannot be negative"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str], **explicit: Any) -> LambdaSettings:
        """Explicit argument, else `LOG_EXPORTER_<FIELD>` from `env`, else the default."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind: type[Any] = (
                int
                if isinstance(f.default, int)
                else float
                if isinstance(f.default, float)
                else str
            )
            values[f.name] = resolve(
                explicit.get(f.name),
                ENV_PREFIX + f.name.upper(),
                of_type(kind),
                f.default,
                env=env,
                error=ConfigError,
                blank_is_unset=False,
            )
        return cls(**values)


def load_lambda_config(location: str, s3: Callable[[], S3Client]) -> Config:
    """The config from `s3://bucket/key`, or from a file (relative: to the function's package)."""
    if not location.startswith("s3://"):
        return load_config(Path(location))
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError(f"{location}: expected s3://BUCKET/KEY")
    try:
        text = s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise ConfigError(
            f"{location}: cannot be read: {err.get('Code', '')} {err.get('Message', '')}".rstrip()
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(f"{location}: cannot be read: {exc}") from None
    return parse_config_text(text, location)


def check_destination(config: Config, settings: LambdaSettings) -> None:
    """The config must name the bucket and prefix the stack was deployed for: its IAM policies
    allow only those (a bucket per region: the buckets must fit the deployed pattern)."""
    dest = config.destination
    wanted = [
        ("bucket", bucket_pattern(config), settings.bucket or None),
        ("prefix", dest.prefix, settings.prefix),
    ]
    for name, got, deployed in wanted:
        if name == "bucket" and deployed and "*" in deployed:
            fits = all(fnmatch.fnmatchcase(b, deployed) for b in bucket_patterns(config))
            got = got if not fits else deployed
        if deployed is not None and got != deployed:
            raise ConfigError(
                f"{settings.config}: destination.{name} is {got!r}, but this stack was deployed "
                f"for {deployed!r} (its IAM allows only that): deploy again (`make deploy`)"
            )


# --- the queue -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaneMessage:
    """One lane to advance: the SQS message body. `busy` counts how often it found the lane held
    by another runner. `account_id` names an account the dispatcher discovered in the
    organization, so the worker makes it from the config's `organization` block without asking
    Organizations again (messages without it, from before, name an `accounts:` entry)."""

    account: str
    region: str
    busy: int = 0
    account_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.account}/{self.region}"

    def body(self) -> str:
        data: dict[str, Any] = {"account": self.account, "region": self.region, "busy": self.busy}
        if self.account_id is not None:
            data["account_id"] = self.account_id
        return json.dumps(data)

    @classmethod
    def parse(cls, body: str) -> LaneMessage:
        try:
            data = json.loads(body)
            account_id = data.get("account_id")
            message = cls(
                str(data["account"]),
                str(data["region"]),
                int(data.get("busy", 0)),
                None if account_id is None else str(account_id),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise LogExporterError(
                f"not a lane message (expected {{'account': ..., 'region': ...}}): {body[:200]!r}"
            ) from None
        return message


class LaneQueue:
    """The SQS queue of lanes: one message is one advance of one lane."""

    def __init__(self, sqs: SQSClient, url: str) -> None:
        if not url:
            raise ConfigError(f"{ENV_PREFIX}QUEUE_URL is not set: which queue gets the lanes?")
        self._sqs = sqs
        self.url = url

    def send(self, message: LaneMessage, delay_seconds: int = 0) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self.url,
                MessageBody=message.body(),
                DelaySeconds=min(max(delay_seconds, 0), MAX_DELAY_SECONDS),
            )
        except (ClientError, BotoCoreError) as exc:
            raise AWSError(f"cannot send lane {message.name} to {self.url}: {exc}") from None

    def send_all(self, messages: Sequence[LaneMessage]) -> None:
        for i in range(0, len(messages), SQS_BATCH):
            batch = messages[i : i + SQS_BATCH]
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(n), "MessageBody": m.body()} for n, m in enumerate(batch)
            ]
            try:
                out = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise AWSError(f"cannot send lanes to {self.url}: {exc}") from None
            failed = out.get("Failed", [])
            if failed:
                first = batch[int(failed[0]["Id"])]
                raise AWSError(
                    f"cannot send {len(failed)} lanes to {self.url}, e.g. {first.name}: "
                    f"{failed[0].get('Code', '')} {failed[0].get('Message', '')}".rstrip()
                )


# --- what the worker reports ---------------------------------------------------------------------
Action = Literal["done", "requeued", "dropped", "failed"]


@dataclass
class Advance:
    """What one worker invocation did with one lane message, and what comes next."""

    message: LaneMessage
    action: Action
    result: LaneResult | None = None
    delay_seconds: int = 0
    reason: str = ""


def lag_seconds(covered: Mapping[str, Intervals], now: float) -> float | None:
    """Age of the newest archived window of a lane: now minus the end of the latest covered
    window (None when nothing is archived yet)."""
    ends = [iv.spans[-1][1] for iv in covered.values() if iv.spans]
    if not ends:
        return None
    return max(0.0, now - (max(ends) + 1) / 1000)


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


class InvocationContext(Protocol):
    """The part of Lambda's context object the worker uses."""

    def get_remaining_time_in_millis(self) -> int: ...


EngineFactory = Callable[[Config], Engine]
DISPATCH_RESERVE_S = 60.0  # of the dispatcher's time, kept for regions, planning and sending


def discovery_budget(context: object) -> float | None:
    """How long the dispatcher's organization discovery may take: its invocation's remaining
    time, less what sending the lanes needs (None: no Lambda context, no limit)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(float(remaining()) / 1000 - DISPATCH_RESERVE_S, 1.0)


# --- the handlers --------------------------------------------------------------------------------
class LambdaApp:
    """The dispatcher and the worker over one set of collaborators. The module-level handlers use
    one built from the environment; tests build their own with a fake clock or engine factory."""

    def __init__(
        self,
        settings: LambdaSettings,
        *,
        sessions: SessionFactory | None = None,
        engine_factory: EngineFactory | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        logger: Logger | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.settings = settings
        self.sessions = sessions or SessionFactory()
        self.engine_factory = engine_factory or self._engine
        self.clock = clock
        self.sleep = sleep
        self.logger = logger or Logger(service=SERVICE)
        self.namespace = namespace
        # The core's log lines (lane and task events) go out as the same JSON lines.
        copy_config_to_registered_loggers(source_logger=self.logger, include={"log_exporter"})

    def _engine(self, config: Config) -> Engine:
        return Engine(
            config,
            self.sessions,
            reporter=LambdaReporter(),
            clock=self.clock,
            sleep=self.sleep,
            max_parallel=1,
        )

    def config(self) -> Config:
        config = load_lambda_config(self.settings.config, self.sessions.s3)
        check_destination(config, self.settings)
        return config

    def queue(self) -> LaneQueue:
        return LaneQueue(self.sessions.sqs(), self.settings.queue_url)

    # --- dispatcher ------------------------------------------------------------------------------
    def dispatch(self, event: Mapping[str, Any] | None, context: object = None) -> dict[str, Any]:
        """Send one message per lane of the config (or of `accounts`/`regions` in the event)."""
        event = event if isinstance(event, Mapping) else {}  # the schedule sends no input
        try:
            config = self.config()
            engine = self.engine_factory(config)
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
            self.queue().send_all(lanes)
        except LogExporterError as exc:
            self.logger.error(f"dispatch failed: {exc}", extra={"error": type(exc).__name__})
            raise
        metrics = self._metrics()
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

    # --- worker ----------------------------------------------------------------------------------
    def work(self, event: Mapping[str, Any], context: InvocationContext) -> dict[str, Any]:
        """Advance the lane of each SQS record; failed records go back to SQS (and, after the
        queue's maxReceiveCount, to the dead-letter queue)."""
        remaining = context.get_remaining_time_in_millis() / 1000
        # Keep half of a short invocation (a manual test with a small timeout) for the work.
        deadline = self.clock() + remaining - min(self.settings.stop_before_seconds, remaining / 2)
        failures: list[dict[str, str]] = []
        for record in event.get("Records", []):
            advance = self.advance_record(record, deadline)
            if advance.action == "failed":
                failures.append({"itemIdentifier": str(record["messageId"])})
        return {"batchItemFailures": failures}

    def advance_record(self, record: Mapping[str, Any], deadline: float) -> Advance:
        body = str(record.get("body", ""))
        try:
            message = LaneMessage.parse(body)
        except LogExporterError as exc:
            self.logger.error(str(exc), extra={"message_id": record.get("messageId")})
            return Advance(LaneMessage("?", "?"), "failed", reason=str(exc))
        try:
            return self.advance(message, deadline)
        except LogExporterError as exc:
            self.logger.error(f"{message.name}: {exc}", extra={"lane": message.name})
            return Advance(message, "failed", reason=str(exc))
        except Exception as exc:  # a bug: this record goes back to SQS, the others go on
            self.logger.exception(f"{message.name}: unexpected {type(exc).__name__}: {exc}")
            return Advance(message, "failed", reason=f"unexpected {type(exc).__name__}: {exc}")

    def advance(self, message: LaneMessage, deadline: float) -> Advance:
        """Run one lane until done or `deadline` (a clock() time); send it back if work remains."""
        config = self.config()
        account = next((a for a in config.accounts if a.name == message.account), None)
        if account is None and message.account_id is not None:
            if any(account_id_of(a) == message.account_id for a in config.accounts):
                return self._drop(message, "the account is now an entry under `accounts:`")
            account = member_account(config, message.account_id, message.account)
        if account is None:
            return self._drop(message, "the account is no longer in the config")
        # this one account, and no discovery: the dispatcher did it
        config = config.model_copy(update={"accounts": [account], "organization": None})
        engine = self.engine_factory(config)
        options = RunOptions(
            accounts=(message.account,),
            regions=(message.region,),
            deadline=deadline,
            wait_for_lease=False,
        )
        specs = engine.lane_specs(options)
        if not specs:
            return self._drop(message, "the region is no longer in the account's regions")
        rng = plan_range(config, options, self.clock())
        lag: float | None = None
        try:
            if specs[0].error is not None:  # `regions: all`, and its regions could not be asked
                raise LogExporterError(specs[0].error)
            bucket = engine.bucket_for(specs[0])
            if bucket is None:  # the dispatcher skips such a lane; a message from before may not
                raise ConfigError(config.destination.no_bucket(message.region))
            lane = engine.build_lane(specs[0], rng, engine.settings(options, bucket))
        except LogExporterError as exc:
            result = LaneResult(message.account, "", message.region, error=str(exc))
            engine.reporter.lane_finished(result)
        else:
            result = lane.run(deadline)
            lag = lag_seconds(lane.state.covered, self.clock())
        self._emit(result, lag)
        return self.next_step(message, result)

    def next_step(self, message: LaneMessage, result: LaneResult) -> Advance:
        """Done, sent back (with the delay for its reason), dropped, or failed (SQS retries)."""
        s = self.settings
        if result.busy:
            if message.busy >= s.max_busy_requeues:
                return self._drop(
                    message,
                    f"still held by another runner after {message.busy} tries; that runner "
                    "finishes it, the next schedule covers the rest",
                    result,
                )
            again = dataclasses.replace(message, busy=message.busy + 1)
            self.queue().send(again, s.busy_delay_seconds)
            return self._requeued(again, result, s.busy_delay_seconds, "busy")
        if result.error is not None:
            return Advance(message, "failed", result, reason=result.error)
        if result.remaining:
            again = dataclasses.replace(message, busy=0)
            self.queue().send(again, s.requeue_delay_seconds)
            return self._requeued(again, result, s.requeue_delay_seconds, "work remains")
        return Advance(message, "done", result)

    def _requeued(
        self, message: LaneMessage, result: LaneResult, delay: int, reason: str
    ) -> Advance:
        self.logger.info(
            f"{message.name}: sent back to the queue ({reason}), due in {delay}s",
            extra={"lane": message.name, "delay_seconds": delay, "remaining": result.remaining},
        )
        return Advance(message, "requeued", result, delay, reason)

    def _drop(self, message: LaneMessage, reason: str, result: LaneResult | None = None) -> Advance:
        self.logger.warning(f"{message.name}: dropped: {reason}", extra={"lane": message.name})
        return Advance(message, "dropped", result, reason=reason)

    # --- metrics ---------------------------------------------------------------------------------
    def _metrics(self) -> EphemeralMetrics:
        return EphemeralMetrics(namespace=self.namespace, service=SERVICE)

    def _emit(self, result: LaneResult, lag: float | None) -> None:
        """One embedded-metrics record per lane advance. The lane is metadata, not a dimension:
        thousands of lanes as dimensions would be thousands of billed metrics."""
        metrics = self._metrics()
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


def _names(event: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = event.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"event.{key}: expected a name or a list of names, got {value!r}")
    return tuple(value)


# --- entry points named in template.yaml ---------------------------------------------------------
_app: LambdaApp | None = None


def _default_app() -> LambdaApp:
    global _app
    if _app is None:
        _app = LambdaApp(LambdaSettings.from_env(os.environ))
    return _app


def dispatcher_handler(event: Mapping[str, Any] | None, context: object) -> dict[str, Any]:
    """EventBridge Scheduler target: one SQS message per lane."""
    return _default_app().dispatch(event, context)


def worker_handler(event: Mapping[str, Any], context: InvocationContext) -> dict[str, Any]:
    """SQS target (batch size 1): advance the message's lane until shortly before the deadline."""
    return _default_app().work(event, context)
