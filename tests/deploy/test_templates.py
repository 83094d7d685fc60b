"""template.yaml and deploy/member-role.yaml: they pass cfn-lint, and the SAM template, translated
to CloudFormation as `sam deploy` does, holds the functions, the queue and its dead-letter queue,
the schedule, and least-privilege IAM statements (no `*` action)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from log_exporter.aws_lambda.settings import LambdaSettings
from log_exporter.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
MEMBER_ROLE = ROOT / "deploy" / "member-role.yaml"
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def load(path: Path) -> dict[str, Any]:
    """The template as plain data (`!Ref x` becomes {"Ref": "x"})."""
    data: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(path))))
    return data


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """template.yaml translated to CloudFormation by the SAM translator, offline."""
    sam = load(TEMPLATE)
    sam["Globals"]["Function"]["CodeUri"] = "s3://artifacts/log-exporter.zip"  # as `sam package`

    def no_managed_policies() -> dict[str, str]:
        raise AssertionError("the template must not need AWS managed policies")

    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    out: dict[str, Any] = translator.translate(
        sam,
        parameter_values={"ArchiveBucket": "my-archive"},
        get_managed_policy_map=no_managed_policies,
    )
    return out


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in cfn["Resources"].items() if r["Type"] == kind}


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of a role's inline policies, both branches of each Fn::If."""
    for policy in role.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:
                yield from (b for b in st["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"})
            else:
                yield st


def actions(st: dict[str, Any], conditions: dict[str, bool] | None = None) -> list[str]:
    """A statement's actions; an `!If` among them is decided by `conditions` (default: false)."""
    a = st["Action"]
    out: list[str] = []
    for item in [a] if isinstance(a, str) else a:
        if isinstance(item, dict) and "Fn::If" in item:
            name, then, otherwise = item["Fn::If"]
            item = then if (conditions or {}).get(name, False) else otherwise
            if item == {"Ref": "AWS::NoValue"}:
                continue
        out.append(item)
    return out


def by_sid(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in statements(role) if "Sid" in st}


@pytest.mark.parametrize("path", [TEMPLATE, MEMBER_ROLE], ids=lambda p: p.name)
def test_templates_pass_cfn_lint(path: Path) -> None:
    proc = subprocess.run([CFN_LINT, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_functions_name_handlers_that_exist(cfn: dict[str, Any]) -> None:
    functions = of_type(cfn, "AWS::Lambda::Function")
    handlers = {k: f["Handler"] for k, f in functions.items()}
    assert handlers == {
        "DispatcherFunction": "log_exporter.aws_lambda.dispatcher.handler",
        "WorkerFunction": "log_exporter.aws_lambda.worker.handler",
    }
    for handler in handlers.values():  # the tool we replace named a handler that did not exist
        module, _, name = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
    for f in functions.values():
        assert f["Runtime"].startswith("python3.")
        assert f["Code"] == {"S3Bucket": "artifacts", "S3Key": "log-exporter.zip"}


def test_the_environment_is_what_the_handlers_read(cfn: dict[str, Any]) -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in LambdaSettings.__dataclass_fields__}
    for f in of_type(cfn, "AWS::Lambda::Function").values():
        env = f["Environment"]["Variables"]
        ours = {k for k in env if k.startswith(ENV_PREFIX)}
        assert ours <= fields, ours - fields
        assert env["LOG_EXPORTER_QUEUE_URL"] == {"Ref": "LaneQueue"}
        assert env["LOG_EXPORTER_BUCKET"] == {"Ref": "ArchiveBucket"}
        assert env["LOG_EXPORTER_PREFIX"] == {"Ref": "ArchivePrefix"}
        assert env["LOG_EXPORTER_CONFIG"]["Fn::If"][0] == "ConfigInS3"


def test_queue_dead_letter_queue_and_worker_trigger(cfn: dict[str, Any]) -> None:
    queues = of_type(cfn, "AWS::SQS::Queue")
    worker = of_type(cfn, "AWS::Lambda::Function")["WorkerFunction"]
    lanes = queues["LaneQueue"]
    assert lanes["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["LaneDeadLetterQueue", "Arn"]
    }
    assert lanes["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert lanes["VisibilityTimeout"] > worker["Timeout"]  # no second delivery while it works
    assert "FifoQueue" not in lanes  # per-message delays need a standard queue
    assert worker["Timeout"] == 900
    assert worker["ReservedConcurrentExecutions"] == {"Ref": "WorkerConcurrency"}
    (mapping,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["LaneQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "WorkerFunction"}
    assert mapping["BatchSize"] == 1  # one message is one advance of one lane
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerConcurrency"}
    alarm = of_type(cfn, "AWS::CloudWatch::Alarm")["DeadLetterAlarm"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["LaneDeadLetterQueue", "QueueName"]}


def test_the_dispatcher_runs_on_an_eventbridge_schedule(cfn: dict[str, Any]) -> None:
    (schedule,) = of_type(cfn, "AWS::Scheduler::Schedule").values()
    assert schedule["ScheduleExpression"] == {"Ref": "Schedule"}
    assert cfn["Parameters"]["Schedule"]["Default"] == "rate(1 hour)"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["DispatcherFunction", "Arn"]}
    role = of_type(cfn, "AWS::IAM::Role")[schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]]
    (invoke,) = statements(role)
    assert actions(invoke) == ["lambda:InvokeFunction"]
    assert invoke["Resource"] == {"Fn::GetAtt": ["DispatcherFunction", "Arn"]}


def test_no_iam_statement_grants_a_wildcard_action(cfn: dict[str, Any]) -> None:
    roles = of_type(cfn, "AWS::IAM::Role")
    assert set(roles) >= {"DispatcherRole", "WorkerRole"}
    found = [a for role in roles.values() for st in statements(role) for a in actions(st)]
    assert found and not [a for a in found if "*" in a]
    assert all(st["Effect"] == "Allow" for r in roles.values() for st in statements(r))
    for name in ("DispatcherRole", "WorkerRole"):  # everything they get is written here
        assert "ManagedPolicyArns" not in roles[name]


ARCHIVE_OBJECTS = {
    "Fn::If": [
        "HasPrefix",
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}/${ArchivePrefix}/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}/*"},
    ]
}
BUCKET = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}"}
QUEUE = {"Fn::GetAtt": ["LaneQueue", "Arn"]}


def test_the_worker_role_is_least_privilege(cfn: dict[str, Any]) -> None:
    worker = by_sid(of_type(cfn, "AWS::IAM::Role")["WorkerRole"])
    expected = {
        "OwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            {"Fn::Sub": "${WorkerLogGroup.Arn}"},
        ),
        "ReceiveLanes": (
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            QUEUE,
        ),
        "SendLanesBack": (["sqs:SendMessage"], QUEUE),
        "AssumeMemberRoles": (["sts:AssumeRole"], {"Ref": "MemberRoleArns"}),
        "ArchiveBucket": (["s3:ListBucket"], BUCKET),
        "ArchiveObjects": (["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], ARCHIVE_OBJECTS),
        "ReadConfig": (["s3:GetObject"], {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ConfigObject}"}),
        "ArchiveKey": (["kms:Decrypt", "kms:GenerateDataKey"], {"Ref": "ArchiveKmsKeyArn"}),
        "ExportOwnLogGroups": (
            ["logs:CreateExportTask", "logs:DescribeLogStreams", "logs:FilterLogEvents"],
            {"Fn::Sub": "arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:*"},
        ),
        "OwnExportTasks": (
            ["logs:DescribeExportTasks", "logs:CancelExportTask", "logs:DescribeLogGroups"],
            "*",
        ),
    }
    assert {sid: (actions(st), st["Resource"]) for sid, st in worker.items()} == expected
    conditional = {
        st["Fn::If"][1]["Sid"]: st["Fn::If"][0]
        for policy in of_type(cfn, "AWS::IAM::Role")["WorkerRole"]["Policies"]
        for st in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in st
    }
    assert conditional == {
        "ReadConfig": "ConfigInS3",
        "ArchiveKey": "HasKmsKey",
        "ExportOwnLogGroups": "OwnAccount",
        "OwnExportTasks": "OwnAccount",
    }


def test_the_dispatcher_role_only_reads_and_sends(cfn: dict[str, Any]) -> None:
    dispatcher = by_sid(of_type(cfn, "AWS::IAM::Role")["DispatcherRole"])
    assert {sid: actions(st) for sid, st in dispatcher.items()} == {
        "OwnLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "SendLanes": ["sqs:SendMessage"],
        "ArchiveBucket": ["s3:ListBucket"],
        "ReadLaneStates": ["s3:GetObject"],
        "ReadConfig": ["s3:GetObject"],
        "ArchiveKey": ["kms:Decrypt"],
        "ReadOrganization": [
            "organizations:ListAccounts",
            "organizations:ListAccountsForParent",
            "organizations:ListOrganizationalUnitsForParent",
            "organizations:ListTagsForResource",
        ],
        "AssumeDiscoveryRole": ["sts:AssumeRole"],
        "AskMemberRegions": ["sts:AssumeRole"],
    }
    # the organization's are only granted for a config that needs them
    conditional = {
        st["Fn::If"][1]["Sid"]: st["Fn::If"][0]
        for policy in of_type(cfn, "AWS::IAM::Role")["DispatcherRole"]["Policies"]
        for st in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in st
    }
    assert conditional == {
        "ReadConfig": "ConfigInS3",
        "ArchiveKey": "HasKmsKey",
        "ReadOrganization": "ReadsOrganization",
        "AssumeDiscoveryRole": "HasDiscoveryRole",
        "AskMemberRegions": "AsksRegions",
    }
    assert dispatcher["AssumeDiscoveryRole"]["Resource"] == {"Ref": "OrganizationDiscoveryRole"}
    assert dispatcher["AskMemberRegions"]["Resource"] == {"Ref": "MemberRoleArns"}
    assert dispatcher["SendLanes"]["Resource"] == QUEUE
    assert dispatcher["ReadLaneStates"]["Resource"]["Fn::If"][1] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}/${ArchivePrefix}/.log-exporter/*"
    }


def test_the_member_role_trusts_the_exporter_with_least_privilege() -> None:
    from log_exporter.core.policy import (
        MEMBER_ACCOUNT_ACTIONS,
        MEMBER_LOG_GROUP_ACTIONS,
        MEMBER_REGIONS_ACTION,
        RETENTION_ACTION,
    )

    template = load(MEMBER_ROLE)
    role = template["Resources"]["MemberRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {
        "AWS": {
            "Fn::If": [
                "HasDispatcher",
                [{"Ref": "ExporterRoleArn"}, {"Ref": "DispatcherRoleArn"}],
                {"Ref": "ExporterRoleArn"},
            ]
        }
    }
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["Fn::If"][0] == "HasExternalId"
    assert trust["Condition"]["Fn::If"][1] == {
        "StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}
    }
    granted = by_sid(role)
    found = [a for st in granted.values() for a in actions(st)]
    assert not [a for a in found if "*" in a]
    logs = {a for a in found if a.startswith("logs:")}
    assert set(found) - logs == {"s3:PutObject", MEMBER_REGIONS_ACTION}
    assert granted["ListEnabledRegions"]["Resource"] == "*"  # DescribeRegions has no resource
    # the same actions `log-exporter policy` prints for the member role
    assert logs == set(MEMBER_LOG_GROUP_ACTIONS) | set(MEMBER_ACCOUNT_ACTIONS)
    # and with AllowRetention=true, those of `policy --with-retention`
    assert template["Parameters"]["AllowRetention"]["Default"] == "false"
    assert template["Conditions"]["WithRetention"] == {
        "Fn::Equals": [{"Ref": "AllowRetention"}, "true"]
    }
    with_retention = actions(granted["ExportLogGroups"], {"WithRetention": True})
    assert set(with_retention) - set(actions(granted["ExportLogGroups"])) == {RETENTION_ACTION}
    patterns = ["/aws/lambda/*", "vpc-flow-logs"]
    resource = resolve(granted["ExportLogGroups"]["Resource"], {"LogGroupPatterns": patterns})
    assert resource == [
        "arn:*:logs:*:*:log-group:/aws/lambda/*",
        "arn:*:logs:*:*:log-group:vpc-flow-logs",
        "arn:*:logs:*:*:log-group:/aws/lambda/*:*",
        "arn:*:logs:*:*:log-group:vpc-flow-logs:*",
    ]
    assert template["Parameters"]["LogGroupPatterns"]["Type"] == "CommaDelimitedList"
    assert "Default" not in template["Parameters"]["LogGroupPatterns"]  # chosen, never all
    assert actions(granted["WriteExports"]) == ["s3:PutObject"]
    # its own account's folder: not another account's, nor the archive's state (.log-exporter/)
    assert granted["WriteExports"]["Resource"] == {
        "Fn::If": [
            "HasPrefix",
            {
                "Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}/${ArchivePrefix}/"
                "${AWS::AccountId}/*"
            },
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArchiveBucket}/${AWS::AccountId}/*"},
        ]
    }
    assert role["MaxSessionDuration"] == 3600


def resolve(node: Any, parameters: dict[str, Any]) -> Any:
    """Evaluate the Ref, Fn::Join and Fn::Split of a template value, as CloudFormation does."""
    if isinstance(node, list):
        return [resolve(n, parameters) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return parameters[node["Ref"]]
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flat(resolve(items, parameters)))
    if "Fn::Split" in node:
        delimiter, text = node["Fn::Split"]
        return resolve(text, parameters).split(delimiter)
    raise AssertionError(f"not evaluated here: {node}")


def _flat(items: list[Any]) -> list[str]:
    return [x for item in items for x in (item if isinstance(item, list) else [item])]
