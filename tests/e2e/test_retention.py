"""`log-exporter retention` end to end: the real process against the emulator, CloudWatch's
retention read back from the emulator itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moto.logs.models import logs_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, config_yaml, sample_world

from .conftest import Exporter

A = "111111111111"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
ALL = (*SELECTED, "/aws/lambda/idle", "/aws/lambda/api-test", "/aws/ecs/other")


def retention(account: str = A) -> dict[str, int | None]:
    groups = logs_backends[account][REGION].groups
    return {name: groups[name].retention_in_days for name in ALL}


def test_refuses_a_group_whose_days_at_risk_are_not_all_archived(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=5)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    at_risk = datetime.now(UTC).date() - timedelta(days=3)  # the newest day 3 days delete
    assert exporter("run", "--config", str(cfg), "--end", str(at_risk)).code == 0
    before = retention()

    result = exporter("retention", "--config", str(cfg), "--days", "3")

    assert result.code == 1, result.output
    # nothing changed for the refused groups; a group without streams holds nothing to lose
    assert retention() == {**before, "/aws/lambda/idle": 3}
    for group in SELECTED:
        assert f"refused acct-{A}/{REGION} {group}: not archived: {at_risk} (1 day)" in (
            result.stdout
        ), result.stdout


def test_refuses_days_before_destination_start(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    first = datetime.now(UTC).date() - timedelta(days=3)
    text = config_yaml(world.bucket, [A]).replace(
        "  prefix: logs\n", f"  prefix: logs\n  start: {first + timedelta(days=1)}\n"
    )
    cfg = exporter.config(text)
    assert exporter("run", "--config", str(cfg)).code == 0  # from destination.start only
    status = exporter("status", "--config", str(cfg))
    assert status.code == 0, status.output  # status sees no gap...

    result = exporter("retention", "--config", str(cfg), "--days", "3", "--group", "vpc-*")

    # ...but the day before destination.start would be deleted, and it is not archived
    assert result.code == 1, result.output
    assert f"vpc-flow-logs: not archived: {first} (1 day)" in result.stdout, result.stdout
    assert retention()["vpc-flow-logs"] is None


def test_sets_retention_when_the_archive_is_complete(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    seed.create_group(A, REGION, "/aws/lambda/worker", retention_days=1)  # already short
    seed.create_group(A, REGION, "vpc-flow-logs", retention_days=3653)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0

    result = exporter("retention", "--config", str(cfg), "--days", "3")

    assert result.code == 0, result.output
    assert retention() == {
        "/aws/lambda/api": 3,
        "/aws/lambda/worker": 1,
        "vpc-flow-logs": 3,
        "/aws/lambda/idle": 3,
        "/aws/lambda/api-test": None,  # not selected by the config
        "/aws/ecs/other": None,
    }
    lines = {line.split("│")[3].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "3653 days" in lines["vpc-flow-logs"] and "set" in lines["vpc-flow-logs"]
    assert "already" in lines["/aws/lambda/worker"]
    assert "never expire" in lines["/aws/lambda/api"]

    again = exporter("retention", "--config", str(cfg), "--days", "3")
    assert again.code == 0, again.output
    assert again.stdout.count("already") >= 4


def test_dry_run_changes_nothing(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0
    before = retention()

    result = exporter("retention", "--config", str(cfg), "--days", "3", "--dry-run")

    assert result.code == 0, result.output
    assert retention() == before
    assert result.stdout.count("would set") == 4
    assert "dry run: no retention was changed" in result.stdout


def test_a_retention_aws_does_not_accept_is_a_usage_error(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=1)
    cfg = exporter.config(config_yaml(world.bucket, [A]))

    result = exporter("retention", "--config", str(cfg), "--days", "2")

    assert result.code == 2, result.output
    assert "2 is not a retention CloudWatch Logs accepts (1, 3, 5, 7, 14" in result.stderr
    assert retention()["/aws/lambda/api"] is None


def test_a_retention_shorter_than_a_day_takes_to_be_archived_is_refused(
    exporter: Exporter, emu: Emulator
) -> None:
    # a day is archived once it ended, settled and the schedule came: with 1 day of retention,
    # each later day's first events could expire before that (review14 §5)
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A], settle="12h"))
    assert exporter("run", "--config", str(cfg)).code == 0

    result = exporter("retention", "--config", str(cfg), "--days", "1")

    assert result.code == 2, result.output
    assert "--days 1 is shorter than a day takes to be archived" in result.stderr
    assert "settle 12h" in result.stderr and "the smallest N allowed is 3" in result.stderr
    assert retention()["/aws/lambda/api"] is None
    long = exporter.config(config_yaml(world.bucket, [A], settle="3d"))
    again = exporter("retention", "--config", str(long), "--days", "3")
    assert again.code == 2 and "settle 72h" in again.stderr and "allowed is 5" in again.stderr
