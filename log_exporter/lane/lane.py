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

from log_exporter.aws.reads import DirectReader
from log_exporter.aws.sessions import AccountClients
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


class Lane:
    def __init__(
        self,
        *,
        name: str,
        clients: AccountClients,
        settings: LaneSettings,
        pacer: Pacer,
        lease: LeaseKeeper,
        reader: DirectReader,
        workers: ReadWorkers,
        durations: TaskDurations,
        reporter: Reporter,
        new_attempt: Callable[[], Attempt],
    ) -> None:
        self.name = name
        self.clients = clients
        self.settings = settings
        self.pacer = pacer
        self.lease = lease
        self.reader = reader
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
            self.attempt.record.windows.leave()
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
            result.read_requests = self.reader.requests
            result.read_throttled = self.reader.throttled
            # the lane's own, its reads' (asked again by its workers) and botocore's retries
            result.retries += self.pacer.retries + self.reader.throttled
            result.retries += self.clients.retries.count
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
        queued = list(self.attempt.backlog.queue)
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
        record, backlog, slot, reads = (
            self.attempt.record,
            self.attempt.backlog,
            self.attempt.slot,
            self.attempt.reads,
        )
        queue = backlog.queue
        reads.take_from(queue)
        while queue or reads.queue:
            self.pacer.check_deadline()
            if not queue:
                reads.read_next()
                continue
            item = backlog.next_ready(queue)
            if item is None:
                continue
            if (
                not backlog.is_probed(item)
                and self.settings.probe_empty
                and not backlog.has_events(item)
            ):
                queue.popleft()
                record.empty(record.window(item), backlog.gone)
                continue
            queue.popleft()
            try:
                status = slot.export(item)
            except ResourceNotFoundError as exc:
                self.state.drop_intent(item.group, item.window)
                record.gone(record.window(item), backlog.gone, f" ({exc})")
                continue
            slot.settle(item, status)
