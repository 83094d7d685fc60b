"""What a lane is told by the run: where its archive is and how it exports (`LaneSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from log_exporter.core.direct import FILTER_QUOTA, READ_WINDOW_MAX_BYTES
from log_exporter.core.windows import Period


@dataclass(frozen=True)
class LaneSettings:
    bucket: str
    prefix: str
    period: Period = "day"
    max_attempts: int = 3  # tries of one window within a run
    lease_seconds: float = 120.0
    stuck_pending_seconds: float = 3600.0  # a task PENDING this long is cancelled and retried
    stuck_seconds: float = 6 * 3600.0  # a wait this long (task in flight, busy slot) is stuck
    deadline_margin_seconds: float = 0.0  # stop creating tasks this long before the deadline
    probe_empty: bool = True
    wait_for_lease: bool = True
    guard_lost_state: bool = True  # False when the run saw nothing at all under the prefix
    fresh_archive: bool = False  # the run saw nothing under the prefix: no state to read
    strategy: str = "export"  # destination.strategy: export, auto or read
    read_rate: float = FILTER_QUOTA / 2  # FilterLogEvents a second (destination.read_share)
    read_max_bytes: int = 1 << 20  # `auto`: a window estimated this small is read directly
    read_max_pages: int = 5  # `auto`: a read that needs more pages is exported instead
    # a read's largest window, `auto` and `read` (see READ_WINDOW_MAX_BYTES): above, exported
    read_window_max_bytes: int = READ_WINDOW_MAX_BYTES
