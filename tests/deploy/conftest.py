"""Lambda fixtures: the handlers run in this process against the emulator server (moto serves
SQS too), with boto3 pointed at it through AWS_ENDPOINT_URL, and a drain loop that feeds queued
messages to the worker the way Lambda's SQS event source does (one message per invocation,
deleted unless reported as a batch item failure)."""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger

from emulator import Emulator, EmulatorServer
from emulator.scenario import archived
from log_exporter.aws_lambda.app import LambdaApp
from log_exporter.aws_lambda.dispatcher import Dispatcher
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.aws_lambda.settings import LambdaSettings
from log_exporter.aws_lambda.worker import Advance, Worker
from tests.e2e.conftest import EXPORTER, Exporter, Result, exporter, point_boto3_at, server

__all__ = ["EXPORTER", "Exporter", "Result", "exporter", "server"]

SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
_services = itertools.count()


@pytest.fixture
def emu(server: EmulatorServer) -> Iterator[Emulator]:
    """A clean emulator with fast tasks, installed for this test only (other suites in the same
    worker process have their own)."""
    e = server.emulator
    e.install()
    e.reset()
    e.task_timing(pending=0.02, base=0.05, bytes_per_second=None, cancel=0.05)
    yield e
    e.reset_faults()
    e.wait_idle(timeout=10)
    e.uninstall()


@pytest.fixture
def aws(server: EmulatorServer, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's boto3 talks to the emulator server."""
    point_boto3_at(monkeypatch, server.endpoint_url)


@pytest.fixture(autouse=True)
def _restore_core_logger() -> Iterator[None]:
    """LambdaApp routes the `log_exporter` logger to powertools; undo it for other tests."""
    core = logging.getLogger("log_exporter")
    saved = (list(core.handlers), core.level, core.propagate)
    yield
    core.handlers[:], core.level, core.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def queue_url(aws: None) -> str:
    return boto3.client("sqs").create_queue(QueueName="log-exporter-lanes")["QueueUrl"]


@dataclass
class Context:
    """The part of Lambda's context the worker reads."""

    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class BothFunctions(LambdaApp):
    """One LambdaApp that the tests drive as both functions: `dispatch` is the dispatcher's,
    `work` and `advance` the worker's (in Lambda, each function builds its own app)."""

    def dispatch(self, event: dict[str, Any] | None, context: object) -> dict[str, Any]:
        return Dispatcher(self).dispatch(event, context)

    def work(self, event: dict[str, Any], context: Context) -> dict[str, Any]:
        return Worker(self).work(event, context)

    def advance(self, message: LaneMessage, deadline: float) -> Advance:
        return Worker(self).advance(message, deadline)


def make_app(
    config: Path | str, queue_url: str, bucket: str, *, prefix: str = "logs", **kwargs: Any
) -> BothFunctions:
    """A LambdaApp as the template configures it, without delays (tests drain at once)."""
    settings = LambdaSettings(
        config=str(config),
        queue_url=queue_url,
        bucket=bucket,
        prefix=prefix,
        requeue_delay_seconds=0,
        busy_delay_seconds=0,
        **{k: kwargs.pop(k) for k in list(kwargs) if k in LambdaSettings.__dataclass_fields__},
    )
    # A logger of its own per app: powertools configures a service's logger once per process.
    logger = Logger(service=f"log-exporter-test-{next(_services)}")
    return BothFunctions(settings, logger=logger, **kwargs)


@dataclass
class Drained:
    """What the worker invocations of a drain did."""

    invocations: int = 0
    bodies: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]
    }


def drain(
    app: BothFunctions,
    queue_url: str,
    *,
    context: Callable[[], Context] = Context,
    max_invocations: int = 50,
) -> Drained:
    """Invoke the worker with one message at a time until the queue is empty."""
    sqs = boto3.client("sqs")
    out = Drained()
    while out.invocations < max_invocations:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out.invocations += 1
        out.bodies.append(messages[0]["Body"])
        response = app.work(sqs_event(messages), context())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        out.failures.extend(sorted(failed))
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    raise AssertionError(f"the queue was not empty after {max_invocations} worker invocations")


def queued(queue_url: str) -> list[dict[str, Any]]:
    """The bodies of the messages waiting in the queue (received, then made visible again)."""
    sqs = boto3.client("sqs")
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    messages = got.get("Messages", [])
    for m in messages:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    return [json.loads(m["Body"]) for m in messages]


def stdout_json(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log records, embedded-metrics records) of the JSON lines a handler printed."""
    logs: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        (metrics if "_aws" in record else logs).append(record)
    return logs, metrics


def metric(record: dict[str, Any], name: str) -> float:
    """One metric of an embedded-metrics record (powertools writes values as lists)."""
    value = record[name]
    return float(sum(value) if isinstance(value, list) else value)


def metric_sum(metrics: list[dict[str, Any]], name: str) -> float:
    return sum(metric(m, name) for m in metrics if name in m)


def tasks_per_window(emu: Emulator) -> Counter[tuple[str, str, int]]:
    return Counter((t.account_id, t.group, t.from_ms) for t in emu.tasks if not t.foreign)


def archive_of(bucket: str, prefix: str) -> Counter[tuple[str, str, str, int, str]]:
    got, _ = archived(bucket, f"{prefix}/")
    return got
