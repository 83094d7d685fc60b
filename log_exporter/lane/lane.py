"""One account and region: the loop that keeps its single export slot busy, over its parts.

A lane takes its lease, finishes or cleans up whatever a previous runner left in flight, plans,
and exports its windows back to back, reading some directly beside the slot; then it lets go of
the lease. The parts (built in one place, build.py) each do one job: the pacer (clock, waits,
stop, deadline), the lease keeper (lease and state writes), and per attempt the record (the
windows' outcomes), the backlog (windows still to do), the slot (export tasks) and the direct
reads. A lost race for the lease starts over with a fresh attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from log_exporter.core.polling import TaskDurations
from log_exporter.core.state import LaneState
from log_exporter.errors import (
    LaneBusyError,
    LogExporterError,
    ResourceNotFoundError,
    StateConflictError,
)
from log_exporter.lane.backlog import Backlog, check_period
from log_exporter.lane.direct_reads import DirectReads, ReadWorkers
from log_exporter.lane.lease import LeaseKeeper, LeaseRaceLost
from log_exporter.lane.pacer import LaneStopped, Pacer
from log_exporter.lane.record import Record
from log_exporter.lane.result import LaneResult
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.slot import Slot
from log_exporter.progress import Reporter

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """Everything one attempt of a lane holds: a lost race for the lease makes a new one."""

    record: Record  # the windows' outcomes and the result
    backlog: Backlog  # the windows still to do
    slot: Slot  # the export tasks
    reads: DirectReads  # the windows read directly

    def parts(self) -> tuple[Record, Backlog, Slot, DirectReads]:
        return self.record, self.backlog, self.slot, self.reads


@dataclass(frozen=True)
class RequestCounts:
    """A lane's requests counted outside its own thread, told in its result at its end."""

    read_requests: int  # FilterLogEvents of its direct reads
    read_throttled: int  # of them, throttled and asked again by its workers
    sdk_retries: int  # botocore's retries on the lane's clients


class Lane:
    """One account and region, run once: `run` takes the lease, resumes what an earlier runner
    left, plans, exports (see the module's docstring) and tells what it did (`LaneResult`).
    Its parts are handed in by build.py; `new_attempt` makes the per-attempt ones afresh."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        pacer: Pacer,
        lease: LeaseKeeper,
        workers: ReadWorkers,
        durations: TaskDurations,
        reporter: Reporter,
        new_attempt: Callable[[], Attempt],
        request_counts: Callable[[], RequestCounts],
    ) -> None:
        self.name = name
        self.settings = settings
        self.pacer = pacer
        self.lease = lease
        self.request_counts = request_counts
        self.workers = workers
        self.durations = durations
        self.reporter = reporter
        self.new_attempt = new_attempt
        self.attempt = new_attempt()

    @property
    def state(self) -> LaneState:
        return self.lease.state

    @property
    def result(self) -> LaneResult:
        return self.attempt.record.result

    def run(self, deadline: float | None = None) -> LaneResult:
        """Archive the lane's windows; stop creating tasks near `deadline` (a clock() time)."""
        started = self.pacer.clock()
        self.pacer.deadline = deadline
        try:
            while True:
                try:
                    self._work()
                    break
                except LeaseRaceLost:
                    self._start_over()
        except LaneStopped:
            self.attempt.backlog.drop_ahead()
            left = self.attempt.backlog.left(self.attempt.reads.queue)
            self.result.remaining = left + len(self.state.intents)
            self.attempt.record.leave()
        except StateConflictError:
            self.result.error = "another runner took over this lane; it will finish the work"
            self.result.busy = True
        except LaneBusyError as exc:
            self.result.error = str(exc)
            self.result.busy = True
        except LogExporterError as exc:
            self.result.error = str(exc)
        except Exception as exc:  # a bug or an unmapped SDK error: fail this lane, not the run
            log.debug("lane %s crashed", self.name, exc_info=True)
            self.result.error = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            self.pacer.halt_workers()  # on any exit (KeyboardInterrupt too): the workers stop at once
            self.workers.shutdown()
            self.attempt.backlog.drop_ahead()
            error = self.lease.release()
            result = self.result
            if error is not None and result.error is None:
                result.error = error
            counts = self.request_counts()
            result.read_requests = counts.read_requests
            result.read_throttled = counts.read_throttled
            # the lane's own, its reads' (asked again by its workers) and botocore's retries
            result.retries += self.pacer.retries + counts.read_throttled + counts.sdk_retries
            result.seconds = self.pacer.clock() - started
            self.reporter.lane_finished(result)
        return self.result

    def _work(self) -> None:
        self.lease.acquire()
        check_period(self.state, self.settings, self.name)  # intents are found under its layout
        self._resume()
        plan = self.attempt.backlog.plan_run()
        self.result.skipped = plan.skips
        self.reporter.lane_planned(self.name, plan)
        self._export_all()

    def _start_over(self) -> None:
        """After a lost race for the lease (see LeaseRaceLost): a fresh attempt."""
        self.reporter.notice(self.name, "another runner wrote this lane's state; starting over")
        queued = self.attempt.backlog.queued()
        self.reporter.items_skipped(self.name, queued)  # planned again from scratch
        self.attempt = self.new_attempt()

    def _resume(self) -> None:
        """Delete the output an earlier failed task left, then adopt, record or clean up every
        task or direct read an earlier runner recorded an intent for."""
        self.attempt.record.clean_up()
        for intent in list(self.state.intents):
            if intent.direct:
                self.attempt.reads.resume(intent)
            else:
                self.attempt.slot.resume(intent)
        self.lease.save_if_changed()

    def _export_all(self) -> None:
        """Export the backlog's windows one task at a time, reading some directly meanwhile;
        what is left unsaved is saved when the lease is released, in the same write."""
        record, backlog, slot, reads = self.attempt.parts()
        reads.take_from_backlog()
        while backlog.queue or reads.queue:
            self.pacer.check_deadline()
            if not backlog.queue:
                reads.read_next()
                continue
            item = backlog.take_next()  # the empty ones recorded as they come up
            if item is None:
                continue
            try:
                status = slot.export(item)
            except ResourceNotFoundError as exc:  # its group was deleted (any intent dropped)
                record.gone(record.window(item), f" ({exc})")
                continue
            slot.settle(item, status)
