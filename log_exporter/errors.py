"""The error hierarchy: every failure the user should see as one line, with its exit code."""

from __future__ import annotations


class LogExporterError(Exception):
    """Base of every error log-exporter reports to a user; `str()` is the one-line message."""

    exit_code = 1


class UsageError(LogExporterError):
    """Bad command-line input: wrong dates, unknown account names."""

    exit_code = 2


class ConfigError(LogExporterError):
    """The configuration file is missing, unreadable or invalid; the message names the place."""

    exit_code = 2


class AWSError(LogExporterError):
    """An AWS call failed in a way retries cannot fix (denied, missing resource, bad parameter)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class AccessDeniedError(AWSError):
    """A role could not be assumed, or an action was denied."""


class ResourceNotFoundError(AWSError):
    """A log group, bucket or task does not exist (any more)."""


class BucketError(AWSError):
    """The archive bucket is missing, unreachable, in the wrong region, or refuses writes."""


class StateConflictError(LogExporterError):
    """Another runner changed a lane's state object between our read and our write."""


class LaneBusyError(LogExporterError):
    """Another runner holds the lease on a lane (account and region)."""


class StateError(LogExporterError):
    """A lane's state object cannot be used; the message names its key. Fails that lane only.

    `key` is the object's s3:// address, `etag` the ETag it was read with."""

    def __init__(self, message: str, *, key: str = "", etag: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.etag = etag


class StateUnreadableError(StateError):
    """A state object that is not JSON, or not the shape of a lane state: nothing is written
    over it; `sync --account` rebuilds it, keeping the bad object aside."""


class StateTooNewError(StateError):
    """A state object written by a newer log-exporter: never read or rewritten in this one's
    shape."""


class ClockSkewError(LogExporterError):
    """This machine's clock disagrees with AWS's by more than leases can tolerate."""


class StuckError(AWSError):
    """A wait that should have ended did not (a task in flight, or a busy slot, too long)."""
