"""SIGTERM during direct reads (`strategy: read`, one lane: the engine's `not parallel` path):
the reads in flight stop at once, nothing of theirs is recorded, and the next run archives every
event once."""

from __future__ import annotations

import signal
import subprocess
import time

from emulator import Emulator
from emulator.scenario import archived, config_yaml, misplaced, sample_world

from .conftest import Exporter
from .test_direct_reads import SELECTED, A, state_of, with_strategy


def test_sigterm_stops_the_direct_reads_in_flight(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    slow = with_strategy(config_yaml(world.bucket, [A]), "read").replace(
        "read_quota: 50", "read_quota: 0.2"
    )  # paced at 0.1 FilterLogEvents a second: 9 windows take 90 s to read
    proc = exporter.popen("run", "--config", str(exporter.config(slow)))
    deadline = time.monotonic() + 30
    while emu.calls[("logs", "FilterLogEvents")] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the reads are waiting for their turn (the pacer)
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=60)  # the reads' sleeps took 90 s before the fix
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise

    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert emu.calls[("logs", "FilterLogEvents")] < 9  # the reads stopped, not finished
    try:
        state = state_of(world.bucket, A)
    except KeyError:
        state = None  # the lane had not written yet: it holds nothing
    if state is not None:
        assert state["intents"] == [] and not state.get("read")  # nothing of theirs recorded
        assert state["lease"]["owner"] is None  # type: ignore[index]

    again = exporter("run", "--config", str(exporter.config(with_strategy(
        config_yaml(world.bucket, [A]), "read"))))  # fmt: skip

    assert again.code == 0, again.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert misplaced(events) == []
