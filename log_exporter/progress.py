"""What the core tells the outside while it works; the CLI and Lambda decide how to show it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from log_exporter.core.plan import ExportItem, LanePlan
    from log_exporter.lane.result import LaneResult


class Reporter:
    """Receives lane events; this base ignores them all. Methods may be called from any thread."""

    def lane_planned(self, lane: str, plan: LanePlan) -> None:
        """A lane knows its work: `plan.items` to export."""

    def task_created(self, lane: str, item: ExportItem, task_id: str) -> None:
        """An export task was created (or an existing one adopted)."""

    def task_finished(
        self, lane: str, item: ExportItem, task_id: str, status: str, seconds: float
    ) -> None:
        """A task ended: COMPLETED, FAILED or CANCELLED."""

    def item_read(self, lane: str, item: ExportItem, folder_id: str, seconds: float) -> None:
        """A window was archived by reading its events directly into folder `folder_id`."""
        self.task_finished(lane, item, folder_id, "COMPLETED", seconds)

    def items_skipped(self, lane: str, items: list[ExportItem]) -> None:
        """Planned windows turned out to need no task after all (their group was not written
        then, or has no stream): they leave the lane's work."""

    def item_empty(self, lane: str, item: ExportItem) -> None:
        """A window holds no event: archived without a task."""

    def item_retry(self, lane: str, item: ExportItem, reason: str) -> None:
        """A window failed and will be tried again in this run."""

    def notice(self, lane: str, message: str) -> None:
        """Anything else worth a line: waiting on a busy slot, a deleted group, a lost lease."""

    def lane_finished(self, result: LaneResult) -> None:
        """A lane is done (or stopped at its deadline, or failed)."""
