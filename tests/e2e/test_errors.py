"""Bad input end to end: the real `log-exporter` process says what is wrong and where in one line,
with a non-zero exit code, before any export task is created, without a traceback, and never
touches what is already archived."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.core.authorization import enable_iam_authentication
from moto.logs.models import logs_backends

from emulator import Emulator, seed
from emulator.policy import GET_BUCKET_ACL_FAILED
from emulator.scenario import REGION, archived, config_yaml, role_arn, sample_world

from .conftest import Exporter, Result

A, B = "111111111111", "222222222222"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
ROLE = role_arn(A)
TODAY = datetime.now(UTC).date()


def good() -> dict[str, Any]:
    return {
        "destination": {"bucket": "custodian-log-archive", "prefix": "logs"},
        "accounts": [
            {"name": "prod", "role": ROLE, "regions": [REGION], "groups": ["/aws/lambda/*"]}
        ],
    }


def with_(path: str, value: Any) -> str:
    """The good config as YAML, with one value replaced (`accounts.0.role`) or deleted (...)."""
    data = good()
    *parents, last = path.split(".")
    node: Any = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    elif isinstance(node, list) and key == len(node):
        node.append(value)
    else:
        node[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def one_line_error(result: Result) -> str:
    """The only line of stderr; the test fails if there is more (or a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("log-exporter: error: "), result.output
    return lines[0].removeprefix("log-exporter: error: ")


def two_accounts_yaml(bucket: str, regions: str = f"[{REGION}]") -> str:
    return config_yaml(bucket, [A, B]).replace(f"regions: [{REGION}]", f"regions: {regions}")


def put_bucket_policy(bucket: str, text: str | None) -> None:
    """Set (or, with None, delete) the archive bucket's policy, as its owner would."""
    seed.create_bucket(bucket, REGION).policy = None if text is None else text.encode()


# --- the config file ---------------------------------------------------------------------------

CONFIG_CASES = [
    pytest.param(
        "destination:\n  bucket: custodian-log-archive\naccounts: [\n",
        "YAML syntax error at line 4, column 1: expected the node content, but found '<stream end>'",
        id="yaml-syntax",
    ),
    pytest.param(
        "destination: {bucket: custodian-log-archive\naccounts: []\n",
        "YAML syntax error at line 2, column 9: expected ',' or '}', but got ':'",
        id="yaml-syntax-flow",
    ),
    pytest.param("", "the file is empty", id="empty"),
    pytest.param("# only a comment\n", "the file is empty", id="only-comment"),
    pytest.param("- a list\n", "expected a mapping with 'destination' and 'accounts'", id="list"),
    pytest.param(with_("destination", ...), "destination: is required", id="no-destination"),
    pytest.param(
        with_("accounts", ...),
        "accounts: is required (or an `organization` block)",
        id="no-accounts",
    ),
    pytest.param(
        with_("accounts", {"name": "prod"}),
        "accounts: Input should be a valid list",
        id="accounts-not-a-list",
    ),
    pytest.param(
        with_("accounts.0.groups", "/aws/lambda/*"),
        "accounts[0].groups: Input should be a valid list",
        id="groups-not-a-list",
    ),
    pytest.param(
        with_("destination.settle", "soon"),
        "destination.settle: expected a duration such as 12h, 30m or 0, got 'soon'",
        id="settle-wrong-type",
    ),
    pytest.param(
        with_("destination.start", "yesterday"),
        "destination.start: Input should be a valid date or datetime, input is too short",
        id="start-not-a-date",
    ),
    pytest.param(
        with_("accounts.0.colour", "blue"), "accounts[0].colour: unknown key", id="unknown-key"
    ),
    pytest.param(
        with_("destination.buckets", "x"), "destination.buckets: unknown key", id="unknown-key-top"
    ),
    pytest.param(
        with_("accounts.1", good()["accounts"][0]),
        "accounts: account name 'prod' is used twice (accounts[0] and accounts[1])",
        id="duplicate-account",
    ),
    pytest.param(
        with_("accounts.0.role", "arn:aws:iam::111111111111:user/alice"),
        "accounts[0].role: 'arn:aws:iam::111111111111:user/alice' is not an IAM role ARN "
        "(arn:aws:iam::123456789012:role/Name)",
        id="role-not-a-role-arn",
    ),
    pytest.param(
        with_("accounts.0.role", ["arn:aws:iam::111111111111:role/Hub", "LogExporter"]),
        "accounts[0].role: 'LogExporter' is not an IAM role ARN (arn:aws:iam::123456789012:role/Name)",
        id="chain-with-a-name",
    ),
    pytest.param(
        with_("accounts.0.groups", ["/aws/lambda/*", "re:vpc-(flow"]),
        "accounts[0].groups: invalid regular expression 'vpc-(flow': missing ), unterminated "
        "subpattern at position 4",
        id="invalid-regex",
    ),
    pytest.param(
        with_("accounts.0.groups", []),
        "accounts[0].groups: List should have at least 1 item after validation, not 0",
        id="empty-groups",
    ),
    pytest.param(
        with_("destination.bucket", "Custodian_Logs"),
        "destination.bucket: 'Custodian_Logs' is not a valid S3 bucket name (3-63 lowercase "
        "letters, digits, '.' and '-', starting and ending with a letter or digit)",
        id="bucket-name",
    ),
    pytest.param(
        with_("destination.bucket", "10.0.0.1"),
        "destination.bucket: '10.0.0.1' is not a valid S3 bucket name (3-63 lowercase "
        "letters, digits, '.' and '-', starting and ending with a letter or digit)",
        id="bucket-ip",
    ),
    pytest.param(
        with_("accounts.0.regions", ["us-east"]),
        "accounts[0].regions: 'us-east' is not an AWS region name (such as us-east-1)",
        id="region-name",
    ),
]


@pytest.mark.parametrize(("text", "message"), CONFIG_CASES)
def test_bad_config_is_one_located_line_before_any_aws_call(
    exporter: Exporter, emu: Emulator, text: str, message: str
) -> None:
    cfg = exporter.config(text)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 2
    assert one_line_error(result) == f"{cfg}: {message}"
    assert result.stdout == ""
    assert emu.calls == Counter()  # not a single AWS request


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("directory", "is a directory, not a config file"),
        ("not-utf8", "cannot be read: not UTF-8 text (byte 0xff at offset 0)"),
        pytest.param(
            "no-permission",
            "cannot be read (permission denied)",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file"),
        ),
    ],
)
def test_config_file_that_cannot_be_read(
    exporter: Exporter, emu: Emulator, tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / "config.yml"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe" + yaml.safe_dump(good()).encode("utf-16-le"))
    elif kind == "no-permission":
        path.write_text(yaml.safe_dump(good()))
        path.chmod(0)

    result = exporter("run", "--config", str(path))

    assert result.code == 2
    assert one_line_error(result) == f"{path}: {message}"
    assert emu.calls == Counter()


@pytest.mark.parametrize(
    "command", [("validate",), ("check",), ("policy",), ("policy", "--only", "bucket")]
)
def test_every_command_reports_a_bad_config_the_same_way(
    exporter: Exporter, emu: Emulator, command: tuple[str, ...]
) -> None:
    cfg = exporter.config(with_("accounts.0.role", "111111111111"))

    result = exporter(*command, "--config", str(cfg))

    assert result.code == 2
    assert one_line_error(result) == (
        f"{cfg}: accounts[0].role: '111111111111' is not an IAM role ARN "
        "(arn:aws:iam::123456789012:role/Name)"
    )
    assert result.stdout == ""
    assert emu.calls == Counter()


# --- dates and accounts on the command line -----------------------------------------------------

DATE_CASES = [
    pytest.param(
        ["--start", "2026-13-01"],
        "Invalid value for '--start': '2026-13-01' is not a date in the form YYYY-MM-DD "
        "(see log-exporter run --help)",
        id="start-not-a-date",
    ),
    pytest.param(
        ["--end", "20261101"],
        "Invalid value for '--end': '20261101' is not a date in the form YYYY-MM-DD "
        "(see log-exporter run --help)",
        id="end-not-a-date",
    ),
    pytest.param(
        ["--start", "2026-01-05", "--end", "2026-01-05"],
        "--start 2026-01-05 must be before --end 2026-01-05 (--end is the first day not exported)",
        id="start-equals-end",
    ),
    pytest.param(
        ["--start", "2026-02-01", "--end", "2026-01-01"],
        "--start 2026-02-01 must be before --end 2026-01-01 (--end is the first day not exported)",
        id="start-after-end",
    ),
    pytest.param(
        ["--start", str(TODAY + timedelta(days=3)), "--end", str(TODAY + timedelta(days=9))],
        f"--start {TODAY + timedelta(days=3)} is in the future (today is {TODAY} UTC)",
        id="start-in-future",
    ),
    pytest.param(
        ["--start", str(TODAY - timedelta(days=3)), "--end", str(TODAY + timedelta(days=30))],
        f"--end {TODAY + timedelta(days=30)} is in the future (today is {TODAY} UTC; "
        f"at most {TODAY + timedelta(days=1)})",
        id="end-in-future",
    ),
    pytest.param(
        ["--account", "staging"],
        "--account 'staging' is not in the config (known: prod)",
        id="unknown-account",
    ),
]


@pytest.mark.parametrize(("args", "message"), DATE_CASES)
def test_bad_dates_and_accounts_fail_before_any_aws_call(
    exporter: Exporter, emu: Emulator, args: list[str], message: str
) -> None:
    cfg = exporter.config(yaml.safe_dump(good()))

    result = exporter("run", "--config", str(cfg), *args)

    assert result.code == 2
    assert one_line_error(result) == message
    assert emu.calls == Counter()


# --- the archive bucket -------------------------------------------------------------------------


def test_missing_bucket_fails_before_any_task_naming_it(exporter: Exporter, emu: Emulator) -> None:
    sample_world(accounts=(A,), days=1)
    cfg = exporter.config(config_yaml("no-such-archive", [A]))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 1
    assert one_line_error(result) == "archive bucket no-such-archive does not exist"
    assert emu.tasks == []
    assert ("logs", "CreateExportTask") not in emu.calls

    debug = exporter("--debug", "run", "--config", str(cfg))

    assert debug.code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "BucketError: archive bucket no-such-archive does not exist" in debug.stderr


def test_bucket_not_reachable_with_the_ambient_credentials(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=1)
    cfg = exporter.config(config_yaml(world.bucket, [A]))

    with enable_iam_authentication():  # the emulator now rejects the ambient keys
        result = exporter("run", "--config", str(cfg))

    assert result.code == 1
    assert one_line_error(result) == (
        f"archive bucket {world.bucket} is not reachable with the ambient credentials (403)"
    )
    assert emu.tasks == []
    assert ("logs", "CreateExportTask") not in emu.calls


def test_bucket_in_another_region_is_reported_per_region(exporter: Exporter, emu: Emulator) -> None:
    sample_world(accounts=(A, B), days=1)
    seed.create_bucket("eu-archive", "eu-west-1")
    cfg = exporter.config(two_accounts_yaml("eu-archive", regions=f"[{REGION}, us-west-2]"))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 1
    assert "Traceback" not in result.output
    for account in (A, B):
        for region in (REGION, "us-west-2"):
            assert (
                f"acct-{account}/{region}: failed: archive bucket eu-archive is in eu-west-1, but "
                f"CloudWatch Logs exports only to a bucket in the log group's region ({region})"
            ) in result.stderr
    assert emu.tasks == []


# --- member accounts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param([role_arn(A)], id="role-denied"),
        pytest.param([role_arn("333333333333", "Hub"), role_arn(A, "NoSuchRole")], id="chain-hop"),
    ],
)
def test_role_that_cannot_be_assumed_fails_its_account_only(
    exporter: Exporter, emu: Emulator, chain: list[str]
) -> None:
    world = sample_world(accounts=(A, B), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A, B], roles={A: chain}))
    emu.deny_role(chain[-1])  # AWS answers AccessDenied for a denied and a missing role alike

    result = exporter("run", "--config", str(cfg))

    assert result.code == 1
    assert (
        f"acct-{A}/{REGION}: failed: cannot assume role {chain[-1]}: AccessDenied: "
    ) in result.stderr
    assert "Traceback" not in result.output
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED, accounts=[B])  # the other account went on
    assert {t.account_id for t in emu.tasks} == {B}


def test_bucket_policy_refusing_cloudwatch_logs_points_to_policy_and_keeps_the_archive(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.require_bucket_policy = True
    policy = exporter("policy", "--config", str(cfg), "--only", "bucket")
    assert policy.code == 0, policy.output
    put_bucket_policy(world.bucket, policy.stdout)
    first = exporter("run", "--config", str(cfg), "--end", str(TODAY - timedelta(days=1)))
    assert first.code == 0, first.output
    before, _ = archived(world.bucket, "logs")
    assert sum(before.values()) == 3 * 2 * 5  # 3 groups, 2 days, 5 events a day
    tasks_before = len(emu.tasks)
    put_bucket_policy(world.bucket, None)  # somebody removed the bucket policy

    failed = exporter("run", "--config", str(cfg))

    assert failed.code == 1
    assert "Traceback" not in failed.output
    line = next(x for x in failed.stderr.splitlines() if "failed:" in x)
    assert line.endswith(
        f"the policy of bucket {world.bucket} does not let logs.{REGION}.amazonaws.com write "
        f"exports (AWS: {GET_BUCKET_ACL_FAILED.rstrip('.')}); "
        "run `log-exporter policy --config FILE` for the bucket policy it needs"
    )
    assert len(emu.tasks) == tasks_before  # AWS refused the task: none was created
    after, _ = archived(world.bucket, "logs")
    assert after == before  # nothing already archived was touched

    put_bucket_policy(world.bucket, policy.stdout)
    fixed = exporter("run", "--config", str(cfg))

    assert fixed.code == 0, fixed.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    folders = {(e.group, e.day, e.task_id) for e in events}
    assert set(Counter((g, d) for g, d, _ in folders).values()) == {1}  # one task a day


def test_log_group_deleted_during_the_run_is_reported_and_the_rest_goes_on(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.task_timing(base=0.15)
    doomed = "/aws/lambda/worker"

    proc = exporter.popen("run", "--config", str(cfg))
    deadline = time.monotonic() + 60
    while not emu.tasks:  # the run is under way: planned, its first task created
        assert proc.poll() is None and time.monotonic() < deadline, "the run created no task"
        time.sleep(0.01)
    logs_backends[A][REGION].delete_log_group(doomed)
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert f"log group {doomed} no longer exists" in stdout
    got, _ = archived(world.bucket, "logs")
    others = [g for g in SELECTED if g != doomed]
    assert {k: n for k, n in got.items() if k[1] != doomed.lstrip("/")} == world.expected(
        groups=others
    )
    assert not (got - world.expected(groups=SELECTED))  # nothing twice, nothing foreign
    assert sum(1 for t in emu.tasks if t.group == doomed) <= 1  # at most one attempt, failed
