"""What a lane records of its windows: where each goes and is called, and each outcome, written
into the lane's state (to be saved by the lease keeper) and its result, as the window moves."""

from __future__ import annotations

from collections import Counter

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.tasks import TaskStatus
from log_exporter.core.plan import ExportItem
from log_exporter.core.state import Intent, LaneState
from log_exporter.core.windows import destination_prefix, task_name
from log_exporter.errors import BucketError
from log_exporter.lane.lease import LeaseKeeper
from log_exporter.lane.result import LaneResult
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.window import Window, Windows, WindowState
from log_exporter.progress import Reporter


class Record:
    """The outcomes of one attempt of a lane: each changes the state (marked dirty, saved with
    the next write) and the result, and moves its window (see window.py)."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        account_id: str,
        region: str,
        lease: LeaseKeeper,
        archive: ArchiveBucket,
        reporter: Reporter,
        result: LaneResult,
    ) -> None:
        self.name = name
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.lease = lease
        self.archive = archive
        self.reporter = reporter
        self.result = result
        self.windows = Windows()
        self.tries: Counter[ExportItem] = Counter()  # failed tries of each window, this attempt

    @property
    def state(self) -> LaneState:
        return self.lease.state

    def changed(self) -> None:
        self.lease.changed()

    # --- where a window goes -----------------------------------------------------------------------
    def dest(self, item: ExportItem) -> str:
        return destination_prefix(
            self.settings.prefix, self.account_id, item.group, item.window, self.settings.period
        )

    def name_of(self, item: ExportItem) -> str:
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

    def ours(self, task: TaskStatus, item: ExportItem) -> bool:
        """Whether `task` writes `item`'s window into this archive: its bucket and destination
        prefix are this window's. Another archive of the same account (another prefix or
        bucket) may run a task of the same window, and adopting it would record a day this
        archive does not hold. When an answer lacks both fields, what led to the task decides:
        each way the slot reaches one is this archive's alone (a name with this archive's
        digest in it, see `task_name`; a name or an id from this archive's own state; a folder
        in this archive), so the task is taken as ours."""
        if not task.destination and not task.destination_prefix:
            return True
        prefix = task.destination_prefix.strip("/")
        return task.destination == self.settings.bucket and prefix == self.dest(item).strip("/")

    # --- what happened to it ---------------------------------------------------------------------
    def window(self, item: ExportItem) -> Window:
        return self.windows.of(item)

    def intent(self, window: Window, intent: Intent) -> None:
        """Its intent recorded (saved by the caller, before its task or folder exists)."""
        self.state.add_intent(intent)
        window.move(WindowState.INTENT)

    def drop(self, window: Window) -> None:
        """Its intent dropped: no task or folder of it exists; planned (or queued) again."""
        item = window.item
        self.state.drop_intent(item.group, item.window)
        self.changed()
        window.move(WindowState.PLANNED)

    def task_created(self) -> None:
        """An export task of this lane was created (or an earlier try's found and adopted)."""
        self.result.tasks_created += 1

    def archived(self, window: Window, *, read: bool = False) -> None:
        item = window.item
        self.state.mark_done(item.group, item.window, read=read)
        self.changed()
        self.result.archived.append(item)
        window.move(WindowState.RECORDED)

    def empty(self, window: Window, gone: set[str]) -> None:
        """Its window holds no event: archived without a task (unless its group is gone)."""
        item = window.item
        if item.group not in gone:
            self.state.mark_done(item.group, item.window, empty=True)
            self.changed()
            self.result.empty.append(item)
            self.reporter.item_empty(self.name, item)
            window.move(WindowState.EMPTY)

    def failed(self, window: Window, error: str, cleanup: str | None = None) -> None:
        item = window.item
        self.state.mark_failed(
            item.group, item.window, error, self.lease.pacer.now_ms(), cleanup=cleanup
        )
        self.changed()
        self.result.failed.append((item, error))
        window.move(WindowState.FAILED)

    def gone(self, window: Window, gone: set[str], why: str = "") -> None:
        """Its log group was deleted: failed, and the group's other windows skipped."""
        group = window.item.group
        gone.add(group)
        self.failed(window, f"log group {group} no longer exists{why}")
        self.reporter.notice(self.name, f"log group {group} was deleted; skipping it")

    def clean_up(self) -> None:
        """Delete the partial output of the failed tasks whose deletion failed before; a
        window whose output is still there stays failed and is not exported (see backlog)."""
        for failure in self.state.uncleaned():
            item = ExportItem(failure.window, failure.group)
            task_id = failure.cleanup or ""
            try:
                self.archive.delete_task_output(self.dest(item), task_id)
            except BucketError as exc:
                self.failed(self.window(item), f"{failure.error.split('; ')[0]}; {exc}")
                continue
            failure.cleanup = None
            if self.state.coverage(failure.group).covers(failure.window):
                self.state.failures.remove(failure)
            self.changed()
