"""The policies log-exporter prints, and its check of what a bucket policy grants (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from log_exporter.core.config import parse_config
from log_exporter.core.policy import (
    BUCKET_POLICY_ACCOUNTS,
    BUCKET_POLICY_LIMIT,
    MEMBER_ACCOUNT_ACTIONS,
    MEMBER_LOG_GROUP_ACTIONS,
    Target,
    bucket_policy,
    bucket_policy_text,
    export_refusals,
    grants,
    group_arn_patterns,
    member_role_policy,
    runner_policy,
)
from log_exporter.errors import ConfigError

A, B = "111111111111", "222222222222"
BUCKET = "custodian-log-archive"


def config(**account: Any) -> Any:
    acct = {
        "name": "prod",
        "role": ["arn:aws:iam::999999999999:role/Hub", f"arn:aws:iam::{A}:role/LogExporter"],
        "regions": ["us-east-1", "eu-west-1"],
        "groups": ["/aws/lambda/*", "vpc-flow-logs"],
        **account,
    }
    return parse_config({"destination": {"bucket": BUCKET, "prefix": "logs"}, "accounts": [acct]})


def actions(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for st in document["Statement"]:
        out += st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
    return out


TARGETS = [Target(A, "us-east-1"), Target(A, "eu-west-1"), Target(B, "us-east-1")]


def test_bucket_policy_admits_the_logs_service_of_each_account_into_its_own_folder() -> None:
    doc = bucket_policy(BUCKET, "logs", TARGETS)

    allow, deny = doc["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Action"] == ["s3:GetBucketAcl", "s3:PutObject"]
    assert allow["Resource"] == [
        f"arn:aws:s3:::{BUCKET}",
        f"arn:aws:s3:::{BUCKET}/logs/${{aws:SourceAccount}}/*",
    ]
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": [A, B]},
        "ArnLike": {
            "aws:SourceArn": [
                "arn:aws:logs:eu-west-1:*:log-group:*",
                "arn:aws:logs:us-east-1:*:log-group:*",
            ]
        },
    }
    assert deny == {
        "Sid": "CloudWatchLogsExportsOwnedByBucketOwner",
        "Effect": "Deny",
        "Principal": allow["Principal"],
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/logs/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
    }
    assert allow["Principal"] == {
        "Service": ["logs.eu-west-1.amazonaws.com", "logs.us-east-1.amazonaws.com"]
    }


def test_bucket_policy_without_prefix_and_with_one_target() -> None:
    doc = bucket_policy(BUCKET, "", [Target(A, "us-east-1")])
    allow, deny = doc["Statement"]
    assert allow["Resource"][1] == f"arn:aws:s3:::{BUCKET}/${{aws:SourceAccount}}/*"
    assert deny["Resource"] == f"arn:aws:s3:::{BUCKET}/*"
    assert allow["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": A}
    with pytest.raises(ValueError):
        bucket_policy(BUCKET, "", [])


def many(count: int) -> list[Target]:
    return [Target(f"{100000000000 + 7919 * i:012d}", "us-east-1") for i in range(count)]


def test_the_bucket_policy_of_a_thousand_accounts_fits_in_s3s_limit() -> None:
    targets = many(1000)

    text = bucket_policy_text(BUCKET, "logs", targets)

    assert len(text.encode()) < BUCKET_POLICY_LIMIT == 20_480
    doc = json.loads(text)
    assert doc == bucket_policy(BUCKET, "logs", targets)
    assert len(doc["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"]) == 1000
    # every account may write its own folder, none another's
    for t in (targets[0], targets[999]):
        assert export_refusals(doc, BUCKET, "logs", t) == []
    first, last = targets[0].account_id, targets[999].account_id
    key = f"arn:aws:s3:::{BUCKET}/logs/{last}/g/2026/11/01/t/s/000000.gz"
    context = {**ctx(first), **OWNER}
    assert not grants(
        doc,
        service="logs.us-east-1.amazonaws.com",
        action="s3:PutObject",
        resource=key,
        context=context,
    )


def test_a_small_policy_is_indented_and_one_over_the_limit_is_refused_naming_it() -> None:
    assert bucket_policy_text(BUCKET, "logs", TARGETS) == json.dumps(
        bucket_policy(BUCKET, "logs", TARGETS), indent=2
    )
    assert len(bucket_policy_text(BUCKET, "logs", many(BUCKET_POLICY_ACCOUNTS)).encode()) <= (
        BUCKET_POLICY_LIMIT
    )
    with pytest.raises(ConfigError) as info:
        bucket_policy_text(BUCKET, "logs", many(1400))
    assert str(info.value).startswith("the bucket policy for 1400 accounts is ")
    assert "over S3's limit of 20,480 bytes (about 1,300 accounts fit)" in str(info.value)


@pytest.mark.parametrize(
    ("patterns", "region", "expected"),
    [
        (
            ["/aws/lambda/*"],
            "us-east-1",
            [f"arn:aws:logs:us-east-1:{A}:log-group:/aws/lambda/*"],
        ),
        (
            ["vpc-flow-logs"],
            "eu-west-1",
            [
                f"arn:aws:logs:eu-west-1:{A}:log-group:vpc-flow-logs",
                f"arn:aws:logs:eu-west-1:{A}:log-group:vpc-flow-logs:*",
            ],
        ),
        (
            ["app-?", "svc-[ab]x"],
            "us-east-1",
            [
                f"arn:aws:logs:us-east-1:{A}:log-group:app-?",
                f"arn:aws:logs:us-east-1:{A}:log-group:app-?:*",
                f"arn:aws:logs:us-east-1:{A}:log-group:svc-*x",
                f"arn:aws:logs:us-east-1:{A}:log-group:svc-*x:*",
            ],
        ),
        (
            ["/aws/lambda/*", "re:vpc-.*"],
            "us-east-1",
            [f"arn:aws:logs:us-east-1:{A}:log-group:*"],
        ),
        (
            ["x"],
            "cn-north-1",
            [
                f"arn:aws-cn:logs:cn-north-1:{A}:log-group:x",
                f"arn:aws-cn:logs:cn-north-1:{A}:log-group:x:*",
            ],
        ),
    ],
)
def test_group_arn_patterns(patterns: list[str], region: str, expected: list[str]) -> None:
    assert group_arn_patterns(patterns, A, region) == expected


def test_member_role_policy_names_each_action_it_uses() -> None:
    cfg = config()
    doc = member_role_policy(cfg.accounts[0], A, ["us-east-1", "eu-west-1"], BUCKET, "logs")

    groups, account_wide, put = doc["Statement"]
    assert groups["Action"] == [
        "logs:CreateExportTask",
        "logs:DescribeLogStreams",
        "logs:FilterLogEvents",
    ]
    assert groups["Resource"] == [
        f"arn:aws:logs:eu-west-1:{A}:log-group:/aws/lambda/*",
        f"arn:aws:logs:eu-west-1:{A}:log-group:vpc-flow-logs",
        f"arn:aws:logs:eu-west-1:{A}:log-group:vpc-flow-logs:*",
        f"arn:aws:logs:us-east-1:{A}:log-group:/aws/lambda/*",
        f"arn:aws:logs:us-east-1:{A}:log-group:vpc-flow-logs",
        f"arn:aws:logs:us-east-1:{A}:log-group:vpc-flow-logs:*",
    ]
    assert account_wide["Action"] == [
        "logs:CancelExportTask",
        "logs:DescribeExportTasks",
        "logs:DescribeLogGroups",
    ]
    assert put == {
        "Sid": "WriteExportsToArchive",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/logs/{A}/*",  # not .log-exporter/, nor B's folder
    }
    assert set(actions(doc)) == {*MEMBER_LOG_GROUP_ACTIONS, *MEMBER_ACCOUNT_ACTIONS, "s3:PutObject"}


def test_runner_policy_covers_the_archive_and_the_first_hop_of_each_chain() -> None:
    doc = runner_policy(config())
    bucket, objects, assume = doc["Statement"]
    assert bucket["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert objects["Resource"] == f"arn:aws:s3:::{BUCKET}/logs/*"
    assert assume == {
        "Sid": "AssumeMemberRoles",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": "arn:aws:iam::999999999999:role/Hub",
    }
    no_role = runner_policy(config(role=None))
    assert [s["Sid"] for s in no_role["Statement"]] == ["ArchiveBucket", "ArchiveObjects"]


def test_no_policy_grants_a_wildcard_action() -> None:
    cfg = config()
    docs = [
        bucket_policy(BUCKET, "logs", TARGETS),
        member_role_policy(cfg.accounts[0], A, ["us-east-1"], BUCKET, "logs"),
        runner_policy(cfg),
    ]
    for doc in docs:
        json.dumps(doc)  # serialisable as printed
        for action in actions(doc):
            assert "*" not in action and "?" not in action, action


# --- what a bucket policy grants -----------------------------------------------------------------

OURS = bucket_policy(BUCKET, "logs", TARGETS)
ACL = f"arn:aws:s3:::{BUCKET}"
KEY = f"arn:aws:s3:::{BUCKET}/logs/{A}/app/2026/11/01/aws-logs-write-test"


def ctx(account: str = A, region: str = "us-east-1", **more: str) -> dict[str, str]:
    return {
        "aws:SourceAccount": account,
        "aws:SourceArn": f"arn:aws:logs:{region}:{account}:log-group:/app",
        **more,
    }


OWNER = {"s3:x-amz-acl": "bucket-owner-full-control"}


@pytest.mark.parametrize(
    ("document", "service", "action", "resource", "context", "expected"),
    [
        (OURS, "logs.us-east-1.amazonaws.com", "s3:GetBucketAcl", ACL, ctx(), True),
        (OURS, "logs.us-east-1.amazonaws.com", "s3:PutObject", KEY, ctx(**OWNER), True),
        (
            OURS,
            "logs.eu-west-1.amazonaws.com",
            "s3:PutObject",
            KEY,
            ctx(A, "eu-west-1", **OWNER),
            True,
        ),
        # the ACL condition, another account, another region, another prefix, another service
        (OURS, "logs.us-east-1.amazonaws.com", "s3:PutObject", KEY, ctx(), False),
        (OURS, "logs.us-east-1.amazonaws.com", "s3:GetBucketAcl", ACL, ctx("333333333333"), False),
        (
            OURS,
            "logs.ap-south-1.amazonaws.com",
            "s3:GetBucketAcl",
            ACL,
            ctx(B, "ap-south-1"),
            False,
        ),
        # one account's export into another account's folder; a request without the account
        (OURS, "logs.us-east-1.amazonaws.com", "s3:PutObject", KEY, ctx(B, **OWNER), False),
        (
            OURS,
            "logs.us-east-1.amazonaws.com",
            "s3:PutObject",
            KEY.replace(f"/logs/{A}/", f"/logs/{B}/"),
            ctx(B, **OWNER),
            True,
        ),
        (
            OURS,
            "logs.us-east-1.amazonaws.com",
            "s3:PutObject",
            KEY,
            {"aws:SourceArn": ctx()["aws:SourceArn"], **OWNER},
            False,
        ),
        (
            OURS,
            "logs.us-east-1.amazonaws.com",
            "s3:PutObject",
            f"{ACL}/other/x",
            ctx(**OWNER),
            False,
        ),
        (OURS, "delivery.logs.amazonaws.com", "s3:GetBucketAcl", ACL, ctx(), False),
        (OURS, "logs.us-east-1.amazonaws.com", "s3:DeleteObject", KEY, ctx(), False),
        (None, "logs.us-east-1.amazonaws.com", "s3:GetBucketAcl", ACL, ctx(), False),
        ({}, "logs.us-east-1.amazonaws.com", "s3:GetBucketAcl", ACL, ctx(), False),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "S3:Get*",
                    "Resource": "*",
                }
            },
            "logs.us-east-1.amazonaws.com",
            "s3:GetBucketAcl",
            ACL,
            {},
            True,
        ),
        (
            {
                "Statement": [
                    *OURS["Statement"],
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:*",
                        "Resource": [ACL, f"{ACL}/*"],
                        "Condition": {"StringNotEquals": {"aws:SourceAccount": A}},
                    },
                ]
            },
            "logs.us-east-1.amazonaws.com",
            "s3:GetBucketAcl",
            ACL,
            ctx(B),
            False,  # explicit deny wins
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                    "NotAction": "s3:Delete*",
                    "NotResource": f"{ACL}/private/*",
                    "Condition": {
                        "StringLike": {"aws:SourceArn": "arn:aws:logs:*"},
                        "ArnLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"},
                    },
                }
            },
            "logs.us-east-1.amazonaws.com",
            "s3:PutObject",
            KEY,
            ctx(),
            True,
        ),
        (
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": ACL,
                    "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}},
                }
            },
            "logs.us-east-1.amazonaws.com",
            "s3:GetBucketAcl",
            ACL,
            ctx(),
            False,  # an operator we do not evaluate is not counted on
        ),
    ],
)
def test_grants(
    document: dict[str, Any] | None,
    service: str,
    action: str,
    resource: str,
    context: dict[str, str],
    expected: bool,
) -> None:
    got = grants(document, service=service, action=action, resource=resource, context=context)
    assert got is expected


def test_export_refusals_say_what_is_missing() -> None:
    assert export_refusals(OURS, BUCKET, "logs", Target(A, "us-east-1")) == []
    assert export_refusals(OURS, BUCKET, "logs", Target(A, "eu-west-1")) == []
    missing = [f"s3:GetBucketAcl on {BUCKET}", f"s3:PutObject on {BUCKET}/logs/{A}/*"]
    assert export_refusals(None, BUCKET, "logs", Target(A, "us-east-1")) == missing
    assert export_refusals(OURS, BUCKET, "logs", Target(A, "ap-south-1")) == missing
    assert export_refusals(OURS, BUCKET, "other", Target(A, "us-east-1")) == [
        f"s3:PutObject on {BUCKET}/other/{A}/*"
    ]
    # an account of another config writing its own folder under this prefix
    stranger = "333333333333"
    assert export_refusals(OURS, BUCKET, "logs", Target(stranger, "us-east-1")) == [
        f"s3:GetBucketAcl on {BUCKET}",
        f"s3:PutObject on {BUCKET}/logs/{stranger}/*",
    ]
    without_acl = {"Statement": [{**OURS["Statement"][0], "Action": "s3:GetBucketAcl"}]}
    assert export_refusals(without_acl, BUCKET, "logs", Target(A, "us-east-1")) == [missing[1]]
