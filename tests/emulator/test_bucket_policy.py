"""The emulator's optional bucket-policy enforcement (emulator/policy.py): CreateExportTask and a
running task's writes are refused, as AWS refuses them, unless the archive bucket's policy lets
`logs.<region>.amazonaws.com` in for the task's account."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator, seed
from emulator.policy import GET_BUCKET_ACL_FAILED, PUT_OBJECT_FAILED, decide

from .conftest import Aws

A, B = "111111111111", "222222222222"
REGION = "us-east-1"
DAY = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
END = DAY + 86_400_000 - 1
BUCKET = "policy-archive"


def statement(sid: str, action: str, resource: str, accounts: list[str], **cond: Any) -> Any:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
        "Action": action,
        "Resource": resource,
        "Condition": {
            "StringEquals": {"aws:SourceAccount": accounts, **cond},
            "ArnLike": {
                "aws:SourceArn": [f"arn:aws:logs:{REGION}:{a}:log-group:*" for a in accounts]
            },
        },
    }


def allow(accounts: list[str], prefix: str = "exports") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            statement("Acl", "s3:GetBucketAcl", f"arn:aws:s3:::{BUCKET}", accounts),
            statement(
                "Put",
                "s3:PutObject",
                f"arn:aws:s3:::{BUCKET}/{prefix}/*",
                accounts,
                **{"s3:x-amz-acl": "bucket-owner-full-control"},
            ),
        ],
    }


@pytest.fixture
def world(emu: Emulator) -> None:
    seed.create_bucket(BUCKET, REGION)  # owned by the ambient (archive) account
    for account in (A, B):
        seed.put_events(account, REGION, "/app/web", "s", [(DAY + 1, "a"), (END, "b")])


def set_policy(aws: Aws, document: dict[str, Any] | None) -> None:
    s3 = aws.client("s3", seed.DEFAULT_ACCOUNT)
    if document is None:
        s3.delete_bucket_policy(Bucket=BUCKET)
    else:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))


def create(aws: Aws, account: str, prefix: str = "exports/x") -> str:
    logs = aws.client("logs", account)
    task_id: str = logs.create_export_task(
        logGroupName="/app/web",
        fromTime=DAY,
        to=END,
        destination=BUCKET,
        destinationPrefix=prefix,
    )["taskId"]
    return task_id


def wait_done(emu: Emulator, task_id: str) -> str:
    deadline = time.monotonic() + 5
    while emu.task(task_id).active:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return emu.task(task_id).status


def test_off_by_default_no_policy_needed(emu: Emulator, aws: Aws, world: None) -> None:
    assert emu.require_bucket_policy is False
    assert wait_done(emu, create(aws, A)) == "COMPLETED"


def test_create_is_refused_with_awss_message_without_a_policy(
    emu: Emulator, aws: Aws, world: None
) -> None:
    emu.require_bucket_policy = True
    with pytest.raises(ClientError) as info:
        create(aws, A)
    err = info.value.response["Error"]
    assert (err["Code"], err["Message"]) == ("InvalidParameterException", GET_BUCKET_ACL_FAILED)
    assert emu.tasks == []
    assert seed.read_archive(BUCKET) == []


def test_policy_admits_only_its_accounts_and_prefix(emu: Emulator, aws: Aws, world: None) -> None:
    emu.require_bucket_policy = True
    set_policy(aws, allow([A]))

    assert wait_done(emu, create(aws, A)) == "COMPLETED"
    for account, prefix in ((B, "exports/x"), (A, "elsewhere/x")):
        with pytest.raises(ClientError) as info:
            create(aws, account, prefix)
        assert info.value.response["Error"]["Message"] == GET_BUCKET_ACL_FAILED
    assert [t.account_id for t in emu.tasks] == [A]


def test_re_evaluated_on_every_create(emu: Emulator, aws: Aws, world: None) -> None:
    emu.require_bucket_policy = True
    set_policy(aws, allow([A, B]))
    assert wait_done(emu, create(aws, A)) == "COMPLETED"
    set_policy(aws, None)
    with pytest.raises(ClientError):
        create(aws, A)
    set_policy(aws, allow([A]))
    assert wait_done(emu, create(aws, A)) == "COMPLETED"


def test_running_task_fails_when_the_policy_goes_away(emu: Emulator, aws: Aws, world: None) -> None:
    emu.require_bucket_policy = True
    emu.task_timing(pending=0.05, base=1.0)
    set_policy(aws, allow([A]))
    task_id = create(aws, A)
    seed.create_bucket(BUCKET, REGION).policy = None  # at once, long before the task writes
    assert emu.task(task_id).active

    assert wait_done(emu, task_id) == "FAILED"
    assert emu.task(task_id).message == PUT_OBJECT_FAILED
    assert emu.task(task_id).objects == []


def test_reset_turns_enforcement_off(emu: Emulator, aws: Aws, world: None) -> None:
    emu.require_bucket_policy = True
    emu.reset(aws=False)
    assert emu.require_bucket_policy is False


SERVICE = f"logs.{REGION}.amazonaws.com"
CTX = {"aws:SourceAccount": A, "aws:SourceArn": f"arn:aws:logs:{REGION}:{A}:log-group:/app/web"}


@pytest.mark.parametrize(
    ("document", "action", "context", "expected"),
    [
        (None, "s3:GetBucketAcl", CTX, "implicit-deny"),
        (allow([A]), "s3:GetBucketAcl", CTX, "allow"),
        (allow([A]), "s3:getbucketacl", CTX, "allow"),  # actions ignore case
        (allow([B]), "s3:GetBucketAcl", CTX, "implicit-deny"),
        (allow([A]), "s3:GetBucketAcl", {"aws:SourceAccount": A}, "implicit-deny"),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:Get*",
                    "Resource": "*",
                }
            },
            "s3:GetBucketAcl",
            {},
            "allow",
        ),
        (
            {
                "Statement": [
                    *allow([A])["Statement"],
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:*",
                        "Resource": "*",
                    },
                ]
            },
            "s3:GetBucketAcl",
            CTX,
            "deny",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": SERVICE},
                    "NotAction": "s3:Delete*",
                    "Resource": "arn:aws:s3:::policy-archive",
                    "Condition": {"StringNotEqualsIfExists": {"aws:SourceAccount": B}},
                }
            },
            "s3:GetBucketAcl",
            CTX,
            "allow",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": "arn:aws:s3:::policy-archive",
                }
            },
            "s3:GetBucketAcl",
            CTX,
            "implicit-deny",
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": SERVICE},
                    "Action": "s3:GetBucketAcl",
                    "Resource": "arn:aws:s3:::policy-archive",
                    "Condition": {"NumericLessThan": {"aws:SourceAccount": "5"}},
                }
            },
            "s3:GetBucketAcl",
            CTX,
            "implicit-deny",  # an operator the double does not evaluate never grants
        ),
    ],
)
def test_decide(
    document: dict[str, Any] | None, action: str, context: dict[str, str], expected: str
) -> None:
    got = decide(
        document,
        service=SERVICE,
        action=action,
        resource=f"arn:aws:s3:::{BUCKET}",
        context=context,
    )
    assert got == expected


def test_the_generated_policy_lets_each_account_write_only_its_own_folder(
    emu: Emulator, aws: Aws, world: None
) -> None:
    from log_exporter.core.policy import Target, bucket_policy

    emu.require_bucket_policy = True
    set_policy(aws, bucket_policy(BUCKET, "exports", [Target(A, REGION), Target(B, REGION)]))

    own = {account: create(aws, account, f"exports/{account}/web") for account in (A, B)}
    with pytest.raises(ClientError) as info:
        create(aws, A, f"exports/{B}/web")  # A's export into B's folder
    assert info.value.response["Error"]["Message"] == GET_BUCKET_ACL_FAILED

    assert {a: wait_done(emu, t) for a, t in own.items()} == {A: "COMPLETED", B: "COMPLETED"}
    assert [t.account_id for t in emu.tasks] == [A, B]
    for task in emu.tasks:
        assert task.objects, task
        assert all(key.startswith(f"exports/{task.account_id}/") for key in task.objects)


VARIABLE_FOLDER = {
    "Statement": {
        "Effect": "Allow",
        "Principal": {"Service": SERVICE},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/x/${{aws:SourceAccount}}/*",
    }
}


@pytest.mark.parametrize(
    ("key", "context", "expected"),
    [
        (f"x/{A}/k", CTX, "allow"),
        (f"x/{B}/k", CTX, "implicit-deny"),  # another account's folder
        (f"x/{A}/k", {}, "implicit-deny"),  # a request without the key matches nothing
        ("x/${aws:SourceAccount}/k", CTX, "implicit-deny"),  # the variable is not literal text
    ],
)
def test_decide_fills_policy_variables_in_resources(
    key: str, context: dict[str, str], expected: str
) -> None:
    got = decide(
        VARIABLE_FOLDER,
        service=SERVICE,
        action="s3:PutObject",
        resource=f"arn:aws:s3:::{BUCKET}/{key}",
        context=context,
    )
    assert got == expected


def test_statements_for_the_logs_service_do_not_judge_the_owners_own_requests(
    emu: Emulator, aws: Aws, world: None
) -> None:
    from log_exporter.core.policy import Target, bucket_policy

    emu.require_bucket_policy = True
    document = bucket_policy(BUCKET, "exports", [Target(A, REGION)])  # with its Deny on no ACL
    set_policy(aws, document)
    s3 = aws.client("s3", seed.DEFAULT_ACCOUNT)

    s3.put_object(Bucket=BUCKET, Key="exports/.log-exporter/x.json", Body=b"{}")  # no ACL

    assert s3.get_object(Bucket=BUCKET, Key="exports/.log-exporter/x.json")["Body"].read() == b"{}"
    denied = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/exports/*",
    }
    set_policy(aws, {**document, "Statement": [*document["Statement"], denied]})
    with pytest.raises(ClientError):  # a statement for everyone still applies to the owner
        s3.put_object(Bucket=BUCKET, Key="exports/.log-exporter/y.json", Body=b"{}")
