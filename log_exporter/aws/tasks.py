"""Export tasks: create, describe, find the active ones, cancel; AWS errors mapped to ours."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from log_exporter.core.windows import Window
from log_exporter.errors import AccessDeniedError, AWSError, BucketError, ResourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

ACTIVE = ("PENDING", "RUNNING", "PENDING_CANCEL")
ENDED = ("COMPLETED", "FAILED", "CANCELLED")  # any other code (or none) says nothing yet
FINISHED_OK = "COMPLETED"
THROTTLING_CODES = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalFailure",
    "ServiceUnavailable",
}
POLICY_HINT = "run `log-exporter policy --config FILE` for the bucket policy it needs"


class SlotBusy(Exception):
    """LimitExceededException: another export task is active in this account and region."""


class Throttled(Exception):
    """AWS asked us to slow down; back off and try again."""


class AnswerLost(Throttled):
    """CreateExportTask got no answer that proves no task was created: a 5xx, a timeout, a
    dropped connection. AWS may have created the task (it offers no idempotency token), so look
    for it before creating again. A 4xx (ThrottlingException, LimitExceededException, ...) does
    prove that nothing was created."""


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


def map_client_error(exc: ClientError, what: str) -> Exception:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    message = str(err.get("Message", "")) or code
    if code == "LimitExceededException":
        return SlotBusy(message)
    if code in THROTTLING_CODES or exc.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode"
    ) in (429, 500, 502, 503, 504):
        return Throttled(f"{code}: {message}")
    if code == "ResourceNotFoundException":
        return ResourceNotFoundError(f"{what}: {message}", code=code)
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        return AccessDeniedError(f"{what}: access denied: {message}", code=code)
    lowered = message.lower()
    if code == "InvalidParameterException" and ("bucket" in lowered or "permission" in lowered):
        hint = f"; {POLICY_HINT}" if "permission" in lowered or "acl" in lowered else ""
        return BucketError(f"{what}: {message}{hint}", code=code)
    return AWSError(f"{what}: {code}: {message}", code=code)


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
        except ClientError as exc:
            mapped = map_client_error(exc, f"export of {group} {window}")
            if isinstance(mapped, BucketError) and POLICY_HINT in str(mapped):
                region = self._create.meta.region_name
                aws_says = str(exc.response.get("Error", {}).get("Message", "")).rstrip(".")
                mapped = BucketError(
                    f"export of {group} {window}: the policy of bucket {bucket} does not let "
                    f"logs.{region}.amazonaws.com write exports (AWS: {aws_says}); {POLICY_HINT}",
                    code=mapped.code,
                )
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if not (isinstance(status, int) and status < 500):  # a 4xx proves nothing was made
                raise AnswerLost(str(mapped)) from None
            raise mapped from None
        except BotoCoreError as exc:
            raise AnswerLost(str(exc)) from None
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

    def cancel(self, task_id: str) -> bool:
        """Cancel an active task; False when it had already finished."""
        try:
            self._logs.cancel_export_task(taskId=task_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidOperationException", "ResourceNotFoundException"):
                return False
            raise map_client_error(exc, f"cancelling export task {task_id}") from None
        return True
