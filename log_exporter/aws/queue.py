"""An SQS queue (the Lambda deployment's queue of lanes): message bodies sent one at a time or in
batches of SQS_BATCH."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from log_exporter.aws.errors import AWS_ERRORS, queue_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH = 10  # SQS's limit for SendMessageBatch


class Queue:
    """One SQS queue, by its URL."""

    def __init__(self, sqs: SQSClient, url: str) -> None:
        self._sqs = sqs
        self.url = url

    def send(self, body: str, delay_seconds: int, what: str) -> None:
        """SendMessage; AWSError 'cannot send <what> to <url>: ...' when it fails."""
        try:
            self._sqs.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=delay_seconds)
        except AWS_ERRORS as exc:
            raise queue_error(f"send {what} to {self.url}", exc) from None

    def send_batch(self, bodies: Sequence[str], what: str) -> list[tuple[int, str]]:
        """SendMessageBatch of at most SQS_BATCH bodies: (index in `bodies`, '<code> <message>')
        of each SQS did not take. AWSError 'cannot send <what> to <url>: ...' when it fails."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)
        ]
        try:
            out = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
        except AWS_ERRORS as exc:
            raise queue_error(f"send {what} to {self.url}", exc) from None
        return [
            (int(f["Id"]), f"{f.get('Code', '')} {f.get('Message', '')}")
            for f in out.get("Failed", [])
        ]
