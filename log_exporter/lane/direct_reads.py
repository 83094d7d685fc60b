"""A lane's direct reads (`destination.strategy` auto or read): windows archived by reading their
events (FilterLogEvents) in worker threads, beside the export slot and during its waits.

The same intent -> write -> record protocol as a task's holds: a batch of windows is read (and
rendered; nothing written), their intents recorded (each with its folder's id) in one write,
then each folder written (its marker first) while the lease holds (the lease keeper's fence
before every PUT), then the windows recorded archived with the next write. A read refused or
too large goes to the export queue; a folder cut short is deleted and read again; a killed
runner's read is resumed from its marker.
"""

from __future__ import annotations

import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.reads import DirectReader, read_folder
from log_exporter.core.direct import MARKER, WindowTooLarge, marker_body, render
from log_exporter.core.labels import window_label
from log_exporter.core.plan import ExportItem
from log_exporter.core.state import Intent
from log_exporter.errors import AWSError, BucketError, ResourceNotFoundError
from log_exporter.lane.backlog import Backlog
from log_exporter.lane.lease import LeaseKeeper, LeaseLapsed
from log_exporter.lane.pacer import LaneStopped, Pacer
from log_exporter.lane.record import Record
from log_exporter.lane.settings import LaneSettings
from log_exporter.lane.window import WindowState
from log_exporter.progress import Reporter

READ_BATCH = 16  # windows read (at once) before their intents are recorded, in one write
READ_WORKERS = 8  # a lane's threads for direct reads and their objects' PUTs


@dataclass(frozen=True, slots=True)
class ReadFolder:
    """A window read directly, rendered: its folder's id, objects (key, gzip body) and marker."""

    item: ExportItem
    folder_id: str
    objects: list[tuple[str, bytes]]
    marker: bytes


class ReadWorkers:
    """A lane's worker threads for direct reads, made for its first read, shut down at its end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READ_WORKERS, thread_name_prefix=f"read-{self.name}")
        return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DirectReads:
    """The windows one attempt of a lane reads directly (`queue`), and their reads and writes
    (see the module's docstring)."""

    def __init__(
        self,
        *,
        name: str,
        settings: LaneSettings,
        reader: DirectReader,
        workers: ReadWorkers,
        archive: ArchiveBucket,
        lease: LeaseKeeper,
        pacer: Pacer,
        record: Record,
        backlog: Backlog,
        reporter: Reporter,
    ) -> None:
        self.name = name
        self.settings = settings
        self.reader = reader
        self.workers = workers
        self.archive = archive  # where the folders are written
        self.lease = lease
        self.pacer = pacer
        self.record = record
        self.backlog = backlog
        self.reporter = reporter
        self.queue: deque[ExportItem] = deque()

    def take_from_backlog(self) -> None:
        """Take the backlog's windows that are to be read directly into `self.queue`."""
        self.queue.extend(self.backlog.take_direct_reads())

    def read_during(self, seconds: float) -> float:
        """Read windows directly while the export slot's task runs, for up to about `seconds`;
        the time left of them."""
        clock = self.pacer.clock
        end = clock() + seconds
        while self.queue and clock() < end:
            self.pacer.check_deadline()
            self.read_next(until=end)
        return max(0.0, end - clock())

    def read_next(self, until: float | None = None) -> None:
        """Archive the next windows of `queue` (up to READ_BATCH; with `until`, as many as
        the pace reads by then, at least one) by reading them: read their events, several at
        once at the read rate (nothing is written yet), then record their intents, each with
        its folder's id, in one write, then write each folder (its marker first, then its
        objects; the folders at once), and count the windows archived (saved with the next
        write). Each window is rendered (its objects' gzip bodies) by its worker as soon as it
        is read, so a batch holds no events. A window with no event is archived empty; one
        larger than `read_max_pages` pages (`auto`) or `read_window_max_bytes`, or whose read
        AWS refuses (denied, throttled MAX_THROTTLED times), goes to the export queue."""
        most = READ_BATCH
        if until is not None:
            most = max(1, min(most, int((until - self.pacer.clock()) * self.settings.read_rate)))
        items: list[ExportItem] = []
        while len(items) < most:
            item = self.backlog.next_ready(self.queue)
            if item is None:
                break
            items.append(self.queue.popleft())
        pool = self.workers.pool()
        reads = [pool.submit(self._read_one, i) for i in items]
        self.pacer.gather(reads)
        batch: list[ReadFolder] = []
        for item, read in zip(items, reads, strict=True):
            exc = read.exception()
            if isinstance(exc, WindowTooLarge):
                self.backlog.requeue(item)
            elif isinstance(exc, ResourceNotFoundError):
                self.record.gone(self.record.window(item))
            elif isinstance(exc, AWSError):
                # one group's read refused (its policy, a KMS key, a saturated quota): export
                # it (CreateExportTask needs no FilterLogEvents), the batch goes on
                self.backlog.requeue(item)
                self.reporter.notice(
                    self.name,
                    f"{item.group} {window_label(item.window)}: not read ({exc}); exporting it instead",
                )
            elif exc is not None:
                raise exc
            elif folder := read.result():
                batch.append(folder)
            else:
                self.record.empty(self.record.window(item))
        if batch:
            self._write(batch)

    def _read_one(self, item: ExportItem) -> ReadFolder | None:
        """In a worker: read `item`'s window and render its folder (a new id); None when it
        holds no event. The events are dropped once rendered."""
        pages = None if self.settings.strategy == "read" else self.settings.read_max_pages
        events = self.reader.read(
            item.group, item.window, pages, self.settings.read_window_max_bytes
        )
        if not events:
            return None
        folder_id = str(uuid.uuid4())
        folder = f"{self.record.dest(item)}/{folder_id}"
        objects = render(folder, events)
        marker = marker_body(item.group, item.window, [k for k, _ in objects], folder, len(events))
        return ReadFolder(item, folder_id, objects, marker)

    def _write(self, batch: list[ReadFolder]) -> None:
        started = self.pacer.clock()
        record = self.record
        for f in batch:
            record.intent(record.window(f.item), record.intent_for(f.item, folder_id=f.folder_id))
        self.lease.save()  # the intents before the first object, the lease and earlier outcomes
        pool = self.workers.pool()
        writes = []
        for f in batch:
            folder = f"{record.dest(f.item)}/{f.folder_id}"
            writes.append(pool.submit(self._put_folder, folder, f.marker, f.objects))
        self.pacer.gather(writes)
        lapsed = any(isinstance(w.exception(), LeaseLapsed) for w in writes)
        if lapsed:
            # the writes stopped: our next write fails if another runner took over (the lane
            # then stops, as for a task); otherwise the lease is ours again and the folders cut
            # short are deleted and read again
            self.lease.save()
            self.pacer.resume_workers()
        for f, write in zip(batch, writes, strict=True):
            exc = write.exception()
            if lapsed and isinstance(exc, LeaseLapsed | LaneStopped):
                exc = BucketError("its writes stopped: the lease may have lapsed meanwhile")
            if isinstance(exc, BucketError):
                self._read_failed(f.item, f.folder_id, exc)
                continue
            if exc is not None:
                raise exc
            record.read_written(record.window(f.item))
            self.reporter.item_read(self.name, f.item, f.folder_id, self.pacer.clock() - started)

    def _put_folder(self, folder: str, marker: bytes, objects: list[tuple[str, bytes]]) -> None:
        """Write a direct read's folder: its marker first (a folder without one would pass for
        a task's), then its objects; each PUT only while the lane runs and its lease holds."""
        self.lease.fence()
        self.archive.put(f"{folder}/{MARKER}", marker, "application/json")
        for key, body in objects:
            self.lease.fence()
            self.archive.put(key, body)

    def _read_failed(self, item: ExportItem, folder_id: str, exc: BucketError) -> None:
        """A direct read's object could not be written: delete its folder, then read the window
        again (or, after `max_attempts`, record it failed); a folder that cannot be deleted is
        recorded for the next run's clean-up, and its window is not read until then."""
        reason = f"direct read {folder_id}: {exc}"
        self.record.discard_output(
            self.record.window(item), folder_id, reason, retry=lambda i, _: self.queue.append(i)
        )

    def resume(self, intent: Intent) -> None:
        """An earlier runner's direct read: complete (every object its marker lists is there)
        counts as archived; otherwise its folder is deleted and the window planned again."""
        record = self.record
        item = ExportItem(intent.window, intent.group)
        window = record.window(item, WindowState.INTENT)
        folder_id = intent.task_id or ""
        _, complete = read_folder(self.archive, f"{record.dest(item)}/{folder_id}")
        if complete:
            window.move(WindowState.WRITTEN)
            record.archived(window, read=True)
        else:
            record.discard_output(window, folder_id, f"direct read {folder_id} cut short")
        record.changed()
