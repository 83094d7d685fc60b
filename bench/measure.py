"""Running the real `log-exporter` process and measuring it: wall time, CPU time and peak RSS of
that process alone, so the emulator in this process is not counted.

Wall and CPU time come from `wait4`. The peak RSS does not: on Linux the `ru_maxrss` of a child
also counts the memory of the process it was forked from, taken at its exec (the kernel keeps
the larger of the old and the new address space's high-water mark), and the benchmark process
holds the emulator and its archive, 100 to 300 MB. So the peak is the child's own VmHWM, read
from /proc while it runs (every 5 ms; VmHWM only grows, so a late sample loses nothing but the
last few milliseconds)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

EXPORTER = str(Path(sys.executable).parent / "log-exporter")


@dataclass(frozen=True)
class ChildRun:
    code: int
    started_at: float  # time.time() at spawn
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the exporter process
    max_rss_mb: float  # peak resident set size of the exporter process (its own VmHWM)
    stdout: str
    stderr: str


def run_exporter(args: list[str], env: dict[str, str], timeout: float = 900.0) -> ChildRun:
    """Run `log-exporter *args` to completion; kill it after `timeout` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [EXPORTER, *args], env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        peak = PeakRSS(proc.pid)
        try:
            with peak:
                _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: do not leave the exporter running on its own
            proc.kill()
            proc.wait()
            raise
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            code=proc.returncode,
            started_at=started_at,
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            max_rss_mb=peak.mb,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def startup_seconds(env: dict[str, str], runs: int = 7) -> tuple[float, float]:
    """Median wall time of `log-exporter --help` and of `log-exporter run --help`."""
    medians = []
    for args in (["--help"], ["run", "--help"]):
        times = []
        for _ in range(runs):
            child = run_exporter(args, env, timeout=30)
            if child.code != 0:
                raise RuntimeError(f"log-exporter {' '.join(args)} failed: {child.stderr}")
            times.append(child.wall)
        medians.append(statistics.median(times))
    return medians[0], medians[1]


class PeakRSS:
    """Samples the VmHWM of process `pid` (once it runs `log-exporter`) until it exits."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def mb(self) -> float:
        return self.kib / 1024

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            # before its exec the child is a copy of this process: its VmHWM is ours
            if _runs_exporter(self.pid):
                self.kib = max(self.kib, _hwm_kib(self.pid))
            time.sleep(self.interval)


def _runs_exporter(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"log-exporter" in f.read()
    except OSError:
        return False


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
