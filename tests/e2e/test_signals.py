"""SIGTERM and SIGHUP (systemd, `docker stop`, `timeout`, a closed terminal) stop a run as Ctrl-C
does: the lanes record what is in flight and release their leases, so the next run starts at once."""

from __future__ import annotations

import json
import signal
import time

import pytest
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, archived, config_yaml, sample_world

from .conftest import Exporter
from .test_run import SELECTED, task_folders

A, B = "111111111111", "222222222222"


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGHUP, 129, "hangup")],
)
def test_a_stop_signal_stops_the_lanes_and_the_next_run_finishes_exactly_once(
    exporter: Exporter, emu: Emulator, signum: int, code: int, said: str
) -> None:
    world = sample_world(accounts=(A, B), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A, B]))
    emu.task_timing(pending=0.05, base=1.0)
    # a long lease: a lease left behind would make the next run wait, visibly
    proc = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="60")
    deadline = time.monotonic() + 30
    while not [t for t in emu.tasks if t.active] and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == code, stderr
    assert f"log-exporter: {said}" in stderr and "Traceback" not in stderr
    recorded = []
    for account in (A, B):
        obj = s3_backends[seed.DEFAULT_ACCOUNT]["aws"].get_object(
            world.bucket, f"logs/.log-exporter/{account}/{REGION}.json"
        )
        if obj is None:
            continue  # that lane was stopped before its first write: it holds nothing
        state = json.loads(obj.value)
        assert state["lease"]["owner"] is None  # released
        recorded += [i["task_id"] for i in state["intents"] if i["task_id"]]
    assert recorded  # the tasks in flight are recorded, for the next run to adopt
    emu.task_timing(pending=0.02, base=0.05)

    again = exporter("run", "--config", str(cfg), timeout=60, LOG_EXPORTER_LEASE_SECONDS="60")

    assert again.code == 0, again.output
    assert "waiting for runner" not in again.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert set(task_folders(events).values()) == {1}
    assert len({(t.account_id, t.group, t.from_ms) for t in emu.tasks}) == len(emu.tasks)


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGHUP, 129, "hangup")],
)
def test_a_stop_signal_stops_a_single_lane_run_and_the_next_run_finishes_exactly_once(
    exporter: Exporter, emu: Emulator, signum: int, code: int, said: str
) -> None:
    """One lane runs on the main thread (the engine's `not parallel` path): the stop is raised
    inside the lane, whose own clean-up records the task in flight and releases the lease."""
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.task_timing(pending=0.05, base=1.0)
    proc = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS="60")
    deadline = time.monotonic() + 30
    while not [t for t in emu.tasks if t.active] and time.monotonic() < deadline:
        time.sleep(0.05)
    (running,) = [t for t in emu.tasks if t.active]
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == code, stderr
    assert f"log-exporter: {said}" in stderr and "Traceback" not in stderr
    obj = s3_backends[seed.DEFAULT_ACCOUNT]["aws"].get_object(
        world.bucket, f"logs/.log-exporter/{A}/{REGION}.json"
    )
    state = json.loads(obj.value)
    assert state["lease"]["owner"] is None, stderr  # released
    # the task in flight is recorded, for the next run to adopt: with its id, or by its name
    # alone when the signal came before CreateExportTask's answer
    intents = {i["name"]: i["task_id"] for i in state["intents"]}
    assert intents.get(running.task_name or "", "none") in (running.task_id, None), intents
    emu.task_timing(pending=0.02, base=0.05)

    again = exporter("run", "--config", str(cfg), timeout=60, LOG_EXPORTER_LEASE_SECONDS="60")

    assert again.code == 0, again.output
    assert "waiting for runner" not in again.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert set(task_folders(events).values()) == {1}
    assert len({(t.account_id, t.group, t.from_ms) for t in emu.tasks}) == len(emu.tasks)
