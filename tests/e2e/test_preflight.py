"""`validate`, `check` and `policy` end to end: the real process against the emulator, which
enforces the bucket policy like AWS (`require_bucket_policy`)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from emulator import Emulator, seed
from emulator.scenario import REGION, archived, config_yaml, role_arn, sample_world

from .conftest import Exporter, Result

A, B, C = "111111111111", "222222222222", "333333333333"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
CHECKS = ["log groups", "export tasks", "bucket region", "bucket policy"]


def rows(result: Result) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(account, region, check) -> (status, detail) from the table `check` prints."""
    out: dict[tuple[str, str, str], tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[0] != "account":
            out[(cells[0], cells[1], cells[2])] = (cells[3], cells[4])
    return out


def apply_policy(exporter: Exporter, cfg: str, bucket: str, *args: str) -> str:
    """Put `log-exporter policy --only bucket` on the bucket, as its owner would."""
    result = exporter("policy", "--config", cfg, "--only", "bucket", *args)
    assert result.code == 0, result.output
    seed.create_bucket(bucket, REGION).policy = result.stdout.encode()
    return result.stdout


def test_validate_shows_what_a_run_covers_without_calling_aws(
    exporter: Exporter, emu: Emulator
) -> None:
    text = config_yaml(
        "custodian-log-archive", [A, B], roles={B: [role_arn(C, "Hub"), role_arn(B)]}
    )
    text += "  - name: local\n    groups: [app-*]\n"  # no role, no regions: ambient ones
    cfg = exporter.config(text)

    result = exporter("validate", "--config", str(cfg))

    assert result.code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        f"{cfg}: valid",
        "archive: s3://custodian-log-archive/logs/ (one task per day, from each group's "
        "creation day, exported 0s after it ended)",
    ]
    table = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    assert table == [
        [
            f"acct-{A}",
            A,
            role_arn(A),
            REGION,
            "/aws/lambda/*, re:vpc-flow-.*",
            "*-test",
        ],
        [
            f"acct-{B}",
            B,
            f"{role_arn(C, 'Hub')} -> {role_arn(B)}",
            REGION,
            "/aws/lambda/*, re:vpc-flow-.*",
            "*-test",
        ],
        ["local", "(ambient)", "ambient credentials", REGION, "app-*", "-"],
    ]
    assert "3 accounts, 3 account-regions (lanes); nothing was called in AWS" in result.stdout
    assert emu.calls == Counter()

    only = exporter("validate", "--config", str(cfg), "--account", "local", "--region", "eu-west-1")
    assert only.code == 0, only.output
    assert "│ local " in only.stdout and f"acct-{A}" not in only.stdout
    assert "eu-west-1" in only.stdout
    assert "1 account, 1 account-region (lanes)" in only.stdout
    west = exporter("validate", "--config", str(cfg), "--region", "us-west-2")
    assert west.code == 0, west.output
    assert "│ local " in west.stdout and f"acct-{A}" not in west.stdout  # A, B: us-east-1 only

    no_region = exporter("validate", "--config", str(cfg), AWS_DEFAULT_REGION="")
    assert no_region.code == 2
    assert no_region.stderr.strip() == (
        "log-exporter: error: accounts[local]: no region: set `regions` in the config, "
        "--region, or AWS_DEFAULT_REGION"
    )


def test_check_all_ok_with_the_policy_it_prints(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A, B), days=2)
    cfg = str(exporter.config(config_yaml(world.bucket, [A, B])))
    emu.require_bucket_policy = True
    apply_policy(exporter, cfg, world.bucket)

    result = exporter("check", "--config", cfg)

    assert result.code == 0, result.output
    got = rows(result)
    assert got[("(archive)", REGION, "bucket")] == (
        "OK",
        f"{world.bucket} exists, in {REGION}",
    )
    for account in (A, B):
        name = f"acct-{account}"
        assert got[(name, "-", "role")] == (
            "OK",
            f"assumed {role_arn(account)} (account {account})",
        )
        assert got[(name, REGION, "log groups")] == (
            "OK",
            "4 match: /aws/lambda/api, /aws/lambda/idle, /aws/lambda/worker, ...",
        )
        assert got[(name, REGION, "export tasks")] == ("OK", "no active export task")
        assert got[(name, REGION, "bucket region")] == ("OK", f"bucket is in {REGION}")
        assert got[(name, REGION, "bucket policy")] == (
            "OK",
            f"lets logs.{REGION}.amazonaws.com write exports of {account}",
        )
    assert len(got) == 1 + 2 * 5
    assert "all 11 checks OK" in result.stdout
    assert emu.tasks == []  # check creates nothing

    run = exporter("run", "--config", cfg)  # and the emulator agrees: the run works

    assert run.code == 0, run.output
    assert archived(world.bucket, "logs")[0] == world.expected(groups=SELECTED)


def test_check_reports_every_problem_in_its_row(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A, B), days=1)
    text = config_yaml(world.bucket, [A, B]) + (
        f"  - name: acct-{C}\n    role: {role_arn(C)}\n    regions: [{REGION}, us-west-2]\n"
        "    groups: [/aws/lambda/*, 're:vpc-flow-.*']\n"
    )
    cfg = str(exporter.config(text))
    apply_policy(exporter, cfg, world.bucket, "--account", f"acct-{B}")  # B only
    emu.deny_role(role_arn(A))
    foreign = emu.occupy_slot(B, REGION, 30)

    result = exporter("check", "--config", cfg)

    assert result.code == 1
    assert "Traceback" not in result.output
    got = rows(result)
    status, detail = got[(f"acct-{A}", "-", "role")]
    assert status == "FAIL"
    assert detail.startswith(f"cannot assume role {role_arn(A)}: AccessDenied: ")
    assert got[(f"acct-{A}", REGION, "log groups")] == ("SKIP", "the role could not be assumed")
    assert got[(f"acct-{A}", REGION, "bucket policy")] == (
        "FAIL",
        f"does not let logs.{REGION}.amazonaws.com ({A}) s3:GetBucketAcl on {world.bucket} or "
        f"s3:PutObject on {world.bucket}/logs/{A}/*; `log-exporter policy --config FILE` prints the "
        "policy it needs",
    )
    assert got[(f"acct-{B}", REGION, "export tasks")] == (
        "OK",
        "slot busy with someone else's task someone-elses-export "
        "(/emulator/someone-elses-export); a run waits for it",
    )
    assert got[(f"acct-{B}", REGION, "bucket policy")][0] == "OK"
    assert got[(f"acct-{C}", REGION, "log groups")] == (
        "OK",
        "listed; no group matches /aws/lambda/*, re:vpc-flow-.* yet",
    )
    assert got[(f"acct-{C}", "us-west-2", "bucket region")] == (
        "FAIL",
        f"{world.bucket} is in {REGION}; CloudWatch Logs exports only to a bucket in the log "
        "group's region (us-west-2)",
    )
    assert got[(f"acct-{C}", "us-west-2", "bucket policy")][0] == "FAIL"
    failing = {k for k, (s, _) in got.items() if s != "OK"}
    assert failing == {
        (f"acct-{A}", "-", "role"),
        (f"acct-{A}", REGION, "log groups"),
        (f"acct-{A}", REGION, "export tasks"),
        (f"acct-{A}", REGION, "bucket policy"),
        (f"acct-{C}", REGION, "bucket policy"),
        (f"acct-{C}", "us-west-2", "bucket region"),
        (f"acct-{C}", "us-west-2", "bucket policy"),
    }
    assert f"{len(failing)} of {len(got)} checks not OK" in result.stdout
    assert [t.task_id for t in emu.tasks] == [foreign]  # check created no task
    emu.reset()  # end the foreign task now rather than wait out its 30 s


def test_check_with_a_missing_bucket(exporter: Exporter, emu: Emulator) -> None:
    sample_world(accounts=(A,), days=1)
    cfg = exporter.config(config_yaml("no-such-archive", [A]))

    result = exporter("check", "--config", str(cfg), "--account", f"acct-{A}")

    assert result.code == 1
    got = rows(result)
    assert got[("(archive)", "-", "bucket")] == (
        "FAIL",
        "archive bucket no-such-archive does not exist",
    )
    for check in ("bucket region", "bucket policy"):
        assert got[(f"acct-{A}", REGION, check)] == ("SKIP", "the archive bucket is not reachable")
    assert got[(f"acct-{A}", REGION, "log groups")][0] == "OK"


def test_policy_prints_the_three_documents(exporter: Exporter, emu: Emulator) -> None:
    cfg = exporter.config(config_yaml("custodian-log-archive", [A, B]))

    result = exporter("policy", "--config", str(cfg))

    assert result.code == 0, result.output
    titles = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert titles == [
        "# Archive bucket policy: aws s3api put-bucket-policy --bucket custodian-log-archive "
        "--policy file://bucket-policy.json",
        f"# Member role policy of account acct-{A} ({A}), for {role_arn(A)}",
        f"# Member role policy of account acct-{B} ({B}), for {role_arn(B)}",
        "# Runner policy: the credentials that run log-exporter (archive state, first role of "
        "each chain)",
    ]
    blocks = [json.loads(b.split("\n", 1)[1]) for b in result.stdout.split("# ")[1:]]
    assert len(blocks) == 4
    for doc in blocks:
        for st in doc["Statement"]:
            for action in st["Action"] if isinstance(st["Action"], list) else [st["Action"]]:
                assert "*" not in action
    assert emu.calls == Counter()  # every account has a role: no AWS call was needed

    member = exporter("policy", "--config", str(cfg), "--only", "member", "--account", f"acct-{B}")
    assert member.code == 0, member.output
    assert json.loads(member.stdout) == blocks[2]

    ambiguous = exporter("policy", "--config", str(cfg), "--only", "member")
    assert ambiguous.code == 2
    assert ambiguous.stderr.strip() == (
        "log-exporter: error: --only member prints one account's policy: add --account "
        f"(one of: acct-{A}, acct-{B})"
    )


@pytest.mark.parametrize("only", ["bucket", "runner"])
def test_policy_only_prints_plain_json(exporter: Exporter, emu: Emulator, only: str) -> None:
    cfg = exporter.config(config_yaml("custodian-log-archive", [A]))
    result = exporter("policy", "--config", str(cfg), "--only", only)
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["Version"] == "2012-10-17" and doc["Statement"]
