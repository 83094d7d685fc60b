"""A lane's time: its clock, every wait (each renewing the lease), the stop and the deadline.

The run hands each lane one `RunControl` (its clock, sleeps, stop flag and clock check); every
sleep of the lane goes through its one `Pacer`, built from it: the lane's own waits (`pause`,
`gather`) renew the lease in steps of a third of it; its worker threads' waits (`worker_sleep`)
check the halt in short steps. A stop (Ctrl-C) raises `LaneStopped` as soon as any sleep of the
lane returns, and the deadline or a stop at the lane's next check, which also halts its
workers; `call_throttled` is the lane's one loop over a throttled call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from log_exporter.aws.retry import THROTTLED_CALLS, call_with_retries
from log_exporter.core.labels import duration
from log_exporter.errors import StuckError
from log_exporter.progress import Reporter

T = TypeVar("T")
GATHER_STEP = 0.5  # seconds between a waiting lane's checks of its deadline and stop
MAX_THROTTLED = THROTTLED_CALLS.retries  # tries in a row; backoff capped at 20 s: about 5 minutes


class LaneStopped(Exception):
    """Internal: the deadline is near; leave the rest for the next invocation."""


def call_throttled(
    fn: Callable[[], T],
    pause: Callable[[float], None],
    *,
    what: str,
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """Call `fn` under the retry policy's THROTTLED_CALLS (aws/retry.py), every wait through
    `pause`; give up after MAX_THROTTLED tries in a row (several minutes), so an endpoint that is
    gone for good fails the lane instead of holding it forever. `on_retry` counts each retry."""
    return call_with_retries(
        fn, THROTTLED_CALLS, pause, what=what, on_retry=lambda _exc: on_retry()
    )


@dataclass(frozen=True)
class RunControl:
    """What the run hands each lane to pace and stop it, made once per lane by the engine."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # sleeps, or less if the run learns its first task duration meanwhile (`sleep` if None)
    nap: Callable[[float], None] | None = None
    stopped: Callable[[], bool] = lambda: False  # the run is stopping (Ctrl-C)
    clock_check: Callable[[], None] = lambda: None  # raises if our clock is off AWS's


class Pacer:
    """The clock, sleep, stop and deadline of one lane (see the module's docstring).

    `renew` is called before every step of a lane's wait: the lease keeper's heartbeat, handed
    in once by the builder (`renew_with`; nothing before)."""

    def __init__(
        self,
        *,
        name: str,
        reporter: Reporter,
        lease_seconds: float,
        stuck_seconds: float,
        deadline_margin_seconds: float,
        control: RunControl,
    ) -> None:
        self.name = name
        self.reporter = reporter
        self.lease_seconds = lease_seconds
        self.stuck_seconds = stuck_seconds
        self.margin = deadline_margin_seconds
        self.clock = control.clock
        self.stopped = control.stopped
        self.clock_check = control.clock_check
        self._sleep = control.sleep
        self._nap = control.nap or control.sleep
        self.deadline: float | None = None  # a clock() time; see `check_deadline`
        # set when the lane stops (Ctrl-C, SIGTERM, the deadline, a lapsed lease): the reads and
        # writes in the worker threads stop at their next page, backoff, pacer sleep or PUT
        self._halt = threading.Event()
        self._renew: Callable[[], None] = lambda: None
        self.retries = 0  # throttled calls of the lane's own thread asked again

    def renew_with(self, heartbeat: Callable[[], None]) -> None:
        """Renew the lease with `heartbeat` before every step of a wait (set once, by build.py:
        the lease keeper, built after the pacer it waits with)."""
        self._renew = heartbeat

    # --- sleeping: every sleep of the lane, in its thread or a worker's ----------------------------
    def sleep(self, seconds: float) -> None:
        """Sleep `seconds` (without renewing the lease: see `pause`); LaneStopped once the run
        is stopping."""
        self._sleep(seconds)
        self._stop_if_stopping()

    def nap(self, seconds: float) -> None:
        """`sleep`, or less if the run learns its first task duration meanwhile."""
        self._nap(seconds)
        self._stop_if_stopping()

    def _stop_if_stopping(self) -> None:
        if self.stopped():
            raise LaneStopped()  # the lane saves its state and lets go of its lease

    def call(self, fn: Callable[[], T]) -> T:
        """Call a read-only AWS wrapper, backing off while throttled (see `call_throttled`)."""
        return call_throttled(fn, self.pause, what=self.name, on_retry=self.retried)

    def retried(self) -> None:
        self.retries += 1

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def check_deadline(self) -> None:
        if self.stopped() or (
            self.deadline is not None and self.clock() >= self.deadline - self.margin
        ):
            self.halt_workers()  # the direct reads in flight stop too; their windows are left
            raise LaneStopped()

    def pause(self, seconds: float, sleep: Callable[[float], None] | None = None) -> None:
        """Every wait of a holding lane: in steps of a third of the lease, each after renewing
        it (when a third of it has passed), so a wait of any length never lets the lease lapse.
        `sleep` (`self.sleep` by default) may return early: the rest is then slept in steps."""
        step = self.lease_seconds / 3
        sleep = sleep or self.sleep
        while True:
            self._renew()
            if seconds <= step:
                sleep(seconds)
                return
            sleep(step)
            seconds -= step

    def gather(self, futures: list[Future[Any]]) -> None:
        """Wait until `futures` are done, renewing the lease meanwhile; the deadline or a stop
        halts them (LaneStopped)."""
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=min(GATHER_STEP, self.lease_seconds / 3))
            self._renew()
            if pending:
                self.check_deadline()

    def check_stuck(self, since: float, what: str, then: str = "") -> None:
        """Give up a wait that began at `since` (a clock() time) once it is longer than the
        limit (`destination.stuck_after`): the lane stops with a StuckError saying so."""
        waited = self.clock() - since
        if waited > self.stuck_seconds:
            message = (
                f"{what} for {duration(waited)}, longer than stuck_after "
                f"({duration(self.stuck_seconds)}){then}"
            )
            self.reporter.notice(self.name, f"stuck: {message}")
            raise StuckError(f"{self.name}: {message}")

    # --- its worker threads ------------------------------------------------------------------------
    def halt_workers(self) -> None:
        """The lane stops (or its lease may have lapsed): its workers stop at their next check."""
        self._halt.set()

    def resume_workers(self) -> None:
        """The lease is ours again after a lapse (see DirectReads): workers may run again."""
        self._halt.clear()

    def halted(self) -> None:
        """In a worker: LaneStopped once the lane stops."""
        if self._halt.is_set():
            raise LaneStopped()

    def worker_sleep(self, seconds: float) -> None:
        """A worker's sleep (read rate, throttling backoff): in short steps, each after checking
        that the lane has not stopped."""
        while True:
            self.halted()
            if seconds <= 0:
                return
            step = min(seconds, GATHER_STEP)
            self.sleep(step)
            seconds -= step

    def call_in_worker(self, fn: Callable[[], T], what: str) -> T:
        """`call_throttled` for a read's worker thread: without touching the lane's state (the
        lane's own thread renews the lease while it waits for the reads); stops (LaneStopped)
        before each call and each backoff once the lane stops."""

        def checked() -> T:
            self.halted()
            return fn()

        return call_throttled(checked, self.worker_sleep, what=what)
