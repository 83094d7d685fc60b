"""The SQS queue of lanes: one message (`LaneMessage`) is one advance of one account-region lane,
sent by `LaneQueue` (over `aws/queue.py`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from log_exporter.aws.queue import SQS_BATCH, Queue
from log_exporter.aws_lambda.settings import MAX_DELAY_SECONDS
from log_exporter.errors import AWSError, ConfigError, LogExporterError
from log_exporter.settings import ENV_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
        self._queue = Queue(sqs, url)
        self.url = url

    def send(self, message: LaneMessage, delay_seconds: int = 0) -> None:
        delay = min(max(delay_seconds, 0), MAX_DELAY_SECONDS)
        self._queue.send(message.body(), delay, f"lane {message.name}")

    def send_all(self, messages: Sequence[LaneMessage]) -> None:
        for i in range(0, len(messages), SQS_BATCH):
            batch = messages[i : i + SQS_BATCH]
            failed = self._queue.send_batch([m.body() for m in batch], "lanes")
            if failed:
                index, said = failed[0]
                raise AWSError(
                    f"cannot send {len(failed)} lanes to {self.url}, e.g. {batch[index].name}: "
                    f"{said}".rstrip()
                )
