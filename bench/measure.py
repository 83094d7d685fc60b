"""Running the real `log-exporter` process and measuring it: wall time, CPU time and peak RSS of
that process alone (from `wait4`, so the emulator in this process is not counted)."""

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
    max_rss_mb: float  # peak resident set size of the exporter process
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
        try:
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
            max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
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
