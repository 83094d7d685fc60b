"""Real botocore clients (logs, s3) whose answers come from botocore's Stubber: no emulator, no
server (as chalice's StubbedSession). `StubbedAws.lane()` builds a lane over them with a fake
clock, so its parts can be driven one call at a time."""

from __future__ import annotations

import io
import json
from typing import Any

import botocore.session
from botocore.response import StreamingBody
from botocore.stub import Stubber

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.sessions import AccountClients
from log_exporter.aws.state_store import StateStore
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import PlanRange
from log_exporter.core.state import LaneState
from log_exporter.lane.build import build_lane
from log_exporter.lane.lane import Lane
from log_exporter.lane.pacer import RunControl
from log_exporter.lane.settings import LaneSettings

ACCOUNT_ID = "111111111111"
REGION = "us-east-1"
BUCKET = "archive"
PREFIX = "logs"
DAY = 86_400_000


def client(service: str) -> Any:
    return botocore.session.get_session().create_client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class StubbedAws:
    """A logs and an s3 client, each with its Stubber activated."""

    def __init__(self) -> None:
        self.logs = client("logs")
        self.s3 = client("s3")
        self.logs_stub = Stubber(self.logs)
        self.s3_stub = Stubber(self.s3)
        self.logs_stub.activate()
        self.s3_stub.activate()
        self.clock = FakeClock()

    def lane(self, **settings: Any) -> Lane:
        lane = build_lane(
            account="prod",
            clients=AccountClients(ACCOUNT_ID, REGION, self.logs, self.logs),
            store=StateStore(self.s3, BUCKET, PREFIX),
            archive=ArchiveBucket(self.s3, BUCKET, sleep=self.clock.sleep),
            selector=GroupSelector(["*"]),
            rng=PlanRange(None, DAY, DAY),
            settings=LaneSettings(
                bucket=BUCKET, prefix=PREFIX, **{"lease_seconds": 1e6, **settings}
            ),
            owner="test-runner",
            control=RunControl(clock=self.clock, sleep=self.clock.sleep),
        )
        lane.lease.state = LaneState(ACCOUNT_ID, REGION)
        lane.lease.assume_held(self.clock())  # the lease as just taken: no renewal due
        return lane

    def assert_no_pending_responses(self) -> None:
        self.logs_stub.assert_no_pending_responses()
        self.s3_stub.assert_no_pending_responses()

    # --- answers --------------------------------------------------------------------------------
    def active_tasks(self, *running: dict[str, Any]) -> None:
        """The three DescribeExportTasks of `ExportTasks.active`: `running` are RUNNING."""
        for code in ("PENDING", "RUNNING", "PENDING_CANCEL"):
            tasks = [t for t in running if t["status"]["code"] == code]
            self.logs_stub.add_response(
                "describe_export_tasks",
                {"exportTasks": tasks},
                {"statusCode": code, "limit": 50},
            )

    def describe(self, task: dict[str, Any]) -> None:
        self.logs_stub.add_response(
            "describe_export_tasks", {"exportTasks": [task]}, {"taskId": task["taskId"]}
        )

    def state_put(self, etag: str = '"2"') -> None:
        self.s3_stub.add_response("put_object", {"ETag": etag})

    def get_object(self, body: bytes, etag: str = '"9"') -> None:
        self.s3_stub.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": etag}
        )


def task(task_id: str, name: str, code: str, group: str, dest: str, day: int = 0) -> dict[str, Any]:
    """A DescribeExportTasks entry of a task writing `group`'s `day` into the archive at `dest`."""
    return {
        "taskId": task_id,
        "taskName": name,
        "logGroupName": group,
        "from": day * DAY,
        "to": (day + 1) * DAY - 1,
        "destination": BUCKET,
        "destinationPrefix": dest,
        "status": {"code": code, "message": ""},
    }


def state_body(state: LaneState) -> bytes:
    return json.dumps(state.to_json()).encode()
