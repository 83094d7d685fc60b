"""A log group deleted and created again under the same name (a new creation time) is a new
group: its events in days the old group archived are archived too (a second task folder for that
day, of the new group), the old group's failures do not follow it, and `status` and `sync` see
the new group's archive, not the old one's."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from moto.logs.models import logs_backends
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, archived, config_yaml, day_ms, misplaced

from .conftest import (
    LEASE,
    Exporter,
    account_ids,
    covered_days,
    read_state,
    seed_world,
    task_folders,
)

GROUP = "/aws/lambda/api"
ONE = timedelta(days=1)


def test_a_recreated_group_is_archived_as_a_new_group(emu: Emulator, exporter: Exporter) -> None:
    bucket, prefix = "recreated-archive", "rc"
    (account,) = account_ids(993_000_000_000, 1)
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=3), today - timedelta(days=1)
    world = seed_world(bucket, [account], days=3)
    old_created = day_ms(first) + 3_600_000  # as seed_world creates it
    cfg = exporter.config(config_yaml(bucket, [account], prefix=prefix))
    run = ("run", "--config", str(cfg))

    zero = exporter(
        *run, "--start", str(first + timedelta(days=1)), LOG_EXPORTER_LEASE_SECONDS=LEASE
    )
    assert zero.code == 0, zero.output
    emu.fail_tasks(3, account_id=account, group=GROUP, partial=False)  # its first day fails
    one = exporter(
        *run, "--start", str(first), "--through", str(first), LOG_EXPORTER_LEASE_SECONDS=LEASE
    )

    assert one.code == 1, one.output
    assert [f["group"] for f in read_state(bucket, prefix, account)["failures"]] == [GROUP]
    old_tasks = {t.task_id for t in emu.tasks if t.group == GROUP}
    # the group is deleted (its unarchived day with it) and created again, with events written
    # back-dated into days the old group archived: the day of the new creation, and a day wholly
    # before it (CloudWatch accepts events up to 14 days old)
    logs_backends[account][REGION].delete_log_group(GROUP)
    new_created = day_ms(last) + 2 * 3_600_000
    seed.create_group(account, REGION, GROUP, new_created)
    world.add(
        account,
        GROUP,
        "again",
        [
            (day_ms(first + ONE) + 5, "new, a day before its creation"),
            (day_ms(last) + 1, "new early"),
            (new_created + 1, "new"),
            (day_ms(last) + 86_399_999, "z"),
        ],
    )
    lost_with_the_old_group = f"{first:%Y/%m/%d}/[$LATEST]00"

    two = exporter(*run, LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert two.code == 0, two.output
    got, events = archived(bucket, f"{prefix}/")
    expected = Counter(
        {k: n for k, n in world.expected().items() if k[2] != lost_with_the_old_group}
    )
    assert got == expected  # every event of both groups, once
    assert misplaced(events) == []
    assert f"log group {GROUP} was created again" in " ".join(two.output.split())
    folders = task_folders(bucket, prefix)
    day_keys = [(account, GROUP.lstrip("/"), f"{d:%Y-%m-%d}") for d in (first + ONE, last)]
    assert [folders[k] for k in day_keys] == [2, 2]  # the old group's and the new group's
    assert {k: n for k, n in folders.items() if k not in day_keys and n != 1} == {}
    state = read_state(bucket, prefix, account)
    assert state["failures"] == []  # the old group's failure did not follow the new one
    assert state["created"][GROUP] == new_created
    assert list(state["previous"]) == [f"{GROUP}@{old_created}"]
    # from 14 days before the new creation (CloudWatch's limit for back-dated events) through
    # its creation day: two days with events, the others probed empty
    assert covered_days(state, GROUP) == 15
    assert covered_days({"covered": state["empty"]}, GROUP) == 13

    status = exporter("status", "--config", str(cfg))
    assert status.code == 0, status.output

    # sync tells the groups apart by when their folders were written: the old group's objects
    # were written before the new group existed (here: back-date them, as real time would)
    partition, owner = s3_backends.bucket_accounts[bucket]
    fake = s3_backends[owner][partition].get_bucket(bucket)
    written = datetime.fromtimestamp((new_created - 60_000) / 1000, UTC).replace(tzinfo=None)
    for key in list(fake.keys):
        obj = fake.keys.get(key)
        if obj is not None and any(f"/{t}/" in key for t in old_tasks):
            obj.last_modified = written
    before = len(emu.tasks)

    sync = exporter("sync", "--config", str(cfg))

    assert sync.code == 0, sync.output
    assert "twice" not in sync.output
    state = read_state(bucket, prefix, account)
    assert covered_days(state, GROUP) == 15  # the new group's two folders and its empty days
    assert list(state["previous"]) == [f"{GROUP}@{old_created}"]
    three = exporter(*run, LOG_EXPORTER_LEASE_SECONDS=LEASE)
    assert three.code == 0, three.output
    assert len(emu.tasks) == before
