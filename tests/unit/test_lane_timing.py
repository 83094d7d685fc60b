"""How a lane times its tasks when DescribeExportTasks answers lack `executionInfo` (AWS
documents it as optional): by its own clock, from the answer to CreateExportTask to when the
poll that saw the end was sent; the answer's own latency is not the task's."""

from __future__ import annotations

from typing import Any, cast

import pytest

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.sessions import AccountClients
from log_exporter.aws.state_store import StateStore
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import ExportItem, PlanRange
from log_exporter.core.windows import Window
from log_exporter.lane.build import build_lane
from log_exporter.lane.lane import Lane
from log_exporter.lane.pacer import RunControl
from log_exporter.lane.settings import LaneSettings

GROUP = "/app/web"
TASK_SECONDS = 2.0  # by AWS's clock
LATENCY = 0.2  # each DescribeExportTasks call's round trip, half each way


class FakeAws:
    """A logs client whose one task at a time ends TASK_SECONDS after it was created; every
    call moves the shared clock on by LATENCY."""

    def __init__(self, info: bool) -> None:
        self.now = 0.0
        self.info = info
        self.created = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def start_task(self) -> None:
        self.created = self.now - LATENCY / 2  # AWS created it before its answer arrived

    def describe_export_tasks(self, **kwargs: Any) -> dict[str, Any]:
        self.now += LATENCY / 2
        ended = self.now >= self.created + TASK_SECONDS
        task: dict[str, Any] = {
            "taskId": kwargs["taskId"],
            "status": {"code": "COMPLETED" if ended else "RUNNING"},
        }
        if self.info:
            times = {"creationTime": int(self.created * 1000)}
            if ended:
                times["completionTime"] = int((self.created + TASK_SECONDS) * 1000)
            task["executionInfo"] = times
        self.now += LATENCY / 2
        return {"exportTasks": [task]}


def lane(aws: FakeAws) -> Lane:
    logs = cast(Any, aws)
    return build_lane(
        account="a",
        clients=AccountClients("111111111111", "us-east-1", logs, logs),
        store=cast(StateStore, None),  # no write: the lease never needs renewing here
        archive=cast(ArchiveBucket, None),
        selector=GroupSelector(["*"]),
        rng=PlanRange(None, 86_400_000, 86_400_000),
        settings=LaneSettings(bucket="b", prefix="p", lease_seconds=1e9),
        owner="test",
        control=RunControl(clock=aws.clock, sleep=aws.sleep),
    )


@pytest.mark.parametrize("info", [True, False])
def test_a_lane_learns_its_tasks_duration_with_or_without_execution_info(info: bool) -> None:
    aws = FakeAws(info)
    exporter = lane(aws)
    item = ExportItem(Window(0, 86_400_000 - 1), GROUP)
    for n in range(10):
        aws.start_task()
        status = exporter.attempt.slot.wait(item, f"task-{n}", aws.clock())
        assert status.code == "COMPLETED"
    expected, _ = exporter.durations.expect(GROUP)
    assert expected is not None
    # by AWS's clock exactly; by the lane's within half a round trip (the CreateExportTask
    # answer's way back) plus the poll's lateness, not a whole round trip more
    assert TASK_SECONDS - LATENCY / 2 <= expected <= TASK_SECONDS + LATENCY / 2
