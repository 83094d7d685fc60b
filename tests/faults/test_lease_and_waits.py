"""Leases that must hold through long waits, clocks that disagree with AWS's, runners of this
machine that died, and waits that never end: each ends, holds or is reported, and the archive
stays exactly once."""

from __future__ import annotations

import json
import re
import subprocess
import time

from moto.logs.models import logs_backends
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, config_yaml
from log_exporter.lane.runner import start_ticks, this_machine

from .conftest import LEASE, Exporter, account_ids, assert_complete, read_state, seed_world

BUCKET = "lease-archive"


def _state_key(prefix: str, account: str) -> str:
    return f"{prefix}/.log-exporter/{account}/{REGION}.json"


def _write_lease(prefix: str, account: str, owner: str, expires_ms: int) -> None:
    """Put a lease into a lane's state object, as a runner holding the lane would have."""
    state = read_state(BUCKET, prefix, account)
    state["lease"] = {"owner": owner, "expires_ms": expires_ms}
    s3_backends[seed.DEFAULT_ACCOUNT]["aws"].put_object(
        bucket_name=BUCKET, key_name=_state_key(prefix, account), value=json.dumps(state).encode()
    )


def _owner_of(pid: int) -> str:
    """The lease owner a runner with process `pid` of this machine writes."""
    machine = this_machine()
    ticks = start_ticks(pid)
    assert machine is not None and ticks is not None
    return f"{machine.host}:{pid}:0123abcd:{machine.boot_id}:{machine.pid_namespace}:{ticks}"


def _wait_for(check: object, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if check():  # type: ignore[operator]
                return
        except AssertionError:  # no state object yet
            pass
        time.sleep(0.02)
    raise AssertionError("the run never got there")


def _with_destination(config: str, line: str) -> str:
    return config.replace("destination:\n", f"destination:\n  {line}\n", 1)


# --- point 5: a lease that lapses while the lane waits; a clock that disagrees with AWS's -------


def test_a_lane_waiting_on_a_busy_slot_longer_than_its_lease_keeps_it(
    emu: Emulator, exporter: Exporter
) -> None:
    (account,) = account_ids(930_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="busy"))
    emu.occupy_slot(account, REGION, 15.0)  # fifteen leases long
    first = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    _wait_for(lambda: read_state(BUCKET, "busy", account)["lease"]["owner"], first)

    second = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    out, err = first.communicate(timeout=60)

    assert first.returncode == 0, out + err
    assert "took over" not in out + err
    assert second.code == 0, second.output
    assert "waiting for runner" in second.output  # the waiting lane's lease was kept
    assert_complete(world, "busy", [account], emu=emu)
    assert read_state(BUCKET, "busy", account)["lease"]["owner"] is None


def test_a_clock_far_from_aws_is_refused(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(931_000_000_000, 1)
    seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="skew"))
    for skew, way in ((-120, "ahead of"), (120, "behind")):
        emu.skew_clock(skew)  # S3's Date is two minutes off this machine's clock

        result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

        assert result.code == 1, result.output
        assert re.search(f"clock is 1(19|20) s {way} AWS's", result.stderr), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not [t for t in emu.tasks if t.account_id == account]  # nothing was created


def test_a_short_lease_needs_a_clock_closer_to_aws(emu: Emulator, exporter: Exporter) -> None:
    """Runners up to twice the margin apart must still see a renewed lease held: with a 12 s
    lease (renewed every 4 s) the margin is 2 s, and a clock 4-5 s off is refused."""
    (account,) = account_ids(940_000_000_000, 1)
    seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="short-lease"))
    emu.skew_clock(-5)

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="12")

    assert result.code == 1, result.output
    assert re.search("clock is [45] s ahead of AWS's .* within 2 s", result.stderr), result.stderr
    assert not [t for t in emu.tasks if t.account_id == account]  # nothing was created


def test_through_now_cuts_no_later_than_aws_now(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(932_000_000_000, 1)
    now_ms = int(time.time() * 1000)
    seed_world(BUCKET, [account], days=1)
    events = [(now_ms - s * 1000, f"recent {s}") for s in (300, 60, 30, 10, 5)]
    seed.put_events(account, REGION, "/aws/lambda/api", "recent", events)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="aws-now"))
    emu.skew_clock(-20)  # AWS's clock is 20 s behind ours: within the margin, so the run goes on
    started_ms = int(time.time() * 1000)

    # a lease of 180 s or more allows the whole margin (30 s); a shorter one a sixth of it
    result = exporter(
        "run", "--config", str(cfg), "--through", "now", LOG_EXPORTER_LEASE_SECONDS="180"
    )

    assert result.code == 0, result.output
    spans = read_state(BUCKET, "aws-now", account)["covered"]["/aws/lambda/api"]
    assert spans[-1][1] < started_ms - 18_000  # AWS's now minus the settle delay (0 here)


# --- point 7: a lease whose runner of this machine is gone ---------------------------------------


def test_a_rerun_right_after_a_kill_on_the_same_machine_starts_at_once(
    emu: Emulator, exporter: Exporter
) -> None:
    accounts = account_ids(933_000_000_000, 2)
    world = seed_world(BUCKET, accounts, days=2)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="oom"))
    emu.task_timing(pending=0.05, base=1.0)
    proc = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="60")
    _wait_for(  # a task in flight, and every lane's lease written (read_state raises before)
        lambda: (
            [t for t in emu.tasks if t.account_id in accounts and t.active]
            and all(read_state(BUCKET, "oom", a) for a in accounts)
        ),
        proc,
    )
    proc.kill()  # like an OOM kill: no clean-up at all
    proc.communicate(timeout=30)
    held = [read_state(BUCKET, "oom", a)["lease"]["owner"] for a in accounts]
    assert any(held)  # a lease of the killed run is left, for 60 s
    emu.task_timing(pending=0.02, base=0.05)

    again = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="60")

    assert again.code == 0, again.output
    assert "waiting for runner" not in again.output
    assert "no longer exists; taking over" in again.output
    assert_complete(world, "oom", accounts, emu=emu)


def test_a_lease_of_a_live_process_of_this_machine_is_waited_for(
    emu: Emulator, exporter: Exporter
) -> None:
    (account,) = account_ids(934_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="alive"))
    assert exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE).code == 0
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        owner = _owner_of(sleeper.pid)
        expires_ms = int(time.time() * 1000) + 3000
        _write_lease("alive", account, owner, expires_ms)

        result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    finally:
        sleeper.kill()
        sleeper.wait()

    assert result.code == 0, result.output
    assert f"waiting for runner {owner}" in result.output
    assert "taking over" not in result.output
    assert time.time() * 1000 >= expires_ms  # it waited the lease out
    assert_complete(world, "alive", [account], emu=emu)


def test_a_lease_of_a_dead_process_of_this_machine_is_taken_over_at_once(
    emu: Emulator, exporter: Exporter
) -> None:
    (account,) = account_ids(935_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="dead"))
    assert exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE).code == 0
    sleeper = subprocess.Popen(["sleep", "30"])
    owner = _owner_of(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    _write_lease("dead", account, owner, int(time.time() * 1000) + 60_000)

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="60")

    assert result.code == 0, result.output
    assert f"runner {owner} no longer exists; taking over" in result.output
    assert "waiting for runner" not in result.output
    assert_complete(world, "dead", [account], emu=emu)


# --- point 9: waits without an end -----------------------------------------------------------------


def test_a_task_stuck_past_the_limit_is_reported_and_adopted_by_the_next_run(
    emu: Emulator, exporter: Exporter
) -> None:
    (account,) = account_ids(936_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(
        _with_destination(config_yaml(BUCKET, [account], prefix="stuck"), 'stuck_after: "2s"')
    )
    emu.stuck_tasks(1, account_id=account)  # PENDING until cancelled

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE, timeout=60)

    assert result.code == 1, result.output
    (task,) = [t for t in emu.tasks if t.account_id == account]
    assert f"task {task.task_id}" in result.output and "PENDING for" in result.output
    assert "longer than stuck_after (2.0s)" in result.output
    state = read_state(BUCKET, "stuck", account)
    assert [i["task_id"] for i in state["intents"]] == [task.task_id]  # kept for the next run
    assert state["lease"]["owner"] is None
    status = exporter("status", "--config", str(cfg))
    assert status.code == 1, status.output
    assert f"stuck acct-{account}/{REGION}" in status.output and task.task_id in status.output

    emu.engine.cancel(logs_backends[account][REGION], task.task_id)  # somebody ends it
    again = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert again.code == 0, again.output
    assert_complete(world, "stuck", [account])


def test_a_cancel_that_never_ends_is_reported(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(937_000_000_000, 1)
    seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="cancel"))
    emu.stuck_tasks(1, account_id=account)
    emu.task_timing(cancel=20.0)  # PENDING_CANCEL for longer than the test looks

    result = exporter(
        "run",
        "--config",
        str(cfg),
        "--pending-timeout",
        "1s",
        "--stuck-after",
        "3s",
        LOG_EXPORTER_LEASE_SECONDS=LEASE,
        timeout=60,
    )

    assert result.code == 1, result.output
    assert "stuck in PENDING; cancelling it" in result.output
    assert "PENDING_CANCEL for" in result.output
    emu.task_timing(cancel=0.05)


def test_a_slot_busy_with_no_task_in_sight_is_reported(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(938_000_000_000, 1)
    seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="hidden"))
    emu.occupy_slot(account, REGION, 10.0, hidden=True)

    result = exporter(
        "run", "--config", str(cfg), "--stuck-after", "2s", LOG_EXPORTER_LEASE_SECONDS=LEASE
    )

    assert result.code == 1, result.output
    assert "the export slot is busy with no task in sight for" in result.output
    assert not [t for t in emu.tasks if t.account_id == account and not t.foreign]
    state = read_state(BUCKET, "hidden", account)
    assert state["intents"] == [] and state["lease"]["owner"] is None


def test_a_foreign_task_that_never_ends_is_reported(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(939_000_000_000, 1)
    seed_world(BUCKET, [account], days=1)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="foreign"))
    foreign = emu.occupy_slot(account, REGION, 10.0)

    result = exporter(
        "run", "--config", str(cfg), "--stuck-after", "2s", LOG_EXPORTER_LEASE_SECONDS=LEASE
    )

    assert result.code == 1, result.output
    assert f"the export slot is busy with task {foreign} (someone-elses-export) for" in (
        result.output
    )
    assert not [t for t in emu.tasks if t.account_id == account and not t.foreign]
    assert emu.task(foreign).active  # reported while it still held the slot
