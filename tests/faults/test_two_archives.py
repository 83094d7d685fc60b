"""Two archives of one account (another prefix: a migration, a test prefix): each lane adopts
only tasks that write into its own archive, so each archive ends up holding every event once,
even while the other archive's task of the same window runs."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from moto.logs.models import logs_backends

from emulator import Emulator
from emulator.scenario import REGION, config_yaml, day_ms
from log_exporter.core.windows import Window, destination_prefix, task_name

from .conftest import LEASE, Exporter, account_ids, assert_complete, seed_world

BUCKET = "two-archives"
GROUP = "/aws/lambda/api"


def completed_per_window(emu: Emulator, account: str) -> Counter[tuple[str, int, str]]:
    """COMPLETED tasks of `account` per (group, from, archive prefix)."""
    return Counter(
        (t.group, t.from_ms, t.prefix.split("/", 1)[0])
        for t in emu.tasks
        if t.account_id == account and t.status == "COMPLETED" and not t.foreign
    )


def test_two_archives_of_one_account_at_the_same_time(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(730_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    first = exporter.config(config_yaml(BUCKET, [account], prefix="first"), name="first.yml")
    second = exporter.config(config_yaml(BUCKET, [account], prefix="second"), name="second.yml")
    emu.task_timing(pending=0.05, base=1.0)

    proc = exporter.popen("run", "--config", str(first))
    deadline = time.monotonic() + 60
    while not emu.tasks and time.monotonic() < deadline:  # the first archive's task in flight
        time.sleep(0.01)
    assert emu.tasks and emu.tasks[0].active
    result = exporter("run", "--config", str(second))
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, out + err
    assert result.code == 0, result.output
    assert_complete(world, "first", [account])
    assert_complete(world, "second", [account])
    done = completed_per_window(emu, account)
    assert set(done.values()) == {1} and {p for _, _, p in done} == {"first", "second"}
    assert len(done) == 2 * 2 * 2  # two groups, two days, two archives


def test_a_second_archive_after_the_first_was_killed_with_a_task_in_flight(
    emu: Emulator, exporter: Exporter
) -> None:
    """The first archive's run is killed while its first task runs; the second archive's run
    meets that task (same account, same window) and must not take it for its own; the first
    archive's next run adopts it."""
    (account,) = account_ids(750_000_000_000, 1)
    world = seed_world(BUCKET, [account], groups=[GROUP], days=2)
    first = exporter.config(config_yaml(BUCKET, [account], prefix="old"), name="old.yml")
    second = exporter.config(config_yaml(BUCKET, [account], prefix="new"), name="new.yml")
    emu.task_timing(pending=0.05, base=3.0)
    proc = exporter.popen("run", "--config", str(first), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    deadline = time.monotonic() + 60
    while not any(t.status == "RUNNING" for t in emu.tasks) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=30)
    (in_flight,) = emu.tasks
    assert in_flight.active and in_flight.prefix.startswith("old/")
    emu.task_timing(base=0.1)  # the next tasks are quick; the one in flight keeps its time

    after = exporter("run", "--config", str(second), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    rerun = exporter("run", "--config", str(first), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert after.code == 0, after.output
    assert rerun.code == 0, rerun.output
    assert f"task {in_flight.task_id}" not in after.output
    assert_complete(world, "new", [account], groups=[GROUP])
    assert_complete(world, "old", [account], groups=[GROUP])
    done = completed_per_window(emu, account)
    assert set(done.values()) == {1} and len(done) == 2 * 2  # two days, two archives


@pytest.mark.parametrize("name_of", ["an older version", "this version"])
def test_another_archives_running_task_of_the_same_window_is_not_adopted(
    emu: Emulator, exporter: Exporter, name_of: str
) -> None:
    """The other archive's task has the very name this lane gives the window (as an older
    version named tasks, without the archive; or as this one does, were the names alike): its
    destination prefix is not this archive's, so the lane waits for it and exports its own."""
    (account,) = account_ids(740_000_000_000, 1)
    world = seed_world(BUCKET, [account], groups=[GROUP], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="mine"))
    day = datetime.now(UTC).date() - timedelta(days=1)
    window = Window(day_ms(day), day_ms(day) + 86_400_000 - 1)
    archive = "" if name_of == "an older version" else f"{BUCKET}/mine"
    name = task_name(account, REGION, GROUP, window, archive=archive)
    emu.task_timing(pending=0.05, base=2.0)
    other = emu.engine.create(
        logs_backends[account][REGION],
        group=GROUP,
        from_ms=window.start,
        to_ms=window.end,
        destination=BUCKET,
        prefix=destination_prefix("theirs", account, GROUP, window),
        task_name=name,
    )

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert emu.task(other).status == "COMPLETED"  # it ran its course, into its own archive
    assert_complete(world, "mine", [account], groups=[GROUP])
    assert_complete(world, "theirs", [account], groups=[GROUP])
    assert completed_per_window(emu, account) == {
        (GROUP, window.start, "theirs"): 1,
        (GROUP, window.start, "mine"): 1,
    }
