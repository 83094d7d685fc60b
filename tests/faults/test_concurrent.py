"""Runs of the same config at the same time: the lease in each lane's state object (conditional
PUTs) lets one runner work a lane while the other waits, so no day gets a second task."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import Emulator
from emulator.scenario import REGION, World, config_yaml
from log_exporter.aws_lambda.messages import LaneMessage
from log_exporter.aws_lambda.worker import Advance
from tests.deploy.conftest import drain, make_app

from .conftest import (
    GROUPS,
    LEASE,
    Exporter,
    Result,
    account_ids,
    assert_complete,
    read_state,
    seed_world,
    tasks_per_window,
)

BUCKET = "concurrent-archive"
DAYS = 3


def _together(
    emu: Emulator, exporter: Exporter, world: World, accounts: list[str], prefix: str, delay: float
) -> None:
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix=prefix), f"{prefix}.yml")
    first = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    time.sleep(delay)
    second = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    for p, (out, err) in zip((first, second), outs, strict=True):
        assert p.returncode == 0, out + err
        assert "Traceback" not in err
    assert_complete(world, prefix, accounts, emu=emu)
    per_window = tasks_per_window(emu, accounts)
    assert len(per_window) == len(accounts) * len(GROUPS) * DAYS
    assert set(per_window.values()) == {1}, {k: v for k, v in per_window.items() if v != 1}
    for account in accounts:
        state = read_state(BUCKET, prefix, account)
        assert state["lease"]["owner"] is None and state["intents"] == []


def test_two_runs_started_at_the_same_moment(emu: Emulator, exporter: Exporter) -> None:
    accounts = account_ids(700_000_000_000, 3)
    world = seed_world(BUCKET, accounts, days=DAYS)

    _together(emu, exporter, world, accounts, "same", 0.0)


def test_a_second_run_started_at_random_moments_of_the_first(
    emu: Emulator, exporter: Exporter
) -> None:
    rng = random.Random(8)
    world = World(BUCKET)
    trials = [(account_ids(710_000_000_000 + 100 * i, 2), rng.uniform(0.0, 1.5)) for i in range(4)]
    for accounts, _ in trials:
        seed_world(BUCKET, accounts, days=DAYS, world=world)

    with ThreadPoolExecutor(len(trials)) as pool:
        futures = [
            pool.submit(_together, emu, exporter, world, accounts, f"stagger{i}", delay)
            for i, (accounts, delay) in enumerate(trials)
        ]
        for f in futures:
            f.result()


def test_a_stalled_runner_that_lost_its_lease_stops_without_duplicating(
    emu: Emulator, exporter: Exporter
) -> None:
    """A runner frozen (SIGSTOP) past its lease while its task runs: another run takes the lane
    over and adopts that task; the frozen one, thawed, notices at its next write and stops."""
    accounts = account_ids(720_000_000_000, 1)
    world = seed_world(BUCKET, accounts, days=DAYS)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="stall"))
    emu.task_timing(base=4.0)
    stalled = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(t.status == "RUNNING" for t in emu.tasks):
        time.sleep(0.01)
    stalled.send_signal(signal.SIGSTOP)
    try:
        taken = [t.task_id for t in emu.tasks if t.status == "RUNNING"]
        assert taken, "the first run never got a task running"
        emu.task_timing(base=0.05)

        other = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    finally:
        stalled.send_signal(signal.SIGCONT)
    out, err = stalled.communicate(timeout=60)

    assert other.code == 0, other.output
    assert f"task {taken[0]} started" in other.output  # adopted, not created again
    assert stalled.returncode == 1
    assert "another runner took over this lane" in out + err
    assert_complete(world, "stall", accounts, emu=emu)
    assert set(tasks_per_window(emu, accounts).values()) == {1}
    assert read_state(BUCKET, "stall", accounts[0])["lease"]["owner"] is None


@pytest.mark.parametrize("first", ["worker", "cli"])
def test_a_cli_run_overlapping_a_lambda_worker_on_the_same_lane(
    emu: Emulator,
    exporter: Exporter,
    aws: None,
    queue_url: str,
    monkeypatch: pytest.MonkeyPatch,
    first: str,
) -> None:
    """The Lambda worker (in this process) and a CLI run work one lane at once, either one
    first; the worker stops at its invocation's deadline and is sent back to the queue."""
    monkeypatch.setenv("LOG_EXPORTER_LEASE_SECONDS", LEASE)
    (account,) = account_ids(730_000_000_000 + (0 if first == "worker" else 100), 1)
    prefix = f"overlap-{first}"
    # More work than the worker's deadline allows, and a deadline far enough that the CLI
    # process, started after the worker's first task, meets its lease even on a busy machine.
    world = seed_world(BUCKET, [account], days=12)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix=prefix))
    app = make_app(cfg, queue_url, BUCKET, prefix=prefix)
    emu.task_timing(base=0.3)
    advanced: list[Advance] = []

    def worker() -> None:
        message = LaneMessage(f"acct-{account}", REGION)
        advanced.append(app.advance(message, deadline=time.time() + 8.0))

    def started() -> bool:
        return any(t.account_id == account for t in emu.tasks)

    if first == "worker":
        thread = threading.Thread(target=worker)
        thread.start()
        _until(started)
        cli = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
        thread.join(timeout=60)
    else:
        proc = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
        _until(started)
        worker()
        out, err = proc.communicate(timeout=60)
        cli = Result(proc.returncode, out, err)

    assert cli.code == 0, cli.output
    assert advanced and advanced[0].action in ("requeued", "done"), advanced
    if first == "cli":
        assert advanced[0].result is not None and advanced[0].result.busy
    else:
        assert "waiting for runner" in cli.output  # the worker's lease was honoured
    drained = drain(app, queue_url)
    assert not drained.failures
    assert_complete(world, prefix, [account], emu=emu)
    assert set(tasks_per_window(emu, [account]).values()) == {1}
    assert read_state(BUCKET, prefix, account)["lease"]["owner"] is None


def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
