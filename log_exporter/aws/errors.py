"""The one place that reads AWS's errors (botocore's `ClientError` and `BotoCoreError`) and maps
them to log-exporter's (`log_exporter.errors`) or to the AWS layer's signals (`SlotBusy`,
`Throttled`, `AnswerLost`), which the retry policy (`retry.py`) and the lane act on.

The table of `map_client_error`, the error code first, then the HTTP status:

    LimitExceededException                              SlotBusy (another task holds the slot)
    THROTTLING_CODES, or HTTP 429/500/502/503/504       Throttled (wait, ask again)
    ResourceNotFoundException                           ResourceNotFoundError
    AccessDeniedException, AccessDenied, Unauthorized.. AccessDeniedError
    InvalidParameterException naming a bucket/permission BucketError (+ POLICY_HINT on permission)
    anything else                                       AWSError "<what>: <code>: <message>"

S3 (the archive and the lane states), STS (AssumeRole), Organizations, EC2, Glue and SQS have
their own mappers below, each keeping the message its users already know. A message states where it
happened and what AWS said; `main()` prints it as one line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    ProfileNotFound,
)

from log_exporter.errors import (
    AccessDeniedError,
    AWSError,
    BucketError,
    ConfigError,
    ResourceNotFoundError,
)

if TYPE_CHECKING:
    from log_exporter.core.windows import Window

# What a botocore call raises: an answer with an error (ClientError), or none (BotoCoreError).
AWS_ERRORS = (ClientError, BotoCoreError)
# The errors of a request that got no answer: asking again is safe for a read.
NO_ANSWER = (ConnectionError, HTTPClientError)

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
THROTTLING_STATUSES = (429, 500, 502, 503, 504)
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
POLICY_HINT = "run `log-exporter policy --config FILE` for the bucket policy it needs"
# CancelExportTask on a task that already ended
ALREADY_ENDED_CODES = frozenset({"InvalidOperationException", "ResourceNotFoundException"})
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404"})  # GetObject of a key that is not there
# A conditional S3 write or copy whose condition (If-Match, If-None-Match) failed
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
CONFLICT_STATUSES = (412, 409)

# Organizations: hard throttling and transient errors are asked again (see organization.py)
ORGANIZATIONS_THROTTLED = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling"}
)
ORGANIZATIONS_TRANSIENT = frozenset(
    {"ServiceException", "InternalFailure", "ServiceUnavailableException"}
)
ORGANIZATIONS_DENIED = frozenset(
    {"AccessDeniedException", "AccessDenied", "AWSOrganizationsNotInUseException"}
)
ORGANIZATIONS_WHERE = (
    " (read it from the management account, a delegated administrator, "
    "or set organization.discovery_role)"
)


# --- the AWS layer's signals ---------------------------------------------------------------------
class SlotBusy(Exception):
    """LimitExceededException: another export task is active in this account and region."""


class Throttled(Exception):
    """AWS asked us to slow down; back off and try again."""


class AnswerLost(Throttled):
    """CreateExportTask got no answer that proves no task was created: a 5xx, a timeout, a
    dropped connection. AWS may have created the task (it offers no idempotency token), so look
    for it before creating again. A 4xx (ThrottlingException, LimitExceededException, ...) does
    prove that nothing was created."""


# What `map_client_error` makes of an answer with an error: caught where a refusal is reported
# (a check's row, a group's line) rather than raised
REFUSALS = (AWSError, SlotBusy, Throttled)


# --- reading an error ----------------------------------------------------------------------------
def _error(exc: ClientError) -> Any:
    return exc.response.get("Error", {})


def error_code(exc: ClientError) -> str:
    """The error code of AWS's answer ('' when it has none)."""
    return str(_error(exc).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The error message of AWS's answer ('' when it has none)."""
    return str(_error(exc).get("Message", ""))


def http_status(exc: ClientError) -> Any:
    """The HTTP status of AWS's answer (None when botocore did not record one)."""
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def aws_says(exc: ClientError, missing_code: str = "") -> str:
    """'<code>: <message>' as AWS answered (`missing_code` when the answer has no code), without
    a trailing ': ' when a part is empty."""
    err = _error(exc)
    return f"{err.get('Code', missing_code)}: {err.get('Message', '')}".rstrip(": ")


def aws_said(exc: BaseException) -> str:
    """What went wrong, in AWS's words: '<code>: <message>' of an answer with an error ('Error'
    when it has no code), else the exception's own words."""
    if isinstance(exc, ClientError):
        return aws_says(exc, "Error")
    return str(exc)


def code_and_message(exc: ClientError) -> str:
    """'<code> <message>' as AWS answered, S3's way of saying it (trailing space dropped)."""
    return f"{error_code(exc)} {error_message(exc)}".rstrip()


def answered_with(exc: BaseException, code: str) -> bool:
    """Whether `exc` is AWS's answer with the error code `code` (not a call without answer)."""
    return isinstance(exc, ClientError) and error_code(exc) == code


def is_missing_key(exc: ClientError) -> bool:
    """Whether S3 answered that the object is not there."""
    return error_code(exc) in MISSING_KEY_CODES


def is_conflict(exc: ClientError, *, by_status: bool = False) -> bool:
    """Whether S3 refused a conditional request because its condition failed (`by_status`: a
    412 or 409 without such a code counts too)."""
    if error_code(exc) in CONFLICT_CODES:
        return True
    return by_status and http_status(exc) in CONFLICT_STATUSES


def already_ended(exc: ClientError) -> bool:
    """Whether CancelExportTask was refused because the task had already ended."""
    return error_code(exc) in ALREADY_ENDED_CODES


# --- CloudWatch Logs (and CloudWatch): the table ---------------------------------------------------
def map_client_error(exc: ClientError, what: str) -> Exception:
    """Our error (or signal) for `exc`, the answer to a call made for `what` (see the table in
    this module's docstring)."""
    code = error_code(exc)
    message = error_message(exc) or code
    if code == "LimitExceededException":
        return SlotBusy(message)
    if code in THROTTLING_CODES or http_status(exc) in THROTTLING_STATUSES:
        return Throttled(f"{code}: {message}")
    if code == "ResourceNotFoundException":
        return ResourceNotFoundError(f"{what}: {message}", code=code)
    if code in DENIED_CODES:
        return AccessDeniedError(f"{what}: access denied: {message}", code=code)
    lowered = message.lower()
    if code == "InvalidParameterException" and ("bucket" in lowered or "permission" in lowered):
        hint = f"; {POLICY_HINT}" if "permission" in lowered or "acl" in lowered else ""
        return BucketError(f"{what}: {message}{hint}", code=code)
    return AWSError(f"{what}: {code}: {message}", code=code)


def map_create_error(
    exc: Exception, *, group: str, window: Window, bucket: str, logs: Any
) -> Exception:
    """What a failed CreateExportTask of `group`'s `window` into `bucket`, called on the logs
    client `logs`, means: the table's error, with the bucket policy named when the bucket
    refused the writes of the region's logs service; but AnswerLost (the task may exist all
    the same) unless AWS answered a 4xx, which proves nothing was created."""
    if not isinstance(exc, ClientError):
        return AnswerLost(str(exc))
    what = f"export of {group} {window}"
    mapped = map_client_error(exc, what)
    if isinstance(mapped, BucketError) and POLICY_HINT in str(mapped):
        region = logs.meta.region_name
        said = error_message(exc).rstrip(".")
        mapped = BucketError(
            f"{what}: the policy of bucket {bucket} does not let "
            f"logs.{region}.amazonaws.com write exports (AWS: {said}); {POLICY_HINT}",
            code=mapped.code,
        )
    status = http_status(exc)
    if not (isinstance(status, int) and status < 500):  # a 4xx proves nothing was made
        return AnswerLost(str(mapped))
    return mapped


# --- S3: the archive bucket ----------------------------------------------------------------------
def bucket_error(doing: str, exc: Exception) -> BucketError:
    """'cannot <doing>: <botocore's own words>': S3 refused, or did not answer."""
    return BucketError(f"cannot {doing}: {exc}")


def state_bucket_error(doing: str, exc: ClientError) -> BucketError:
    """'cannot <doing>: <code> <message>', with AWS's code: a lane state could not be read or
    written."""
    err = _error(exc)
    return BucketError(
        f"cannot {doing}: {err.get('Code', '')} {err.get('Message', '')}".rstrip(),
        code=error_code(exc),
    )


def policy_unreadable(exc: Exception) -> BucketError:
    """The bucket policy could not be read (refused, no answer, or not JSON)."""
    return BucketError(f"cannot read the bucket policy ({aws_said(exc)})")


def config_unreadable(location: str, exc: Exception) -> ConfigError:
    """The config object at `location` (s3://BUCKET/KEY) could not be read."""
    if isinstance(exc, ClientError):
        return ConfigError(f"{location}: cannot be read: {code_and_message(exc)}".rstrip())
    return ConfigError(f"{location}: cannot be read: {exc}")


def archive_bucket_error(bucket: str, exc: Exception) -> BucketError:
    """Why the archive bucket cannot be used (HeadBucket failed): missing, forbidden, or what
    botocore said."""
    status = http_status(exc) if isinstance(exc, ClientError) else None
    if status == 404:
        return BucketError(f"archive bucket {bucket} does not exist")
    if status == 403:
        return BucketError(
            f"archive bucket {bucket} is not reachable with the ambient credentials (403)"
        )
    return BucketError(f"archive bucket {bucket}: {exc}")


# --- Glue, SQS ----------------------------------------------------------------------------------
def glue_error(doing: str, exc: Exception) -> AWSError:
    """'cannot <doing>: <code> <message>' with AWS's code, or botocore's words: the Glue catalog
    refused, or did not answer."""
    if isinstance(exc, ClientError):
        return AWSError(f"cannot {doing}: {code_and_message(exc)}".rstrip(), code=error_code(exc))
    return AWSError(f"cannot {doing}: {exc}")


def queue_error(doing: str, exc: Exception) -> AWSError:
    """'cannot <doing>: <botocore's own words>': SQS refused, or did not answer."""
    return AWSError(f"cannot {doing}: {exc}")


# --- profiles, STS, Organizations, EC2 -----------------------------------------------------------
def unknown_profile_error(where: str, exc: ProfileNotFound) -> ConfigError:
    """A profile given at `where` that the AWS config files do not have."""
    files = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    return ConfigError(
        f"{where}: the AWS profile {exc.kwargs.get('profile', '')!r} is not in {files} "
        "(nor in the shared credentials file)"
    )


def profile_error(where: str, profile: str | None, exc: Exception) -> AWSError:
    """The credentials of `profile` (given at `where`) could not be loaded."""
    return AWSError(f"{where}: the AWS profile {profile!r}: {exc}")


def assume_role_error(arn: str, exc: Exception) -> AWSError:
    """Why `arn` could not be assumed: AccessDeniedError with AWS's code when STS answered
    (whatever the code: a role that cannot be assumed is denied to us), else AWSError."""
    if isinstance(exc, ClientError):
        return AccessDeniedError(
            f"cannot assume role {arn}: {aws_says(exc, 'Error')}".rstrip(": "),
            code=error_code(exc),
        )
    return AWSError(f"cannot assume role {arn}: {exc}")


def organizations_retryable(exc: Exception) -> bool:
    """Whether an Organizations call that failed so is asked again: hard throttling, a
    transient error, or no answer (these calls only read)."""
    if isinstance(exc, ClientError):
        return error_code(exc) in ORGANIZATIONS_THROTTLED | ORGANIZATIONS_TRANSIENT
    return isinstance(exc, NO_ANSWER)


def organizations_error(operation: str, exc: Exception) -> AWSError:
    """Our error for a failed Organizations `operation`: denied (with where to read it from
    instead) or AWSError with AWS's code."""
    if not isinstance(exc, ClientError):
        return AWSError(f"AWS Organizations {operation}: {exc}")
    code = error_code(exc)
    message = f"AWS Organizations {operation}: {code}: {error_message(exc)}".rstrip(": ")
    if code in ORGANIZATIONS_DENIED:
        return AccessDeniedError(message + ORGANIZATIONS_WHERE, code=code)
    return AWSError(message, code=code)


def regions_error(exc: Exception) -> AWSError:
    """Why the enabled regions (ec2:DescribeRegions, for `regions: all`) could not be listed."""
    if not isinstance(exc, ClientError):
        return AWSError(f"regions: all: cannot list the enabled regions: {exc}")
    code = error_code(exc)
    cls = AccessDeniedError if "Denied" in code or "Unauthorized" in code else AWSError
    return cls(
        f"regions: all: cannot list the enabled regions (ec2:DescribeRegions): {aws_says(exc)}".rstrip(
            ": "
        ),
        code=code,
    )
