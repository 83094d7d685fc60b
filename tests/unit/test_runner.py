"""Lease owners (runner.py): what they carry, and whether a runner of this machine is gone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from log_exporter.lane.runner import owner_gone, parse_owner, runner_id, start_ticks, this_machine

BOOT = "0b6f1c4e-2a51-4c0b-9f3e-6d8e1a2b3c4d"
NS = "4026531836"


def fake_proc(tmp_path: Path, processes: dict[int, tuple[str, int]]) -> Path:
    """A /proc with this boot id and PID namespace and `processes` (pid -> state, start)."""
    proc = tmp_path / "proc"
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
    (proc / "self/ns").mkdir(parents=True)
    os.symlink(f"pid:[{NS}]", proc / "self/ns/pid")
    for pid, (state, start) in processes.items():
        (proc / str(pid)).mkdir()
        rest = " ".join(["0"] * 18)  # fields 4..21
        (proc / str(pid) / "stat").write_text(f"{pid} (log exp) {state} {rest} {start} 0 0\n")
    return proc


def owner(pid: int, start: int, *, boot: str = BOOT, ns: str = NS, host: str = "") -> str:
    import socket

    return f"{host or socket.gethostname()}:{pid}:abcd1234:{boot}:{ns}:{start}"


@pytest.mark.parametrize("suffix", [":prod/eu-west-1:x", "/prod/eu-west-1", "/a:b/eu-west-1"])
def test_an_owner_carries_its_machine_and_process_and_survives_a_suffix(suffix: str) -> None:
    # "/<account>/<region>" is what the engine appends for each lane (Engine.build_lane)
    who = parse_owner(owner(42, 777) + suffix)
    assert who is not None
    assert (who.pid, who.start_ticks, who.machine.boot_id) == (42, 777, BOOT)


@pytest.mark.parametrize(
    "old", ["host:123:abcd1234", "host:123:abcd1234:lane-suffix", "", "a:b:c:d:e:f"]
)
def test_an_owner_without_an_identity_is_never_called_gone(old: str) -> None:
    assert parse_owner(old) is None
    assert not owner_gone(old)


def no_such_process(pid: int, signal: int) -> None:
    raise ProcessLookupError(3, "No such process")


def test_a_process_that_no_longer_exists_is_gone(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {7: ("S", 500)})
    assert owner_gone(owner(8, 500), proc, kill=no_such_process)


def test_a_live_process_that_proc_hides_is_not_gone(tmp_path: Path) -> None:
    """/proc mounted with hidepid=2 (systemd's ProtectProc=invisible) shows no other user's
    process: this live one, missing from the fake /proc, is asked of the kernel instead."""
    proc = fake_proc(tmp_path, {7: ("S", 500)})
    assert not owner_gone(owner(os.getpid(), 500), proc)


def _raise(exc: OSError | None) -> Callable[[int, int], None]:
    def kill(pid: int, signal: int) -> None:
        assert signal == 0  # only asks, never signals
        if exc is not None:
            raise exc

    return kill


@pytest.mark.parametrize(
    ("kernel_says", "gone"),
    [
        (None, False),  # it exists (ours, and /proc hides it all the same)
        (PermissionError(1, "Operation not permitted"), False),  # another user's, alive
        (ProcessLookupError(3, "No such process"), True),  # the only proof it is gone
        (OSError(22, "Invalid argument"), False),  # cannot tell: alive
    ],
)
def test_a_pid_missing_from_proc_is_gone_only_when_the_kernel_says_so(
    tmp_path: Path, kernel_says: OSError | None, gone: bool
) -> None:
    proc = fake_proc(tmp_path, {})
    assert owner_gone(owner(8, 500), proc, kill=_raise(kernel_says)) is gone


def test_this_runner_reads_its_own_start_from_proc_self(tmp_path: Path) -> None:
    """In a /proc of another PID namespace, /proc/<getpid()> is somebody else (or nobody):
    /proc/self is always this process."""
    proc = fake_proc(tmp_path, {})
    (proc / "self/stat").write_text(f"1 (log exp) R {' '.join(['0'] * 18)} 4242 0 0\n")
    who = parse_owner(runner_id(proc))
    assert who is not None and who.start_ticks == 4242


def test_a_live_process_with_the_same_pid_and_start_is_not_gone(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {7: ("S", 500)})
    assert not owner_gone(owner(7, 500), proc)


def test_a_reused_pid_or_a_zombie_is_gone(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {7: ("S", 900), 9: ("Z", 500)})
    assert owner_gone(owner(7, 500), proc)  # another process got the pid since
    assert owner_gone(owner(9, 500), proc)  # killed, not reaped yet: it writes nothing more


@pytest.mark.parametrize(
    "other",
    [
        {"boot": "11111111-2222-3333-4444-555555555555"},  # an earlier boot, or another machine
        {"ns": "4026532000"},  # another container's PID namespace
        {"host": "elsewhere"},
    ],
)
def test_a_runner_of_another_machine_boot_or_container_is_waited_for(
    tmp_path: Path, other: dict[str, str]
) -> None:
    proc = fake_proc(tmp_path, {})
    assert not owner_gone(owner(8, 500, **other), proc)


def test_without_proc_nothing_is_gone_and_owners_are_as_before(tmp_path: Path) -> None:
    proc = tmp_path / "none"
    assert this_machine(proc) is None
    assert not owner_gone(owner(8, 500), proc)
    assert parse_owner(runner_id(proc)) is None
    assert len(runner_id(proc).split(":")) == 3


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_real_processes_this_one_and_a_sleeping_child_live_a_reaped_one_is_gone() -> None:
    mine = runner_id()
    assert parse_owner(mine) is not None
    assert not owner_gone(mine)
    child = subprocess.Popen(["sleep", "30"])
    try:
        ticks = start_ticks(child.pid)
        assert ticks is not None
        machine = this_machine()
        assert machine is not None
        held = (
            f"{machine.host}:{child.pid}:abcd1234:{machine.boot_id}:{machine.pid_namespace}:{ticks}"
        )
        assert not owner_gone(held)
    finally:
        child.kill()
        child.wait()
    assert owner_gone(held)
