"""How windows and durations are written in messages, logs and tables."""

from __future__ import annotations

from log_exporter.core.status import DaySpan
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Window, from_ms


def window_label(w: Window) -> str:
    """`2026-11-01` (a day), `2026-11-01..2026-11-03` (whole days), `2026-11-01T05h` (an hour),
    `2026-11-01T05h..2026-11-01T07h` (whole hours), else the exact window."""
    if w.start % MS_PER_DAY == 0 and w.duration_ms % MS_PER_DAY == 0:
        first, last = from_ms(w.start).date(), from_ms(w.end).date()
        return str(DaySpan(first, last))
    if w.start % MS_PER_HOUR == 0 and w.duration_ms % MS_PER_HOUR == 0:
        first_h, last_h = f"{from_ms(w.start):%Y-%m-%dT%Hh}", f"{from_ms(w.end):%Y-%m-%dT%Hh}"
        return first_h if first_h == last_h else f"{first_h}..{last_h}"
    return str(w)


def duration(seconds: float) -> str:
    """`0.4s`, `45s`, `3m 20s`, `3h 20m`, `2d 4h`."""
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"
