"""How far this machine's clock is from AWS's, as the `Date` header of AWS's answers shows it.

Leases expire by the writer's clock and are read by another runner's: a clock that is off lets
a runner take over a live lease, or cut a window (`through: now`) before its events settled.
A `Date` header has one-second resolution and arrives after a round trip, so the skew seen is
the least one the answer proves: zero while local time of sending and receiving brackets it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from log_exporter.aws.botocore_internals import time_answers
from log_exporter.errors import ClockSkewError

# Runners whose clocks are each within this of AWS's differ by at most twice it; with the
# default lease (120 s, renewed every 40 s) another runner still sees a renewed lease held for
# 120 - 2 * 30 = 60 s after each renewal. A shorter lease gets a margin of a sixth of it (see
# `skew_margin`), so the same holds: L - 2 * L/6 - L/3 = L/3.
MAX_SKEW_SECONDS = 30.0
# The least margin: a Date header counts whole seconds, so a skew under one second is not told
# from rounding (a server that rounds its Date would seem up to half a second ahead).
DATE_RESOLUTION_SECONDS = 1.0


def skew_margin(lease_seconds: float | None, most: float = MAX_SKEW_SECONDS) -> float:
    """How far our clock may be from AWS's with leases of `lease_seconds` (None: the default
    lease): `most`, or a sixth of a shorter lease, but never less than a Date can prove."""
    if lease_seconds is None:
        return most
    return max(DATE_RESOLUTION_SECONDS, min(most, lease_seconds / 6))


def date_header(metadata: Mapping[str, Any] | None) -> str | None:
    """The `Date` header of a botocore answer's ResponseMetadata, if any."""
    headers = (metadata or {}).get("HTTPHeaders") or {}
    value = headers.get("date")
    return str(value) if value else None


def skew_seconds(date: str | None, sent: float, received: float) -> float | None:
    """AWS's clock minus ours, at least (positive: AWS is ahead); None without a usable date."""
    if not date:
        return None
    try:
        aws = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    if aws > received:  # AWS's second started after we had the answer: AWS is ahead
        return aws - received
    if aws + 1 < sent:  # AWS's second ended before we asked: AWS is behind
        return aws + 1 - sent
    return 0.0


class ClockCheck:
    """The latest skew seen on AWS's answers, shared by the threads of a run."""

    def __init__(self, margin: float = MAX_SKEW_SECONDS) -> None:
        self.margin = margin
        self.skew: float | None = None
        self._lock = threading.Lock()

    def observe(self, metadata: Mapping[str, Any] | None, sent: float, received: float) -> None:
        skew = skew_seconds(date_header(metadata), sent, received)
        if skew is not None:
            with self._lock:
                self.skew = skew

    def watch(self, client: Any) -> None:
        """Observe every answer `client` (a botocore client) gets, errors included."""
        time_answers(client, self.observe)

    def aws_now(self, local_now: float) -> float:
        """AWS's time at `local_now` as far as known (`local_now` before any answer)."""
        return local_now + (self.skew or 0.0)

    def check(self, lease_seconds: float | None = None) -> None:
        """Refuse to go on with a clock off AWS's by more than the margin for leases of
        `lease_seconds` (see `skew_margin`)."""
        skew = self.skew
        margin = skew_margin(lease_seconds, self.margin)
        if skew is not None and abs(skew) > margin:
            way = "behind" if skew > 0 else "ahead of"
            raise ClockSkewError(
                f"this machine's clock is {abs(skew):.0f} s {way} AWS's (the Date of S3's "
                f"answers); leases and windows need it within {margin:g} s: "
                "synchronise it (NTP) and run again"
            )
