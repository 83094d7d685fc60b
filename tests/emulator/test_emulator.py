"""The emulator behaves like AWS export tasks, through boto3 against the loopback server."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from moto import mock_aws
from moto.logs.models import LogsBackend

from emulator import Emulator, patches, seed
from emulator.patches import installed

from .conftest import Aws

A, B = "111111111111", "222222222222"
REGION, OTHER_REGION = "us-east-1", "us-west-2"
DAY = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)  # 2026-11-01T00:00:00.000Z
END = DAY + 86_400_000 - 1  # 2026-11-01T23:59:59.999Z
DONE = {"COMPLETED", "FAILED", "CANCELLED"}


def wait_status(
    logs: Any, task_id: str, codes: Iterable[str], timeout: float = 5.0
) -> dict[str, Any]:
    codes = set(codes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = logs.describe_export_tasks(taskId=task_id)["exportTasks"][0]
        if task["status"]["code"] in codes:
            return task
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} never reached {codes}: {task['status']}")


def code_of(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def export(logs: Any, group: str = "/app/web", **kw: Any) -> str:
    args = {"logGroupName": group, "fromTime": DAY, "to": END, "destination": "archive"}
    task_id: str = logs.create_export_task(**{**args, **kw})["taskId"]
    return task_id


@pytest.fixture
def world(emu: Emulator) -> None:
    """Account A: group /app/web with two streams on 2026-11-01; bucket `archive` in A."""
    seed.create_bucket("archive", REGION, A)
    seed.create_group(A, REGION, "/app/web", DAY - 86_400_000)
    seed.put_events(A, REGION, "/app/web", "2026/11/01/[$LATEST]abc", [(DAY + 1, "a1")])
    seed.put_events(A, REGION, "/app/web", "plain", [(END, "p1")])


def test_task_goes_pending_running_completed_and_objects_exist_once_completed(
    emu: Emulator, aws: Aws, world: None
) -> None:
    emu.task_timing(pending=0.1, base=0.1)
    logs, s3 = aws.client("logs", A), aws.client("s3", A)
    task_id = export(logs, destinationPrefix="x")
    seen = [logs.describe_export_tasks(taskId=task_id)["exportTasks"][0]["status"]["code"]]
    while seen[-1] not in DONE:
        time.sleep(0.01)
        seen.append(logs.describe_export_tasks(taskId=task_id)["exportTasks"][0]["status"]["code"])
        if seen[-1] == "COMPLETED":
            assert keys(s3, "archive", f"x/{task_id}/")  # written before COMPLETED is visible
    states = list(dict.fromkeys(seen))
    assert states == ["PENDING", "RUNNING", "COMPLETED"]

    # the timer moves tasks even if nobody describes them
    task_id = export(logs)
    time.sleep(0.35)
    assert emu.task(task_id).status == "COMPLETED"


def test_layout_lines_and_probe_like_aws_in_utc_whatever_tz(
    emu: Emulator, aws: Aws, world: None
) -> None:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    try:
        emu.max_object_bytes = 60
        many = [(DAY + 1000 + i, f"line {i:02d} " + "x" * 10) for i in range(5)]
        seed.put_events(A, REGION, "/app/web", "2026/11/01/[$LATEST]abc", many)
        seed.put_events(A, REGION, "/app/web", "silent", [(DAY - 1, "before the window")])
        logs, s3 = aws.client("logs", A), aws.client("s3", A)
        task_id = export(logs, destinationPrefix="root/111111111111/app/web/2026/11/01")
        wait_status(logs, task_id, {"COMPLETED"})
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()

    prefix = "root/111111111111/app/web/2026/11/01"
    lam = f"{prefix}/{task_id}/2026/11/01/[$LATEST]abc"
    found = keys(s3, "archive", prefix)
    assert f"{prefix}/aws-logs-write-test" in found
    assert body(s3, "archive", f"{prefix}/aws-logs-write-test") == b"Permission Check Successful"
    assert f"{prefix}/{task_id}/plain/000000.gz" in found
    assert not any("silent" in k for k in found)
    lam_keys = [k for k in found if k.startswith(lam + "/")]
    assert lam_keys[:2] == [f"{lam}/000000.gz", f"{lam}/000001.gz"] and len(lam_keys) >= 3
    for k in lam_keys:
        assert len(gzip.decompress(body(s3, "archive", k))) <= 60
    plain = gzip.decompress(body(s3, "archive", f"{prefix}/{task_id}/plain/000000.gz"))
    assert plain.decode() == "2026-11-01T23:59:59.999Z p1\n"
    first = gzip.decompress(body(s3, "archive", f"{lam}/000000.gz")).decode().splitlines()
    assert first[0] == "2026-11-01T00:00:00.001Z a1"

    events = seed.read_archive("archive", prefix)
    assert {(e.account_id, e.group, e.day, e.task_id) for e in events} == {
        (A, "app/web", "2026-11-01", task_id)
    }
    assert sorted((e.stream, e.timestamp_ms, e.message) for e in events) == sorted(
        [("2026/11/01/[$LATEST]abc", DAY + 1, "a1"), ("plain", END, "p1")]
        + [("2026/11/01/[$LATEST]abc", ts, m) for ts, m in many]
    )


def test_both_ends_inclusive_and_parameter_errors(emu: Emulator, aws: Aws, world: None) -> None:
    seed.put_events(
        A,
        REGION,
        "/app/edge",
        "s",
        [(DAY - 1, "early"), (DAY, "from"), (END, "to"), (END + 1, "late")],
    )
    logs = aws.client("logs", A)
    task_id = export(logs, "/app/edge")
    wait_status(logs, task_id, {"COMPLETED"})
    assert sorted(e.message for e in seed.read_archive("archive")) == ["from", "to"]

    with pytest.raises(ClientError) as e:
        export(logs, fromTime=END, to=DAY)
    assert code_of(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        export(logs, destination="no-such-bucket")
    assert code_of(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        export(logs, "/no/such/group")
    assert code_of(e) == "ResourceNotFoundException"
    seed.create_bucket("archive-west", OTHER_REGION, A)
    with pytest.raises(ClientError) as e:
        export(logs, destination="archive-west")
    assert code_of(e) == "InvalidParameterException"
    assert "different region" in e.value.response["Error"]["Message"]


def test_one_active_task_per_account_and_region(emu: Emulator, aws: Aws, world: None) -> None:
    emu.task_timing(pending=0.2, base=0.2)
    seed.create_bucket("archive-west", OTHER_REGION, A)
    seed.put_events(A, OTHER_REGION, "/app/web", "s", [(DAY, "w")])
    seed.put_events(B, REGION, "/app/web", "s", [(DAY, "b")])
    logs = aws.client("logs", A)
    export(logs)
    with pytest.raises(ClientError) as e:
        export(logs)
    assert code_of(e) == "LimitExceededException"
    assert e.value.response["Error"]["Message"] == "Resource limit exceeded."
    export(aws.client("logs", A, OTHER_REGION), destination="archive-west")
    export(aws.client("logs", B))  # the bucket is A's: cross-account
    assert emu.limit_exceeded == 1
    assert emu.limit_exceeded_by == {(A, REGION): 1}


def test_describe_filters_by_status_and_pages(emu: Emulator, aws: Aws, world: None) -> None:
    emu.task_timing(pending=0.0, base=0.0)
    logs = aws.client("logs", A)
    done = []
    for _ in range(5):
        done.append(export(logs))
        wait_status(logs, done[-1], {"COMPLETED"})
    emu.stuck_tasks(1)
    stuck = export(logs, taskName="stuck-one")

    completed = logs.describe_export_tasks(statusCode="COMPLETED")["exportTasks"]
    assert sorted(t["taskId"] for t in completed) == sorted(done)
    assert all("completionTime" in t["executionInfo"] for t in completed)
    (pending,) = logs.describe_export_tasks(statusCode="PENDING")["exportTasks"]
    assert pending["taskId"] == stuck and pending["taskName"] == "stuck-one"
    assert "completionTime" not in pending["executionInfo"]
    assert pending["from"] == DAY and pending["to"] == END
    assert pending["destination"] == "archive" and pending["destinationPrefix"] == "exportedlogs"
    assert pending["logGroupName"] == "/app/web" and pending["executionInfo"]["creationTime"] > 0

    pages, token = [], None
    while True:
        kw: dict[str, Any] = {"nextToken": token} if token else {}
        page = logs.describe_export_tasks(limit=2, **kw)
        pages.append([t["taskId"] for t in page["exportTasks"]])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [2, 2, 2]
    assert sorted(t for p in pages for t in p) == sorted([*done, stuck])
    assert logs.describe_export_tasks(taskId="no-such-task")["exportTasks"] == []
    assert logs.describe_export_tasks(taskId=stuck, statusCode="COMPLETED")["exportTasks"] == []
    with pytest.raises(ClientError) as e:
        logs.describe_export_tasks(limit=51)
    assert code_of(e) == "InvalidParameterException"


def test_injected_failure_leaves_partial_output(emu: Emulator, aws: Aws, world: None) -> None:
    emu.fail_tasks(1, account_id=A, group="/app/web", message="boom")
    logs, s3 = aws.client("logs", A), aws.client("s3", A)
    failed = export(logs)
    task = wait_status(logs, failed, DONE)
    assert task["status"] == {"code": "FAILED", "message": "boom"}
    assert len(keys(s3, "archive", f"exportedlogs/{failed}/")) == 1  # of two streams
    assert emu.task(failed).objects == keys(s3, "archive", f"exportedlogs/{failed}/")

    ok = export(logs)  # the injection was for one task only
    assert wait_status(logs, ok, DONE)["status"]["code"] == "COMPLETED"
    assert len(keys(s3, "archive", f"exportedlogs/{ok}/")) == 2


def test_cancel_semantics(emu: Emulator, aws: Aws, world: None) -> None:
    emu.stuck_tasks(1)
    logs = aws.client("logs", A)
    task_id = export(logs)
    time.sleep(0.1)
    assert emu.task(task_id).status == "PENDING"  # stuck
    logs.cancel_export_task(taskId=task_id)
    status = logs.describe_export_tasks(taskId=task_id)["exportTasks"][0]["status"]["code"]
    assert status == "PENDING_CANCEL"
    with pytest.raises(ClientError) as e:  # still holds the slot
        export(logs)
    assert code_of(e) == "LimitExceededException"
    task = wait_status(logs, task_id, DONE)
    assert task["status"]["code"] == "CANCELLED" and "completionTime" in task["executionInfo"]
    with pytest.raises(ClientError) as e:
        logs.cancel_export_task(taskId=task_id)
    assert code_of(e) == "InvalidOperationException"
    assert "already finished" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.cancel_export_task(taskId="no-such-task")
    assert code_of(e) == "ResourceNotFoundException"

    done = export(logs)  # the slot is free again
    wait_status(logs, done, {"COMPLETED"})
    with pytest.raises(ClientError) as e:
        logs.cancel_export_task(taskId=done)
    assert code_of(e) == "InvalidOperationException"


def test_throttling_and_unavailability_middleware(emu: Emulator, aws: Aws, world: None) -> None:
    logs, s3 = aws.client("logs", A), aws.client("s3", A)
    emu.throttle(1.0, services=("logs",), operations=("DescribeLogGroups",))
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups()
    assert code_of(e) == "ThrottlingException"
    assert e.value.response["Error"]["Message"] == "Rate exceeded"
    logs.describe_export_tasks()  # another operation goes through
    emu.throttle(1.0, services=("s3",))
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="archive")
    assert code_of(e) == "SlowDown"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    emu.reset_faults()
    logs.describe_log_groups()
    s3.list_objects_v2(Bucket="archive")

    emu.unavailable_burst(2)
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            logs.describe_log_groups()
        assert code_of(e) == "ServiceUnavailableException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    logs.describe_log_groups()
    assert emu.injected == {
        ("logs", "DescribeLogGroups", "ThrottlingException"): 1,
        ("s3", "ListObjectsV2", "SlowDown"): 1,
        ("logs", "DescribeLogGroups", "ServiceUnavailableException"): 2,
    }
    # half of the requests, reproducibly
    emu.throttle(0.5, services=("logs",), seed=7)
    failures = 0
    for _ in range(40):
        try:
            logs.describe_export_tasks()
        except ClientError:
            failures += 1
    assert 10 <= failures <= 30


def test_calls_are_counted_by_service_and_operation(emu: Emulator, aws: Aws, world: None) -> None:
    logs, s3 = aws.client("logs", A), aws.client("s3", A)
    wait_status(logs, export(logs), {"COMPLETED"})
    s3.head_bucket(Bucket="archive")
    s3.get_bucket_location(Bucket="archive")
    s3.put_object(Bucket="archive", Key="state.json", Body=b"{}", IfNoneMatch="*")
    s3.get_object(Bucket="archive", Key="state.json")
    s3.head_object(Bucket="archive", Key="state.json")
    s3.delete_objects(Bucket="archive", Delete={"Objects": [{"Key": "state.json"}]})
    calls = emu.calls
    for call in [
        ("sts", "AssumeRole"),
        ("logs", "CreateExportTask"),
        ("logs", "DescribeExportTasks"),
        ("s3", "HeadBucket"),
        ("s3", "GetBucketLocation"),
        ("s3", "PutObject"),
        ("s3", "GetObject"),
        ("s3", "HeadObject"),
        ("s3", "DeleteObjects"),
    ]:
        assert calls[call] >= 1, call


def test_cross_account_bucket(emu: Emulator, aws: Aws) -> None:
    seed.create_bucket("central", REGION, B)
    seed.put_events(A, REGION, "/app/web", "s", [(DAY, "from A")])
    logs = aws.client("logs", A)
    task_id = logs.create_export_task(
        logGroupName="/app/web", fromTime=DAY, to=END, destination="central"
    )["taskId"]
    wait_status(logs, task_id, {"COMPLETED"})
    assert f"exportedlogs/{task_id}/s/000000.gz" in keys(aws.client("s3", B), "central")
    assert [e.message for e in seed.read_archive("central")] == ["from A"]


def test_roles_denied_and_credential_lifetime(emu: Emulator, aws: Aws) -> None:
    denied = f"arn:aws:iam::{B}:role/exporter"
    emu.deny_role(denied)
    with pytest.raises(ClientError) as e:
        aws.assume(denied)
    assert code_of(e) == "AccessDenied"
    aws.session(A)  # other roles still work

    emu.credential_lifetime(120)
    sts = boto3.client("sts", endpoint_url=aws.endpoint_url)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/x", RoleSessionName="short")
    left = (creds["Credentials"]["Expiration"] - datetime.now(UTC)).total_seconds()
    assert 100 < left <= 121

    emu.credential_lifetime(0)
    emu.enforce_credential_expiry()
    expired = aws.client("logs", A)
    with pytest.raises(ClientError) as e:
        expired.describe_log_groups()
    assert code_of(e) == "ExpiredTokenException"


def test_occupied_slot_and_lower_bound(emu: Emulator, aws: Aws, world: None) -> None:
    seed.put_events(B, REGION, "/app/web", "s", [(DAY, "b")])
    foreign = emu.occupy_slot(A, REGION, 1.5)  # long enough to outlast a loaded machine
    logs = aws.client("logs", A)
    with pytest.raises(ClientError) as e:
        export(logs)
    assert code_of(e) == "LimitExceededException"
    active = logs.describe_export_tasks(statusCode="RUNNING")["exportTasks"]
    assert [t["taskId"] for t in active] in ([foreign], [])  # PENDING for a moment first
    assert emu.wait_idle(5)

    emu.task_timing(pending=0.05, base=0.1)
    for _ in range(2):
        wait_status(logs, export(logs), {"COMPLETED"})
    wait_status(aws.client("logs", B), export(aws.client("logs", B)), {"COMPLETED"})
    mine = [t for t in emu.tasks if not t.foreign and t.account_id == A]
    assert len(mine) == 2 and all(t.ended_at and t.started_at for t in mine)
    expected = sum(t.ended_at - t.created_at for t in mine if t.ended_at)
    assert emu.lower_bound() == pytest.approx(expected)
    assert 0.3 <= emu.lower_bound() < 1.0  # the foreign 1.5 s ignored; 2 x (0.05 + 0.1)


def test_bytes_slow_down_tasks(emu: Emulator, aws: Aws, world: None) -> None:
    seed.put_events(A, REGION, "/app/big", "s", [(DAY + i, "y" * 100) for i in range(50)])
    emu.task_timing(pending=0.0, base=0.0, bytes_per_second=20_000)
    logs = aws.client("logs", A)
    task_id = export(logs, "/app/big")
    wait_status(logs, task_id, {"COMPLETED"})
    t = emu.task(task_id)
    assert t.bytes == 50 * len("2026-11-01T00:00:00.000Z " + "y" * 100 + "\n")
    assert t.ended_at and t.started_at and t.ended_at - t.started_at >= t.bytes / 20_000 * 0.9


def test_stream_prefix_and_log_queries(emu: Emulator, aws: Aws, world: None) -> None:
    seed.put_events(A, REGION, "/app/web", "2026/11/02/[$LATEST]new", [(END + 5, "newest")])
    logs = aws.client("logs", A)
    task_id = export(logs, logStreamNamePrefix="2026/")
    wait_status(logs, task_id, {"COMPLETED"})
    assert {e.stream for e in seed.read_archive("archive")} == {"2026/11/01/[$LATEST]abc"}

    (newest,) = logs.describe_log_streams(
        logGroupName="/app/web", orderBy="LastEventTime", descending=True, limit=1
    )["logStreams"]
    assert newest["logStreamName"] == "2026/11/02/[$LATEST]new"
    assert newest["lastEventTimestamp"] == END + 5
    assert newest["firstEventTimestamp"] == END + 5 and newest["lastIngestionTime"] == END + 5
    hit = logs.filter_log_events(logGroupName="/app/web", startTime=END, endTime=END, limit=1)
    assert [e["message"] for e in hit["events"]] == ["p1"]
    miss = logs.filter_log_events(
        logGroupName="/app/web", startTime=END + 1, endTime=END + 4, limit=1
    )
    assert miss["events"] == []
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]
    assert group["creationTime"] == DAY - 86_400_000 and group["logGroupClass"] == "STANDARD"


def test_in_process_with_mock_aws_and_patches_reversible(emu: Emulator) -> None:
    patched = LogsBackend.create_export_task
    with mock_aws(), Emulator(pending_seconds=0.02, base_seconds=0.02) as local:
        local.install()  # idempotent
        assert installed() is local and LogsBackend.create_export_task is patched
        seed.create_bucket("local", REGION)
        seed.put_events("123456789012", REGION, "/g", "s", [(DAY, "m")])
        logs = boto3.client("logs", region_name=REGION)
        task_id = logs.create_export_task(
            logGroupName="/g", fromTime=DAY, to=END, destination="local"
        )["taskId"]
        assert wait_status(logs, task_id, DONE)["status"]["code"] == "COMPLETED"
        assert [e.message for e in seed.read_archive("local")] == ["m"]
        assert [t.task_id for t in local.tasks] == [task_id] and not emu.tasks
    assert installed() is emu  # the emulator installed before takes over again

    stack = list(patches._stack)  # other suites' emulators may be installed in this process
    for e in stack:
        patches.uninstall(e)
    assert LogsBackend.create_export_task.__module__ == "moto.logs.models"  # moto is moto again
    for e in stack:
        patches.install(e)
    assert installed() is emu and LogsBackend.create_export_task is patched


@pytest.mark.parametrize("how", ["500", "503", "reset"])
def test_lost_answer_after_the_task_was_created(
    emu: Emulator, aws: Aws, world: None, how: str
) -> None:
    """AWS creates the task, then the caller gets a 5xx or a dropped connection instead of its
    id; a request that fails anyway keeps its own answer and does not use the fault up."""
    logs = aws.client("logs", A)
    emu.stuck_tasks(1)  # the first task holds the slot: the next create is refused
    held = export(logs)
    emu.lose_answers(1, how=how)
    with pytest.raises(ClientError) as refused:
        export(logs)
    assert code_of(refused) == "LimitExceededException"
    logs.cancel_export_task(taskId=held)
    wait_status(logs, held, DONE)

    with pytest.raises((ClientError, BotoCoreError)) as lost:
        export(logs, taskName="lost-one")
    if how == "reset":
        assert isinstance(lost.value, BotoCoreError)
    else:
        assert isinstance(lost.value, ClientError)
        assert lost.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(how)
    created = [t for t in emu.tasks if t.task_name == "lost-one"]
    assert len(created) == 1  # AWS did create it
    found = logs.describe_export_tasks(taskId=created[0].task_id)["exportTasks"]
    assert [t["taskName"] for t in found] == ["lost-one"]
    code = {"500": "InternalFailure", "503": "ServiceUnavailableException"}.get(
        how, "ConnectionReset"
    )
    assert emu.injected == {("logs", "CreateExportTask", code): 1}

    wait_status(logs, created[0].task_id, DONE)
    assert export(logs)  # used up: the next answer arrives


def test_describe_without_execution_info(emu: Emulator, aws: Aws, world: None) -> None:
    """AWS documents `executionInfo` as optional: the emulator can leave it out."""
    logs = aws.client("logs", A)
    task_id = export(logs)
    assert "executionInfo" in wait_status(logs, task_id, DONE)
    emu.execution_info = False
    for answer in (
        logs.describe_export_tasks(taskId=task_id),
        logs.describe_export_tasks(statusCode="COMPLETED"),
        logs.describe_export_tasks(),
    ):
        assert answer["exportTasks"] and all(
            "executionInfo" not in t for t in answer["exportTasks"]
        )
    assert emu.task(task_id).ended_at is not None  # the record keeps the times
    emu.reset(aws=False)
    assert "executionInfo" in logs.describe_export_tasks(taskId=task_id)["exportTasks"][0]
