"""The windows a lane still has to do: the run's plan, which window is ready next, the
prefetch of the next window's intent while a task runs, and how many are left.

`plan_of` and `reads_directly` are also what the read-only commands see of a lane (view.py).
"""

from __future__ import annotations

from collections import deque

from log_exporter.aws.groups import LogGroups
from log_exporter.aws.retry import FAILED_TASK
from log_exporter.core.config import GroupSelector
from log_exporter.core.direct import window_bytes
from log_exporter.core.plan import NOT_READ, ExportItem, GroupInfo, LanePlan, PlanRange, plan_group
from log_exporter.core.plan import plan_lane as plan_groups
from log_exporter.core.state import Intent, LaneState, period_switch_message
from log_exporter.core.windows import Intervals
from log_exporter.errors import ConfigError, ResourceNotFoundError
from log_exporter.lane.lease import LeaseKeeper
from log_exporter.lane.pacer import Pacer
from log_exporter.lane.record import Record
from log_exporter.lane.settings import LaneSettings
from log_exporter.progress import Reporter


def check_period(state: LaneState, settings: LaneSettings, name: str) -> None:
    """Take the run's period for a state with nothing archived; refuse to switch it after."""
    has_archive = any(state.covered.values())
    if state.period is None or not has_archive:
        state.period = settings.period
    elif state.period != settings.period:
        where = f"{name} in s3://{settings.bucket}/{settings.prefix}"
        raise ConfigError(period_switch_message(where.rstrip("/"), state.period, settings.period))


def plan_of(
    state: LaneState,
    infos: list[GroupInfo],
    rng: PlanRange,
    settings: LaneSettings,
    name: str,
    reporter: Reporter,
) -> tuple[LanePlan, bool]:
    """What the lane would export now, given its state (which this updates with the groups'
    creation times: the second value tells whether that changed it)."""
    check_period(state, settings, name)
    known = dict(state.created)
    for group in state.observe_groups({i.name: i.created_ms for i in infos}):
        reporter.notice(name, f"log group {group} was created again; archived anew")
    busy = {(i.group, i.window) for i in state.intents}
    dirty = state.uncleaned()  # partial output to delete before its window is exported
    again = [i.name for i in infos if state.incarnation(i.name) is not None]
    plan = plan_groups(infos, state.covered, rng, again)
    plan.items = [
        i
        for i in plan.items
        if (i.group, i.window) not in busy
        and not any(
            f.group == i.group and f.window.start <= i.window.end and i.window.start <= f.window.end
            for f in dirty
        )
    ]
    return plan, state.created != known


def reads_directly(
    settings: LaneSettings,
    groups: LogGroups,
    created_ms: int,
    item: ExportItem,
    now_ms: int,
) -> bool:
    """Whether `item` is to be archived by reading its events (destination.strategy):
    in `auto`, when its group's stored bytes, spread evenly over the time they cover (the
    group's age, at most its retention), come to at most `read_max_bytes` for the window.
    The listing of the groups tells their stored bytes at no cost; a window that turns out
    larger than `read_max_pages` pages is exported after all (see direct_reads.py)."""
    if settings.strategy != "auto":
        return settings.strategy == "read"
    stored = groups.stored_bytes.get(item.group)
    if stored is None:
        return False
    retention = groups.retention_days.get(item.group)
    estimate = window_bytes(stored, created_ms, retention, item.window, now_ms)
    return estimate <= settings.read_max_bytes


class Backlog:
    """The windows of one attempt of a lane still to export (`queue`), and the next window's
    intent saved ahead of its turn."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        groups: LogGroups,
        selector: GroupSelector,
        rng: PlanRange,
        lease: LeaseKeeper,
        pacer: Pacer,
        record: Record,
        reporter: Reporter,
    ) -> None:
        self.name = name
        self.settings = settings
        self.groups = groups
        self.selector = selector
        self.rng = rng
        self.lease = lease
        self.pacer = pacer
        self.record = record
        self.reporter = reporter
        self.queue: deque[ExportItem] = deque()
        self._ahead: Intent | None = None  # the next window's intent, saved before its turn
        self._created: dict[str, int] = {}  # group -> creation time, from the group list
        self.infos: dict[str, GroupInfo] = {}  # groups whose streams were read in this run
        self.keep: dict[str, set[ExportItem]] = {}  # their windows the full plan exports
        self._planned: dict[str, list[ExportItem]] = {}  # the first plan's windows, by group

    def plan_run(self) -> LanePlan:
        """The run's plan, from the group list alone: a group's streams (when it was last
        written, and which events exist) are read when its first window comes up, so the first
        task starts after one such read instead of one per group. Until then a group counts as
        written until now; `ready` then applies the full plan of `plan_group` to its windows,
        so the run does exactly what `plan` shows."""
        groups: list[tuple[str, int]] = self.pacer.call(lambda: self.groups.matching(self.selector))
        self._created = dict(groups)
        self.record.groups_matched(len(groups))
        infos = [GroupInfo(name, created, NOT_READ) for name, created in groups]
        plan, changed = plan_of(
            self.lease.state, infos, self.rng, self.settings, self.name, self.reporter
        )
        if changed:
            self.lease.changed()
        self._planned = {}
        for i in plan.items:
            self._planned.setdefault(i.group, []).append(i)
        self.queue = deque(plan.items)
        return plan

    def reads_directly(self, item: ExportItem) -> bool:
        state = self.lease.state
        created = self._created.get(item.group) or state.created.get(item.group) or 0
        return reads_directly(self.settings, self.groups, created, item, self.pacer.now_ms())

    def ready(self, item: ExportItem) -> bool:
        """Whether `item` is to be exported. The first time its group comes up, the group's
        streams are read and it is planned in full: its windows that the full plan skips
        (after its last write, or all when it has no stream) are dropped as they come up, and
        its skips replace those of the plan made without them."""
        group = item.group
        keep = self.keep.get(group)
        if keep is None:
            created = self._created.get(group, 0)
            try:
                info = self.pacer.call(lambda: self.groups.describe(group, created))
            except ResourceNotFoundError:
                self.record.gone(self.record.window(item))
                return False
            self.infos[group] = info
            state = self.lease.state
            again = state.incarnation(group) is not None
            full = plan_group(
                info, state.covered.get(group, Intervals()), self.rng, recreated=again
            )
            keep = self.keep[group] = set(full.items)
            dropped = [i for i in self._planned.get(group, []) if i not in keep]
            if dropped:
                self.reporter.items_skipped(self.name, dropped)
            self.record.replan_skips(group, full.skips)
        return item in keep

    def next_ready(self, queue: deque[ExportItem]) -> ExportItem | None:
        """The head of `queue` once it is known to be exported (see `ready`), the others
        dropped; None when the queue runs out."""
        while queue:
            item = queue[0]
            if not self.record.is_gone(item.group) and self.ready(item):
                return item
            queue.popleft()
        return None

    def left(self, reads: deque[ExportItem]) -> int:
        """Windows still queued (to export, and to `reads`): exactly for the groups whose
        streams were read; a group not read yet counts as one (it may have nothing to do, or
        years)."""
        queued = [*self.queue, *reads]
        unread = {i.group for i in queued if i.group not in self.keep}
        return len(unread) + sum(
            1 for i in queued if i.group in self.keep and i in self.keep[i.group]
        )

    def has_events(self, item: ExportItem) -> bool:
        info = self.infos.get(item.group)
        if info is not None and info.holds_event(item.window, self.pacer.now_ms()):
            return True  # its stream's first or last event is in it: no probe needed
        try:
            return self.groups.has_events(item.group, item.window)
        except ResourceNotFoundError:
            self.record.gone(self.record.window(item))
            return False

    def take_next(self) -> ExportItem | None:
        """The next window to export, taken off the queue; None when there is none now: the
        queue ran out, or its head held no event and was recorded empty (ask again)."""
        item = self.next_ready(self.queue)
        if item is None or self._recorded_empty(item):
            return None
        return self.queue.popleft()

    def _recorded_empty(self, item: ExportItem) -> bool:
        """Whether `item`, the queue's head, holds no event (probed unless probing is off, or it
        was when its intent was saved ahead): then taken off the queue and recorded empty."""
        if self._is_probed(item) or not self.settings.probe_empty or self.has_events(item):
            return False
        self.queue.popleft()
        self.record.empty(self.record.window(item))
        return True

    def queued(self) -> list[ExportItem]:
        return list(self.queue)

    def requeue(self, item: ExportItem) -> None:
        """`item` back at the end of the queue, to export (a window not read after all)."""
        self.queue.append(item)

    def retry(self, item: ExportItem, tries: int) -> None:
        """A failed task's window back at the end of the queue, after `tries` of it; alone in
        it, after a wait growing with its tries (FAILED_TASK), not at once."""
        if not self.queue:
            self.pacer.pause(FAILED_TASK.backoff().next() * tries)
        self.queue.append(item)

    def take_direct_reads(self) -> list[ExportItem]:
        """The queued windows to be read directly (see `reads_directly`), taken off the queue."""
        reads = [i for i in self.queue if self.reads_directly(i)]
        if reads:
            chosen = set(reads)
            kept = [i for i in self.queue if i not in chosen]
            self.queue.clear()
            self.queue.extend(kept)
        return reads

    # --- the prefetch of the next window ------------------------------------------------------------
    def prepare_next(self) -> None:
        """While a task runs: probe the next windows until one holds events (the empty ones are
        archived as such), record that one's intent, and save it all in one write. With no next
        window, what changed is saved with the lease's renewal or release instead (a run killed
        meanwhile finds the running task by its name)."""
        while self.queue:
            item = self.next_ready(self.queue)
            if item is None:
                break
            if self._recorded_empty(item):
                continue
            self._ahead = self.record.intent_for(item)
            self.record.intent(self.record.window(item), self._ahead)
            self.lease.save()
            break

    def _is_probed(self, item: ExportItem) -> bool:
        """Whether `item` is the window whose intent was saved ahead (probed then)."""
        ahead = self._ahead
        return ahead is not None and (ahead.group, ahead.window) == (item.group, item.window)

    def take_ahead(self, item: ExportItem) -> Intent | None:
        """The intent saved ahead for `item`, if it is the one (any other is dropped)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and (ahead.group, ahead.window) == (item.group, item.window):
            return ahead
        self._ahead = ahead
        self.drop_ahead()
        return None

    def drop_ahead(self) -> None:
        """Forget the next window's saved intent when its task will not be asked for now."""
        if self._ahead is not None:
            self.record.drop(self.record.window(ExportItem(self._ahead.window, self._ahead.group)))
            self._ahead = None
