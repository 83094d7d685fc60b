"""Reading a window's events with FilterLogEvents for a direct read, paced to a lane's share of
the read quota, and looking at a direct read's folder in the archive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from log_exporter.aws.errors import Throttled, map_client_error
from log_exporter.core.direct import (
    EVENT_OVERHEAD,
    FILTER_PAGE_EVENTS,
    MARKER,
    Event,
    WindowTooLarge,
    parse_marker,
)
from log_exporter.core.windows import Window

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

    from log_exporter.aws.archive import ArchiveBucket


class ReadRate:
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
        pacer: ReadRate,
        call: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self._logs = logs
        self._pacer = pacer
        self._call = call  # asks again while AWS throttles (the lane's: retry.THROTTLED_CALLS)
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
