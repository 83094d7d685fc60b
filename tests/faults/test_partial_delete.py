"""DeleteObjects that answers 200 but leaves some keys (listed under `Errors`): the keys are
tried again; keys that stay fail their window (naming the folder) until a later run deletes them,
and the window is never exported again while an earlier try's output is still there. In a
versioned bucket a delete only adds delete markers: the archive's current objects count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moto.s3.models import s3_backends

from emulator import Emulator
from emulator.scenario import config_yaml, day_ms, edge_events

from .conftest import (
    LEASE,
    Exporter,
    account_ids,
    assert_complete,
    read_state,
    seed_world,
    tasks_per_window,
)

GROUP = "/aws/lambda/api"


def _streams(world: object, account: str, n: int = 6) -> None:
    """`n` more streams in GROUP's first day, so a failed task leaves several objects."""
    first = datetime.now(UTC).date() - timedelta(days=3)
    for i in range(n):
        world.add(  # type: ignore[attr-defined]
            account, GROUP, f"{first:%Y/%m/%d}/[$LATEST]x{i}", edge_events(first, f"x{i}")
        )


def test_keys_left_by_a_delete_are_deleted_again(emu: Emulator, exporter: Exporter) -> None:
    bucket, prefix = "pdel-archive", "pd"
    (account,) = account_ids(980_000_000_000, 1)
    world = seed_world(bucket, [account], days=3)
    _streams(world, account)
    emu.fail_tasks(1, account_id=account, group=GROUP, partial=True)
    emu.partial_deletes(2, match=f"{prefix}/{account}/", code="InternalError")
    cfg = exporter.config(config_yaml(bucket, [account], prefix=prefix))

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 0, result.output
    assert emu.injected[("s3", "DeleteObjects", "InternalError")] >= 2  # the fault did happen
    assert_complete(world, prefix, [account], emu=emu)


def test_keys_that_stay_fail_the_window_until_a_later_run_deletes_them(
    emu: Emulator, exporter: Exporter
) -> None:
    bucket, prefix = "pdel2-archive", "pd2"
    accounts = account_ids(981_000_000_000, 2)
    account = accounts[0]
    world = seed_world(bucket, accounts, days=3)
    _streams(world, account)
    emu.fail_tasks(1, account_id=account, group=GROUP, partial=True)
    emu.partial_deletes(None, match=f"{prefix}/{account}/aws/lambda/api/", every=1)
    cfg = exporter.config(config_yaml(bucket, accounts, prefix=prefix))
    first = datetime.now(UTC).date() - timedelta(days=3)
    window = (account, GROUP, day_ms(first), day_ms(first) + 86_399_999)

    one = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert one.code == 1, one.output
    assert "Traceback" not in one.output and "unexpected" not in one.output
    (failed,) = [t for t in emu.tasks if t.status == "FAILED"]
    folder = f"s3://{bucket}/{prefix}/{account}/aws/lambda/api/{first:%Y/%m/%d}/{failed.task_id}/"
    assert folder in " ".join(one.stdout.split()), one.output
    assert tasks_per_window(emu, accounts)[window] == 1  # not exported again over its output
    state = read_state(bucket, prefix, account)
    assert [(f["group"], f.get("cleanup")) for f in state["failures"]] == [(GROUP, failed.task_id)]
    # the lane went on: every other window of both accounts is archived
    assert_complete(world, prefix, accounts[1:], emu=emu)
    assert len(tasks_per_window(emu, [account])) == 6

    again = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert again.code == 1, again.output  # still cannot delete: still not exported
    assert tasks_per_window(emu, accounts)[window] == 1

    emu.reset_faults()
    last = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert last.code == 0, last.output
    assert_complete(world, prefix, accounts, emu=emu)
    assert tasks_per_window(emu, accounts)[window] == 2
    assert read_state(bucket, prefix, account)["failures"] == []


def test_a_versioned_archive_holds_every_event_once_in_its_current_objects(
    emu: Emulator, exporter: Exporter
) -> None:
    bucket, prefix = "pdel-versioned", "pv"
    (account,) = account_ids(982_000_000_000, 1)
    world = seed_world(bucket, [account], days=3)
    _streams(world, account)
    emu.version_bucket(bucket)
    emu.fail_tasks(1, account_id=account, group=GROUP, partial=True)
    emu.partial_deletes(1, match=f"{prefix}/{account}/", code="AccessDenied")
    cfg = exporter.config(config_yaml(bucket, [account], prefix=prefix))

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 0, result.output
    assert_complete(world, prefix, [account], emu=emu)  # current objects only
    (failed,) = [t for t in emu.tasks if t.status == "FAILED"]
    partition, owner = s3_backends.bucket_accounts[bucket]
    _, _, markers, _, _ = s3_backends[owner][partition].list_object_versions(
        bucket, prefix=f"{prefix}/"
    )
    hidden = [m.name for m in markers if f"/{failed.task_id}/" in m.name]
    assert len(hidden) == len(failed.objects) > 1  # kept as noncurrent versions only

    # the delete-markered folder is not an archive: sync counts the current objects only
    sync = exporter("sync", "--config", str(cfg))
    assert sync.code == 0, sync.output
    assert "partial output" not in sync.output and "twice" not in sync.output
    before = len(emu.tasks)
    rerun = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    assert rerun.code == 0, rerun.output
    assert len(emu.tasks) == before
    assert_complete(world, prefix, [account], emu=emu)
