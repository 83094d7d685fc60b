"""What the read-only commands (plan, status, stats, sync, retention) may see of a lane: its
account and region, its archive and state, its log groups and its plan; no lease, no slot, no
threads, nothing that creates a task."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.state_store import StateStore
from log_exporter.aws.tasks import ExportTasks
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import ExportItem, LanePlan, PlanRange
from log_exporter.core.state import LaneState
from log_exporter.lane.backlog import plan_of, reads_directly
from log_exporter.lane.pacer import call_throttled
from log_exporter.lane.settings import LaneSettings
from log_exporter.progress import Reporter

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient


class LaneView:
    """One account and region, to read: `load_state()` first, then `plan()` and the rest."""

    def __init__(
        self,
        *,
        account: str,
        account_id: str,
        region: str,
        logs: CloudWatchLogsClient,
        store: StateStore,
        archive: ArchiveBucket,
        selector: GroupSelector,
        rng: PlanRange,
        settings: LaneSettings,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self.account_id = account_id
        self.region = region
        self.name = f"{account}/{region}"
        # with the account's logs client (its role's), in the lane's region
        self.groups = LogGroups(logs)
        self.tasks = ExportTasks(logs, logs)  # to read: a view creates no task
        self.store = store
        self.archive = archive
        self.selector = selector
        self.rng = rng
        self.settings = settings
        self.reporter = reporter or Reporter()
        self.clock = clock
        self.sleep = sleep
        self.state = LaneState(account_id, region)
        self.groups_matched = 0  # log groups the selector matched, as of `plan()`

    def load_state(self) -> LaneState:
        self.state = self.store.load(self.account_id, self.region, self.account)
        return self.state

    def plan(self) -> LanePlan:
        """What a run of this lane would export now, given its state (read by `load_state`)."""
        infos = call_throttled(lambda: self.groups.info(self.selector), self.sleep, what=self.name)
        self.groups_matched = len(infos)
        plan, _ = plan_of(self.state, infos, self.rng, self.settings, self.name, self.reporter)
        return plan

    def reads_directly(self, item: ExportItem) -> bool:
        """Whether a run would archive `item` by reading its events (see backlog.py)."""
        created = self.state.created.get(item.group) or 0
        now_ms = int(self.clock() * 1000)
        return reads_directly(self.settings, self.groups, created, item, now_ms)
