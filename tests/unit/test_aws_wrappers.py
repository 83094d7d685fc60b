"""The AWS wrappers (export tasks, log groups, the archive bucket, the state store) over real
botocore clients and botocore's Stubber: the exact requests they make, and what each answer or
error becomes. No server; each test ends with every stubbed answer used."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from log_exporter.aws.archive import DELETE_TRIES, ArchiveBucket
from log_exporter.aws.errors import AnswerLost, SlotBusy, Throttled
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.retry import botocore_config
from log_exporter.aws.state_store import StateStore
from log_exporter.aws.tasks import ExportTasks
from log_exporter.core.config import GroupSelector
from log_exporter.core.direct import MARKER
from log_exporter.core.state import LaneState
from log_exporter.core.windows import Window
from log_exporter.errors import (
    AccessDeniedError,
    AWSError,
    BucketError,
    ResourceNotFoundError,
    StateConflictError,
    StateUnreadableError,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "archive"
WINDOW = Window(1_700_000_000_000, 1_700_086_399_999)


def client(service: str) -> Any:
    """A real botocore client that makes one try per call (the Stubber's answers are used
    once each, as the lane's clients use botocore's retries of their own)."""
    return botocore.session.get_session().create_client(
        service,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore_config(1),
    )


@pytest.fixture
def logs() -> Iterator[tuple[Any, Stubber]]:
    c = client("logs")
    with Stubber(c) as stub:
        yield c, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    c = client("s3")
    with Stubber(c) as stub:
        yield c, stub
        stub.assert_no_pending_responses()


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


# --- ExportTasks ---------------------------------------------------------------------------------
CREATE = {
    "taskName": "t",
    "logGroupName": "/g",
    "fromTime": WINDOW.start,
    "to": WINDOW.end,
    "destination": BUCKET,
    "destinationPrefix": "p/g/2023/11/14",
}


def create(tasks: ExportTasks) -> str:
    return tasks.create(
        name="t", group="/g", window=WINDOW, bucket=BUCKET, dest_prefix="p/g/2023/11/14"
    )


def test_create_sends_the_window_and_returns_the_task_id(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response("create_export_task", {"taskId": "tid-1"}, CREATE)
    assert create(ExportTasks(c, c)) == "tid-1"


def test_a_busy_slot_is_slot_busy(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_client_error("create_export_task", "LimitExceededException", "one task at a time", 400)
    with pytest.raises(SlotBusy, match="one task at a time"):
        create(ExportTasks(c, c))


def test_a_throttled_create_proves_nothing_was_made(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_client_error("create_export_task", "ThrottlingException", "slow down", 400)
    with pytest.raises(Throttled) as info:
        create(ExportTasks(c, c))
    assert not isinstance(info.value, AnswerLost)
    assert str(info.value) == "ThrottlingException: slow down"


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_on_create_is_an_answer_lost(logs: tuple[Any, Stubber], status: int) -> None:
    c, stub = logs
    stub.add_client_error("create_export_task", "InternalServerError", "oops", status)
    with pytest.raises(AnswerLost, match="oops"):
        create(ExportTasks(c, c))


def test_a_bucket_that_refuses_logs_names_its_policy(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_client_error(
        "create_export_task",
        "InvalidParameterException",
        "GetBucketAcl call on the given bucket failed. Please check if CloudWatch Logs has "
        "been granted permission to perform this operation.",
        400,
    )
    with pytest.raises(BucketError) as info:
        create(ExportTasks(c, c))
    assert str(info.value) == (
        f"export of /g {WINDOW}: the policy of bucket archive does not let "
        "logs.us-east-1.amazonaws.com write exports (AWS: GetBucketAcl call on the given "
        "bucket failed. Please check if CloudWatch Logs has been granted permission to "
        "perform this operation); run `log-exporter policy --config FILE` for the bucket "
        "policy it needs"
    )
    assert info.value.code == "InvalidParameterException"


def task(task_id: str, code: str, name: str = "t") -> dict[str, Any]:
    return {
        "taskId": task_id,
        "taskName": name,
        "logGroupName": "/g",
        "from": WINDOW.start,
        "to": WINDOW.end,
        "destination": BUCKET,
        "destinationPrefix": "p",
        "status": {"code": code, "message": ""},
        "executionInfo": {"creationTime": 1, "completionTime": 2},
    }


def test_describe_reads_a_task_and_a_missing_one_is_none(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response(
        "describe_export_tasks", {"exportTasks": [task("tid-1", "completed")]}, {"taskId": "tid-1"}
    )
    stub.add_client_error("describe_export_tasks", "ResourceNotFoundException", "gone", 400)
    tasks = ExportTasks(c, c)
    status = tasks.describe("tid-1")
    assert status is not None
    assert (status.task_id, status.code, status.window, status.ended) == (
        "tid-1",
        "COMPLETED",
        WINDOW,
        True,
    )
    assert tasks.describe("tid-2") is None


def test_active_asks_each_status_follows_pages_and_keeps_a_task_once(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": [task("a", "PENDING", "mine")], "nextToken": "n"},
        {"statusCode": "PENDING", "limit": 50},
    )
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": []},
        {"statusCode": "PENDING", "limit": 50, "nextToken": "n"},
    )
    # `a` moved on between the two calls: seen twice, kept once (with its later status)
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": [task("a", "RUNNING", "mine"), task("b", "PENDING", "other")]},
        {"statusCode": "RUNNING", "limit": 50},
    )
    stub.add_response(
        "describe_export_tasks", {"exportTasks": []}, {"statusCode": "PENDING_CANCEL", "limit": 50}
    )
    found = ExportTasks(c, c).active()
    assert [(t.task_id, t.code, t.name) for t in found] == [("a", "RUNNING", "mine")]


def test_cancel(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response("cancel_export_task", {}, {"taskId": "a"})
    stub.add_client_error("cancel_export_task", "InvalidOperationException", "ended", 400)
    stub.add_client_error("cancel_export_task", "AccessDeniedException", "no", 400)
    tasks = ExportTasks(c, c)
    assert tasks.cancel("a") is True
    assert tasks.cancel("b") is False  # had already ended
    with pytest.raises(AccessDeniedError, match=r"^cancelling export task c: access denied: no$"):
        tasks.cancel("c")


# --- LogGroups -----------------------------------------------------------------------------------
def test_matching_follows_pages_and_keeps_what_the_selector_takes(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_response(
        "describe_log_groups",
        {
            "logGroups": [
                {"logGroupName": "/app/a", "creationTime": 5, "storedBytes": 7},
                {"logGroupName": "/app/skip", "creationTime": 6},
            ],
            "nextToken": "n",
        },
        {"logGroupNamePrefix": "/app/"},
    )
    stub.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": "/app/b", "creationTime": 9, "retentionInDays": 30}]},
        {"logGroupNamePrefix": "/app/", "nextToken": "n"},
    )
    groups = LogGroups(c)
    assert groups.matching(GroupSelector(["/app/*"], ["/app/skip"])) == [
        ("/app/a", 5),
        ("/app/b", 9),
    ]
    assert groups.stored_bytes == {"/app/a": 7, "/app/b": 0}
    assert groups.retention_days == {"/app/b": 30}


def probe(token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "logGroupName": "/g",
        "startTime": WINDOW.start,
        "endTime": WINDOW.end,
        "limit": 1,
    }
    return params | ({"nextToken": token} if token else {})


def test_a_window_with_an_event_has_events(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response("filter_log_events", {"events": [], "nextToken": "n"}, probe())
    stub.add_response(
        "filter_log_events",
        {"events": [{"logStreamName": "s", "timestamp": WINDOW.start, "message": "m"}]},
        probe("n"),
    )
    assert LogGroups(c).has_events("/g", WINDOW) is True


def test_a_window_without_events_has_none(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response("filter_log_events", {"events": [], "nextToken": "n"}, probe())
    stub.add_response("filter_log_events", {"events": []}, probe("n"))
    assert LogGroups(c).has_events("/g", WINDOW) is False


def test_a_probe_not_allowed_says_export_it_and_a_gone_group_fails(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_client_error("filter_log_events", "AccessDeniedException", "no", 400)
    stub.add_client_error("filter_log_events", "ResourceNotFoundException", "gone", 400)
    groups = LogGroups(c)
    assert groups.has_events("/g", WINDOW) is True
    with pytest.raises(ResourceNotFoundError, match=r"^probing /g: gone$"):
        groups.has_events("/g", WINDOW)


# --- ArchiveBucket -------------------------------------------------------------------------------
def listing(keys: list[str]) -> dict[str, Any]:
    return {"Contents": [{"Key": k} for k in keys], "IsTruncated": False}


def deletes(keys: list[str]) -> dict[str, Any]:
    return {
        "Bucket": BUCKET,
        "Delete": {"Objects": [{"Key": k} for k in keys], "Quiet": True},
    }


def test_a_task_output_is_deleted_again_where_s3_failed_and_the_marker_goes_last(
    s3: tuple[Any, Stubber],
) -> None:
    c, stub = s3
    folder = "p/g/2023/11/14/tid"
    a, b, marker = f"{folder}/a.gz", f"{folder}/b.gz", f"{folder}/{MARKER}"
    stub.add_response("list_objects_v2", listing([a, marker, b]), {"Bucket": BUCKET, "Prefix": ANY})
    stub.add_response(
        "delete_objects",
        {"Errors": [{"Key": b, "Code": "InternalError", "Message": "try again"}]},
        deletes([a, b]),
    )
    stub.add_response("delete_objects", {}, deletes([b]))
    stub.add_response("delete_objects", {}, deletes([marker]))
    slept: list[float] = []
    assert ArchiveBucket(c, BUCKET, slept.append).delete_task_output("p/g/2023/11/14", "tid") == 3
    assert len(slept) == 1 and 0.1 <= slept[0] <= 0.2  # the first wait of 0.2 s .. 5 s


def test_keys_s3_never_deletes_fail_naming_the_folder(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    key = "p/tid/a.gz"
    stub.add_response("list_objects_v2", listing([key]), {"Bucket": BUCKET, "Prefix": "p/tid/"})
    for _ in range(DELETE_TRIES):
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": key, "Code": "AccessDenied", "Message": "no"}]},
            deletes([key]),
        )
    slept: list[float] = []
    with pytest.raises(BucketError) as info:
        ArchiveBucket(c, BUCKET, slept.append).delete_task_output("p", "tid")
    assert str(info.value) == (
        "cannot delete 1 of the 1 objects of a failed task in s3://archive/p/tid/ after 5 tries "
        "(AccessDenied no); the window is exported again once they are deleted"
    )
    assert len(slept) == DELETE_TRIES - 1


def test_a_missing_object_is_none_and_a_refused_read_a_bucket_error(
    s3: tuple[Any, Stubber],
) -> None:
    c, stub = s3
    stub.add_client_error("get_object", "NoSuchKey", "none", 404)
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    archive = ArchiveBucket(c, BUCKET)
    assert archive.get("k") is None
    with pytest.raises(BucketError, match=r"^cannot read s3://archive/k: An error occurred \("):
        archive.get("k")


# --- StateStore ----------------------------------------------------------------------------------
KEY = f"p/.log-exporter/{ACCOUNT}/{REGION}.json"


def store(c: Any) -> StateStore:
    s = StateStore(c, BUCKET, "p")
    assert s.key(ACCOUNT, REGION) == KEY
    return s


def put(state: LaneState, condition: dict[str, str]) -> dict[str, Any]:
    data = json.dumps(state.to_json(), separators=(",", ":")).encode()
    return {
        "Bucket": BUCKET,
        "Key": KEY,
        "Body": data,
        "ContentType": "application/json",
        **condition,
    }


def test_a_new_state_is_created_only_if_absent_then_written_over_its_etag(
    s3: tuple[Any, Stubber],
) -> None:
    c, stub = s3
    state = LaneState(account_id=ACCOUNT, region=REGION)
    stub.add_response("put_object", {"ETag": '"e1"'}, put(state, {"IfNoneMatch": "*"}))
    stub.add_response("put_object", {"ETag": '"e2"'}, put(state, {"IfMatch": '"e1"'}))
    states = store(c)
    states.save(state)
    assert state.etag == '"e1"'
    states.save(state)
    assert state.etag == '"e2"'


def test_a_412_is_a_conflict_unless_the_object_holds_our_bytes(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    state = LaneState(account_id=ACCOUNT, region=REGION)
    state.etag = '"old"'
    ours = json.dumps(state.to_json(), separators=(",", ":")).encode()
    stub.add_client_error("put_object", "PreconditionFailed", "At least one", 412)
    stub.add_response("get_object", {"Body": body(b"{}"), "ETag": '"theirs"'})
    # our earlier write went through, its answer was lost, and the repeat was refused
    stub.add_client_error("put_object", "PreconditionFailed", "At least one", 412)
    stub.add_response("get_object", {"Body": body(ours), "ETag": '"ours"'})
    states = store(c)
    with pytest.raises(StateConflictError, match="changed by another runner"):
        states.save(state)
    assert state.etag == '"old"'
    states.save(state)
    assert state.etag == '"ours"'


def test_a_missing_state_is_a_new_lane_and_a_corrupt_one_names_the_field(
    s3: tuple[Any, Stubber],
) -> None:
    c, stub = s3
    bad = LaneState(account_id=ACCOUNT, region=REGION).to_json() | {"covered": "all"}
    stub.add_client_error(
        "get_object", "NoSuchKey", "none", 404, expected_params={"Bucket": BUCKET, "Key": KEY}
    )
    stub.add_response("get_object", {"Body": body(json.dumps(bad).encode()), "ETag": '"e"'})
    states = store(c)
    fresh = states.load(ACCOUNT, REGION)
    assert (fresh.account_id, fresh.region, fresh.etag) == (ACCOUNT, REGION, None)
    with pytest.raises(StateUnreadableError) as info:
        states.load(ACCOUNT, REGION, account="prod")
    assert str(info.value).startswith(
        f"s3://archive/{KEY}: not a lane state (covered: Input should be a valid dictionary)"
    )
    assert "--account prod" in str(info.value)
    assert (info.value.key, info.value.etag) == (f"s3://archive/{KEY}", '"e"')


def test_a_refused_state_read_is_a_bucket_error_with_aws_words(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    with pytest.raises(BucketError) as info:
        store(c).load(ACCOUNT, REGION)
    assert str(info.value) == f"cannot read s3://archive/{KEY}: AccessDenied Access Denied"
    assert info.value.code == "AccessDenied"


def test_setting_aside_copies_the_object_read_and_refuses_a_changed_one(
    s3: tuple[Any, Stubber],
) -> None:
    c, stub = s3
    error = StateUnreadableError("bad", key=f"s3://archive/{KEY}", etag='"e"')
    copy = {
        "Bucket": BUCKET,
        "Key": f"{KEY}.corrupt-7",
        "CopySource": {"Bucket": BUCKET, "Key": KEY},
        "CopySourceIfMatch": '"e"',
    }
    stub.add_response("copy_object", {}, copy)
    stub.add_client_error("copy_object", "PreconditionFailed", "changed", 412)
    states = store(c)
    assert states.set_aside(error, 7) == f"s3://archive/{KEY}.corrupt-7"
    with pytest.raises(StateConflictError, match="was changed since it was read"):
        states.set_aside(error, 7)


def test_a_throttled_listing_is_throttled_and_other_errors_name_the_call(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_client_error("describe_log_groups", "ThrottlingException", "Rate exceeded", 400)
    stub.add_client_error("describe_log_groups", "InvalidParameterException", "bad prefix", 400)
    groups = LogGroups(c)
    with pytest.raises(Throttled):
        groups.matching(GroupSelector(["*"]))
    with pytest.raises(AWSError) as info:
        groups.matching(GroupSelector(["*"]))
    assert str(info.value) == "listing log groups: InvalidParameterException: bad prefix"
