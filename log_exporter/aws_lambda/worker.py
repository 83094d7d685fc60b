"""The SQS worker: it advances one lane per message until shortly before its invocation's
deadline, sends the lane back to the queue (with a delay) when work remains or another runner
holds it, drops messages the config no longer covers, and reports a failed message to SQS as a
batch item failure (`handler` is the function named in template.yaml)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from log_exporter.aws.organization import account_id_of, member_account
from log_exporter.aws_lambda.app import LambdaApp
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.aws_lambda.reporting import emit_lane_metrics, lag_seconds
from log_exporter.engine import RunOptions, plan_range
from log_exporter.errors import ConfigError, LogExporterError
from log_exporter.lane.result import LaneResult

Action = Literal["done", "requeued", "dropped", "failed"]


@dataclass
class Advance:
    """What one worker invocation did with one lane message, and what comes next."""

    message: LaneMessage
    action: Action
    result: LaneResult | None = None
    delay_seconds: int = 0
    reason: str = ""


class AdvanceFailed(LogExporterError):
    """A record's advance failed (already logged): the batch processor reports the record to SQS,
    which retries it and, after the queue's maxReceiveCount, keeps it in the dead-letter queue."""


class InvocationContext(Protocol):
    """The part of Lambda's context object the worker uses."""

    def get_remaining_time_in_millis(self) -> int: ...


class Worker:
    """Advances the lanes of SQS records over `app`'s engine and queue."""

    def __init__(self, app: LambdaApp) -> None:
        self.app = app
        self.logger = app.logger

    def work(self, event: Mapping[str, Any], context: InvocationContext) -> dict[str, Any]:
        """Advance the lane of each SQS record; failed records go back to SQS (and, after the
        queue's maxReceiveCount, to the dead-letter queue)."""
        remaining = context.get_remaining_time_in_millis() / 1000
        # Keep half of a short invocation (a manual test with a small timeout) for the work.
        stop_before = min(self.app.settings.stop_before_seconds, remaining / 2)
        deadline = self.app.clock() + remaining - stop_before
        if not event.get("Records"):  # a hand-made test event: nothing to advance, nothing failed
            return {"batchItemFailures": []}

        def advance_or_raise(record: SQSRecord) -> Advance:
            advance = self.advance_record(record, deadline)
            if advance.action == "failed":
                raise AdvanceFailed(advance.reason)
            return advance

        # A batch that failed whole is reported record by record too, not raised: with batch
        # size 1, one failed lane is one failed batch.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=dict(event), record_handler=advance_or_raise, processor=processor
        )
        return dict(response)

    def advance_record(self, record: SQSRecord, deadline: float) -> Advance:
        """Advance the record's lane; a failure (logged here) is an Advance too, never raised."""
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
        config = self.app.config()
        account = next((a for a in config.accounts if a.name == message.account), None)
        if account is None and message.account_id is not None:
            if any(account_id_of(a) == message.account_id for a in config.accounts):
                return self._drop(message, "the account is now an entry under `accounts:`")
            account = member_account(config, message.account_id, message.account)
        if account is None:
            return self._drop(message, "the account is no longer in the config")
        # this one account, and no discovery: the dispatcher did it
        config = config.model_copy(update={"accounts": [account], "organization": None})
        engine = self.app.engine_factory(config)
        options = RunOptions(
            accounts=(message.account,),
            regions=(message.region,),
            deadline=deadline,
            wait_for_lease=False,
        )
        specs = engine.lane_specs(options)
        if not specs:
            return self._drop(message, "the region is no longer in the account's regions")
        rng = plan_range(config, options, self.app.clock())
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
            lag = lag_seconds(lane.state.covered, self.app.clock())
        emit_lane_metrics(self.app.metrics(), result, lag)
        return self.next_step(message, result)

    def next_step(self, message: LaneMessage, result: LaneResult) -> Advance:
        """Done, sent back (with the delay for its reason), dropped, or failed (SQS retries)."""
        s = self.app.settings
        if result.busy:
            if message.busy >= s.max_busy_requeues:
                return self._drop(
                    message,
                    f"still held by another runner after {message.busy} tries; that runner "
                    "finishes it, the next schedule covers the rest",
                    result,
                )
            again = dataclasses.replace(message, busy=message.busy + 1)
            self.app.queue().send(again, s.busy_delay_seconds)
            return self._requeued(again, result, s.busy_delay_seconds, "busy")
        if result.error is not None:
            return Advance(message, "failed", result, reason=result.error)
        if result.remaining:
            again = dataclasses.replace(message, busy=0)
            self.app.queue().send(again, s.requeue_delay_seconds)
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


def lambda_handler(app: LambdaApp) -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    """`app`'s worker as Lambda calls it, with the invocation's context in its log lines."""
    return app.lambda_handler(Worker(app).work)


@functools.cache
def _from_env() -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    return lambda_handler(LambdaApp.from_env())


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """SQS target (batch size 1): advance the message's lane until shortly before the deadline
    (the app is built from the environment at the first invocation)."""
    return _from_env()(event, context)
