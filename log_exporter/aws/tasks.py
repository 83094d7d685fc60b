"""Export tasks: create, describe, find the active ones (or some by id, or the recently
completed), cancel (AWS errors mapped by errors.py)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from log_exporter.aws.errors import (
    AWS_ERRORS,
    Throttled,
    already_ended,
    map_client_error,
    map_create_error,
)
from log_exporter.core.windows import Window
from log_exporter.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

ACTIVE = ("PENDING", "RUNNING", "PENDING_CANCEL")
ENDED = ("COMPLETED", "FAILED", "CANCELLED")  # any other code (or none) says nothing yet
FINISHED_OK = "COMPLETED"


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    name: str
    code: str
    message: str
    group: str
    window: Window | None
    destination: str
    destination_prefix: str
    created_ms: int | None
    completed_ms: int | None

    @property
    def active(self) -> bool:
        return self.code in ACTIVE

    @property
    def ended(self) -> bool:
        """The task is over; False for an answer without a known status (ask again)."""
        return self.code in ENDED

    @classmethod
    def from_api(cls, t: Any) -> TaskStatus:
        status = t.get("status") or {}
        info = t.get("executionInfo") or {}
        window = None
        if isinstance(t.get("from"), int) and isinstance(t.get("to"), int) and t["from"] <= t["to"]:
            window = Window(t["from"], t["to"])
        return cls(
            task_id=str(t.get("taskId", "")),
            name=str(t.get("taskName", "")),
            code=str(status.get("code") or "UNKNOWN").upper(),
            message=str(status.get("message") or ""),
            group=str(t.get("logGroupName", "")),
            window=window,
            destination=str(t.get("destination", "")),
            destination_prefix=str(t.get("destinationPrefix", "")),
            created_ms=info.get("creationTime"),
            completed_ms=info.get("completionTime"),
        )


class ExportTasks:
    """CloudWatch Logs export task calls of one account and region."""

    def __init__(self, logs: CloudWatchLogsClient, logs_create: CloudWatchLogsClient) -> None:
        self._logs = logs
        self._create = logs_create

    def create(
        self, *, name: str, group: str, window: Window, bucket: str, dest_prefix: str
    ) -> str:
        """Create a task; raises SlotBusy, Throttled (AnswerLost when the task may exist all the
        same) or one of our AWSErrors."""
        try:
            out = self._create.create_export_task(
                taskName=name,
                logGroupName=group,
                fromTime=window.start,
                to=window.end,
                destination=bucket,
                destinationPrefix=dest_prefix,
            )
        except AWS_ERRORS as exc:
            raise map_create_error(
                exc, group=group, window=window, bucket=bucket, logs=self._create
            ) from None
        return str(out["taskId"])

    def describe(self, task_id: str) -> TaskStatus | None:
        try:
            out = self._logs.describe_export_tasks(taskId=task_id)
        except ClientError as exc:
            mapped = map_client_error(exc, f"export task {task_id}")
            if isinstance(mapped, ResourceNotFoundError):
                return None
            raise mapped from None
        tasks = out.get("exportTasks") or []
        for t in tasks:
            # asked by id: an answer that lacks the id is still about this task
            if t.get("taskId", task_id) == task_id:
                return replace(TaskStatus.from_api(t), task_id=task_id)
        return None

    def active(self) -> list[TaskStatus]:
        """The account-region's active tasks (normally at most one), ours or anybody's.

        Asked status by status in the order a task goes through them, so a task that moves on
        between two calls is seen twice (kept once), never missed."""
        found: dict[str, TaskStatus] = {}
        for code in ("PENDING", "RUNNING", "PENDING_CANCEL"):
            kwargs: dict[str, Any] = {"statusCode": code, "limit": 50}
            while True:
                try:
                    out = self._logs.describe_export_tasks(**kwargs)
                except ClientError as exc:
                    raise map_client_error(exc, "listing active export tasks") from None
                for t in out.get("exportTasks", []):
                    if str((t.get("status") or {}).get("code", "")).upper() == code:
                        status = TaskStatus.from_api(t)
                        found[status.task_id] = status
                token = out.get("nextToken")
                if not token:
                    break
                kwargs["nextToken"] = token
        return list(found.values())

    def find(self, wanted: Set[str]) -> dict[str, TaskStatus]:
        """The tasks among `wanted` (ids) that AWS still lists: every task of the account-region,
        50 a page, until all are found."""
        found: dict[str, TaskStatus] = {}
        kwargs: dict[str, Any] = {"limit": 50}
        while wanted - found.keys():
            try:
                out = self._logs.describe_export_tasks(**kwargs)
            except ClientError as exc:
                raise map_client_error(exc, "listing export tasks") from None
            for t in out.get("exportTasks", []):
                if t.get("taskId") in wanted:
                    found[str(t["taskId"])] = TaskStatus.from_api(t)
            token = out.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        return found

    def recently_completed(self, limit: int = 50) -> list[TaskStatus]:
        """The account-region's last `limit` COMPLETED tasks (one call); none when the call was
        throttled or got no answer (what they tell is an estimate, not worth a failure)."""
        try:
            out = self._logs.describe_export_tasks(statusCode="COMPLETED", limit=limit)
        except ClientError as exc:
            mapped = map_client_error(exc, "listing completed export tasks")
            if isinstance(mapped, Throttled):
                return []
            raise mapped from None
        except BotoCoreError:
            return []
        return [TaskStatus.from_api(t) for t in out.get("exportTasks", [])]

    def cancel(self, task_id: str) -> bool:
        """Cancel an active task; False when it had already finished."""
        try:
            self._logs.cancel_export_task(taskId=task_id)
        except ClientError as exc:
            if already_ended(exc):
                return False
            raise map_client_error(exc, f"cancelling export task {task_id}") from None
        return True
