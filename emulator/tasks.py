"""Export tasks as AWS runs them: CreateExportTask's checks, the one-slot rule, the timed
PENDING -> RUNNING -> COMPLETED/FAILED/CANCELLED state machine and the objects a task writes."""

from __future__ import annotations

import gzip
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from moto.logs.exceptions import (
    InvalidParameterException,
    LimitExceededException,
    LogsClientError,
    ResourceNotFoundException,
)
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends

from . import policy

if TYPE_CHECKING:
    from moto.logs.models import LogGroup, LogsBackend

log = logging.getLogger("emulator")

ACTIVE = frozenset({"PENDING", "RUNNING", "PENDING_CANCEL"})
STATUS_CODES = frozenset(
    {"CANCELLED", "COMPLETED", "FAILED", "PENDING", "PENDING_CANCEL", "RUNNING"}
)
PROBE_KEY = "aws-logs-write-test"
PROBE_BODY = b"Permission Check Successful"
MAX_DESCRIBE_LIMIT = 50
FOREIGN_GROUP = "/emulator/someone-elses-export"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidOperationException(LogsClientError):
    def __init__(self, msg: str) -> None:
        self.code = 400
        super().__init__("InvalidOperationException", msg)


def iso_ms(ms: int) -> str:
    """`2026-11-01T23:59:59.999Z`: UTC whatever the process's TZ."""
    t = _EPOCH + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_line(timestamp_ms: int, message: str) -> str:
    return f"{iso_ms(timestamp_ms)} {message}"


@dataclass
class Timing:
    """How long tasks take: PENDING for `pending`, RUNNING for `base + bytes / bytes_per_second`."""

    pending: float = 0.05
    base: float = 0.1
    bytes_per_second: float | None = None  # None: infinitely fast
    cancel: float = 0.05  # PENDING_CANCEL -> CANCELLED

    def running(self, nbytes: int) -> float:
        rate = self.bytes_per_second
        return self.base + (nbytes / rate if rate else 0.0)


@dataclass(frozen=True)
class Fate:
    """An injected outcome for one task."""

    kind: Literal["fail", "stuck"]
    message: str = "Export failed"
    partial: bool = True


@dataclass
class TaskRecord:
    """What the emulator remembers of one export task (times are wall-clock seconds)."""

    account_id: str
    region: str
    task_id: str
    task_name: str | None
    group: str
    from_ms: int
    to_ms: int
    destination: str
    prefix: str
    stream_prefix: str | None
    status: str
    message: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    bytes: int = 0
    objects: list[str] = field(default_factory=list)
    foreign: bool = False
    hidden: bool = False  # DescribeExportTasks does not list it (a slot busy with no task seen)
    unlisted_until: float = 0.0  # not listed before this time (by its id it is found)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class ExportObject:
    key: str
    body: bytes  # gzip
    size: int  # uncompressed bytes


def object_key(prefix: str, task_id: str, stream: str, index: int) -> str:
    return "/".join(p for p in (prefix, task_id, stream, f"{index:06d}.gz") if p)


def render_objects(
    group: LogGroup,
    *,
    prefix: str,
    task_id: str,
    from_ms: int,
    to_ms: int,
    stream_prefix: str | None,
    max_object_bytes: int,
) -> list[ExportObject]:
    """The objects AWS would write: one or more per stream with an event in [from_ms, to_ms]."""
    out: list[ExportObject] = []
    for name, stream in sorted(list(group.streams.items())):
        if stream_prefix and not name.startswith(stream_prefix):
            continue
        events = sorted(
            (e.timestamp, e.message) for e in list(stream.events) if from_ms <= e.timestamp <= to_ms
        )
        chunk: list[bytes] = []
        size = 0
        index = 0
        for ts, message in events:
            line = (format_line(ts, message) + "\n").encode()
            if chunk and size + len(line) > max_object_bytes:
                out.append(_gz(object_key(prefix, task_id, name, index), chunk, size))
                chunk, size, index = [], 0, index + 1
            chunk.append(line)
            size += len(line)
        if chunk:
            out.append(_gz(object_key(prefix, task_id, name, index), chunk, size))
    return out


def _gz(key: str, lines: list[bytes], size: int) -> ExportObject:
    return ExportObject(key, gzip.compress(b"".join(lines), mtime=0), size)


class Job:
    """A callback due at a monotonic time; cancel() before it runs and it never does."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """One daemon thread running jobs at their due time, so tasks move even if nobody looks."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> Job:
        job = Job(time.monotonic() + max(0.0, delay), fn)
        with self._cv:
            heapq.heappush(self._heap, (job.due, next(self._seq), job))
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="emulator-scheduler", daemon=True
                )
                self._thread.start()
            self._cv.notify()
        return job

    def cancel_all(self) -> None:
        with self._cv:
            for _, _, job in self._heap:
                job.cancel()
            self._heap.clear()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.cancel_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping:
                    if not self._heap:
                        self._cv.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
            if job.cancelled:
                continue
            try:
                job.fn()
            except Exception:
                log.exception("emulator job failed")


class ExportJob:
    """One export task as stored in moto's `LogsBackend.export_tasks`."""

    def __init__(
        self,
        engine: TaskEngine,
        backend: LogsBackend,
        record: TaskRecord,
        seq: int,
        fate: Fate | None,
        hold: float | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.record = record
        self.seq = seq
        self.fate = fate
        self.hold = hold  # foreign tasks: total seconds they keep the slot
        self.timer: Job | None = None
        self.objects: list[ExportObject] = []
        self.task_id = record.task_id

    @property
    def status(self) -> dict[str, str]:
        return {"code": self.record.status, "message": self.record.message}

    def to_json(self) -> dict[str, Any]:
        r = self.record
        info: dict[str, int] = {"creationTime": int(r.created_at * 1000)}
        if r.ended_at is not None:
            info["completionTime"] = int(r.ended_at * 1000)
        out: dict[str, Any] = {"taskId": r.task_id}
        if r.task_name is not None:
            out["taskName"] = r.task_name
        out.update(
            logGroupName=r.group,
            **{"from": r.from_ms, "to": r.to_ms},
            destination=r.destination,
            destinationPrefix=r.prefix,
            status=self.status,
            executionInfo=info,
        )
        return out


class TaskEngine:
    """Creates, describes, cancels and advances export tasks; all state changes under `lock`."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        timing: Timing,
        max_object_bytes: int,
        fate_for: Callable[[str, str], Fate | None],
    ) -> None:
        self.lock = lock
        self.timing = timing
        self.max_object_bytes = max_object_bytes
        self.reject_before_creation = False
        self.require_bucket_policy = False  # see emulator/policy.py
        self.scheduler = Scheduler()
        self.records: list[TaskRecord] = []
        self.limit_exceeded: Counter[tuple[str, str]] = Counter()
        self._fate_for = fate_for
        self._seq = itertools.count(1)

    # -- API ---------------------------------------------------------------------------------

    def create(
        self,
        backend: LogsBackend,
        *,
        group: str,
        from_ms: int | None,
        to_ms: int | None,
        destination: str,
        prefix: str | None,
        task_name: str | None = None,
        stream_prefix: str | None = None,
    ) -> str:
        if from_ms is None or to_ms is None or from_ms > to_ms:
            raise InvalidParameterException(
                f"Specified time range of '{from_ms}' and '{to_ms}' is not valid. Please make "
                "sure the values are within the retention period of the log group and from "
                "value is less than the to values"
            )
        log_group = backend.groups.get(group)
        if log_group is None:
            raise ResourceNotFoundException("The specified log group does not exist.")
        if self.reject_before_creation and to_ms < _created_ms(log_group):
            raise InvalidParameterException(
                "The to time must not be earlier than the creation time of the log group."
            )
        try:
            bucket = s3_backends[backend.account_id][backend.partition].get_bucket(destination)
        except MissingBucket:
            raise InvalidParameterException(
                "The given bucket does not exist. Please make sure the bucket is valid."
            ) from None
        if bucket.region_name != backend.region_name:
            raise InvalidParameterException(
                "The specified bucket is in a different region. Please make sure the bucket "
                "is in the same region as the log group."
            )
        prefix = "exportedlogs" if prefix is None else prefix
        if self.require_bucket_policy:
            policy.check_create(
                bucket,
                account_id=backend.account_id,
                region=backend.region_name,
                group=group,
                probe_keys=["/".join(p for p in (prefix, PROBE_KEY) if p)],
            )
        with self.lock:
            if any(_is_active(t) for t in list(backend.export_tasks.values())):
                self.limit_exceeded[(backend.account_id, backend.region_name)] += 1
                raise LimitExceededException()
            s3_backends[bucket.account_id][bucket.partition].put_object(
                bucket_name=destination,
                key_name="/".join(p for p in (prefix, PROBE_KEY) if p),
                value=PROBE_BODY,
            )
            job = self._add(
                backend,
                group=group,
                from_ms=from_ms,
                to_ms=to_ms,
                destination=destination,
                prefix=prefix,
                task_name=task_name,
                stream_prefix=stream_prefix,
                fate=self._fate_for(backend.account_id, group),
            )
            if job.fate is None or job.fate.kind != "stuck":
                job.timer = self.scheduler.call_later(self.timing.pending, lambda: self._start(job))
            return job.task_id

    def occupy(
        self,
        backend: LogsBackend,
        seconds: float,
        group: str | None = None,
        *,
        hidden: bool = False,
    ) -> str:
        """Someone else's task holding the slot for `seconds` (ignores the slot rule itself);
        `hidden`: not listed by DescribeExportTasks."""
        with self.lock:
            job = self._add(
                backend,
                group=group or FOREIGN_GROUP,
                from_ms=0,
                to_ms=0,
                destination="someone-elses-bucket",
                prefix="exportedlogs",
                task_name="someone-elses-export",
                stream_prefix=None,
                fate=None,
                hold=seconds,
            )
            job.record.hidden = hidden
            pending = min(self.timing.pending, seconds / 2)
            job.timer = self.scheduler.call_later(pending, lambda: self._start(job))
            return job.task_id

    def unlist(self, task_id: str, seconds: float) -> None:
        """Task `task_id` is not listed (asked by its id it is found) for `seconds` from now."""
        with self.lock:
            for record in self.records:
                if record.task_id == task_id:
                    record.unlisted_until = time.time() + seconds

    def query(
        self, backend: LogsBackend, task_id: str | None = None, status_code: str | None = None
    ) -> list[Any]:
        """Tasks of a backend, newest first, filtered like DescribeExportTasks."""
        now = time.time()
        with self.lock:
            tasks = [
                t
                for t in backend.export_tasks.values()
                if not _hidden(t) and (task_id or _listed_at(t) <= now)
            ]
        tasks.sort(key=lambda t: getattr(t, "seq", 0), reverse=True)
        if task_id:
            tasks = [t for t in tasks if t.task_id == task_id]
        if status_code:
            tasks = [t for t in tasks if t.status["code"] == status_code]
        return tasks

    def describe(
        self,
        backend: LogsBackend,
        *,
        task_id: str | None = None,
        status_code: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        limit = MAX_DESCRIBE_LIMIT if limit is None else int(limit)
        if not 1 <= limit <= MAX_DESCRIBE_LIMIT:
            raise InvalidParameterException(
                constraint=f"Member must have value between 1 and {MAX_DESCRIBE_LIMIT}",
                parameter="limit",
                value=limit,
            )
        if status_code is not None and status_code not in STATUS_CODES:
            raise InvalidParameterException(
                constraint=f"Member must satisfy enum value set: {sorted(STATUS_CODES)}",
                parameter="statusCode",
                value=status_code,
            )
        tasks = self.query(backend, task_id, status_code)
        if next_token:
            try:
                after = int(next_token)
            except ValueError:
                raise InvalidParameterException("The specified nextToken is invalid.") from None
            tasks = [t for t in tasks if getattr(t, "seq", 0) < after]
        with self.lock:
            page = [t.to_json() for t in tasks[:limit]]
        token = str(getattr(tasks[limit - 1], "seq", 0)) if len(tasks) > limit else None
        return page, token

    def cancel(self, backend: LogsBackend, task_id: str) -> None:
        task = backend.export_tasks.get(task_id)
        if task is None:
            raise ResourceNotFoundException("The specified export task does not exist.")
        if not isinstance(task, ExportJob):  # made by plain moto before the emulator came
            raise InvalidOperationException("The specified export task has already finished")
        task.engine.cancel_job(task)

    def cancel_job(self, job: ExportJob) -> None:
        with self.lock:
            status = job.record.status
            if status == "PENDING_CANCEL":
                raise InvalidOperationException("The specified export task is already cancelling")
            if status not in ACTIVE:
                raise InvalidOperationException("The specified export task has already finished")
            if job.timer is not None:
                job.timer.cancel()
            self._set(job, "PENDING_CANCEL", "Cancellation pending")
            job.timer = self.scheduler.call_later(self.timing.cancel, lambda: self._cancelled(job))

    def stop(self) -> None:
        self.scheduler.stop()

    def clear(self) -> None:
        """Forget every task and drop their timers (tasks left in moto stay where they are)."""
        self.scheduler.cancel_all()
        with self.lock:
            self.records.clear()
            self.limit_exceeded.clear()

    # -- state machine -------------------------------------------------------------------------

    def _add(
        self, backend: LogsBackend, *, fate: Fate | None, hold: float | None = None, **kw: Any
    ) -> ExportJob:
        record = TaskRecord(
            account_id=backend.account_id,
            region=backend.region_name,
            task_id=str(uuid.uuid4()),
            status="PENDING",
            message="Pending",
            created_at=time.time(),
            foreign=hold is not None,
            **kw,
        )
        job = ExportJob(self, backend, record, next(self._seq), fate, hold)
        backend.export_tasks[record.task_id] = job  # type: ignore[assignment]
        self.records.append(record)
        return job

    def _set(self, job: ExportJob, status: str, message: str) -> None:
        r = job.record
        r.status, r.message = status, message
        now = time.time()
        if status == "RUNNING":
            r.started_at = now
        elif status not in ACTIVE:
            r.ended_at = now

    def _start(self, job: ExportJob) -> None:
        with self.lock:
            if job.record.status != "PENDING":
                return
            self._set(job, "RUNNING", "Started Successfully")
            if job.hold is not None:
                left = job.hold - (time.time() - job.record.created_at)
                job.timer = self.scheduler.call_later(left, lambda: self._finish(job))
                return
        r = job.record
        error: str | None = None
        try:
            log_group = job.backend.groups.get(r.group)
            if log_group is None:
                raise LookupError("The specified log group does not exist.")
            objects = render_objects(
                log_group,
                prefix=r.prefix,
                task_id=r.task_id,
                from_ms=r.from_ms,
                to_ms=r.to_ms,
                stream_prefix=r.stream_prefix,
                max_object_bytes=self.max_object_bytes,
            )
        except Exception as exc:
            objects, error = [], str(exc)
        with self.lock:
            if job.record.status != "RUNNING":
                return
            if error is not None:
                self._set(job, "FAILED", error)
                return
            job.objects = objects
            r.bytes = sum(o.size for o in objects)
            job.timer = self.scheduler.call_later(
                self.timing.running(r.bytes), lambda: self._finish(job)
            )

    def _finish(self, job: ExportJob) -> None:
        with self.lock:
            if job.record.status != "RUNNING":
                return
            fate = job.fate
        failing = fate is not None and fate.kind == "fail"
        to_write = job.objects
        if failing and fate is not None:
            to_write = to_write[: max(1, len(to_write) // 2)] if fate.partial else []
        error = self._write(job, to_write)
        job.objects = []  # written or dropped: free the bodies
        with self.lock:
            if job.record.status != "RUNNING":
                return  # cancelled while writing: what was written stays, like AWS
            if error is not None:
                self._set(job, "FAILED", error)
            elif failing and fate is not None:
                self._set(job, "FAILED", fate.message)
            else:
                self._set(job, "COMPLETED", "Completed successfully")

    def _write(self, job: ExportJob, objects: Iterable[ExportObject]) -> str | None:
        r = job.record
        try:
            for obj in objects:
                if job.record.status != "RUNNING":
                    return None
                bucket = s3_backends[r.account_id][job.backend.partition].get_bucket(r.destination)
                if self.require_bucket_policy and (
                    refused := policy.write_refused(
                        bucket, obj.key, account_id=r.account_id, region=r.region, group=r.group
                    )
                ):
                    return refused
                s3_backends[bucket.account_id][bucket.partition].put_object(
                    bucket_name=r.destination, key_name=obj.key, value=obj.body
                )
                r.objects.append(obj.key)
        except MissingBucket:
            return "The given bucket does not exist. Please make sure the bucket is valid."
        except Exception as exc:
            return f"Export failed: {exc}"
        return None

    def _cancelled(self, job: ExportJob) -> None:
        with self.lock:
            if job.record.status == "PENDING_CANCEL":
                self._set(job, "CANCELLED", "Cancelled by user")


def _is_active(task: Any) -> bool:
    return task.status["code"] in ACTIVE


def _hidden(task: Any) -> bool:
    record = getattr(task, "record", None)
    return bool(getattr(record, "hidden", False))


def _listed_at(task: Any) -> float:
    """When a listing of the account's tasks first shows `task` (see TaskEngine.unlist)."""
    record = getattr(task, "record", None)
    return float(getattr(record, "unlisted_until", 0.0))


def _created_ms(group: LogGroup) -> int:
    return int((group.creation_time.replace(tzinfo=UTC) - _EPOCH) / timedelta(milliseconds=1))
