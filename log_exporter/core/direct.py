"""What a direct read writes (pure): a window's events, read with FilterLogEvents instead of an
export task (aws/reads.py, lane/direct_reads.py), laid out exactly as an export task writes them.

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from log_exporter.core.windows import MS_PER_DAY, Window, iso_ms

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
