"""Someone else's export task holding an account's only slot, and role credentials that expire
during the run: the lane waits (without flooding CreateExportTask) or refreshes, and finishes."""

from __future__ import annotations

import threading

from moto.logs.models import logs_backends

from emulator import Emulator
from emulator.scenario import REGION, config_yaml, role_arn

from .conftest import LEASE, Exporter, account_ids, assert_complete, read_state, seed_world

BUCKET = "slot-archive"


def _end_foreign_task_later(emu: Emulator, account: str, task_id: str, after: float) -> None:
    """Once the lane has been refused a task (it knows the slot is busy), let it wait `after`
    seconds more, then the other party's task ends (cancelled: the slot is free either way)."""

    def run() -> None:
        while not emu.limit_exceeded_by[(account, REGION)]:
            threading.Event().wait(0.01)
        threading.Event().wait(after)
        emu.engine.cancel(logs_backends[account][REGION], task_id)

    threading.Thread(target=run, daemon=True).start()


def test_a_foreign_task_holding_the_slot_is_waited_for(emu: Emulator, exporter: Exporter) -> None:
    busy, free = account_ids(900_000_000_000, 2)
    world = seed_world(BUCKET, [busy, free], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [busy, free], prefix="slot"))
    foreign = emu.occupy_slot(busy, REGION, 60.0)
    _end_foreign_task_later(emu, busy, foreign, 2.5)

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 0, result.output
    assert "export slot busy with someone-elses-export; waiting" in result.output
    ended = emu.task(foreign).ended_at
    assert emu.task(foreign).status == "CANCELLED" and ended is not None
    # one refused CreateExportTask, then it waited for that task instead of calling again
    assert emu.limit_exceeded_by == {(busy, REGION): 1}
    ours = [t for t in emu.tasks if t.account_id == busy and not t.foreign]
    assert min(t.created_at for t in ours) >= ended
    assert emu.calls[("logs", "DescribeExportTasks")] < 60  # polled now and then, not in a loop
    assert_complete(world, "slot", [busy, free], emu=emu)
    assert read_state(BUCKET, "slot", busy)["lease"]["owner"] is None


def test_a_foreign_task_that_appears_mid_run(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(910_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=3)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="mid"))
    emu.task_timing(base=0.3)
    occupied: list[str] = []

    def occupy_after_first_task() -> None:
        while not any(t.account_id == account for t in emu.tasks):
            threading.Event().wait(0.01)
        emu.wait_idle(timeout=10)
        occupied.append(emu.occupy_slot(account, REGION, 2.0))

    watcher = threading.Thread(target=occupy_after_first_task, daemon=True)
    watcher.start()

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    watcher.join(timeout=30)
    assert result.code == 0, result.output
    assert occupied and emu.task(occupied[0]).status == "COMPLETED"
    assert emu.limit_exceeded <= 1, result.output  # the one refused create that revealed it
    assert_complete(world, "mid", [account], emu=emu)


def test_credentials_that_expire_during_the_run_are_refreshed(
    emu: Emulator, exporter: Exporter
) -> None:
    """Each role of the chain lasts 2 s and expired keys are refused, as AWS refuses them; the
    run takes several lifetimes and must re-assume the chain in time, every time."""
    hub, member = account_ids(920_000_000_000, 2)
    world = seed_world(BUCKET, [member], days=3)
    chain = {member: [role_arn(hub, "Hub"), role_arn(member, "Member")]}
    cfg = exporter.config(config_yaml(BUCKET, [member], prefix="creds", roles=chain))
    emu.credential_lifetime(2)
    emu.enforce_credential_expiry()
    emu.task_timing(base=0.6)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert not emu.injected, emu.injected  # no call was made with expired keys
    assumed = emu.calls[("sts", "AssumeRole")]
    assert assumed >= 2 * 3  # both hops, again and again
    assert assumed % 2 == 0
    assert_complete(world, "creds", [member], emu=emu)


def test_a_refresh_that_is_refused_stops_the_lane_with_a_clear_error(
    emu: Emulator, exporter: Exporter
) -> None:
    """The role's trust is withdrawn mid-run: the refresh fails, the lane stops with a one-line
    error naming the role, keeps what it archived, and the next run (trust back) finishes."""
    (member,) = account_ids(930_000_000_000, 1)
    world = seed_world(BUCKET, [member], days=3)
    cfg = exporter.config(config_yaml(BUCKET, [member], prefix="revoked"))
    emu.credential_lifetime(2)
    emu.enforce_credential_expiry()
    emu.task_timing(base=0.6)

    def revoke_after_first_task() -> None:
        while not any(t.account_id == member and not t.active for t in emu.tasks):
            threading.Event().wait(0.01)
        emu.deny_role(role_arn(member))

    watcher = threading.Thread(target=revoke_after_first_task, daemon=True)
    watcher.start()
    first = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    watcher.join(timeout=30)

    assert first.code == 1, first.output
    assert f"cannot assume role {role_arn(member)}" in first.output
    assert "Traceback" not in first.output and "unexpected" not in first.output
    emu.reset_faults()

    second = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert second.code == 0, second.output
    assert_complete(world, "revoked", [member], emu=emu)
