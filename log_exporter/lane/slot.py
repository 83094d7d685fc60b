"""A lane's one export slot: create a window's task (lost answers, a busy slot, throttling), find
and adopt a task, wait for it, settle it, and resume what an earlier runner left in flight.

An export: its intent is saved, then its task created; once an answer was lost (AWS may have
made the task), the task is looked for (by name among the active tasks, then by its folder)
before every later try. While the task runs the next window's intent is saved ahead (see
backlog.py) and the direct reads work (see direct_reads.py). A COMPLETED task is recorded; a
FAILED or CANCELLED one's partial output is deleted before the window is tried again, so no
event is archived twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.errors import AnswerLost, SlotBusy
from log_exporter.aws.retry import SLOT_BUSY
from log_exporter.aws.tasks import ExportTasks, TaskStatus
from log_exporter.core.labels import window_label
from log_exporter.core.plan import ExportItem
from log_exporter.core.polling import Backoff, PollSchedule, TaskDurations, task_seconds
from log_exporter.core.state import Intent
from log_exporter.errors import AWSError
from log_exporter.lane.backlog import Backlog
from log_exporter.lane.lease import LeaseKeeper
from log_exporter.lane.pacer import Pacer, call_throttled
from log_exporter.lane.record import Record
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.window import WindowState
from log_exporter.progress import Reporter


@dataclass
class _CreateCall:
    """What one `create` learns over its tries: whether an answer was lost (AWS may hold a task
    of the window from then on), and its waits for a busy slot (one stuck timer and one notice
    for all)."""

    task_may_exist: bool = False
    busy_since: float | None = None
    busy_backoff: Backoff = field(default_factory=SLOT_BUSY.backoff)


class Slot:
    """The export slot of one attempt of a lane (see the module's docstring)."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        tasks: ExportTasks,
        archive: ArchiveBucket,
        lease: LeaseKeeper,
        pacer: Pacer,
        record: Record,
        backlog: Backlog,
        durations: TaskDurations,
        reporter: Reporter,
        read_during: Callable[[float], float] = lambda seconds: seconds,
    ) -> None:
        self.name = name
        self.settings = settings
        self.tasks = tasks
        self.archive = archive  # the windows' folders: where a task whose answer was lost is found
        self.lease = lease
        self.pacer = pacer
        self.record = record
        self.backlog = backlog
        self.durations = durations
        self.reporter = reporter
        self.read_during = read_during  # the direct reads, while a task runs

    def export(self, item: ExportItem) -> TaskStatus:
        """Create the task for `item` and wait for it to end.

        Its intent is saved before the task is created: usually it already was, while the
        previous task ran. While this task runs, the next window is probed and its intent saved,
        with this task's id and the previous window's outcome, in one write; so the slot is idle
        only from a task's end to the next CreateExportTask."""
        window = self.record.window(item)
        intent = self.backlog.take_ahead(item)
        if intent is None:
            intent = self.record.intent_for(item)
            self.record.intent(window, intent)
            self.lease.save()  # the intent, the previous window's outcome and the lease at once
        else:  # saved while the previous task ran: a write proves we still hold the lease
            self.lease.ensure_held()
        task = self.create(item, intent.name)  # refused: its intent dropped, or kept (see there)
        created = self.pacer.clock()  # after any wait for a busy slot: the task's age starts now
        task_id = task.task_id if isinstance(task, TaskStatus) else task
        intent.task_id = task_id
        window.move(WindowState.CREATED)
        self.reporter.task_created(self.name, item, task_id)
        if isinstance(task, TaskStatus):  # found ended after its answer was lost: settle it
            self.reporter.task_finished(self.name, item, task_id, task.code, 0.0)
            window.move(WindowState.ENDED)
            return task
        status = self.wait(item, task_id, created, then=self.backlog.prepare_next)
        window.move(WindowState.ENDED)
        return status

    # --- creating ----------------------------------------------------------------------------------
    def create(self, item: ExportItem, name: str) -> str | TaskStatus:
        """Create `item`'s task: its id (or that of an earlier try found still active), or the
        final status of an earlier try found ended (see `_lost_answer`).

        Once an answer was lost, AWS may hold a task of this window that it does not list yet:
        it is looked for before every later try, and once more before giving up. Refused
        (AWSError): no task exists, so the window's intent is dropped (the state must not claim
        one may); but after a lost answer AWS may hold one all the same: its intent (a name, no
        id) stays, and the next run's `resume` finds the task by its name or folder, or plans
        the window again."""
        call = _CreateCall()
        try:
            return call_throttled(
                lambda: self._try_create(item, name, call),
                self.pacer.pause,
                what=self.name,
                on_retry=self.pacer.retried,
            )
        except AWSError:
            if not call.task_may_exist:
                window = self.record.window(item)
                if window.state is WindowState.INTENT:  # as `export` leaves it
                    self.record.drop(window)
                raise
            found = self._lost_answer(item, name)  # raises too: the intent stays all the same
            if found is None:
                raise
            self.record.task_created()
            return found if found.ended else found.task_id

    def _try_create(self, item: ExportItem, name: str, call: _CreateCall) -> str | TaskStatus:
        """One try of `create` (Throttled, AnswerLost: tried again by `call_throttled`), with
        the waits of a busy slot (one for the whole `call`), adopting our own earlier try if it
        turns up among the active tasks."""
        while True:
            self.pacer.check_deadline()
            self.lease.heartbeat()  # a long wait below must not leave us creating without it
            if call.task_may_exist:
                found = self._lost_answer(item, name)
                if found is not None:
                    self.record.task_created()
                    return found if found.ended else found.task_id
            try:
                task_id = self.tasks.create(
                    name=name,
                    group=item.group,
                    window=item.window,
                    bucket=self.settings.bucket,
                    dest_prefix=self.record.dest(item),
                )
                self.record.task_created()
                return task_id
            except AnswerLost:
                call.task_may_exist = True
                raise
            except SlotBusy:
                active = self.pacer.call(self.tasks.active)
                mine = [t for t in active if t.name == name and self.record.ours(t, item)]
                if mine:  # our own earlier create went through after all: adopt it
                    return mine[0].task_id
                if call.busy_since is None:
                    holder = active[0].name if active else "an unknown task"
                    self.reporter.notice(self.name, f"export slot busy with {holder}; waiting")
                    call.busy_since = self.pacer.clock()
                if active:  # a chain of foreign tasks is one wait, as long as all of them
                    self._wait_foreign(active[0], call.busy_since)
                else:
                    self.pacer.check_stuck(
                        call.busy_since, "the export slot is busy with no task in sight"
                    )
                    self.pacer.pause(call.busy_backoff.next())

    def _lost_answer(self, item: ExportItem, name: str) -> TaskStatus | None:
        """After a CreateExportTask whose answer was lost (AWS may have created the task): the
        task of this window an earlier try created, if any, found as after a kill (by its name
        among the active tasks, then in the window's folder in the archive). The caller waits
        for it if it is still active, records it if it COMPLETED, and `settle` deletes the
        output of a FAILED or CANCELLED one and tries the window again; none found: create."""
        return self.find(item, name)

    def _wait_foreign(self, task: TaskStatus, busy_since: float) -> None:
        """Wait, without creating anything, until somebody else's task leaves the slot; stuck
        when the slot has been busy since `busy_since` for too long, whichever tasks held it."""
        schedule = PollSchedule(None, minimum=0.5, maximum=30.0)
        started = self.pacer.clock()
        while True:
            self.pacer.check_deadline()
            self.pacer.check_stuck(
                busy_since, f"the export slot is busy with task {task.task_id} ({task.name})"
            )
            self.pacer.pause(schedule.next(self.pacer.clock() - started))
            status = self.pacer.call(lambda: self.tasks.describe(task.task_id))
            if status is None or not status.active:
                return

    # --- waiting -----------------------------------------------------------------------------------
    def wait(
        self,
        item: ExportItem,
        task_id: str,
        created: float,
        then: Callable[[], None] | None = None,
    ) -> TaskStatus:
        """Poll the task until it ends; run `then` once, halfway through the first wait (away
        from the moments when tasks end and the next ones are created, which are what the
        lanes' slots wait on)."""
        clock, pacer = self.pacer.clock, self.pacer
        expected, error = self.durations.expect(item.group)
        schedule = PollSchedule(expected, error=error)
        missing = 0
        cancelled = False
        while True:
            self.lease.heartbeat()
            elapsed = clock() - created
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
            # every sleep renews the lease (the pacer's pause): a poll may be further apart
            if then is not None:
                until = clock() + wait
                pacer.pause(wait / 2)
                then()
                then = None
                wait = max(0.0, until - clock())
            wait = self.read_during(wait)  # the direct reads work while the task runs
            if expected is None:
                pacer.pause(wait, pacer.nap)  # polling blind: wake to re-plan if a lane learns
                if self.durations.expect(item.group)[0] is not None:
                    continue
            else:
                pacer.pause(wait)
            asked = clock()  # an end seen now came before this: not its answer's latency
            status = pacer.call(lambda tid=task_id: self.tasks.describe(tid))  # type: ignore[misc]
            if status is None:
                # Right after creation a task may not be visible yet; a few misses are normal.
                missing += 1
                if missing < 5:
                    continue
                # Still unknown by its id: look for it by name and by its output before calling
                # it gone, since a retry of a task that does exist would archive its day twice.
                found = self.find(item, self.record.name_of(item))
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
                seconds = clock() - created
                if status.code == "COMPLETED":  # AWS's times, or the lane's without them
                    took = task_seconds(status.created_ms, status.completed_ms, asked - created)
                    self.durations.observe(item.group, took, expected)
                self.reporter.task_finished(self.name, item, task_id, status.code, seconds)
                return status
            if expected is None:
                self.durations.still_running(clock() - created)
            if (
                not cancelled
                and status.code in ("PENDING", "UNKNOWN")  # UNKNOWN: answers without a status
                and clock() - created > self.settings.stuck_pending_seconds
            ):
                self.reporter.notice(self.name, f"task {task_id} stuck in PENDING; cancelling it")
                pacer.call(lambda tid=task_id: self.tasks.cancel(tid))  # type: ignore[misc]
                cancelled = True
            pacer.check_stuck(
                created,
                f"task {task_id} ({item.group} {window_label(item.window)}) {status.code}",
                "; it stays recorded and the next run takes it up",
            )
            pacer.check_deadline()

    # --- settling ----------------------------------------------------------------------------------
    def settle(self, item: ExportItem, status: TaskStatus) -> None:
        """Record a finished task: archived, or cleaned up and queued again, or failed."""
        window = self.record.window(item)
        if status.code == "COMPLETED":
            self.record.archived(window)
            return
        reason = f"task {status.task_id} {status.code}: {status.message or 'no message'}"
        self.record.discard_output(
            window, status.task_id, reason, retry=self.backlog.retry, note_removed=True
        )

    # --- what an earlier runner left ---------------------------------------------------------------
    def resume(self, intent: Intent) -> None:
        """Adopt, record or clean up the task an earlier runner recorded `intent` for."""
        item = ExportItem(intent.window, intent.group)
        window = self.record.window(item, WindowState.INTENT)
        status = self.find(item, intent.name, intent.task_id)
        if status is None:
            # Never created, or finished with no output: the window is simply planned again.
            self.record.drop(window)
            return
        window.move(WindowState.CREATED)
        if not status.ended:  # running, or an answer without a status: wait for its end
            self.reporter.task_created(self.name, item, status.task_id)
            intent.task_id = status.task_id
            created = (status.created_ms or self.pacer.now_ms()) / 1000
            status = self.wait(item, status.task_id, created)
        window.move(WindowState.ENDED)
        if status.code == "COMPLETED":
            self.record.archived(window)
        else:
            self.record.discard_output(
                window, status.task_id, f"task {status.task_id} {status.code}"
            )
        self.record.changed()

    def find(self, item: ExportItem, name: str, task_id: str | None = None) -> TaskStatus | None:
        """The task `name` of `item`'s window in this archive (see `Record.ours`): by its
        recorded `task_id`, else by its name among the active tasks, else by its name in the
        window's folder."""
        call, ours = self.pacer.call, self.record.ours
        if task_id:
            status = call(lambda: self.tasks.describe(task_id))
            if status is not None and ours(status, item):
                return status
        for t in call(self.tasks.active):
            if t.name == name and ours(t, item):
                return t
        for folder_id in self.archive.task_folders(self.record.dest(item)):
            status = call(lambda tid=folder_id: self.tasks.describe(tid))  # type: ignore[misc]
            if status is not None and status.name == name and ours(status, item):
                return status
        return None
