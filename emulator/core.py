"""The `Emulator`: one handle to configure, inject faults into and inspect moto made realistic."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from types import EllipsisType, TracebackType

from moto.logs.models import logs_backends

from . import patches
from .faults import Faults
from .tasks import Fate, TaskEngine, TaskRecord, Timing


class Emulator:
    """moto with asynchronous export tasks, AWS's limits and object layout, and fault injection.

    `install()` (or `with Emulator() as emu:`) patches moto in this process; the patches serve
    both `moto.mock_aws` and an `EmulatorServer`. Times in the record are wall-clock seconds.
    """

    def __init__(
        self,
        *,
        pending_seconds: float = 0.05,
        base_seconds: float = 0.1,
        bytes_per_second: float | None = None,
        cancel_seconds: float = 0.05,
        max_object_bytes: int = 1 << 20,
    ) -> None:
        self._lock = threading.RLock()
        self.faults = Faults(self._lock)
        self.engine = TaskEngine(
            lock=self._lock,
            timing=Timing(pending_seconds, base_seconds, bytes_per_second, cancel_seconds),
            max_object_bytes=max_object_bytes,
            fate_for=self.faults.take_fate,
        )
        self._calls: Counter[tuple[str, str]] = Counter()
        # DescribeExportTasks answers carry `executionInfo` (documented as optional: with
        # False they lack it, as AWS may send them); back to True after `reset()`
        self.execution_info = True
        # account id -> the regions EC2 DescribeRegions lists for it (absent: moto's, all)
        self.enabled_regions: dict[str, frozenset[str]] = {}
        self._s3_paths: Counter[tuple[str, str]] = Counter()  # (path, operation), for S3

    # -- lifecycle -------------------------------------------------------------------------------

    def install(self) -> Emulator:
        patches.install(self)
        return self

    def uninstall(self) -> None:
        patches.uninstall(self)
        self.engine.stop()

    def __enter__(self) -> Emulator:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def reset(self, *, aws: bool = True) -> None:
        """Forget tasks, calls and faults; with `aws`, also wipe every moto backend."""
        self.engine.clear()
        self.engine.require_bucket_policy = False
        self.execution_info = True
        self.reset_faults()
        with self._lock:
            self._calls.clear()
            self._s3_paths.clear()
            self.faults.injected.clear()
            self.faults.issued.clear()
            self.enabled_regions.clear()
        if aws:
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()

    # -- configuration ---------------------------------------------------------------------------

    def task_timing(
        self,
        *,
        pending: float | EllipsisType = ...,
        base: float | EllipsisType = ...,
        bytes_per_second: float | EllipsisType | None = ...,
        cancel: float | EllipsisType = ...,
    ) -> Timing:
        """Change how long new tasks (and running ones' next step) take; returns the timing."""
        with self._lock:
            t = self.engine.timing
            if not isinstance(pending, EllipsisType):
                t.pending = pending
            if not isinstance(base, EllipsisType):
                t.base = base
            if not isinstance(bytes_per_second, EllipsisType):
                t.bytes_per_second = bytes_per_second
            if not isinstance(cancel, EllipsisType):
                t.cancel = cancel
            return copy.copy(t)

    @property
    def max_object_bytes(self) -> int:
        return self.engine.max_object_bytes

    @max_object_bytes.setter
    def max_object_bytes(self, value: int) -> None:
        self.engine.max_object_bytes = value

    @property
    def reject_before_creation(self) -> bool:
        """Reject a `to` earlier than the group's creation, as the API reference says AWS does."""
        return self.engine.reject_before_creation

    @reject_before_creation.setter
    def reject_before_creation(self, value: bool) -> None:
        self.engine.reject_before_creation = value

    @property
    def require_bucket_policy(self) -> bool:
        """Enforce the archive bucket's policy like AWS (emulator/policy.py): CreateExportTask
        fails with InvalidParameterException, and a running task's next object write fails the
        task, unless the policy lets `logs.<region>.amazonaws.com` GetBucketAcl and PutObject
        for the task's account. Checked again on every call and write; off after `reset()`."""
        return self.engine.require_bucket_policy

    @require_bucket_policy.setter
    def require_bucket_policy(self, value: bool) -> None:
        self.engine.require_bucket_policy = value

    # -- injections ------------------------------------------------------------------------------

    def fail_tasks(
        self,
        count: int = 1,
        *,
        account_id: str | None = None,
        group: str | None = None,
        partial: bool = True,
        message: str = "Export failed",
    ) -> None:
        """The next `count` matching tasks end FAILED; `partial`: after writing some objects."""
        self.faults.add_fate(Fate("fail", message, partial), count, account_id, group)

    def stuck_tasks(
        self, count: int = 1, *, account_id: str | None = None, group: str | None = None
    ) -> None:
        """The next `count` matching tasks stay PENDING until cancelled."""
        self.faults.add_fate(Fate("stuck"), count, account_id, group)

    def throttle(
        self,
        rate: float,
        *,
        services: Iterable[str] = ("logs", "s3"),
        operations: Iterable[str] | None = None,
        error: str = "ThrottlingException",
        seed: int = 0,
    ) -> None:
        """That fraction of matching server requests gets a throttling error (S3: 503 SlowDown)."""
        self.faults.add_throttle(rate, services, operations, error, seed)

    def unavailable_burst(
        self,
        n: int,
        services: Iterable[str] = ("logs",),
        operations: Iterable[str] | None = None,
    ) -> None:
        """The next `n` matching server requests get ServiceUnavailable (503)."""
        self.faults.add_burst(n, services, operations)

    def lose_answers(
        self,
        n: int = 1,
        *,
        how: str = "500",
        services: Iterable[str] = ("logs",),
        operations: Iterable[str] = ("CreateExportTask",),
        unlisted_for: float = 0.0,
    ) -> None:
        """The next `n` matching server requests that succeed lose their answer after AWS
        acted: `how` is "500" (InternalFailure), "503" (ServiceUnavailableException) or
        "reset" (the connection is closed with no answer). A request that fails anyway (a
        LimitExceededException, say) keeps its answer and uses none of the `n`.
        `unlisted_for`: a task such a CreateExportTask created is not listed by
        DescribeExportTasks for that many seconds (AWS lists new tasks late); asked by its id,
        it is found."""
        self.faults.add_lost_answers(n, services, operations, how, unlisted_for)

    def unlist_task(self, task_id: str, seconds: float) -> None:
        """Task `task_id` is not listed by DescribeExportTasks for `seconds` from now."""
        self.engine.unlist(task_id, seconds)

    def read_quotas(self, filter_log_events: float = 5.0, get_log_events: float = 25.0) -> None:
        """Enforce CloudWatch Logs' read quotas per account and region, as AWS does (requests
        a second; AWS's defaults): above them, ThrottlingException. Off after `reset()`, so the
        suites' probes are not throttled unless a test asks for it."""
        with self._lock:
            self.faults.read_quotas.update(
                {"FilterLogEvents": filter_log_events, "GetLogEvents": get_log_events}
            )

    def empty_pages(self, n: int = 1) -> None:
        """FilterLogEvents answers `n` empty pages (no event, with a nextToken) before each of
        its pages, the last one included, as AWS documents it may; off after `reset()`."""
        with self._lock:
            self.faults.empty_pages = n

    def occupy_slot(
        self,
        account_id: str,
        region: str,
        seconds: float,
        *,
        group: str | None = None,
        hidden: bool = False,
    ) -> str:
        """Someone else's export task holds the account-region's slot for `seconds`; `hidden`:
        DescribeExportTasks does not list it (the slot is busy with no task in sight)."""
        return self.engine.occupy(logs_backends[account_id][region], seconds, group, hidden=hidden)

    def skew_clock(self, seconds: float) -> None:
        """Answers carry a Date `seconds` later than now (earlier if negative): what a client
        sees whose clock is `seconds` behind AWS's."""
        with self._lock:
            self.faults.clock_skew = seconds

    def partial_deletes(
        self,
        count: int | None = 1,
        *,
        match: str = "",
        every: int = 2,
        code: str = "InternalError",
    ) -> None:
        """The next `count` DeleteObjects calls (None: all) with keys containing `match` answer
        200 but do not delete every `every`-th of those keys (1: none of them), listing them
        under `Errors` with `code`, as S3 does; the other keys are deleted."""
        self.faults.add_partial_delete(count, match, every, code)

    def version_bucket(self, bucket: str) -> None:
        """Turn on versioning for `bucket`: a delete then only adds a delete marker."""
        from moto.s3.models import s3_backends

        partition, owner = s3_backends.bucket_accounts[bucket]
        s3_backends[owner][partition].put_bucket_versioning(bucket, "Enabled")

    def deny_role(self, role_arn: str) -> None:
        """AssumeRole on `role_arn` fails with AccessDenied."""
        with self._lock:
            self.faults.denied_roles.add(role_arn)

    def credential_lifetime(self, seconds: int | None) -> None:
        """AssumeRole credentials expire after `seconds` (None: as asked by the caller)."""
        with self._lock:
            self.faults.credential_lifetime = seconds

    def enforce_credential_expiry(self, enabled: bool = True) -> None:
        """Server requests signed with expired AssumeRole keys get ExpiredToken(Exception)."""
        with self._lock:
            self.faults.enforce_expiry = enabled

    def enable_regions(self, account_id: str, regions: Iterable[str]) -> None:
        """EC2 DescribeRegions in `account_id` lists only these regions (AWS accounts differ
        in the opt-in regions they enabled)."""
        with self._lock:
            self.enabled_regions[account_id] = frozenset(regions)

    def reset_faults(self) -> None:
        self.faults.clear()

    # -- record ----------------------------------------------------------------------------------

    def record_call(self, service: str, operation: str, path: str = "") -> None:
        with self._lock:
            self._calls[(service, operation)] += 1
            if service == "s3" and path:
                self._s3_paths[(path, operation)] += 1

    def s3_calls(self, path: str) -> Counter[str]:
        """S3 operation -> requests seen on one path (`/bucket/key` in path-style addressing)."""
        with self._lock:
            return Counter({op: n for (p, op), n in self._s3_paths.items() if p == path})

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """(service, operation) -> requests seen by the server (a copy)."""
        with self._lock:
            return Counter(self._calls)

    @property
    def injected(self) -> Counter[tuple[str, str, str]]:
        """(service, operation, error code) -> errors injected by the server (a copy)."""
        with self._lock:
            return Counter(self.faults.injected)

    @property
    def limit_exceeded(self) -> int:
        """CreateExportTask calls rejected with LimitExceededException."""
        with self._lock:
            return sum(self.engine.limit_exceeded.values())

    @property
    def limit_exceeded_by(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.engine.limit_exceeded)

    @property
    def tasks(self) -> list[TaskRecord]:
        """Every export task created since the last reset, oldest first (copies)."""
        with self._lock:
            return [copy.deepcopy(r) for r in self.engine.records]

    def task(self, task_id: str) -> TaskRecord:
        with self._lock:
            for r in self.engine.records:
                if r.task_id == task_id:
                    return copy.deepcopy(r)
        raise KeyError(task_id)

    def lower_bound(self) -> float:
        """Max over account-regions of their tasks' summed (ended_at - created_at), in seconds.

        With one slot per account-region, no exporter can finish faster. Foreign tasks are
        ignored; a task still active counts until now.
        """
        now = time.time()
        sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        with self._lock:
            for r in self.engine.records:
                if not r.foreign:
                    end = r.ended_at if r.ended_at is not None else now
                    sums[(r.account_id, r.region)] += end - r.created_at
        return max(sums.values(), default=0.0)

    def wait_idle(self, timeout: float = 10.0, *, include_foreign: bool = True) -> bool:
        """Wait until no recorded task is active (stuck ones never end); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = any(
                    r.active and (include_foreign or not r.foreign) for r in self.engine.records
                )
            if not busy:
                return True
            time.sleep(0.01)
        return False
