"""One account and region: the state machine that keeps its single export slot busy.

A lane reads its state, finishes or cleans up whatever a previous runner left in flight (under
its lease), plans, and then runs its export tasks back to back: record the intent, create the
task, poll it adaptively, record the outcome in the same write as the next intent. With nothing
in flight, the lease is written with the first intent. A FAILED task's partial output is
deleted before the window is tried again, so no event is archived twice. With
`destination.strategy` auto or read, windows are also archived by reading their events
(direct.py), in worker threads, while the slot runs the others; the same intent -> write ->
record protocol holds for them (see `_read_next`, `_resume_read`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TypeVar

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.clock import skew_margin
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.reads import DirectReader, Pacer, read_folder
from log_exporter.aws.sessions import AccountClients
from log_exporter.aws.state_store import StateStore
from log_exporter.aws.tasks import AnswerLost, ExportTasks, SlotBusy, TaskStatus, Throttled
from log_exporter.core.config import GroupSelector
from log_exporter.core.direct import (
    FILTER_QUOTA,
    MARKER,
    READ_WINDOW_MAX_BYTES,
    WindowTooLarge,
    marker_body,
    render,
    window_bytes,
)
from log_exporter.core.labels import duration, window_label
from log_exporter.core.plan import (
    NOT_READ,
    ExportItem,
    GroupInfo,
    LanePlan,
    PlanRange,
    Skip,
    plan_group,
    plan_lane,
)
from log_exporter.core.polling import (
    Backoff,
    PollSchedule,
    RunDurations,
    TaskDurations,
    task_seconds,
)
from log_exporter.core.state import Intent, LaneState, period_switch_message
from log_exporter.core.windows import Intervals, Period, destination_prefix, task_name
from log_exporter.errors import (
    AWSError,
    BucketError,
    ConfigError,
    LaneBusyError,
    LogExporterError,
    ResourceNotFoundError,
    StateConflictError,
    StuckError,
)
from log_exporter.lane.runner import owner_gone
from log_exporter.progress import Reporter

T = TypeVar("T")
READ_BATCH = 16  # windows read (at once) before their intents are recorded, in one write
READ_WORKERS = 8  # a lane's threads for direct reads and their objects' PUTs
GATHER_STEP = 0.5  # seconds between a waiting lane's checks of its deadline and stop
MAX_THROTTLED = 20  # tries of one call in a row; with backoff capped at 20 s, about 5 minutes
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaneSettings:
    bucket: str
    prefix: str
    period: Period = "day"
    max_attempts: int = 3  # tries of one window within a run
    lease_seconds: float = 120.0
    stuck_pending_seconds: float = 3600.0  # a task PENDING this long is cancelled and retried
    stuck_seconds: float = 6 * 3600.0  # a wait this long (task in flight, busy slot) is stuck
    deadline_margin_seconds: float = 0.0  # stop creating tasks this long before the deadline
    probe_empty: bool = True
    wait_for_lease: bool = True
    guard_lost_state: bool = True  # False when the run saw nothing at all under the prefix
    fresh_archive: bool = False  # the run saw nothing under the prefix: no state to read
    strategy: str = "export"  # destination.strategy: export, auto or read
    read_rate: float = FILTER_QUOTA / 2  # FilterLogEvents a second (destination.read_share)
    read_max_bytes: int = 1 << 20  # `auto`: a window estimated this small is read directly
    read_max_pages: int = 5  # `auto`: a read that needs more pages is exported instead
    # a read's largest window, `auto` and `read` (see READ_WINDOW_MAX_BYTES): above, exported
    read_window_max_bytes: int = READ_WINDOW_MAX_BYTES


@dataclass(frozen=True, slots=True)
class ReadFolder:
    """A window read directly, rendered: its folder's id, objects (key, gzip body) and marker."""

    item: ExportItem
    folder_id: str
    objects: list[tuple[str, bytes]]
    marker: bytes


@dataclass
class LaneResult:
    account: str
    account_id: str
    region: str
    archived: list[ExportItem] = field(default_factory=list)
    empty: list[ExportItem] = field(default_factory=list)
    failed: list[tuple[ExportItem, str]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    error: str | None = None  # the lane stopped early for this reason
    remaining: int = 0  # windows left for a later run (deadline reached)
    busy: bool = False  # another runner holds (or took over) the lane: not a failure, try later
    groups: int = 0  # log groups the selector matched
    tasks_created: int = 0
    read: int = 0  # windows archived by reading their events directly
    read_requests: int = 0  # FilterLogEvents of those reads
    read_throttled: int = 0  # of them, answered ThrottlingException (and asked again)
    retries: int = 0
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.account}/{self.region}"

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed


class LaneStopped(Exception):
    """Internal: the deadline is near; leave the rest for the next invocation."""


class LeaseLapsed(Exception):
    """Internal: a direct read's PUT found the lease may have lapsed (no state write of ours for
    longer than the lease less the clock margin): the folder's writes stop; the lane's next
    write tells whether another runner took over."""


class LeaseRaceLost(Exception):
    """Internal: the write that was to take the lease found that another runner wrote the
    lane's state since it was read; nothing was created yet, so the lane starts over."""


class Lane:
    def __init__(
        self,
        *,
        account: str,
        clients: AccountClients,
        store: StateStore,
        archive: ArchiveBucket,
        selector: GroupSelector,
        rng: PlanRange,
        settings: LaneSettings,
        owner: str,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        run_durations: RunDurations | None = None,  # what the run's other lanes have seen
        # sleeps, or less if the run learns its first task duration meanwhile
        nap: Callable[[float], None] | None = None,
        stopped: Callable[[], bool] = lambda: False,  # the run is stopping (Ctrl-C)
        clock_check: Callable[[], None] = lambda: None,  # raises if our clock is off AWS's
    ) -> None:
        self.account = account
        self.account_id = clients.account_id
        self.region = clients.region
        self.clients = clients
        self.tasks = ExportTasks(clients.logs, clients.logs_create)
        self.groups = LogGroups(clients.logs)
        self.store = store
        self.archive = archive
        self.selector = selector
        self.rng = rng
        self.settings = settings
        self.owner = owner
        self.reporter = reporter or Reporter()
        self.clock = clock
        self.sleep = sleep
        self.nap = nap or sleep
        self.stopped = stopped
        self.clock_check = clock_check
        self.name = f"{account}/{self.region}"
        self.result = LaneResult(account, self.account_id, self.region)
        self.durations = TaskDurations(run_durations)
        self.state = LaneState(self.account_id, self.region)
        self._deadline: float | None = None
        self._last_save = 0.0
        self._dirty = False
        self._attempts: Counter[ExportItem] = Counter()
        self._queue: deque[ExportItem] = deque()
        self._ahead: Intent | None = None  # the next window's intent, saved before its turn
        # The lease is taken by the lane's first write, with its first intent, when no earlier
        # runner left work in flight; until then it is only in memory (see `_acquire`).
        self._lease_pending = False
        self._fresh = settings.fresh_archive  # the first read of the state may be skipped
        self._created: dict[str, int] = {}  # group -> creation time, from the group list
        self._infos: dict[str, GroupInfo] = {}  # groups whose streams were read in this run
        self._keep: dict[str, set[ExportItem]] = {}  # their windows the full plan exports
        self._planned: dict[str, list[ExportItem]] = {}  # the first plan's windows, by group
        # `_create` saw an answer lost: AWS may hold a task of the window (see `_export`)
        self._answer_lost = False
        # windows to read directly (direct.py), done while the export slot runs the others
        self._reads: deque[ExportItem] = deque()
        self._gone: set[str] = set()
        # set when the lane stops (Ctrl-C, SIGTERM, the deadline, a lapsed lease): the reads and
        # writes in the worker threads stop at their next page, backoff, pacer sleep or PUT
        self._halt = threading.Event()
        self.pacer = Pacer(settings.read_rate, clock=clock, sleep=self._worker_sleep)
        self.reader = DirectReader(clients.logs, self.pacer, self._call_in_worker)
        self._pool: ThreadPoolExecutor | None = None  # made for the first direct read

    # --- public ----------------------------------------------------------------------------
    def run(self, deadline: float | None = None) -> LaneResult:
        """Archive the lane's windows; stop creating tasks near `deadline` (a clock() time)."""
        started = self.clock()
        self._deadline = deadline
        try:
            while True:
                try:
                    self._work()
                    break
                except LeaseRaceLost:
                    self._start_over()
        except LaneStopped:
            self._drop_ahead()
            self.result.remaining = self._left() + len(self.state.intents)
        except StateConflictError:
            self.result.error = "another runner took over this lane; it will finish the work"
            self.result.busy = True
        except LaneBusyError as exc:
            self.result.error = str(exc)
            self.result.busy = True
        except LogExporterError as exc:
            self.result.error = str(exc)
        except Exception as exc:  # a bug or an unmapped SDK error: fail this lane, not the run
            log.debug("lane %s crashed", self.name, exc_info=True)
            self.result.error = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            self._halt.set()  # on any exit (KeyboardInterrupt too): the workers stop at once
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            self._drop_ahead()
            self._release()
            self.result.read_requests = self.reader.requests
            self.result.read_throttled = self.reader.throttled
            self.result.retries += self.reader.throttled  # asked again by `_call_in_worker`
            self.result.seconds = self.clock() - started
            self.result.retries += self.clients.retries.count  # botocore's, on this lane's clients
            self.reporter.lane_finished(self.result)
        return self.result

    def _work(self) -> None:
        self._acquire()
        self._check_period()  # before resuming: intents are found under the layout's folders
        self._resume()
        plan = self._plan_run()
        self.result.skipped = plan.skips
        self.reporter.lane_planned(self.name, plan)
        self._queue = deque(plan.items)
        self._export_all(self._queue)

    def _start_over(self) -> None:
        """After a lost race for the lease (see LeaseRaceLost): forget this attempt."""
        self.reporter.notice(self.name, "another runner wrote this lane's state; starting over")
        self.reporter.items_skipped(self.name, list(self._queue))  # planned again from scratch
        self.result = LaneResult(
            self.account, self.account_id, self.region, retries=self.result.retries
        )
        self._queue.clear()
        self._reads.clear()
        self._ahead = None
        self._attempts.clear()
        self._infos.clear()
        self._keep.clear()
        self._dirty = False
        self._lease_pending = False

    def plan(self) -> LanePlan:
        """What this lane would export now, given its state (read-only: no lease needed)."""
        return self._plan_of(self._call(lambda: self.groups.info(self.selector)))

    def _plan_of(self, infos: list[GroupInfo]) -> LanePlan:
        self.result.groups = len(infos)
        self._check_period()
        known = dict(self.state.created)
        for group in self.state.observe_groups({i.name: i.created_ms for i in infos}):
            self.reporter.notice(self.name, f"log group {group} was created again; archived anew")
        self._dirty = self._dirty or self.state.created != known
        busy = {(i.group, i.window) for i in self.state.intents}
        dirty = self.state.uncleaned()  # partial output to delete before its window is exported
        again = [i.name for i in infos if self.state.incarnation(i.name) is not None]
        plan = plan_lane(infos, self.state.covered, self.rng, again)
        plan.items = [
            i
            for i in plan.items
            if (i.group, i.window) not in busy
            and not any(
                f.group == i.group
                and f.window.start <= i.window.end
                and i.window.start <= f.window.end
                for f in dirty
            )
        ]
        return plan

    def _plan_run(self) -> LanePlan:
        """The run's plan, from the group list alone: a group's streams (when it was last
        written, and which events exist) are read when its first window comes up, so the first
        task starts after one such read instead of one per group. Until then a group counts as
        written until now; `_ready` then applies the full plan of `plan_group` to its windows,
        so the run does exactly what `plan` shows."""
        groups: list[tuple[str, int]] = self._call(lambda: self.groups.matching(self.selector))
        self._created = dict(groups)
        plan = self._plan_of([GroupInfo(name, created, NOT_READ) for name, created in groups])
        self._planned = {}
        for i in plan.items:
            self._planned.setdefault(i.group, []).append(i)
        return plan

    def _ready(self, item: ExportItem, gone: set[str]) -> bool:
        """Whether `item` is to be exported. The first time its group comes up, the group's
        streams are read and it is planned in full: its windows that the full plan skips
        (after its last write, or all when it has no stream) are dropped as they come up, and
        its skips replace those of the plan made without them."""
        group = item.group
        keep = self._keep.get(group)
        if keep is None:
            created = self._created.get(group, 0)
            try:
                info = self._call(lambda: self.groups.describe(group, created))
            except ResourceNotFoundError:
                gone.add(group)
                self._record_failure(item, f"log group {group} no longer exists")
                self.reporter.notice(self.name, f"log group {group} was deleted; skipping it")
                return False
            self._infos[group] = info
            again = self.state.incarnation(group) is not None
            full = plan_group(
                info, self.state.covered.get(group, Intervals()), self.rng, recreated=again
            )
            keep = self._keep[group] = set(full.items)
            dropped = [i for i in self._planned.get(group, []) if i not in keep]
            if dropped:
                self.reporter.items_skipped(self.name, dropped)
            self.result.skipped = [s for s in self.result.skipped if s.group != group]
            self.result.skipped.extend(full.skips)
        return item in keep

    def _next_ready(self, queue: deque[ExportItem], gone: set[str]) -> ExportItem | None:
        """The head of `queue` once it is known to be exported (see `_ready`), the others
        dropped; None when the queue runs out."""
        while queue:
            item = queue[0]
            if item.group not in gone and self._ready(item, gone):
                return item
            queue.popleft()
        return None

    def _left(self) -> int:
        """Windows still queued: exactly for the groups whose streams were read; a group not
        read yet counts as one (it may have nothing to do, or years)."""
        queued = [*self._queue, *self._reads]
        unread = {i.group for i in queued if i.group not in self._keep}
        return len(unread) + sum(
            1 for i in queued if i.group in self._keep and i in self._keep[i.group]
        )

    def load_state(self) -> LaneState:
        self.state = self.store.load(self.account_id, self.region, self.account)
        return self.state

    # --- lease and state ---------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _acquire(self) -> None:
        backoff = Backoff(base=0.5, cap=5.0)
        announced = False
        self._lease_pending = False
        while True:
            if self._fresh:  # the archive held nothing when the run started: no state yet
                self._fresh = False
                state = LaneState(self.account_id, self.region)
            else:
                state = self.store.load(self.account_id, self.region, self.account)
            if state.etag is None and self.settings.guard_lost_state:
                self._guard_lost_state()  # before our first write creates the state object
            self.clock_check()  # the lease's expiry is read with our clock
            now = self._now_ms()
            if state.leased_by_other(self.owner, now) and owner_gone(state.lease_owner):
                self.reporter.notice(
                    self.name, f"runner {state.lease_owner} no longer exists; taking over"
                )
            elif state.leased_by_other(self.owner, now):
                if not self.settings.wait_for_lease:
                    raise LaneBusyError(
                        f"{self.name}: another runner ({state.lease_owner}) holds it"
                    )
                if not announced:
                    self.reporter.notice(self.name, f"waiting for runner {state.lease_owner}")
                    announced = True
                self._check_deadline()
                wait = min(backoff.next(), (state.lease_expires_ms - now) / 1000 + 0.05)
                self.sleep(max(wait, 0.05))
                continue
            state.lease_owner = self.owner
            state.lease_expires_ms = now + int(self.settings.lease_seconds * 1000)
            self.durations.remember(state.durations)
            if not state.intents:
                # Nothing in flight to adopt or clean up: the lease is written with the first
                # intent (a request less before the first task), conditionally on what was
                # read, so a runner that wrote meanwhile makes us start over (LeaseRaceLost).
                self.state = state
                self._lease_pending = True
                self._last_save = self.clock()
                return
            try:
                self.store.save(state)
            except StateConflictError:
                continue
            self.state = state
            self._last_save = self.clock()
            return

    def _guard_lost_state(self) -> None:
        """Refuse to start from nothing over an archive that already holds this account's days.

        With no state object for any region of the account but exports under its folder, the
        state was lost (or the archive copied in by hand): a run would export those days again.
        `sync` rebuilds the state from the objects. Costs two LISTs, for a lane's first run only
        (and again when it starts over after losing the race for its first write).
        """
        folder = "/".join(p for p in (self.settings.prefix, self.account_id) if p) + "/"
        if self.archive.has_objects(self.store.account_folder(self.account_id)):
            return  # another region of the account has a state: the folder is shared with it
        if self.archive.has_objects(folder):
            raise LogExporterError(
                f"s3://{self.settings.bucket}/{folder} already holds exports, but there is no "
                f"state for account {self.account_id}: run `log-exporter sync --config FILE "
                f"--account {self.account}` first (a run would export those days again)"
            )

    def _save(self) -> None:
        self.state.durations = self.durations.by_group()
        self.state.lease_owner = self.owner
        self.state.lease_expires_ms = self._now_ms() + int(self.settings.lease_seconds * 1000)
        try:
            self.store.save(self.state)
        except StateConflictError:
            if self._lease_pending:  # our first write: we never held the lane
                raise LeaseRaceLost() from None
            raise
        self._lease_pending = False
        self._last_save = self.clock()
        self._dirty = False

    def _heartbeat(self) -> None:
        """Renew the lease (and persist pending changes) before a third of it has run out.
        A lease not written yet (see `_acquire`) has nothing to renew: a runner that takes the
        lane meanwhile makes our first write fail, and the lane start over."""
        if self._lease_pending:
            return
        if self.clock() - self._last_save > self.settings.lease_seconds / 3:
            self.clock_check()
            self._save()  # a failure (StateConflictError) ends the lane: it creates no more

    def _pause(self, seconds: float, sleep: Callable[[float], None] | None = None) -> None:
        """Every wait of a holding lane: in steps of a third of the lease, each after renewing
        it (when a third of it has passed), so a wait of any length never lets the lease lapse.
        `sleep` (`self.sleep` by default) may return early: the rest is then slept in steps."""
        step = self.settings.lease_seconds / 3
        sleep = sleep or self.sleep
        while True:
            self._heartbeat()
            if seconds <= step:
                sleep(seconds)
                return
            sleep(step)
            seconds -= step

    def _check_stuck(self, since: float, what: str, then: str = "") -> None:
        """Give up a wait that began at `since` (a clock() time) once it is longer than the
        limit (`destination.stuck_after`): the lane stops with a StuckError saying so."""
        waited = self.clock() - since
        if waited > self.settings.stuck_seconds:
            message = (
                f"{what} for {duration(waited)}, longer than stuck_after "
                f"({duration(self.settings.stuck_seconds)}){then}"
            )
            self.reporter.notice(self.name, f"stuck: {message}")
            raise StuckError(f"{self.name}: {message}")

    def _release(self) -> None:
        if self.state.lease_owner != self.owner:
            return
        pending, self._lease_pending = self._lease_pending, False
        self.state.durations = self.durations.by_group()
        self.state.lease_owner = None
        self.state.lease_expires_ms = 0
        if pending and not self._dirty:
            return  # the lease was never written, and nothing changed: no request at all
        try:
            self._release_write()
        except LogExporterError as exc:
            if pending and isinstance(exc, StateConflictError):
                return  # another runner has the lane since we read it; it learns the same
            if self.result.error is None:
                self.result.error = f"could not save the lane's state: {exc}"

    def _release_write(self) -> None:
        """Write the state that lets go of the lease. A write of ours cut short (a stop signal
        raised on the main thread during a request) may have gone through with an ETag we never
        read: if the object still holds our lease, unexpired, nobody else wrote it since, and
        this write goes over it."""
        try:
            self.store.save(self.state)
        except StateConflictError:
            stored = self.store.load(self.account_id, self.region, self.account)
            if stored.lease_owner != self.owner or stored.lease_expires_ms <= self._now_ms():
                raise
            self.state.etag = stored.etag
            self.store.save(self.state)

    def _check_period(self) -> None:
        has_archive = any(self.state.covered.values())
        if self.state.period is None or not has_archive:
            self.state.period = self.settings.period
        elif self.state.period != self.settings.period:
            where = f"{self.name} in s3://{self.settings.bucket}/{self.settings.prefix}"
            raise ConfigError(
                period_switch_message(where.rstrip("/"), self.state.period, self.settings.period)
            )

    def _check_deadline(self) -> None:
        if self.stopped() or (
            self._deadline is not None
            and self.clock() >= self._deadline - self.settings.deadline_margin_seconds
        ):
            self._halt.set()  # the direct reads in flight stop too; their windows are left
            raise LaneStopped()

    # --- one window ----------------------------------------------------------------------------
    def _dest(self, item: ExportItem) -> str:
        return destination_prefix(
            self.settings.prefix, self.account_id, item.group, item.window, self.settings.period
        )

    def _name(self, item: ExportItem) -> str:
        created = self.state.incarnation(item.group)  # a group created again: its own names
        archive = f"{self.settings.bucket}/{self.settings.prefix}"
        return task_name(
            self.account_id,
            self.region,
            item.group,
            item.window,
            created_ms=created,
            archive=archive,
        )

    def _ours(self, task: TaskStatus, item: ExportItem) -> bool:
        """Whether `task` writes `item`'s window into this archive: its bucket and destination
        prefix are this window's. Another archive of the same account (another prefix or
        bucket) may run a task of the same window, and adopting it would record a day this
        archive does not hold. When an answer lacks both fields, what led to the task decides:
        each way `_find` and `_create` reach one is this archive's alone (a name with this
        archive's digest in it, see `task_name`; a name or an id from this archive's own state;
        a folder in this archive), so the task is taken as ours."""
        if not task.destination and not task.destination_prefix:
            return True
        prefix = task.destination_prefix.strip("/")
        return task.destination == self.settings.bucket and prefix == self._dest(item).strip("/")

    def reads_directly(self, item: ExportItem) -> bool:
        """Whether `item` is to be archived by reading its events (destination.strategy):
        in `auto`, when its group's stored bytes, spread evenly over the time they cover (the
        group's age, at most its retention), come to at most `read_max_bytes` for the window.
        The listing of the groups tells their stored bytes at no cost; a window that turns out
        larger than `read_max_pages` pages is exported after all (see `_read_next`)."""
        if self.settings.strategy != "auto":
            return self.settings.strategy == "read"
        stored = self.groups.stored_bytes.get(item.group)
        if stored is None:
            return False
        created = self._created.get(item.group) or self.state.created.get(item.group) or 0
        retention = self.groups.retention_days.get(item.group)
        estimate = window_bytes(stored, created, retention, item.window, self._now_ms())
        return estimate <= self.settings.read_max_bytes

    def _export_all(self, queue: deque[ExportItem]) -> None:
        gone = self._gone
        reads = [i for i in queue if self.reads_directly(i)]
        if reads:
            self._reads.extend(reads)
            chosen = set(reads)
            kept = [i for i in queue if i not in chosen]
            queue.clear()
            queue.extend(kept)
        while queue or self._reads:
            self._check_deadline()
            if not queue:
                self._read_next(gone)
                continue
            item = self._next_ready(queue, gone)
            if item is None:
                continue
            ahead = self._ahead
            probed = ahead is not None and (ahead.group, ahead.window) == (item.group, item.window)
            if not probed and self.settings.probe_empty and not self._has_events(item, gone):
                queue.popleft()
                self._skip_empty(item, gone)
                continue
            queue.popleft()
            try:
                status = self._export(item, next_items=queue, gone=gone)
            except ResourceNotFoundError as exc:
                gone.add(item.group)
                self.state.drop_intent(item.group, item.window)
                self._record_failure(item, f"log group {item.group} no longer exists ({exc})")
                self.reporter.notice(self.name, f"log group {item.group} was deleted; skipping it")
                continue
            self._settle(item, status, queue)
        # what is left unsaved is saved when the lease is released, in the same write

    # --- direct reads ----------------------------------------------------------------------------
    def _read_during(self, seconds: float) -> float:
        """Read windows directly while the export slot's task runs, for up to about `seconds`;
        the time left of them."""
        end = self.clock() + seconds
        while self._reads and self.clock() < end:
            self._check_deadline()
            self._read_next(self._gone, until=end)
        return max(0.0, end - self.clock())

    def _read_next(self, gone: set[str], until: float | None = None) -> None:
        """Archive the next windows of `_reads` (up to READ_BATCH; with `until`, as many as
        the pace reads by then, at least one) by reading them: read their events, several at
        once at the pacer's rate (nothing is written yet), then record their intents, each with
        its folder's id, in one write, then write each folder (its marker first, then its
        objects; the folders at once), and count the windows archived (saved with the next
        write). Each window is rendered (its objects' gzip bodies) by its worker as soon as it
        is read, so a batch holds no events. A window with no event is archived empty; one
        larger than `read_max_pages` pages (`auto`) or `read_window_max_bytes`, or whose read
        AWS refuses (denied, throttled MAX_THROTTLED times), goes to the export queue."""
        most = READ_BATCH
        if until is not None:
            most = max(1, min(most, int((until - self.clock()) * self.settings.read_rate)))
        items: list[ExportItem] = []
        while len(items) < most:
            item = self._next_ready(self._reads, gone)
            if item is None:
                break
            items.append(self._reads.popleft())
        pool = self._workers()
        reads = [pool.submit(self._read_one, i) for i in items]
        self._gather(reads)
        batch: list[ReadFolder] = []
        for item, read in zip(items, reads, strict=True):
            exc = read.exception()
            if isinstance(exc, WindowTooLarge):
                self._queue.append(item)
            elif isinstance(exc, ResourceNotFoundError):
                gone.add(item.group)
                self._record_failure(item, f"log group {item.group} no longer exists")
                self.reporter.notice(self.name, f"log group {item.group} was deleted; skipping it")
            elif isinstance(exc, AWSError):
                # one group's read refused (its policy, a KMS key, a saturated quota): export
                # it (CreateExportTask needs no FilterLogEvents), the batch goes on
                self._queue.append(item)
                self.reporter.notice(
                    self.name,
                    f"{item.group} {window_label(item.window)}: not read ({exc}); exporting it instead",
                )
            elif exc is not None:
                raise exc
            elif folder := read.result():
                batch.append(folder)
            else:
                self._skip_empty(item, gone)
        if batch:
            self._write_reads(batch)

    def _read_one(self, item: ExportItem) -> ReadFolder | None:
        """In a worker: read `item`'s window and render its folder (a new id); None when it
        holds no event. The events are dropped once rendered."""
        pages = None if self.settings.strategy == "read" else self.settings.read_max_pages
        events = self.reader.read(
            item.group, item.window, pages, self.settings.read_window_max_bytes
        )
        if not events:
            return None
        folder_id = str(uuid.uuid4())
        folder = f"{self._dest(item)}/{folder_id}"
        objects = render(folder, events)
        marker = marker_body(item.group, item.window, [k for k, _ in objects], folder, len(events))
        return ReadFolder(item, folder_id, objects, marker)

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READ_WORKERS, thread_name_prefix=f"read-{self.name}")
        return self._pool

    def _gather(self, futures: list[Future[T]]) -> None:
        """Wait until `futures` are done, renewing the lease meanwhile; the deadline or a stop
        halts them (LaneStopped)."""
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=min(GATHER_STEP, self.settings.lease_seconds / 3))
            self._heartbeat()
            if pending:
                self._check_deadline()

    def _halted(self) -> None:
        """In a worker: LaneStopped once the lane stops."""
        if self._halt.is_set():
            raise LaneStopped()

    def _worker_sleep(self, seconds: float) -> None:
        """A worker's sleep (pacer, throttling backoff): in short steps, each after checking
        that the lane has not stopped."""
        while True:
            self._halted()
            if seconds <= 0:
                return
            step = min(seconds, GATHER_STEP)
            self.sleep(step)
            seconds -= step

    def _call_in_worker(self, fn: Callable[[], T]) -> T:
        """`_call` for a read's worker thread: backs off while throttled, without touching the
        lane's state (the lane's own thread renews the lease while it waits for the reads);
        stops (LaneStopped) before each call and each backoff once the lane stops."""
        backoff = Backoff(base=0.2, cap=20.0)
        while True:
            self._halted()
            try:
                return fn()
            except Throttled as exc:
                if backoff.attempt >= MAX_THROTTLED:
                    raise AWSError(
                        f"{self.name}: AWS still refuses after {MAX_THROTTLED} tries: {exc}"
                    ) from None
                self._worker_sleep(backoff.next())

    def _write_reads(self, batch: list[ReadFolder]) -> None:
        started = self.clock()
        folders = [(f.item, f.folder_id, f.objects, f.marker) for f in batch]
        for item, folder_id, _, _ in folders:
            self.state.add_intent(
                Intent(item.group, item.window, self._name(item), folder_id, self._now_ms(), True)
            )
        self._save()  # the intents before the first object, with the lease and earlier outcomes
        pool = self._workers()
        writes = []
        for item, folder_id, objects, marker in folders:
            folder = f"{self._dest(item)}/{folder_id}"
            writes.append(pool.submit(self._put_folder, folder, marker, objects))
        self._gather(writes)
        lapsed = any(isinstance(w.exception(), LeaseLapsed) for w in writes)
        if lapsed:
            # the writes stopped: our next write fails if another runner took over (the lane
            # then stops, as for a task); otherwise the lease is ours again and the folders cut
            # short are deleted and read again
            self._save()
            self._halt.clear()
        for (item, folder_id, _, _), write in zip(folders, writes, strict=True):
            exc = write.exception()
            if lapsed and isinstance(exc, LeaseLapsed | LaneStopped):
                exc = BucketError("its writes stopped: the lease may have lapsed meanwhile")
            if isinstance(exc, BucketError):
                self._read_failed(item, folder_id, exc)
                continue
            if exc is not None:
                raise exc
            self.state.mark_done(item.group, item.window, read=True)
            self._dirty = True
            self.result.archived.append(item)
            self.result.read += 1
            self.reporter.item_read(self.name, item, folder_id, self.clock() - started)

    def _put_folder(self, folder: str, marker: bytes, objects: list[tuple[str, bytes]]) -> None:
        """Write a direct read's folder: its marker first (a folder without one would pass for
        a task's), then its objects; each PUT only while the lane runs and its lease holds."""
        self._fence()
        self.archive.put(f"{folder}/{MARKER}", marker, "application/json")
        for key, body in objects:
            self._fence()
            self.archive.put(key, body)

    def _fence(self) -> None:
        """Before a worker's PUT: LaneStopped once the lane stops; LeaseLapsed (and the lane's
        other workers halted) once our last state write is older than the lease less the clock
        margin: another runner may have taken the lane over and be deleting this folder as a
        cut-short one. S3 has no fencing token: this bounds a stalled runner's writes to the
        one PUT under way when it wakes up."""
        self._halted()
        lease = self.settings.lease_seconds
        # the clock margin, but at most a sixth of a (test's) short lease, renewed every L/3
        if self.clock() - self._last_save >= lease - min(skew_margin(lease), lease / 6):
            self._halt.set()
            raise LeaseLapsed()

    def _read_failed(self, item: ExportItem, folder_id: str, exc: BucketError) -> None:
        """A direct read's object could not be written: delete its folder, then read the window
        again (or, after `max_attempts`, record it failed); a folder that cannot be deleted is
        recorded for the next run's clean-up, and its window is not read until then."""
        self._attempts[item] += 1
        reason = f"direct read {folder_id}: {exc}"
        try:
            self.archive.delete_task_output(self._dest(item), folder_id)
        except BucketError as again:
            self._record_failure(item, f"{reason}; {again}", cleanup=folder_id)
            return
        self.state.drop_intent(item.group, item.window)
        self._dirty = True
        if self._attempts[item] < self.settings.max_attempts:
            self.reporter.item_retry(self.name, item, reason)
            self._reads.append(item)
        else:
            self._record_failure(item, reason)

    def _resume_read(self, intent: Intent, item: ExportItem) -> None:
        """An earlier runner's direct read: complete (every object its marker lists is there)
        counts as archived; otherwise its folder is deleted and the window planned again."""
        dest = self._dest(item)
        folder_id = intent.task_id or ""
        _, complete = read_folder(self.archive, f"{dest}/{folder_id}")
        if complete:
            self.state.mark_done(intent.group, intent.window, read=True)
            self.result.archived.append(item)
        else:
            try:
                self.archive.delete_task_output(dest, folder_id)
                self.state.drop_intent(intent.group, intent.window)
            except BucketError as exc:
                error = f"direct read {folder_id} cut short; {exc}"
                self._record_failure(item, error, cleanup=folder_id)
        self._dirty = True

    def _skip_empty(self, item: ExportItem, gone: set[str]) -> None:
        """`item`'s window holds no event: archived without a task."""
        if item.group not in gone:
            self.state.mark_done(item.group, item.window, empty=True)
            self._dirty = True
            self.result.empty.append(item)
            self.reporter.item_empty(self.name, item)

    def _has_events(self, item: ExportItem, gone: set[str]) -> bool:
        info = self._infos.get(item.group)
        if info is not None and info.holds_event(item.window, self._now_ms()):
            return True  # its stream's first or last event is in it: no probe needed
        try:
            return self.groups.has_events(item.group, item.window)
        except ResourceNotFoundError:
            gone.add(item.group)
            self._record_failure(item, f"log group {item.group} no longer exists")
            self.reporter.notice(self.name, f"log group {item.group} was deleted; skipping it")
            return False

    def _record_failure(self, item: ExportItem, error: str, cleanup: str | None = None) -> None:
        self.state.mark_failed(item.group, item.window, error, self._now_ms(), cleanup=cleanup)
        self._dirty = True
        self.result.failed.append((item, error))

    def _export(
        self, item: ExportItem, next_items: deque[ExportItem], gone: set[str]
    ) -> TaskStatus:
        """Create the task for `item` and wait for it to end.

        Its intent is saved before the task is created: usually it already was, while the
        previous task ran. While this task runs, the next window is probed and its intent saved,
        with this task's id and the previous window's outcome, in one write; so the slot is idle
        only from a task's end to the next CreateExportTask."""
        intent = self._ahead
        if intent is None or (intent.group, intent.window) != (item.group, item.window):
            self._drop_ahead()
            intent = Intent(item.group, item.window, self._name(item), None, self._now_ms())
            self.state.add_intent(intent)
            self._save()  # the intent, the previous window's outcome and the lease in one write
        elif self.clock() - self._last_save >= self.settings.lease_seconds / 2:
            # The intent was saved a while ago: our lease may have run out meanwhile (a stalled
            # process) and another runner exported this window; a write proves we still hold it.
            self._save()
        self._ahead = None
        try:
            task = self._create(item, intent.name)
        except AWSError:
            # Refused: no task exists, so the state must not claim one may. After a lost answer
            # AWS may hold one all the same: its intent (a name, no id) stays, and the next
            # run's `_resume` finds the task by its name or folder, or plans the window again.
            if not self._answer_lost:
                self.state.drop_intent(item.group, item.window)
                self._dirty = True
            raise
        created = self.clock()  # after any wait for a busy slot: the task's age starts now
        task_id = task.task_id if isinstance(task, TaskStatus) else task
        intent.task_id = task_id
        self.reporter.task_created(self.name, item, task_id)
        if isinstance(task, TaskStatus):  # found ended after its answer was lost: `_settle` it
            self.reporter.task_finished(self.name, item, task_id, task.code, 0.0)
            return task
        return self._wait(item, task_id, created, then=lambda: self._prepare_next(next_items, gone))

    def _prepare_next(self, queue: deque[ExportItem], gone: set[str]) -> None:
        """While a task runs: probe the next windows until one holds events (the empty ones are
        archived as such), record that one's intent, and save it all in one write. With no next
        window, what changed is saved with the lease's renewal or release instead (a run killed
        meanwhile finds the running task by its name)."""
        while queue:
            item = self._next_ready(queue, gone)
            if item is None:
                break
            if self.settings.probe_empty and not self._has_events(item, gone):
                queue.popleft()
                self._skip_empty(item, gone)
                continue
            self._ahead = Intent(item.group, item.window, self._name(item), None, self._now_ms())
            self.state.add_intent(self._ahead)
            self._save()
            break

    def _drop_ahead(self) -> None:
        """Forget the next window's saved intent when its task will not be asked for now."""
        if self._ahead is not None:
            self.state.drop_intent(self._ahead.group, self._ahead.window)
            self._dirty = True
            self._ahead = None

    def _create(self, item: ExportItem, name: str) -> str | TaskStatus:
        """Create `item`'s task: its id (or that of an earlier try found still active), or the
        final status of an earlier try found ended (see `_lost_answer`).

        Once an answer was lost, AWS may hold a task of this window that it does not list yet:
        it is looked for before every later try, and once more before giving up (when
        `self._answer_lost` tells `_export` to keep the window's intent)."""
        self._answer_lost = False
        try:
            return self._create_tries(item, name)
        except AWSError:
            if not self._answer_lost:
                raise
            found = self._lost_answer(item, name)  # raises too: the intent stays all the same
            if found is None:
                raise
            self.result.tasks_created += 1
            return found if found.ended else found.task_id

    def _create_tries(self, item: ExportItem, name: str) -> str | TaskStatus:
        """`_create`'s tries, until one creates the task or finds an earlier try's."""
        throttle = Backoff(base=0.2, cap=20.0)
        busy = Backoff(base=0.5, cap=30.0)
        announced = False
        busy_since: float | None = None  # one stuck timer for every wait of the call
        while True:
            self._check_deadline()
            self._heartbeat()  # a long wait below must not leave us creating without the lease
            if self._answer_lost:
                found = self._lost_answer(item, name)
                if found is not None:
                    self.result.tasks_created += 1
                    return found if found.ended else found.task_id
            try:
                task_id = self.tasks.create(
                    name=name,
                    group=item.group,
                    window=item.window,
                    bucket=self.settings.bucket,
                    dest_prefix=self._dest(item),
                )
                self.result.tasks_created += 1
                return task_id
            except AnswerLost as exc:
                self._answer_lost = True
                self._throttled(throttle, exc)
            except Throttled as exc:
                self._throttled(throttle, exc)
            except SlotBusy:
                active = self._call(self.tasks.active)
                mine = [t for t in active if t.name == name and self._ours(t, item)]
                if mine:  # our own earlier create went through after all: adopt it
                    return mine[0].task_id
                if not announced:
                    holder = active[0].name if active else "an unknown task"
                    self.reporter.notice(self.name, f"export slot busy with {holder}; waiting")
                    announced = True
                busy_since = self.clock() if busy_since is None else busy_since
                if active:  # a chain of foreign tasks is one wait, as long as all of them
                    self._wait_foreign(active[0], busy_since)
                else:
                    self._check_stuck(busy_since, "the export slot is busy with no task in sight")
                    self._pause(busy.next())

    def _lost_answer(self, item: ExportItem, name: str) -> TaskStatus | None:
        """After a CreateExportTask whose answer was lost (AWS may have created the task): the
        task of this window an earlier try created, if any, found as after a kill (by its name
        among the active tasks, then in the window's folder in the archive). The caller waits
        for it if it is still active, records it if it COMPLETED, and `_settle` deletes the
        output of a FAILED or CANCELLED one and tries the window again; none found: create."""
        return self._find(Intent(item.group, item.window, name), item)

    def _call(self, fn: Callable[[], T]) -> T:
        """Call a read-only AWS wrapper, backing off while throttled."""
        backoff = Backoff(base=0.2, cap=20.0)
        while True:
            try:
                return fn()
            except Throttled as exc:
                self._throttled(backoff, exc)

    def _throttled(self, backoff: Backoff, exc: Throttled) -> None:
        """Wait before trying a throttled (or unreachable) call again; give up after
        MAX_THROTTLED tries in a row (several minutes), so an endpoint that is gone for good
        fails the lane instead of holding it forever."""
        if backoff.attempt >= MAX_THROTTLED:
            raise AWSError(f"{self.name}: AWS still refuses after {MAX_THROTTLED} tries: {exc}")
        self.result.retries += 1
        self._pause(backoff.next())

    def _wait_foreign(self, task: TaskStatus, busy_since: float) -> None:
        """Wait, without creating anything, until somebody else's task leaves the slot; stuck
        when the slot has been busy since `busy_since` for too long, whichever tasks held it."""
        schedule = PollSchedule(None, minimum=0.5, maximum=30.0)
        started = self.clock()
        while True:
            self._check_deadline()
            self._check_stuck(
                busy_since, f"the export slot is busy with task {task.task_id} ({task.name})"
            )
            self._pause(schedule.next(self.clock() - started))
            status = self._call(lambda: self.tasks.describe(task.task_id))
            if status is None or not status.active:
                return

    def _wait(
        self,
        item: ExportItem,
        task_id: str,
        created: float,
        then: Callable[[], None] | None = None,
    ) -> TaskStatus:
        """Poll the task until it ends; run `then` once, halfway through the first wait (away
        from the moments when tasks end and the next ones are created, which are what the
        lanes' slots wait on)."""
        expected, error = self.durations.expect(item.group)
        schedule = PollSchedule(expected, error=error)
        missing = 0
        cancelled = False
        while True:
            self._heartbeat()
            elapsed = self.clock() - created
            if expected is None:  # another lane may have seen a task end meanwhile
                expected, error = self.durations.expect(item.group)
                if expected is not None:
                    schedule = PollSchedule(expected, error=error)
            wait = schedule.next(elapsed)
            if expected is None:  # the run's tasks take at least as long as one seen running
                floor = self.durations.running_at_least() * 0.9 - elapsed
                if not self.durations.scouting(created):
                    floor = max(floor, elapsed / 2)  # news of the oldest task's end wakes us
                wait = min(schedule.maximum, max(wait, floor))
            # every sleep renews the lease as `_pause` does: a poll may be further apart than it
            if then is not None:
                until = self.clock() + wait
                self._pause(wait / 2)
                then()
                then = None
                wait = max(0.0, until - self.clock())
            wait = self._read_during(wait)  # the direct reads work while the task runs
            if expected is None:
                self._pause(wait, self.nap)  # polling blind: wake to re-plan if a lane learns more
                if self.durations.expect(item.group)[0] is not None:
                    continue
            else:
                self._pause(wait)
            asked = self.clock()  # an end seen now came before this: not its answer's latency
            status = self._call(lambda tid=task_id: self.tasks.describe(tid))  # type: ignore[misc]
            if status is None:
                # Right after creation a task may not be visible yet; a few misses are normal.
                missing += 1
                if missing < 5:
                    continue
                # Still unknown by its id: look for it by name and by its output before calling
                # it gone, since a retry of a task that does exist would archive its day twice.
                found = self._find(Intent(item.group, item.window, self._name(item)), item)
                if found is None:
                    return TaskStatus(
                        task_id,
                        "",
                        "CANCELLED",
                        "task disappeared",
                        item.group,
                        item.window,
                        "",
                        "",
                        None,
                        None,
                    )
                task_id, missing, status = found.task_id, 0, found
            if status.ended:
                seconds = self.clock() - created
                if status.code == "COMPLETED":  # AWS's times, or the lane's without them
                    took = task_seconds(status.created_ms, status.completed_ms, asked - created)
                    self.durations.observe(item.group, took, expected)
                self.reporter.task_finished(self.name, item, task_id, status.code, seconds)
                return status
            if expected is None:
                self.durations.still_running(self.clock() - created)
            if (
                not cancelled
                and status.code in ("PENDING", "UNKNOWN")  # UNKNOWN: answers without a status
                and self.clock() - created > self.settings.stuck_pending_seconds
            ):
                self.reporter.notice(self.name, f"task {task_id} stuck in PENDING; cancelling it")
                self._call(lambda tid=task_id: self.tasks.cancel(tid))  # type: ignore[misc]
                cancelled = True
            self._check_stuck(
                created,
                f"task {task_id} ({item.group} {window_label(item.window)}) {status.code}",
                "; it stays recorded and the next run takes it up",
            )
            self._check_deadline()

    def _settle(self, item: ExportItem, status: TaskStatus, queue: deque[ExportItem]) -> None:
        """Record a finished task: archived, or cleaned up and queued again, or failed."""
        if status.code == "COMPLETED":
            self.state.mark_done(item.group, item.window)
            self._dirty = True
            self.result.archived.append(item)
            return
        self._attempts[item] += 1
        reason = f"task {status.task_id} {status.code}: {status.message or 'no message'}"
        try:
            removed = self.archive.delete_task_output(self._dest(item), status.task_id)
        except BucketError as exc:  # its partial output stays: not exported again until deleted
            self._record_failure(item, f"{reason}; {exc}", cleanup=status.task_id)
            return
        if removed:
            reason += f" (removed {removed} partial objects)"
        if self._attempts[item] < self.settings.max_attempts:
            self.state.drop_intent(item.group, item.window)
            self._dirty = True
            self.reporter.item_retry(self.name, item, reason)
            if not queue:
                self._pause(Backoff(base=1.0, cap=30.0).next() * self._attempts[item])
            queue.append(item)
        else:
            self._record_failure(item, reason)

    # --- what an earlier runner left -------------------------------------------------------------
    def _clean_up(self) -> None:
        """Delete the partial output of the failed tasks whose deletion failed before; a
        window whose output is still there stays failed and is not exported (see `_plan_of`)."""
        for failure in self.state.uncleaned():
            item = ExportItem(failure.window, failure.group)
            task_id = failure.cleanup or ""
            try:
                self.archive.delete_task_output(self._dest(item), task_id)
            except BucketError as exc:
                self._record_failure(item, f"{failure.error.split('; ')[0]}; {exc}")
                continue
            failure.cleanup = None
            if self.state.coverage(failure.group).covers(failure.window):
                self.state.failures.remove(failure)
            self._dirty = True

    def _resume(self) -> None:
        """Delete the output an earlier failed task left, then adopt, record or clean up every
        task an earlier runner recorded an intent for."""
        self._clean_up()
        for intent in list(self.state.intents):
            item = ExportItem(intent.window, intent.group)
            if intent.direct:
                self._resume_read(intent, item)
                continue
            status = self._find(intent, item)
            if status is None:
                # Never created, or finished with no output: the window is simply planned again.
                self.state.drop_intent(intent.group, intent.window)
                self._dirty = True
                continue
            if not status.ended:  # running, or an answer without a status: wait for its end
                self.reporter.task_created(self.name, item, status.task_id)
                intent.task_id = status.task_id
                created = (status.created_ms or self._now_ms()) / 1000
                status = self._wait(item, status.task_id, created)
            if status.code == "COMPLETED":
                self.state.mark_done(intent.group, intent.window)
                self.result.archived.append(item)
            else:
                try:
                    self.archive.delete_task_output(self._dest(item), status.task_id)
                    self.state.drop_intent(intent.group, intent.window)
                except BucketError as exc:
                    error = f"task {status.task_id} {status.code}; {exc}"
                    self._record_failure(item, error, cleanup=status.task_id)
            self._dirty = True
        if self._dirty:
            self._save()

    def _find(self, intent: Intent, item: ExportItem) -> TaskStatus | None:
        """The task of `intent`'s window in this archive (see `_ours`): by its recorded id, else
        by its name among the active tasks, else by its name in the window's folder."""
        if intent.task_id:
            status = self._call(lambda: self.tasks.describe(intent.task_id or ""))
            if status is not None and self._ours(status, item):
                return status
        for t in self._call(self.tasks.active):
            if t.name == intent.name and self._ours(t, item):
                return t
        for task_id in self.archive.task_folders(self._dest(item)):
            status = self._call(lambda tid=task_id: self.tasks.describe(tid))  # type: ignore[misc]
            if status is not None and status.name == intent.name and self._ours(status, item):
                return status
        return None
