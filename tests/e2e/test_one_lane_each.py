"""Two config entries that would be one lane (the same account and region) are refused by every
command that builds lanes, before anything is created; and each lane of a run holds its lease under
an owner of its own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from emulator import Emulator, seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, role_arn, sample_world
from log_exporter.aws.sessions import SessionFactory
from log_exporter.core.config import parse_config
from log_exporter.engine import Engine, RunOptions, plan_range

from .conftest import Exporter, Result

A, B = "111111111111", "222222222222"
BUCKET = "one-lane-archive"


def entry(name: str, role: str | None, regions: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "groups": ["/aws/lambda/*"]}
    if role:
        out["role"] = role
    if regions:
        out["regions"] = regions
    return out


def config_text(*entries: dict[str, Any]) -> str:
    data = {"destination": {"bucket": BUCKET, "settle": "0"}, "accounts": list(entries)}
    return yaml.safe_dump(data, sort_keys=False)


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("log-exporter: error: "), result.output
    return lines[0].removeprefix("log-exporter: error: ")


def clash(who: str, region: str, first: str = "prod", second: str = "prod-again") -> str:
    return (
        f"accounts[0] ({first!r}) and accounts[1] ({second!r}) both export {who} in {region}: "
        "one account and region is one lane (one export slot, one state); merge them into one "
        "entry"
    )


COMMANDS = [("run",), ("plan",), ("status",), ("sync",), ("check",), ("policy",)]


@pytest.mark.parametrize("command", [("validate",), *COMMANDS], ids=lambda c: c[0])
def test_two_roles_of_one_account_in_one_region_are_refused_before_any_aws_call(
    exporter: Exporter, emu: Emulator, command: tuple[str, ...]
) -> None:
    sample_world(BUCKET, accounts=(A,), days=1)
    calls_before = Counter(emu.calls)
    cfg = exporter.config(
        config_text(
            entry("prod", role_arn(A), [REGION, "eu-west-1"]),
            entry("prod-again", role_arn(A, "Other"), [REGION]),
        )
    )

    result = exporter(*command, "--config", str(cfg))

    assert result.code == 2, result.output
    assert one_line_error(result) == f"{cfg}: accounts: {clash(f'account {A}', REGION)}"
    assert result.stdout == ""
    assert Counter(emu.calls) == calls_before  # not a single AWS request
    assert emu.tasks == []


@pytest.mark.parametrize("command", [("validate",), ("run",), ("plan",)], ids=lambda c: c[0])
def test_an_entry_without_regions_runs_in_the_ambient_region_and_is_compared_there(
    exporter: Exporter, emu: Emulator, command: tuple[str, ...]
) -> None:
    sample_world(BUCKET, accounts=(A,), days=1)
    cfg = exporter.config(
        config_text(entry("prod", role_arn(A), [REGION]), entry("prod-again", role_arn(A, "Other")))
    )

    other_region = exporter(*command, "--config", str(cfg), "--region", "eu-west-1")
    result = exporter(*command, "--config", str(cfg), "--region", REGION)

    assert "both export" not in other_region.output, other_region.output
    assert result.code == 2, result.output
    assert clash(f"account {A}", REGION) in one_line_error(result)
    assert emu.tasks == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_entry_without_a_role_is_the_ambient_account_known_from_sts(
    exporter: Exporter, emu: Emulator, command: tuple[str, ...]
) -> None:
    sample_world(BUCKET, accounts=(A,), days=1)
    cfg = exporter.config(
        config_text(
            entry("prod", role_arn(ARCHIVE_ACCOUNT), [REGION]),
            entry("prod-again", None, [REGION]),
        )
    )
    assert exporter("validate", "--config", str(cfg)).code == 0  # no AWS call: cannot tell

    result = exporter(*command, "--config", str(cfg))

    assert result.code == 2, result.output
    # found by the run (STS), said as `validate` says what the file alone shows
    assert one_line_error(result) == (
        f"{cfg}: accounts: {clash(f'account {ARCHIVE_ACCOUNT}', REGION)}"
    )
    assert emu.calls[("logs", "CreateExportTask")] == 0
    assert ("logs", "DescribeLogGroups") not in emu.calls
    assert emu.tasks == []


def test_each_lane_of_a_run_has_its_own_lease_owner(aws_env: None, emu: Emulator) -> None:
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    config = parse_config(
        {
            "destination": {"bucket": BUCKET, "settle": "0"},
            "accounts": [
                entry("a", role_arn(A), [REGION, "us-west-2"]),
                entry("b", role_arn(B), [REGION]),
            ],
        }
    )
    engine = Engine(config, SessionFactory(region=REGION))
    options = RunOptions()
    rng = plan_range(config, options, engine.clock())

    lanes = [
        engine.build_lane(spec, rng, engine.settings(options))
        for spec in engine.lane_specs(options)
    ]

    owners = [lane.lease.owner for lane in lanes]
    assert len(owners) == 3 and len(set(owners)) == 3, owners
    # the per-lane part is appended to the run's owner, which says who runs it (host, process)
    assert all(o.startswith(engine.owner + "/") for o in owners), owners
