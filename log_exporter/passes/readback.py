"""Reading one log group's archive back (`log-exporter cat`): the events between two instants, from
the day (or hour) folders the range touches only, in timestamp order, and each period of the range
the archive lacks reported as a gap.

AWS does not sort the events inside an exported object, and a period's events are spread over
every stream and every task piece (inner-day runs) of its folder. So each object is read whole,
its events in range sorted and appended to a spool file on disk as one sorted run, and the runs of
the period are merged lazily (`heapq.merge`) through small read buffers. Memory therefore holds
`workers` objects being sorted at once plus the merge's buffers (one per object of the period:
MERGE_BUFFER_BUDGET shared among them, but never less than MIN_MERGE_BUFFER each, so a period of
more than 4,096 objects takes 4 KiB an object), never the period or the range; the disk holds
the events in range of the period being merged and of the next one, listed and spooled meanwhile.
Nothing here calls CloudWatch: the archive bucket and the lane states say everything.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import logging
import os
import re
import struct
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import IO, TYPE_CHECKING

from log_exporter.aws.archive import PROBE_OBJECT, ArchiveBucket
from log_exporter.core.windows import (
    MS_PER_DAY,
    Intervals,
    Period,
    Window,
    destination_prefix,
    from_ms,
    period_window,
    periods,
    to_ms,
)
from log_exporter.errors import BucketError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from log_exporter.core.state import LaneState

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8  # objects read (and sorted) at once
MERGE_BUFFER_BUDGET = 16 * 1024 * 1024  # read buffers of one period's merge, all runs together
MIN_MERGE_BUFFER = 4096  # a run's least: above 4,096 runs the merge takes 4 KiB a run
MAX_MERGE_BUFFER = 256 * 1024
# a spooled event: timestamp (ms), stream index, length of the line's bytes; then the line
_RECORD = struct.Struct("<qII")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass(frozen=True)
class Event:
    """One archived event: `raw` is the archive's own line, `<stamp> <message>`, in UTF-8."""

    timestamp_ms: int
    stream: str
    raw: bytes

    @property
    def line(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def stamp(self) -> str:
        return self.raw[:24].decode()

    @property
    def message(self) -> str:
        return self.raw[25:].decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Gap:
    """A part of the range the archive does not hold: `label` names its day (or hour)."""

    label: str
    window: Window
    reason: str

    def __str__(self) -> str:
        return f"gap: {self.label} {self.reason}"


@dataclass
class ReadStats:
    """What a read cost: objects and bytes fetched, lines that were not events."""

    objects: int = 0
    bytes: int = 0
    skipped_lines: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, objects: int, nbytes: int, skipped: int) -> None:
        with self._lock:
            self.objects += objects
            self.bytes += nbytes
            self.skipped_lines += skipped


@dataclass(frozen=True)
class Knowledge:
    """What the lane states say of the group: the windows archived (`covered`, empty ones
    included, those of earlier groups of the name too) and those known to hold no event
    (`empty`); `known` is False when no state mentions the group (an archive copied in, or a
    lost state): then the folders alone count. `created_ms`: the first creation of a group of
    the name the states know; nothing before it is archived, as for `run` and `status`.
    `displaced`: times whose events are in a neighbour day's folder (c7n-logexporter run
    outside UTC)."""

    covered: Intervals
    empty: Intervals
    known: bool
    created_ms: int | None = None
    displaced: Intervals = field(default_factory=Intervals)

    @classmethod
    def of(cls, states: Iterable[LaneState], group: str) -> Knowledge:
        covered: list[tuple[int, int]] = []
        empty: list[tuple[int, int]] = []
        displaced: list[tuple[int, int]] = []
        created: list[int] = []
        for state in states:
            covered += state.covered.get(group, Intervals()).spans
            empty += state.empty.get(group, Intervals()).spans
            displaced += state.displaced.get(group, Intervals()).spans
            created += [state.created[group]] if state.created.get(group) else []
            for key, iv in state.previous.items():
                name, _, ms = key.rpartition("@")
                if name == group:
                    covered += iv.spans
                    created += [int(ms)] if ms.isdigit() and int(ms) else []
        return cls(
            Intervals(covered),
            Intervals(empty),
            bool(covered),
            min(created, default=None),
            Intervals(displaced),
        )


def period_label(window: Window, period: Period) -> str:
    """`2026-11-03`, or `2026-11-03T14` for an hour."""
    t = from_ms(window.start)
    return f"{t:%Y-%m-%d}" if period == "day" else f"{t:%Y-%m-%dT%H}"


def parse_instant(value: str) -> int:
    """Milliseconds of `2026-11-03` (its midnight, UTC) or an ISO-8601 time; a time without a
    zone is UTC. Raises ValueError."""
    text = value.strip()
    if len(text) == 10:
        return to_ms(date.fromisoformat(text))
    t = datetime.fromisoformat(text)
    return to_ms(t if t.tzinfo else t.replace(tzinfo=UTC))


def parse_object(
    text: str, start_ms: int, end_ms: int, keep: Callable[[str], bool] | None = None
) -> tuple[list[tuple[int, str]], int]:
    """The events of an object's text with start_ms <= timestamp < end_ms (and `keep(message)`),
    as (timestamp, line) in the object's order, and the number of lines that were not events.

    A line that does not start with a timestamp continues the previous event's message (a
    message holding a newline); one before any event is counted as skipped.
    """
    events: list[tuple[int, str]] = []
    skipped = 0
    days: dict[str, int] = {}
    current: list[str] = []  # the lines of the event being read
    current_ts = 0

    def flush() -> None:
        if current:
            line = "\n".join(current) if len(current) > 1 else current[0]
            if start_ms <= current_ts < end_ms and (keep is None or keep(line[25:])):
                events.append((current_ts, line))
            current.clear()

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for line in lines:
        if len(line) >= 24 and line[23] == "Z" and (len(line) == 24 or line[24] == " "):
            stamp = line[:24]
            if _STAMP.fullmatch(stamp):
                flush()
                day = days.get(stamp[:10])
                if day is None:
                    day = days[stamp[:10]] = to_ms(date.fromisoformat(stamp[:10]))
                current_ts = (
                    day
                    + int(stamp[11:13]) * 3_600_000
                    + int(stamp[14:16]) * 60_000
                    + int(stamp[17:19]) * 1000
                    + int(stamp[20:23])
                )
                current.append(line if len(line) > 24 else line + " ")
                continue
        if current:
            current.append(line)
        else:
            skipped += 1
    flush()
    return events, skipped


class Spool:
    """A temporary file of sorted runs: appended under a lock, read back through `os.pread` (no
    file handle per run, so thousands of runs need no more than one descriptor)."""

    def __init__(self, directory: str | None = None) -> None:
        # closed by close(), which the reader calls in a `finally`
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="log-exporter-cat-", dir=directory)  # noqa: SIM115
        self._lock = threading.Lock()
        self._size = 0

    def append(self, data: bytes) -> tuple[int, int]:
        """Write `data`; its (offset, length)."""
        with self._lock:
            offset = self._size
            self._file.write(data)
            self._size += len(data)
        return offset, len(data)

    def records(self, offset: int, length: int, bufsize: int) -> Iterator[tuple[int, int, bytes]]:
        """The (timestamp, stream index, line) records of one run, `bufsize` bytes at a time."""
        fd = self._file.fileno()
        end = offset + length  # of the run in the file; `offset` is where the next read starts
        buf = b""
        pos = 0

        def fill(need: int) -> None:
            nonlocal buf, pos, offset
            while len(buf) - pos < need:
                chunk = os.pread(fd, min(max(bufsize, need), end - offset), offset)
                if not chunk:
                    raise OSError("log-exporter cat: spool file truncated")
                offset += len(chunk)
                buf = buf[pos:] + chunk
                pos = 0

        while pos < len(buf) or offset < end:
            fill(_RECORD.size)
            ts, stream, n = _RECORD.unpack_from(buf, pos)
            fill(_RECORD.size + n)
            start = pos + _RECORD.size
            yield ts, stream, buf[start : start + n]
            pos = start + n

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class _Run:
    """One object's events in range, sorted, in the spool."""

    stream: int
    key: str
    offset: int
    length: int


@dataclass
class _Period:
    """A period listed and spooled, ready to merge: its gap, and its runs in the spool."""

    gap: Gap | None
    spool: Spool | None = None
    streams: list[str] = field(default_factory=list)
    runs: list[_Run] = field(default_factory=list)

    def events(self) -> Iterator[Event]:
        """The period's events in order, merged lazily through small read buffers."""
        if self.spool is None or not self.runs:
            return
        spool = self.spool
        bufsize = min(
            MAX_MERGE_BUFFER, max(MIN_MERGE_BUFFER, MERGE_BUFFER_BUDGET // len(self.runs))
        )
        merged = heapq.merge(
            *(spool.records(r.offset, r.length, bufsize) for r in self.runs), key=itemgetter(0, 1)
        )
        streams = self.streams
        for ts, stream, line in merged:
            yield Event(ts, streams[stream], line)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class GroupArchive:
    """The archive of one group of one account: `read` yields its events in a range, in
    timestamp order, and a Gap for every part of the range it does not hold."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        prefix: str,
        account_id: str,
        group: str,
        period: Period,
        *,
        knowledge: Knowledge | None = None,
        workers: int = DEFAULT_WORKERS,
        executor_cls: Callable[[int], Executor] = ThreadPoolExecutor,
        spool_dir: str | None = None,
    ) -> None:
        self._archive = ArchiveBucket(s3, bucket)
        self.bucket = bucket
        self.prefix = prefix
        self.account_id = account_id
        self.group = group
        self.period = period
        self.knowledge = knowledge or Knowledge(Intervals(), Intervals(), known=False)
        self.workers = max(1, workers)
        self.executor_cls = executor_cls
        self.spool_dir = spool_dir
        self.stats = ReadStats()

    # --- listing -----------------------------------------------------------------------------
    def folder(self, window: Window) -> str:
        """`<prefix>/<account>/<group key>/<YYYY>/<MM>/<DD>[/<HH>]` of a period."""
        return destination_prefix(self.prefix, self.account_id, self.group, window, self.period)

    def objects(self, folder: str) -> list[tuple[str, str]]:
        """(key, stream) of every exported object under a period's folder, every task piece;
        AWS's `aws-logs-write-test` probe and anything not `<task>/<stream>/NNNNNN.gz` skipped."""
        out: list[tuple[str, str]] = []
        for key in self._archive.keys_read_back(folder + "/"):
            rest = key[len(folder) + 1 :]
            task, _, tail = rest.partition("/")
            stream, _, name = tail.rpartition("/")
            if not task or not stream or not name.endswith(".gz"):
                if name != PROBE_OBJECT and rest != PROBE_OBJECT:
                    log.debug("not an exported object: s3://%s/%s", self.bucket, key)
                continue
            out.append((key, stream))
        return out

    # --- reading -----------------------------------------------------------------------------
    def read(
        self, start_ms: int, end_ms: int, keep: Callable[[str], bool] | None = None
    ) -> Generator[Event | Gap, None, None]:
        """Every archived event with start_ms <= timestamp < end_ms (and `keep(message)`), in
        timestamp order (ties: by stream, then as archived), period by period; a Gap before the
        events of a period the archive holds only in part, or not at all.

        While one period is merged, the next one is listed and spooled (one period ahead, so
        at most two periods' spools exist at once)."""
        windows = list(periods(start_ms, end_ms, self.period))
        if not windows:
            return
        with (
            self.executor_cls(1) as ahead,
            self.executor_cls(self.workers) as pool,
        ):

            def prepare(window: Window) -> _Period:
                need = Window(max(start_ms, window.start), min(end_ms - 1, window.end))
                return self._prepare(window, need, keep, pool)

            pending: Future[_Period] | None = ahead.submit(prepare, windows[0])
            try:
                for i in range(len(windows)):
                    assert pending is not None
                    current = pending.result()
                    pending = (
                        ahead.submit(prepare, windows[i + 1]) if i + 1 < len(windows) else None
                    )
                    try:
                        if current.gap is not None:
                            yield current.gap
                        yield from current.events()
                    finally:
                        current.close()
            finally:
                if pending is not None and not pending.cancel():
                    with contextlib.suppress(Exception):
                        pending.result().close()

    def _gap(self, window: Window, need: Window, folder: str, has_objects: bool) -> Gap | None:
        label = period_label(window, self.period)
        where = f"s3://{self.bucket}/{folder}/"
        k = self.knowledge
        if k.created_ms is not None and need.start < k.created_ms:
            if need.end < k.created_ms:
                return None  # before the group was created: nothing to hold
            need = Window(k.created_ms, need.end)
        if not has_objects:
            if k.empty.covers(need):
                return None  # known to hold no event: nothing to read, nothing missing
            if k.known and k.covered.covers(need):
                return Gap(
                    label, need, f"has no archive, but the state records it archived ({where})"
                )
            return Gap(label, need, f"has no archive ({where})")
        if k.known:
            missing = k.covered.missing(need)
            if missing:
                parts = ", ".join(f"{_clock(w.start)}..{_clock(w.end)}" for w in missing)
                return Gap(label, need, f"is archived only in part: {parts} UTC not yet ({where})")
        return None

    def _prepare(
        self,
        window: Window,
        need: Window,
        keep: Callable[[str], bool] | None,
        pool: Executor,
    ) -> _Period:
        """List a period's folder and spool its objects (`workers` at once) as sorted runs."""
        folder = self.folder(window)
        objects = self.objects(folder)
        if self.period == "day" and self.knowledge.displaced.overlaps(need):
            for side in (window.start - MS_PER_DAY, window.end + 1):  # need drops their own days
                objects += self.objects(self.folder(period_window(side, "day")))
        period = _Period(self._gap(window, need, folder, bool(objects)))
        if not objects:
            return period
        streams = sorted({s for _, s in objects})
        index = {s: i for i, s in enumerate(streams)}
        spool = Spool(self.spool_dir)
        try:
            found = list(
                pool.map(
                    lambda o: self._spool_object(spool, o[0], index[o[1]], need, keep), objects
                )
            )
            spool.flush()
        except BaseException:
            spool.close()
            raise
        period.spool = spool
        period.streams = streams
        period.runs = sorted((r for r in found if r is not None), key=lambda r: (r.stream, r.key))
        return period

    def _spool_object(
        self,
        spool: Spool,
        key: str,
        stream: int,
        need: Window,
        keep: Callable[[str], bool] | None,
    ) -> _Run | None:
        body = self._archive.read(key)
        try:
            # surrogateescape: a line that is not UTF-8 is printed with its own bytes
            text = gzip.decompress(body).decode("utf-8", errors="surrogateescape")
        except (OSError, EOFError) as exc:
            raise BucketError(f"s3://{self.bucket}/{key} is not a gzip object: {exc}") from None
        events, skipped = parse_object(text, need.start, need.end + 1, keep)
        self.stats.add(1, len(body), skipped)
        del body, text
        if not events:
            return None
        events.sort(key=itemgetter(0))  # stable: equal timestamps keep the archive's order
        pack = _RECORD.pack
        data = bytearray()
        for ts, line in events:
            raw = line.encode("utf-8", errors="surrogateescape")
            data += pack(ts, stream, len(raw))
            data += raw
        del events
        offset, length = spool.append(bytes(data))
        return _Run(stream, key, offset, length)


def _clock(ms: int) -> str:
    t = from_ms(ms)
    return f"{t:%H:%M:%S}.{ms % 1000:03d}"
