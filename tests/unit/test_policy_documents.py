"""The documents `log-exporter policy` prints for the lanes of a config (accounts with roles: no
AWS call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from log_exporter.aws.sessions import SessionFactory
from log_exporter.core.config import parse_config
from log_exporter.core.policy import Target, bucket_policy_text, member_role_policy, runner_policy
from log_exporter.engine import Engine, LaneSpec, RunOptions
from log_exporter.errors import AWSError, UsageError
from log_exporter.passes.policy import policy_documents

A, B = "111111111111", "222222222222"


@pytest.fixture(autouse=True)
def no_aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def engine(bucket: Any) -> Engine:
    config = parse_config(
        {
            "destination": {"bucket": bucket, "prefix": "logs"},
            "accounts": [
                {
                    "name": "prod",
                    "role": f"arn:aws:iam::{A}:role/LogExporter",
                    "regions": ["us-east-1", "eu-west-1"],
                    "groups": ["/aws/lambda/*"],
                },
                {
                    "name": "dev",
                    "role": f"arn:aws:iam::{B}:role/LogExporter",
                    "regions": ["eu-west-1"],
                    "groups": ["app"],
                },
            ],
        }
    )
    return Engine(config, SessionFactory(region="us-east-1"))


def specs(e: Engine, *accounts: str) -> list[LaneSpec]:
    return e.lane_specs(RunOptions(accounts=accounts))


def test_every_document_for_every_lane_each_bucket_letting_in_its_own_lanes() -> None:
    e = engine({"us-east-1": "archive-us", "eu-west-1": "archive-eu"})
    docs = policy_documents(e, specs(e), accounts=())
    assert [(d.kind, d.bucket, d.account_id) for d in docs] == [
        ("bucket", "archive-us", ""),
        ("bucket", "archive-eu", ""),
        ("member", "", A),
        ("member", "", B),
        ("runner", "", ""),
    ]
    assert docs[0].document == bucket_policy_text("archive-us", "logs", [Target(A, "us-east-1")])
    assert docs[1].document == bucket_policy_text(
        "archive-eu", "logs", [Target(A, "eu-west-1"), Target(B, "eu-west-1")]
    )
    prod = e.config.accounts[0]
    assert docs[2].account == prod
    assert docs[2].document == member_role_policy(
        prod, A, ["us-east-1", "eu-west-1"], ["archive-us", "archive-eu"], "logs"
    )
    # the runner's policy is written for the first region of the sorted lanes
    assert docs[4].document == runner_policy(e.config, "eu-west-1")


def test_only_one_kind_and_retention_in_the_member_policy() -> None:
    e = engine("archive")
    docs = policy_documents(
        e, specs(e, "dev"), accounts=("dev",), only="member", with_retention=True
    )
    assert [(d.kind, d.account_id) for d in docs] == [("member", B)]
    assert "logs:PutRetentionPolicy" in json.dumps(docs[0].document)
    docs = policy_documents(e, specs(e), accounts=(), only="bucket")
    assert [(d.kind, d.bucket) for d in docs] == [("bucket", "archive")]


def test_a_lane_without_a_bucket_is_told_and_left_out_of_the_bucket_policies() -> None:
    e = engine({"eu-west-1": "archive-eu"})
    told: list[tuple[str, str]] = []
    docs = policy_documents(
        e, specs(e), accounts=(), only="bucket", no_bucket=lambda s, why: told.append((s.name, why))
    )
    assert [n for n, _ in told] == ["prod/us-east-1"]
    assert told[0][1] == e.config.destination.no_bucket("us-east-1")
    assert [d.bucket for d in docs] == ["archive-eu"]
    assert "us-east-1" not in str(docs[0].document)


def test_member_over_more_than_one_account_names_the_accounts() -> None:
    e = engine("archive")
    with pytest.raises(UsageError, match=r"add --account \(one of: prod, dev\)"):
        policy_documents(e, specs(e), accounts=(), only="member")


def test_a_lane_whose_regions_could_not_be_asked_is_an_aws_error() -> None:
    e = engine("archive")
    failed = LaneSpec(e.config.accounts[0], "all", error="AccessDenied: ec2:DescribeRegions")
    with pytest.raises(AWSError, match=r"^accounts\[prod\]: AccessDenied: ec2:DescribeRegions$"):
        policy_documents(e, [failed], accounts=())
