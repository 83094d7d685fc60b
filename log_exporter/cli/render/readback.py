"""What `cat` prints: the events read back, one a line on stdout (the archive's own line, or a
JSON object), and each gap as one line on stderr, in the order they come."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Generator
from typing import IO

from log_exporter.passes.readback import Event, Gap

FLUSH_BYTES = 65536  # written 64 KiB at a time: one write per line would cost more


def event_json(event: Event, account: str, account_id: str, group: str) -> bytes:
    """One event as `cat --format json` prints it (no newline)."""
    doc = {
        "timestamp": event.stamp,
        "timestamp_ms": event.timestamp_ms,
        "account": account,
        "account_id": account_id,
        "group": group,
        "stream": event.stream,
        "message": event.message,
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def write_events(
    items: Generator[Event | Gap, None, None],
    *,
    line: Callable[[Event], bytes],
    gap: Callable[[Gap], None],
    out: IO[bytes] | None = None,
) -> int | None:
    """Write each event's `line` to `out` (stdout), calling `gap` for each gap once the lines
    before it are out; the number of gaps, or None when the reader went away (`cat ... | head`:
    it has what it wanted; stdout then points at /dev/null). `items` is closed in the end (the
    period read ahead: its spool removed, its threads joined). On a read error, the lines read
    before it are written, then the error raised."""
    out = sys.stdout.buffer if out is None else out
    pending = bytearray()
    gaps = 0
    try:
        for item in items:
            if not isinstance(item, Event):
                gaps += 1
                out.write(pending)
                out.flush()
                pending.clear()
                gap(item)
                continue
            pending += line(item)
            pending += b"\n"
            if len(pending) >= FLUSH_BYTES:
                out.write(pending)
                pending.clear()
        out.write(pending)
        out.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return None
    except Exception:
        with contextlib.suppress(OSError):
            out.write(pending)
            out.flush()
        raise
    finally:
        items.close()
    return gaps
