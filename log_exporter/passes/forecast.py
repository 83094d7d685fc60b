"""What a run would do, without doing it: a lane's windows to export and its skips with their
reasons, and an estimate of its tasks and time from the export tasks AWS finished recently."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from log_exporter.core.plan import ExportItem, LanePlan
from log_exporter.core.state import Intent

if TYPE_CHECKING:
    from log_exporter.aws.tasks import ExportTasks
    from log_exporter.lane.view import LaneView

DEFAULT_TASK_SECONDS = 60.0  # assumed when the account has no completed task to learn from
OUR_TASKS = "log-exporter-"  # the prefix of the task names the lanes give their tasks


@dataclass
class LaneForecast:
    """A lane's plan; with `probed`, the windows without any event are moved to `empty`."""

    plan: LanePlan
    task_seconds: float
    observed: int  # completed tasks the per-task time comes from (0: DEFAULT_TASK_SECONDS)
    in_flight: list[Intent] = field(default_factory=list)
    empty: list[ExportItem] = field(default_factory=list)
    probed: bool = False
    groups: int = 0
    read: list[ExportItem] = field(default_factory=list)  # archived by reading (strategy)
    read_rate: float = 0.0  # FilterLogEvents a second the reads are paced to

    @property
    def tasks(self) -> int:
        return len(self.plan.items)

    @property
    def seconds(self) -> float:
        """Tasks run one at a time in a lane: their count times the time one takes; the direct
        reads (a request each, at least) run meanwhile, at the pace of `read_rate`."""
        exports = (self.tasks + len(self.in_flight)) * self.task_seconds
        reads = len(self.read) / self.read_rate if self.read_rate else 0.0
        return max(exports, reads)


def recent_task_seconds(tasks: ExportTasks, limit: int = 50) -> list[float]:
    """How long the account-region's recently completed export tasks took (one call).

    Tasks log-exporter created are preferred; other people's tasks only when there are none.
    A throttled or refused call gives no figures rather than failing the plan.
    """
    ours: list[float] = []
    others: list[float] = []
    for t in tasks.recently_completed(limit):
        created, completed = t.created_ms, t.completed_ms
        if created is None or completed is None or completed < created:
            continue
        seconds = (completed - created) / 1000
        (ours if t.name.startswith(OUR_TASKS) else others).append(seconds)
    return ours or others


def forecast_lane(lane: LaneView, *, probe: bool = False) -> LaneForecast:
    """Read the lane's state and plan it like `run` would, creating nothing.

    With `probe`, each window is checked for events (one FilterLogEvents call each), so the
    windows a run would record as empty without a task are told apart.
    """
    state = lane.load_state()
    plan = lane.plan()
    seconds = recent_task_seconds(lane.tasks)
    out = LaneForecast(
        plan=plan,
        task_seconds=statistics.median(seconds) if seconds else DEFAULT_TASK_SECONDS,
        observed=len(seconds),
        in_flight=list(state.intents),
        probed=probe,
        groups=lane.groups_matched,
        read_rate=lane.settings.read_rate,
    )
    out.read = [i for i in plan.items if lane.reads_directly(i)]
    read = set(out.read)
    plan.items = [i for i in plan.items if i not in read]
    if probe:
        keep: list[ExportItem] = []
        for item in plan.items:
            (keep if lane.groups.has_events(item.group, item.window) else out.empty).append(item)
        plan.items = keep
    return out
