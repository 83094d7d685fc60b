"""`log-exporter run` and `export` end to end: the real process against the emulator server."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import (
    REGION,
    archived,
    config_yaml,
    day_ms,
    edge_events,
    misplaced,
    role_arn,
    sample_world,
)

from .conftest import Exporter

A, B = "111111111111", "222222222222"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")


def task_folders(events: list[seed.ArchivedEvent]) -> Counter[tuple[str, str, str]]:
    """How many distinct task folders each (account, group, day) has."""
    seen = {(e.account_id, e.group, e.day, e.task_id) for e in events}
    return Counter((a, g, d) for a, g, d, _ in seen)


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def test_run_archives_every_event_exactly_once_in_its_utc_day(
    exporter: Exporter, emu: Emulator, tz: str
) -> None:
    world = sample_world(accounts=(A, B), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A, B]))

    result = exporter("run", "--config", str(cfg), TZ=tz)

    assert result.code == 0, result.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)  # nothing lost, nothing twice
    assert misplaced(events) == []  # each event in its own UTC day's folder
    # one task per group per day, and only for the selected groups
    folders = task_folders(events)
    assert set(folders.values()) == {1}
    assert len(folders) == 2 * 3 * 3
    assert {t.group for t in emu.tasks} == set(SELECTED)
    assert emu.limit_exceeded == 0
    for t in emu.tasks:
        assert t.to_ms - t.from_ms == 86_400_000 - 1  # whole UTC days, `to` inclusive
        assert (
            datetime.fromtimestamp(t.from_ms / 1000, UTC).strftime("%H:%M:%S.%f")
            == "00:00:00.000000"
        )
    assert "everything asked for is archived" in result.stdout


def test_rerun_creates_no_task(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0
    created = len(emu.tasks)
    assert created == 3 * 2

    again = exporter("run", "--config", str(cfg))

    assert again.code == 0, again.output
    assert len(emu.tasks) == created
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)


def test_new_day_after_a_run_is_exported_alone(exporter: Exporter, emu: Emulator) -> None:
    today = datetime.now(UTC).date()
    world = sample_world(accounts=(A,), days=2, today=today - timedelta(days=1))
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    end = today - timedelta(days=1)
    assert exporter("run", "--config", str(cfg), "--end", str(end)).code == 0
    before = len(emu.tasks)
    yesterday = today - timedelta(days=1)
    world.add(A, "/aws/lambda/api", "late", edge_events(yesterday, "new"))

    assert exporter("run", "--config", str(cfg)).code == 0

    new = emu.tasks[before:]
    assert [(t.group, t.from_ms) for t in new] == [("/aws/lambda/api", day_ms(yesterday))]
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)


def test_failed_task_is_retried_and_its_partial_output_removed(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.fail_tasks(2, account_id=A, partial=True)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert sum(1 for t in emu.tasks if t.status == "FAILED") == 2
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)  # partial output of failed tasks is gone
    assert set(task_folders(events).values()) == {1}


def test_a_day_that_keeps_failing_is_reported_and_filled_by_the_next_run(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.fail_tasks(100, account_id=A, group="vpc-flow-logs", partial=True)

    first = exporter("run", "--config", str(cfg))

    assert first.code == 1
    assert "vpc-flow-logs" in first.stdout and "FAILED" in first.stdout
    assert "Traceback" not in first.output
    # each of the 3 days was tried 3 times (bounded), and the other groups were still exported
    assert sum(1 for t in emu.tasks if t.group == "vpc-flow-logs") == 9
    got, _ = archived(world.bucket, "logs")
    expected = world.expected(groups=SELECTED)
    missing = expected - got
    assert {k[1] for k in missing} == {"vpc-flow-logs"} and sum(missing.values()) == 15
    assert not (got - expected)  # nothing twice, even from the failed attempts' partial output
    emu.reset_faults()

    second = exporter("run", "--config", str(cfg))

    assert second.code == 0, second.output
    got, events = archived(world.bucket, "logs")
    assert got == expected
    assert set(task_folders(events).values()) == {1}


def test_role_chain_and_external_id(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(B,), days=1)
    chain = [role_arn("333333333333", "Hub"), role_arn(B, "Member")]
    text = config_yaml(
        world.bucket, [B], roles={B: chain}, extra_account_lines="external_id: s3cr3t"
    )
    cfg = exporter.config(text)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert {t.account_id for t in emu.tasks} == {B}
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)


def test_one_account_failing_does_not_stop_the_others(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A, B), days=1)
    cfg = exporter.config(config_yaml(world.bucket, [A, B]))
    emu.deny_role(role_arn(A))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 1
    assert role_arn(A) in result.output
    assert "Traceback" not in result.output
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED, accounts=[B])


def test_no_task_for_empty_days_or_days_before_creation(exporter: Exporter, emu: Emulator) -> None:
    today = datetime.now(UTC).date()
    d1, d2, d3 = (today - timedelta(days=n) for n in (3, 2, 1))
    seed.create_bucket("archive-bucket", REGION)
    seed.create_group(A, REGION, "/aws/lambda/sparse", day_ms(d1) + 5)
    seed.put_events(
        A, REGION, "/aws/lambda/sparse", "s", edge_events(d1, "x") + edge_events(d3, "y")
    )
    cfg = exporter.config(config_yaml("archive-bucket", [A]))

    result = exporter("run", "--config", str(cfg), "--start", str(today - timedelta(days=6)))

    assert result.code == 0, result.output
    assert sorted(t.from_ms for t in emu.tasks) == [day_ms(d1), day_ms(d3)]
    # the empty day is remembered: a rerun neither probes it into a task nor exports it
    assert exporter("run", "--config", str(cfg)).code == 0
    assert len(emu.tasks) == 2
    got, _ = archived("archive-bucket", "logs")
    assert sum(got.values()) == 10
    assert d2  # the day between had no event and got no task


def test_export_one_group(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=2)

    result = exporter(
        "export",
        "--group",
        "/aws/lambda/api",
        "--bucket",
        world.bucket,
        "--prefix",
        "one",
        "--role",
        role_arn(A),
        "--region",
        REGION,
        "--settle",
        "0",
    )

    assert result.code == 0, result.output
    got, events = archived(world.bucket, "one")
    assert got == world.expected(groups=["/aws/lambda/api"])
    assert misplaced(events) == []
    assert {e.key.split("/")[1] for e in events} == {A}


def test_export_of_a_missing_group_says_so(exporter: Exporter, emu: Emulator) -> None:
    sample_world(accounts=(A,), days=1)
    result = exporter(
        "export",
        "--group",
        "/nope",
        "--bucket",
        "custodian-log-archive",
        "--role",
        role_arn(A),
        "--settle",
        "0",
    )
    assert result.code == 1
    assert "log group /nope does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_a_lost_state_is_refused_rather_than_exported_again(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0
    created = len(emu.tasks)
    s3_backends[seed.DEFAULT_ACCOUNT]["aws"].delete_object(
        world.bucket, f"logs/.log-exporter/{A}/{REGION}.json"
    )

    refused = exporter("run", "--config", str(cfg))

    assert refused.code == 1
    assert "log-exporter sync" in refused.output and "Traceback" not in refused.output
    assert len(emu.tasks) == created  # nothing exported twice

    assert exporter("sync", "--config", str(cfg)).code == 0
    again = exporter("run", "--config", str(cfg))
    assert again.code == 0, again.output
    assert len(emu.tasks) == created
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)


def test_ctrl_c_stops_the_lanes_and_the_next_run_finishes_exactly_once(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A, B), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A, B]))
    emu.task_timing(pending=0.05, base=1.0)
    proc = exporter.popen("run", "--config", str(cfg))
    deadline = time.monotonic() + 30
    while not [t for t in emu.tasks if t.active] and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    # both lanes let go of their leases, so the next run starts at once and adopts their tasks
    for account in (A, B):
        state = json.loads(
            s3_backends[seed.DEFAULT_ACCOUNT]["aws"]
            .get_object(world.bucket, f"logs/.log-exporter/{account}/{REGION}.json")
            .value
        )
        assert state["lease"]["owner"] is None
    emu.task_timing(pending=0.02, base=0.05)

    again = exporter("run", "--config", str(cfg), timeout=60)

    assert again.code == 0, again.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert set(task_folders(events).values()) == {1}
    assert len({(t.account_id, t.group, t.from_ms) for t in emu.tasks}) == len(emu.tasks)
