"""What a lane records of its windows: where each goes and is called, and each outcome, written
into the lane's state (to be saved by the lease keeper) and its result, as the window moves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.tasks import TaskStatus
from log_exporter.core.plan import ExportItem, Skip
from log_exporter.core.state import Intent, LaneState
from log_exporter.core.windows import destination_prefix, task_name
from log_exporter.errors import BucketError
from log_exporter.lane.lease import LeaseKeeper
from log_exporter.lane.pacer import Pacer
from log_exporter.lane.result import LaneResult
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.window import Window, Windows, WindowState
from log_exporter.progress import Reporter


class Record:
    """The outcomes of one attempt of a lane: each changes the state (marked changed, saved with
    the next write) and the result, and moves its window (see window.py). It also keeps the
    attempt's tries of each window and the log groups found deleted."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        account_id: str,
        region: str,
        lease: LeaseKeeper,
        pacer: Pacer,
        archive: ArchiveBucket,
        reporter: Reporter,
        result: LaneResult,
    ) -> None:
        self.name = name
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.lease = lease
        self.pacer = pacer
        self.archive = archive
        self.reporter = reporter
        self.result = result
        self._windows = Windows()
        self._tries: Counter[ExportItem] = Counter()  # failed tries of each window, this attempt
        self._gone: set[str] = set()  # log groups found deleted in this attempt

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

    def intent_for(self, item: ExportItem, *, folder_id: str | None = None) -> Intent:
        """A new intent for `item`'s window: its task's, or (with `folder_id`) a direct read's."""
        direct = folder_id is not None
        return Intent(
            item.group, item.window, self.name_of(item), folder_id, self.pacer.now_ms(), direct
        )

    # --- what happened to it ---------------------------------------------------------------------
    def window(self, item: ExportItem, start: WindowState = WindowState.PLANNED) -> Window:
        """`item`'s window; met for the first time, it starts at `start` (an earlier runner's
        at INTENT)."""
        return self._windows.of(item, start)

    def leave(self) -> None:
        """The lane stops: every window not done is left for a later run."""
        self._windows.leave()

    def is_gone(self, group: str) -> bool:
        """Whether `group` was found deleted in this attempt (its windows are skipped)."""
        return group in self._gone

    def groups_matched(self, count: int) -> None:
        self.result.groups = count

    def replan_skips(self, group: str, skips: Sequence[Skip]) -> None:
        """`group`'s skips, once its full plan is known, replace those planned without it."""
        result = self.result
        result.skipped = [s for s in result.skipped if s.group != group]
        result.skipped.extend(skips)

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
        """Its window archived: by its task, or (`read`) by a direct read."""
        item = window.item
        self.state.mark_done(item.group, item.window, read=read)
        self.changed()
        self.result.archived.append(item)
        window.move(WindowState.RECORDED)

    def read_written(self, window: Window) -> None:
        """Its window archived by a direct read of this run, its folder written whole (counted
        `read`; an earlier runner's found whole is `archived` only)."""
        window.move(WindowState.WRITTEN)
        self.archived(window, read=True)
        self.result.read += 1

    def empty(self, window: Window) -> None:
        """Its window holds no event: archived without a task (unless its group is gone)."""
        item = window.item
        if item.group not in self._gone:
            self.state.mark_done(item.group, item.window, empty=True)
            self.changed()
            self.result.empty.append(item)
            self.reporter.item_empty(self.name, item)
            window.move(WindowState.EMPTY)

    def failed(self, window: Window, error: str, cleanup: str | None = None) -> None:
        item = window.item
        self.state.mark_failed(item.group, item.window, error, self.pacer.now_ms(), cleanup=cleanup)
        self.changed()
        self.result.failed.append((item, error))
        window.move(WindowState.FAILED)

    def gone(self, window: Window, why: str = "") -> None:
        """Its log group was deleted: failed (any intent of it dropped, even one a lost answer
        kept: the group's tasks are gone with it), and the group's other windows skipped."""
        group = window.item.group
        self._gone.add(group)
        self.failed(window, f"log group {group} no longer exists{why}")
        self.reporter.notice(self.name, f"log group {group} was deleted; skipping it")

    def discard_output(
        self,
        window: Window,
        output_id: str,
        reason: str,
        *,
        retry: Callable[[ExportItem, int], None] | None = None,
        note_removed: bool = False,
    ) -> None:
        """The output `output_id` (a task's, or a direct read's folder) of `window`, which must
        not stay (`reason`: why), is deleted and its window planned again. For a window of this
        run (`retry`), the try is counted: the window goes back to `retry` (with its tries) while
        it has tries left, and is recorded failed after (`note_removed`: how many objects were
        deleted, told in `reason`). An output that cannot be deleted stays recorded failed with
        `output_id`, for the next run's `clean_up`; its window is not exported until then."""
        item = window.item
        if retry is not None:
            self._tries[item] += 1
        removed = self._delete_output(item, output_id, reason, window)
        if removed is None:
            return
        if retry is None:  # an earlier runner's: the plan takes the window up again
            self.drop(window)
            return
        if removed and note_removed:
            reason += f" (removed {removed} partial objects)"
        tries = self._tries[item]
        if tries < self.settings.max_attempts:
            self.drop(window)
            self.reporter.item_retry(self.name, item, reason)
            retry(item, tries)
        else:
            self.failed(window, reason)

    def _delete_output(
        self, item: ExportItem, output_id: str, reason: str, window: Window | None = None
    ) -> int | None:
        """Delete `output_id`'s objects in `item`'s folder: how many; None when that failed
        (the window recorded failed, the output to delete by the next run). The window is met
        only then when not given: a deletion that worked leaves it to whoever meets it next
        (the resume of an intent of the same window starts it at INTENT)."""
        try:
            return self.archive.delete_task_output(self.dest(item), output_id)
        except BucketError as exc:
            self.failed(window or self.window(item), f"{reason}; {exc}", cleanup=output_id)
            return None

    def clean_up(self) -> None:
        """Delete the partial output of the failed tasks whose deletion failed before; a
        window whose output is still there stays failed and is not exported (see backlog)."""
        for failure in self.state.uncleaned():
            item = ExportItem(failure.window, failure.group)
            reason = failure.error.split("; ")[0]
            if self._delete_output(item, failure.cleanup or "", reason) is None:
                continue  # still failed, its output still to delete (the same `cleanup`)
            failure.cleanup = None
            if self.state.coverage(failure.group).covers(failure.window):
                self.state.failures.remove(failure)
            self.changed()
