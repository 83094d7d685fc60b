"""The one retry policy: which layer asks AWS again, how many times, how long it waits, and why.

Two layers, one inside the other:

1. botocore's `standard` mode, inside every call (`botocore_config`): up to `max_attempts` tries
   (AWS_MAX_ATTEMPTS, else DEFAULT_MAX_ATTEMPTS = 10, the first try counted) of a throttled,
   5xx or unanswered call, with botocore's own jittered backoff, a few seconds in all. Each
   lane has its own retry handler and quota on its region's shared logs client
   (`botocore_internals.LaneSigning`), so a throttled account does not spend the others'
   quota. Not retried there: CreateExportTask (its LimitExceededException means the export
   slot is busy until a task ends, and a lost answer must be looked for, not sent again: the
   lane does both) and the Organizations calls (layer 2 retries them, one try each here).
2. Ours, outside it (`call_with_retries` with a `RetryPolicy`): botocore gives up after ~10
   tries, while a throttled account or an endpoint that is unreachable for a while is waited
   out for minutes. Between tries the caller's `pause` runs: the lane's renews its lease, so
   a long wait never leaves the lane without it. A call still refused after `retries` waits in
   a row fails (AWSError), so an endpoint gone for good fails its lane instead of holding it.

The policies, one per use:

    THROTTLED_CALLS   0.2 s .. 20 s, 20 waits   the lane's AWS calls answered Throttled (or
                                                AnswerLost), direct reads' pages included:
                                                about five minutes, then the lane fails
    ORGANIZATIONS     0.5 s .. 20 s, 7 waits    Organizations (a few requests a second for a
                      (8 tries), no jitter      whole organization; its threads share waits)
    ARCHIVE_DELETES   0.2 s .. 5 s, 4 waits     keys DeleteObjects lists under Errors
                      (5 tries)
    SLOT_BUSY         0.5 s .. 30 s             CreateExportTask while another task holds the
                                                slot: ended by the lane's stuck timer, not a count
    LEASE_BUSY        0.5 s .. 5 s              another runner holds the lane's lease
    FAILED_TASK       1 s .. 30 s (x attempts)  a window again after its task FAILED

Waits are `core.polling.Backoff`: full jitter in [ceiling / 2, ceiling], the ceiling doubling
from `base` up to `cap`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from botocore.config import Config as BotoConfig

from log_exporter.aws.errors import Throttled
from log_exporter.core.polling import Backoff
from log_exporter.errors import AWSError
from log_exporter.settings import positive_int_or_unset, resolve

T = TypeVar("T")

# --- layer 1: botocore -----------------------------------------------------------------------------
BOTOCORE_MODE: Final = "standard"
DEFAULT_MAX_ATTEMPTS = 10


def resolve_max_attempts(explicit: int | None = None) -> int:
    """`explicit`, else AWS_MAX_ATTEMPTS (the SDKs' own knob, which an explicit botocore Config
    would ignore; a value that is not a positive integer is ignored), else 10."""
    return resolve(
        explicit or None, "AWS_MAX_ATTEMPTS", positive_int_or_unset, DEFAULT_MAX_ATTEMPTS
    )


def botocore_config(max_attempts: int, **options: Any) -> BotoConfig:
    """A botocore Config retrying in standard mode, `max_attempts` tries in all (1: no retry),
    with `options` (pool size, user agent). `total_max_attempts` counts the first try;
    botocore's `max_attempts` would count retries only, so 1 there still retried once."""
    return BotoConfig(
        retries={"mode": BOTOCORE_MODE, "total_max_attempts": max_attempts}, **options
    )


# --- layer 2: ours ---------------------------------------------------------------------------------
class _Ceiling(random.Random):
    """Waits without jitter: always the top of Backoff's range."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass(frozen=True)
class RetryPolicy:
    """How to wait between tries: from `base` seconds, doubling, up to `cap`; `retries`: how many
    waits in a row before giving up (None: no count, something else ends the wait); `jitter`
    False waits the full ceiling each time (for callers that share their waits anyway)."""

    base: float
    cap: float
    retries: int | None = None
    jitter: bool = True

    def backoff(self) -> Backoff:
        """A fresh Backoff of this policy (one per call, or per wait in a row)."""
        return Backoff(self.base, self.cap, None if self.jitter else _Ceiling())


THROTTLED_CALLS = RetryPolicy(0.2, 20.0, 20)
ORGANIZATIONS = RetryPolicy(0.5, 20.0, 7, jitter=False)
ARCHIVE_DELETES = RetryPolicy(0.2, 5.0, 4)
SLOT_BUSY = RetryPolicy(0.5, 30.0)
LEASE_BUSY = RetryPolicy(0.5, 5.0)
FAILED_TASK = RetryPolicy(1.0, 30.0)


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    pause: Callable[[float], None],
    *,
    what: str = "",
    on_retry: Callable[[Throttled], None] | None = None,
    give_up: Callable[[Throttled], Exception] | None = None,
) -> T:
    """`fn()`, asked again after `pause(seconds)` each time it raises Throttled (AnswerLost
    included), `policy.retries` times in a row at most; then `give_up(exc)` is raised, by
    default AWSError "<what>: AWS still refuses after <retries> tries: <exc>". `on_retry(exc)`
    runs before each pause (to count retries). Other exceptions go through at once."""
    backoff = policy.backoff()
    while True:
        try:
            return fn()
        except Throttled as exc:
            if policy.retries is not None and backoff.attempt >= policy.retries:
                if give_up is not None:
                    raise give_up(exc) from None
                raise AWSError(
                    f"{what}: AWS still refuses after {policy.retries} tries: {exc}"
                ) from None
            if on_retry is not None:
                on_retry(exc)
            pause(backoff.next())
