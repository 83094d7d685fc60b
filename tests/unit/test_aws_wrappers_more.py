"""The AWS wrappers the read-only commands and the Lambda use (log groups' sizes and retention,
export tasks found by id or recently completed, the archive's listings, sizes, tags and policy,
CloudWatch's IncomingBytes, the SQS queue, a config object in S3) over real botocore clients and
botocore's Stubber: the exact requests, and what each answer or error becomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from log_exporter.aws.archive import ArchiveBucket, head_bucket_region
from log_exporter.aws.config_object import read_config_object
from log_exporter.aws.errors import REFUSALS, Throttled
from log_exporter.aws.glue import put_table
from log_exporter.aws.groups import LogGroups
from log_exporter.aws.metrics import LogMetrics
from log_exporter.aws.queue import Queue
from log_exporter.aws.tasks import ExportTasks
from log_exporter.core.config import GroupSelector
from log_exporter.errors import AccessDeniedError, AWSError, BucketError, ConfigError

from .test_aws_wrappers import BUCKET, body, client, logs, s3, task

__all__ = ["logs", "s3"]  # the fixtures, shared with test_aws_wrappers

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/lanes"


def stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    c = client(service)
    with Stubber(c) as stub:
        yield c, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def cloudwatch() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed("cloudwatch")


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed("sqs")


@pytest.fixture
def glue() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed("glue")


# --- LogGroups -----------------------------------------------------------------------------------
def test_stored_lists_each_prefix_and_keeps_the_selected_groups_by_name(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_response(
        "describe_log_groups",
        {
            "logGroups": [
                {"logGroupName": "/app/z", "storedBytes": 7},
                {"logGroupName": "/app/skip", "storedBytes": 1},
            ],
            "nextToken": "n",
        },
        {"logGroupNamePrefix": "/app/"},
    )
    stub.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": "/app/a"}]},
        {"logGroupNamePrefix": "/app/", "nextToken": "n"},
    )
    stored = LogGroups(c).stored(GroupSelector(["/app/*"], ["/app/skip"]))
    assert list(stored.items()) == [("/app/a", 0), ("/app/z", 7)]


def test_stored_maps_a_refusal(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_client_error("describe_log_groups", "AccessDeniedException", "no", 400)
    with pytest.raises(AccessDeniedError) as info:
        LogGroups(c).stored(GroupSelector(["*"]))
    assert str(info.value) == "listing log groups: access denied: no"


def test_set_retention_puts_the_policy_and_a_refusal_is_mapped(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response("put_retention_policy", {}, {"logGroupName": "/app/a", "retentionInDays": 30})
    stub.add_client_error("put_retention_policy", "AccessDeniedException", "not allowed", 400)
    stub.add_client_error("put_retention_policy", "ThrottlingException", "slow down", 400)
    groups = LogGroups(c)
    groups.set_retention("/app/a", 30)
    with pytest.raises(AccessDeniedError) as info:
        groups.set_retention("/app/b", 90)
    assert str(info.value) == "setting the retention of /app/b: access denied: not allowed"
    with pytest.raises(REFUSALS) as refused:  # what `retention` reports per group
        groups.set_retention("/app/b", 90)
    assert isinstance(refused.value, Throttled)


# --- ExportTasks ---------------------------------------------------------------------------------
def test_find_lists_every_task_until_all_wanted_are_found(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": [task("a", "COMPLETED"), task("x", "FAILED")], "nextToken": "n"},
        {"limit": 50},
    )
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": [task("b", "RUNNING")], "nextToken": "m"},
        {"limit": 50, "nextToken": "n"},
    )
    # no third call: both were found
    found = ExportTasks(c, c).find({"a", "b"})
    assert {k: v.code for k, v in found.items()} == {"a": "COMPLETED", "b": "RUNNING"}


def test_find_stops_at_the_last_page_and_maps_a_refusal(logs: tuple[Any, Stubber]) -> None:
    c, stub = logs
    stub.add_response(
        "describe_export_tasks", {"exportTasks": [task("a", "COMPLETED")]}, {"limit": 50}
    )
    stub.add_client_error("describe_export_tasks", "InvalidParameterException", "bad", 400)
    tasks = ExportTasks(c, c)
    assert list(tasks.find({"a", "gone"})) == ["a"]
    with pytest.raises(AWSError) as info:
        tasks.find({"a"})
    assert str(info.value) == "listing export tasks: InvalidParameterException: bad"


def test_recently_completed_asks_once_and_gives_none_when_throttled(
    logs: tuple[Any, Stubber],
) -> None:
    c, stub = logs
    stub.add_response(
        "describe_export_tasks",
        {"exportTasks": [task("a", "COMPLETED", "log-exporter-a")]},
        {"statusCode": "COMPLETED", "limit": 20},
    )
    stub.add_client_error("describe_export_tasks", "ThrottlingException", "slow down", 400)
    stub.add_client_error("describe_export_tasks", "AccessDeniedException", "no", 400)
    tasks = ExportTasks(c, c)
    [done] = tasks.recently_completed(20)
    assert (done.name, done.created_ms, done.completed_ms) == ("log-exporter-a", 1, 2)
    assert tasks.recently_completed() == []
    with pytest.raises(AccessDeniedError, match=r"^listing completed export tasks: access denied"):
        tasks.recently_completed()


# --- ArchiveBucket -------------------------------------------------------------------------------
def obj(key: str, size: int = 1) -> dict[str, Any]:
    return {"Key": key, "Size": size, "LastModified": datetime(2026, 1, 2, tzinfo=UTC)}


def test_listing_keeps_s3s_order_over_pages(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "list_objects_v2",
        {"Contents": [obj("p/b"), obj("p/c")], "IsTruncated": True, "NextContinuationToken": "t"},
        {"Bucket": BUCKET, "Prefix": "p/"},
    )
    stub.add_response(
        "list_objects_v2",
        {"Contents": [obj("p/d")], "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": "p/", "ContinuationToken": "t"},
    )
    stub.add_client_error("list_objects_v2", "AccessDenied", "no", 403)
    archive = ArchiveBucket(c, BUCKET)
    assert archive.listing("p/") == ["p/b", "p/c", "p/d"]
    with pytest.raises(BucketError, match=r"^cannot list s3://archive/p/: .*AccessDenied"):
        archive.listing("p/")


def test_sizes_count_objects_and_bytes_without_the_probe_object(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "list_objects_v2",
        {
            "Contents": [
                obj("d/t/s/000000.gz", 10),
                obj("d/aws-logs-write-test", 5),
                obj("d/t/s/000001.gz", 32),
            ]
        },
        {"Bucket": BUCKET, "Prefix": "d/"},
    )
    assert ArchiveBucket(c, BUCKET).sizes("d/") == (2, 42)


def test_page_is_one_list_after_a_key(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "list_objects_v2",
        {"Contents": [obj("r/a")], "IsTruncated": True},
        {"Bucket": BUCKET, "Prefix": "r/", "MaxKeys": 1},
    )
    stub.add_response(
        "list_objects_v2",
        {"IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": "r/", "MaxKeys": 1, "StartAfter": "r/a"},
    )
    archive = ArchiveBucket(c, BUCKET)
    modified = int(datetime(2026, 1, 2, tzinfo=UTC).timestamp() * 1000)
    assert archive.page("r/", 1) == ([("r/a", modified)], True)
    assert archive.page("r/", 1, "r/a") == ([], False)


def test_tags_by_key_and_a_refusal(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "get_object_tagging",
        {"TagSet": [{"Key": "LastExport", "Value": "2026-01-01"}, {"Key": "x", "Value": "y"}]},
        {"Bucket": BUCKET, "Key": "m"},
    )
    stub.add_client_error("get_object_tagging", "AccessDenied", "no", 403)
    archive = ArchiveBucket(c, BUCKET)
    assert archive.tags("m") == {"LastExport": "2026-01-01", "x": "y"}
    with pytest.raises(BucketError, match=r"^cannot read the tags of s3://archive/m: "):
        archive.tags("m")


def test_policy_parsed_none_or_unreadable(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    policy = {"Version": "2012-10-17", "Statement": []}
    stub.add_response("get_bucket_policy", {"Policy": json.dumps(policy)}, {"Bucket": BUCKET})
    stub.add_client_error("get_bucket_policy", "NoSuchBucketPolicy", "none", 404)
    stub.add_response("get_bucket_policy", {"Policy": "[]"}, {"Bucket": BUCKET})
    stub.add_client_error("get_bucket_policy", "AccessDenied", "Access Denied", 403)
    stub.add_response("get_bucket_policy", {"Policy": "{not json"}, {"Bucket": BUCKET})
    archive = ArchiveBucket(c, BUCKET)
    assert archive.policy() == policy
    assert archive.policy() is None
    assert archive.policy() is None  # not an object: as good as none
    with pytest.raises(BucketError) as info:
        archive.policy()
    assert str(info.value) == "cannot read the bucket policy (AccessDenied: Access Denied)"
    with pytest.raises(BucketError, match=r"^cannot read the bucket policy \(Expecting"):
        archive.policy()


# --- LogMetrics ----------------------------------------------------------------------------------
def query(qid: str, group: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Logs",
                "MetricName": "IncomingBytes",
                "Dimensions": [{"Name": "LogGroupName", "Value": group}],
            },
            "Period": 86_400,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }


def test_incoming_bytes_per_day_over_pages(cloudwatch: tuple[Any, Stubber]) -> None:
    c, stub = cloudwatch
    start = datetime(2026, 1, 1, tzinfo=UTC)
    asked = {
        "MetricDataQueries": [query("g0", "/a"), query("g1", "/b")],
        "StartTime": start,
        "EndTime": datetime(2026, 1, 3, tzinfo=UTC),
        "ScanBy": "TimestampAscending",
    }
    stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": "g0", "Timestamps": [start], "Values": [10.4]},
                {"Id": "other", "Timestamps": [start], "Values": [99.0]},
            ],
            "NextToken": "n",
        },
        asked,
    )
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [{"Id": "g0", "Timestamps": [start], "Values": [2.0]}]},
        {**asked, "NextToken": "n"},
    )
    stub.add_client_error("get_metric_data", "AccessDenied", "no", 403)
    metrics = LogMetrics(c)
    out = metrics.incoming_bytes(["/a", "/b"], date(2026, 1, 1), date(2026, 1, 2))
    assert out == {"/a": {date(2026, 1, 1): 12}, "/b": {}}
    with pytest.raises(
        AccessDeniedError, match=r"^reading the IncomingBytes metric: access denied"
    ):
        metrics.incoming_bytes(["/a"], date(2026, 1, 1), date(2026, 1, 1))


# --- Glue ----------------------------------------------------------------------------------------
def test_put_table_a_refused_database_creation_names_it(glue: tuple[Any, Stubber]) -> None:
    c, stub = glue
    stub.add_client_error("get_database", "EntityNotFoundException", "none")
    stub.add_client_error("create_database", "AccessDeniedException", "not allowed")
    with pytest.raises(AWSError) as info:
        put_table(c, "logs", {"Name": "archive"})
    assert str(info.value) == (
        "cannot create Glue database logs: AccessDeniedException not allowed"
    )
    assert info.value.code == "AccessDeniedException"


# --- Queue ---------------------------------------------------------------------------------------
def test_send_and_a_refused_send(sqs: tuple[Any, Stubber]) -> None:
    c, stub = sqs
    stub.add_response("send_message", {}, {"QueueUrl": URL, "MessageBody": "{}", "DelaySeconds": 5})
    stub.add_client_error("send_message", "AccessDenied", "no", 403)
    queue = Queue(c, URL)
    queue.send("{}", 5, "lane prod/us-east-1")
    with pytest.raises(AWSError, match=f"^cannot send lane prod/us-east-1 to {URL}: .*no$"):
        queue.send("{}", 0, "lane prod/us-east-1")


def test_send_batch_returns_what_sqs_did_not_take(sqs: tuple[Any, Stubber]) -> None:
    c, stub = sqs
    entries = [{"Id": "0", "MessageBody": "a"}, {"Id": "1", "MessageBody": "b"}]
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "Internal", "Message": "x"}],
        },
        {"QueueUrl": URL, "Entries": entries},
    )
    stub.add_client_error("send_message_batch", "AccessDenied", "no", 403)
    queue = Queue(c, URL)
    assert queue.send_batch(["a", "b"], "lanes") == [(1, "Internal x")]
    with pytest.raises(AWSError, match=f"^cannot send lanes to {URL}: "):
        queue.send_batch(["a"], "lanes")


# --- a config object in S3 -----------------------------------------------------------------------
def test_read_config_object_or_a_config_error(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "get_object", {"Body": body(b"accounts: []\n")}, {"Bucket": "cfg", "Key": "c.yml"}
    )
    stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
    assert read_config_object(lambda: c, "cfg", "c.yml") == b"accounts: []\n"
    with pytest.raises(ConfigError) as info:
        read_config_object(lambda: c, "cfg", "c.yml")
    assert str(info.value) == (
        "s3://cfg/c.yml: cannot be read: NoSuchKey The specified key does not exist."
    )


# --- reading the archive back, and the bucket's region ---------------------------------------------
def test_keys_read_back_and_read_fail_as_bucket_errors(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "list_objects_v2",
        {"Contents": [obj("f/b"), obj("f/a")]},
        {"Bucket": BUCKET, "Prefix": "f/"},
    )
    stub.add_client_error("list_objects_v2", "AccessDenied", "no", 403)
    stub.add_response("get_object", {"Body": body(b"gz")}, {"Bucket": BUCKET, "Key": "f/a"})
    stub.add_client_error("get_object", "NoSuchKey", "gone", 404)
    archive = ArchiveBucket(c, BUCKET)
    assert archive.keys_read_back("f/") == ["f/b", "f/a"]  # S3's order, as answered
    with pytest.raises(BucketError, match=r"^cannot list s3://archive/f/: "):
        archive.keys_read_back("f/")
    assert archive.read("f/a") == b"gz"
    with pytest.raises(BucketError, match=r"^cannot read s3://archive/f/a: .*NoSuchKey"):
        archive.read("f/a")


def test_keys_read_back_a_call_without_answer_is_a_bucket_error() -> None:
    class Unanswered:
        def get_paginator(self, name: str) -> Any:
            raise EndpointConnectionError(endpoint_url="https://s3")

    archive = ArchiveBucket(Unanswered(), BUCKET)  # type: ignore[arg-type]
    with pytest.raises(BucketError, match=r"^cannot list s3://archive/f/: Could not connect"):
        archive.keys_read_back("f/")
    with pytest.raises(EndpointConnectionError):  # the lane's listing lets botocore's go up
        archive.listing("f/")


def test_head_bucket_region(s3: tuple[Any, Stubber]) -> None:
    c, stub = s3
    stub.add_response(
        "head_bucket",
        {"BucketRegion": "eu-west-1", "ResponseMetadata": {"HTTPHeaders": {}}},
        {"Bucket": BUCKET},
    )
    stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    stub.add_client_error("head_bucket", "404", "Not Found", 404)
    assert head_bucket_region(lambda: c, BUCKET) == "eu-west-1"
    assert head_bucket_region(lambda: c, BUCKET) is None
    with pytest.raises(BucketError) as info:
        head_bucket_region(lambda: c, BUCKET)
    assert str(info.value) == "archive bucket archive does not exist"
