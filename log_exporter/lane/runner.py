"""Who holds a lease: the runner's identity, and whether a runner of this machine still lives.

An owner is `host:pid:random:boot_id:pid_namespace:start_ticks`, then anything a caller appends
(`:` and a suffix). Older owners (`host:pid:random`) and owners of other machines, boots or PID
namespaces (another container) cannot be told dead: their lease is waited out as always. A
runner of this machine, boot and namespace is gone only when /proc says so: no process with its
pid, a process with another start time (the pid was reused), or a zombie. Both pid and start
time must match to call it alive, so two live runners never take each other's lease. A /proc
that hides other users' processes (`hidepid=2`, systemd's `ProtectProc=invisible`) says
nothing of a pid it does not show: the kernel is asked (`kill(pid, 0)`), and only "no such
process" calls it gone.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_BOOT_ID = re.compile(r"^[0-9a-f-]{16,64}$")


@dataclass(frozen=True)
class Machine:
    """What makes pids comparable: the same host, boot and PID namespace."""

    host: str
    boot_id: str
    pid_namespace: str


@dataclass(frozen=True)
class RunnerIdentity:
    machine: Machine
    pid: int
    start_ticks: int


def this_machine(proc: Path = PROC) -> Machine | None:
    """This process's machine, or None where /proc does not tell (not Linux)."""
    try:
        boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(proc / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    digits = re.sub(r"\D", "", namespace)
    if not _BOOT_ID.match(boot_id) or not digits:
        return None
    return Machine(socket.gethostname(), boot_id, digits)


def start_ticks(pid: int | str, proc: Path = PROC) -> int | None:
    """The start time of process `pid` ("self": this one) in clock ticks since boot, None if
    there is none (or a zombie: a dead process its parent has not reaped yet). Raises OSError
    if /proc cannot say."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted from the state (field 3)


def runner_id(proc: Path = PROC) -> str:
    """A new owner for this process's leases."""
    base = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    machine = this_machine(proc)
    if machine is None:
        return base
    try:
        # /proc/self, not /proc/<getpid()>: that pid is another process in another namespace's
        ticks = start_ticks("self", proc)
    except (OSError, ValueError, IndexError):
        ticks = None
    if ticks is None:
        return base
    return f"{base}:{machine.boot_id}:{machine.pid_namespace}:{ticks}"


def parse_owner(owner: str) -> RunnerIdentity | None:
    """The identity an owner carries; None for an owner without one (older versions)."""
    parts = owner.split(":", 6)
    if len(parts) < 6:
        return None
    host, pid, _, boot_id, namespace, ticks = parts[:6]
    ticks = ticks.split("/", 1)[0]  # the engine appends `/<account>/<region>` for each lane
    if not (pid.isdigit() and ticks.isdigit() and namespace.isdigit() and _BOOT_ID.match(boot_id)):
        return None
    return RunnerIdentity(Machine(host, boot_id, namespace), int(pid), int(ticks))


def owner_gone(
    owner: str | None, proc: Path = PROC, kill: Callable[[int, int], None] = os.kill
) -> bool:
    """Whether `owner` is provably a process of this machine that no longer exists."""
    who = parse_owner(owner or "")
    if who is None or who.machine != this_machine(proc):
        return False  # an older owner, or another machine, boot or container: wait for expiry
    try:
        if not (proc / str(who.pid)).exists():  # none, or hidden from us: the kernel knows
            return not _exists(who.pid, kill)
        ticks = start_ticks(who.pid, proc)
    except (OSError, ValueError, IndexError):
        return False  # /proc cannot say: call it alive
    return ticks != who.start_ticks


def _exists(pid: int, kill: Callable[[int, int], None]) -> bool:
    """Whether a process `pid` exists, as `kill(pid, 0)` tells: only "no such process" (ESRCH)
    says it does not; "not permitted" is another user's live process."""
    try:
        kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError, or anything else: cannot tell, so it lives
        return True
    return True
