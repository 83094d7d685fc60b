"""Archiving a window without an export task: its events read with FilterLogEvents (paced to a
share of the account-region's read quota) and written exactly as an export task writes them.

A direct read's folder is `<dest>/<folder id>/`, like a task's `<dest>/<taskId>/`: the same
`<stream>/000000.gz` objects (one line `2026-11-03T14:00:00.123Z message` per event, gzip, a new
object past `MAX_OBJECT_BYTES` of lines), plus one small marker, `.log-exporter-read.json`,
written before the objects and listing them. A folder is complete when every object its marker
lists exists; the marker is how `sync` tells a direct read's folder (no task has its id) from a
task folder, and the leading dot hides it from Athena (which skips files whose names start with
`_` or `.`), `cat` and tools that read `*.gz`.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .tasks import Throttled, map_client_error
from .windows import MS_PER_DAY, Window, iso_ms

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

    from .archive import ArchiveBucket

MARKER = ".log-exporter-read.json"
MARKER_KIND = "log-exporter direct read"
MAX_OBJECT_BYTES = 1 << 20  # uncompressed lines per object, as the emulator's export tasks
FILTER_QUOTA = 5.0  # FilterLogEvents requests a second per account and region (AWS's default)
FILTER_PAGE_EVENTS = 10_000  # FilterLogEvents' largest page (it also stops at 1 MB)
EVENT_OVERHEAD = 26  # bytes AWS counts per event on top of its message (FilterLogEvents' 1 MB)
# A direct read's largest window (message bytes + 26 an event, as AWS counts): above, the window
# is exported instead. A lane reads READ_WORKERS (8) windows at once and holds each one's events
# (about 3x their bytes as Python objects) until it is rendered: 8 x 8 MiB x 3 ~ 200 MB at most,
# which with the runner's ~180 MB fits the stack's 512 MB worker Lambda.
READ_WINDOW_MAX_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Event:
    stream: str
    timestamp: int
    message: str


def window_bytes(
    stored: int, created_ms: int, retention_days: int | None, window: Window, now_ms: int
) -> float:
    """A window's share of its group's `stored` bytes, as if spread evenly over the time they
    cover: the group's age (at least a day; unknown: the stored bytes are taken as the
    window's), at most its retention."""
    span: int | None = max(MS_PER_DAY, now_ms - created_ms) if created_ms else None
    if retention_days:
        span = min(span or retention_days * MS_PER_DAY, retention_days * MS_PER_DAY)
    if span is None:
        return float(stored)
    return stored * window.duration_ms / span


class WindowTooLarge(Exception):
    """The window holds more pages or bytes than a direct read may take: export it instead."""


def format_line(timestamp_ms: int, message: str) -> str:
    """One event as an export task writes it: `2026-11-03T14:00:00.123Z message`."""
    return f"{iso_ms(timestamp_ms)} {message}"


def object_key(folder: str, stream: str, index: int) -> str:
    """`<folder>/<stream>/000000.gz`: the stream name keeps its `/`, as in a task's output."""
    return f"{folder}/{stream}/{index:06d}.gz"


def render(
    folder: str, events: Iterable[Event], max_object_bytes: int = MAX_OBJECT_BYTES
) -> list[tuple[str, bytes]]:
    """The objects (key, gzip body) an export task would write into `folder` for `events`:
    per stream (by name), its events by time, a new object once the next line would take the
    current one past `max_object_bytes` (uncompressed)."""
    streams: dict[str, list[Event]] = {}
    for e in events:
        streams.setdefault(e.stream, []).append(e)
    out: list[tuple[str, bytes]] = []
    for name in sorted(streams):
        chunk: list[bytes] = []
        size = 0
        index = 0
        for e in sorted(streams[name], key=lambda e: e.timestamp):  # stable: ties keep AWS order
            line = (format_line(e.timestamp, e.message) + "\n").encode()
            if chunk and size + len(line) > max_object_bytes:
                out.append((object_key(folder, name, index), _gz(chunk)))
                chunk, size, index = [], 0, index + 1
            chunk.append(line)
            size += len(line)
        if chunk:
            out.append((object_key(folder, name, index), _gz(chunk)))
    return out


def _gz(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(lines), mtime=0)  # the same bytes for the same lines


def marker_body(group: str, window: Window, keys: list[str], folder: str, events: int) -> bytes:
    """The marker of a direct read's folder: what it holds (keys relative to the folder)."""
    return json.dumps(
        {
            "kind": MARKER_KIND,
            "group": group,
            "from": window.start,
            "to": window.end,
            "events": events,
            "objects": [k[len(folder) + 1 :] for k in keys],
        },
        separators=(",", ":"),
    ).encode()


def parse_marker(body: bytes) -> dict[str, Any] | None:
    """A marker's content, or None when `body` is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("kind") != MARKER_KIND:
        return None
    if not all(isinstance(data.get(k), int) for k in ("from", "to")):
        return None
    if not isinstance(data.get("objects"), list):
        return None
    return data


class Pacer:
    """A token bucket: at most `rate` requests a second on average, `burst` at once. Shared by
    the threads reading one account-region (thread-safe); `clock` and `sleep` injectable."""

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a pacer's rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for a token, in all

    def delay(self) -> float:
        """Take a token; the seconds to wait before using it (0 when one was there)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            self.waited += wait
            return wait

    def take(self) -> None:
        """Wait for a token."""
        wait = self.delay()
        if wait > 0:
            self._sleep(wait)


class DirectReader:
    """Reads the events of a window of a log group with FilterLogEvents, page after page."""

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        pacer: Pacer,
        call: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self._logs = logs
        self._pacer = pacer
        self._call = call  # backs off and asks again while AWS throttles (the lane's `_call`)
        self._lock = threading.Lock()  # reads run in several threads
        self.requests = 0
        self.throttled = 0

    def read(
        self,
        group: str,
        window: Window,
        max_pages: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Event]:
        """Every event of `group` in `window` (both ends included); WindowTooLarge after
        `max_pages` pages of events with more to come (AWS may answer empty pages with a
        token: they are followed, not counted), or past `max_bytes` (as AWS counts them);
        ResourceNotFoundError if the group is gone."""
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": window.start,
            "endTime": window.end,
            "limit": FILTER_PAGE_EVENTS,
        }
        events: list[Event] = []
        streams: dict[str, str] = {}  # one string per stream name, not one per event
        pages = 0
        size = 0
        while True:
            out = self._call(lambda: self._page(group, kwargs))
            if out.get("events"):
                pages += 1
                if max_pages is not None and pages > max_pages:
                    raise WindowTooLarge(f"{group} {window}: more than {max_pages} pages")
            for e in out.get("events", []):
                stream = str(e["logStreamName"])
                message = str(e["message"])
                size += len(message.encode()) + EVENT_OVERHEAD
                events.append(
                    Event(streams.setdefault(stream, stream), int(e["timestamp"]), message)
                )
            if max_bytes is not None and size > max_bytes:
                raise WindowTooLarge(f"{group} {window}: more than {max_bytes} bytes")
            token = out.get("nextToken")
            if not token:
                return events
            kwargs["nextToken"] = token

    def _page(self, group: str, kwargs: dict[str, Any]) -> Any:
        self._pacer.take()
        with self._lock:
            self.requests += 1
        try:
            return self._logs.filter_log_events(**kwargs)
        except ClientError as exc:
            mapped = map_client_error(exc, f"reading {group}")
            if isinstance(mapped, Throttled):
                with self._lock:
                    self.throttled += 1
            raise mapped from None


def read_folder(archive: ArchiveBucket, folder: str) -> tuple[dict[str, Any] | None, bool]:
    """A direct read's folder (`<dest>/<folder id>`): its marker (None when it has none: a task
    folder, or a read killed before its marker) and whether every object it lists exists."""
    body = archive.get(f"{folder}/{MARKER}")
    data = parse_marker(body) if body is not None else None
    if data is None:
        return None, False
    keys = archive.keys(folder + "/")
    return data, all(f"{folder}/{k}" in keys for k in data["objects"])
