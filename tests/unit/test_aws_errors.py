"""aws/errors.py's mapping of AWS's errors, and aws/retry.py's `call_with_retries`: what each
answer becomes, word for word, and how many times a refused call is asked again."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from log_exporter.aws.errors import (
    AnswerLost,
    SlotBusy,
    Throttled,
    archive_bucket_error,
    assume_role_error,
    aws_says,
    is_conflict,
    map_client_error,
    map_create_error,
    organizations_error,
    organizations_retryable,
    regions_error,
    state_bucket_error,
)
from log_exporter.aws.retry import (
    ORGANIZATIONS,
    THROTTLED_CALLS,
    RetryPolicy,
    call_with_retries,
)
from log_exporter.core.windows import Window
from log_exporter.errors import (
    AccessDeniedError,
    AWSError,
    BucketError,
    ResourceNotFoundError,
)


def refused(code: str, message: str = "msg", status: int = 400, op: str = "Op") -> ClientError:
    """The ClientError botocore raises for such an answer."""
    error: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    error["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(error, op)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "kind", "text"),
    [
        ("LimitExceededException", 400, SlotBusy, "msg"),
        ("ThrottlingException", 400, Throttled, "ThrottlingException: msg"),
        ("TooManyRequestsException", 400, Throttled, "TooManyRequestsException: msg"),
        ("InternalFailure", 400, Throttled, "InternalFailure: msg"),
        ("SomethingNew", 429, Throttled, "SomethingNew: msg"),
        ("SomethingNew", 503, Throttled, "SomethingNew: msg"),
        ("ResourceNotFoundException", 400, ResourceNotFoundError, "reading /g: msg"),
        ("AccessDeniedException", 400, AccessDeniedError, "reading /g: access denied: msg"),
        ("UnauthorizedOperation", 403, AccessDeniedError, "reading /g: access denied: msg"),
        ("InvalidParameterException", 400, AWSError, "reading /g: InvalidParameterException: msg"),
        ("SomethingNew", 400, AWSError, "reading /g: SomethingNew: msg"),
    ],
)
def test_the_table(code: str, status: int, kind: type[Exception], text: str) -> None:
    mapped = map_client_error(refused(code, status=status), "reading /g")
    assert type(mapped) is kind
    assert str(mapped) == text
    if isinstance(mapped, AWSError):
        assert mapped.code == code


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("The bucket does not exist", "export: The bucket does not exist"),
        (
            "Missing permission on the bucket",
            "export: Missing permission on the bucket; run `log-exporter policy --config FILE` "
            "for the bucket policy it needs",
        ),
    ],
)
def test_a_bad_bucket_parameter_is_a_bucket_error(message: str, text: str) -> None:
    mapped = map_client_error(refused("InvalidParameterException", message), "export")
    assert type(mapped) is BucketError
    assert str(mapped) == text


def test_an_error_without_a_message_says_its_code() -> None:
    assert str(map_client_error(refused("ResourceNotFoundException", ""), "x")) == (
        "x: ResourceNotFoundException"
    )


class Logs:
    class meta:  # a client's `meta`
        region_name = "eu-west-1"


W = Window(0, 86_399_999)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (refused("ThrottlingException", status=400), Throttled),  # a 4xx: nothing was made
        (refused("LimitExceededException", status=400), SlotBusy),
        (refused("ServiceUnavailableException", status=503), AnswerLost),  # maybe made
        (EndpointConnectionError(endpoint_url="https://logs"), AnswerLost),
        (ReadTimeoutError(endpoint_url="https://logs"), AnswerLost),
    ],
)
def test_a_create_is_lost_unless_a_4xx_proves_nothing_was_made(
    exc: Exception, kind: type[Exception]
) -> None:
    mapped = map_create_error(exc, group="/g", window=W, bucket="b", logs=Logs())
    assert type(mapped) is kind


def test_s3_errors() -> None:
    denied = refused("AccessDenied", "Access Denied", 403, "GetObject")
    assert str(state_bucket_error("read s3://b/k", denied)) == (
        "cannot read s3://b/k: AccessDenied Access Denied"
    )
    assert str(state_bucket_error("read s3://b/k", refused("", "", 500))) == "cannot read s3://b/k:"
    assert str(archive_bucket_error("b", refused("404", "Not Found", 404))) == (
        "archive bucket b does not exist"
    )
    assert str(archive_bucket_error("b", refused("403", "Forbidden", 403))) == (
        "archive bucket b is not reachable with the ambient credentials (403)"
    )
    assert str(archive_bucket_error("b", EndpointConnectionError(endpoint_url="u"))) == (
        'archive bucket b: Could not connect to the endpoint URL: "u"'
    )


def test_conflicts() -> None:
    assert is_conflict(refused("PreconditionFailed", status=412))
    assert is_conflict(refused("ConditionalRequestConflict", status=409))
    assert not is_conflict(refused("Other", status=412))
    assert is_conflict(refused("Other", status=412), by_status=True)
    assert not is_conflict(refused("AccessDenied", status=403), by_status=True)


def test_sts_organizations_and_ec2_errors() -> None:
    arn = "arn:aws:iam::123456789012:role/R"
    denied = assume_role_error(arn, refused("AccessDenied", "not allowed"))
    assert type(denied) is AccessDeniedError and denied.code == "AccessDenied"
    assert str(denied) == f"cannot assume role {arn}: AccessDenied: not allowed"
    assert str(assume_role_error(arn, refused("", ""))) == f"cannot assume role {arn}"
    assert aws_says(ClientError({}, "Op"), "Error") == "Error"

    org = organizations_error("list_accounts", refused("AWSOrganizationsNotInUseException", "no"))
    assert type(org) is AccessDeniedError
    assert str(org) == (
        "AWS Organizations list_accounts: AWSOrganizationsNotInUseException: no (read it from "
        "the management account, a delegated administrator, or set organization.discovery_role)"
    )
    assert organizations_retryable(refused("TooManyRequestsException"))
    assert organizations_retryable(refused("ServiceException", status=500))
    assert organizations_retryable(EndpointConnectionError(endpoint_url="u"))
    assert not organizations_retryable(refused("AccessDeniedException"))

    regions = regions_error(refused("UnauthorizedOperation", ""))
    assert type(regions) is AccessDeniedError
    assert str(regions) == (
        "regions: all: cannot list the enabled regions (ec2:DescribeRegions): UnauthorizedOperation"
    )


# --- call_with_retries ---------------------------------------------------------------------------
class Answers:
    """A call that raises each of `answers` that is an exception, in turn, then returns."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_throttled_calls_are_asked_again_with_growing_waits() -> None:
    call = Answers(Throttled("a"), AnswerLost("b"), Throttled("c"), "done")
    waits: list[float] = []
    seen: list[str] = []
    policy = RetryPolicy(1.0, 3.0, 5)
    got = call_with_retries(
        call, policy, waits.append, what="x", on_retry=lambda e: seen.append(str(e))
    )
    assert got == "done" and call.calls == 4
    assert seen == ["a", "b", "c"]
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 1.5 <= waits[2] <= 3.0


def test_a_call_still_refused_after_its_retries_fails_naming_it() -> None:
    call = Answers(*[Throttled("ThrottlingException: Rate exceeded")] * 21)
    waits: list[float] = []
    with pytest.raises(AWSError) as info:
        call_with_retries(call, THROTTLED_CALLS, waits.append, what="prod/us-east-1")
    assert str(info.value) == (
        "prod/us-east-1: AWS still refuses after 20 tries: ThrottlingException: Rate exceeded"
    )
    assert len(waits) == 20 and call.calls == 21
    assert max(waits) <= 20.0


def test_other_errors_are_not_retried_and_give_up_chooses_the_error() -> None:
    call = Answers(ResourceNotFoundError("gone"))
    waits: list[float] = []
    with pytest.raises(ResourceNotFoundError):
        call_with_retries(call, THROTTLED_CALLS, waits.append, what="x")
    assert waits == [] and call.calls == 1

    call = Answers(Throttled("a"), Throttled("b"))
    with pytest.raises(BucketError, match=r"^gave up on b$"):
        call_with_retries(
            call,
            RetryPolicy(0.1, 1.0, 1),
            waits.append,
            give_up=lambda e: BucketError(f"gave up on {e}"),
        )
    assert len(waits) == 1


def test_organizations_waits_the_full_ceiling() -> None:
    call = Answers(*[Throttled("t")] * 8)
    waits: list[float] = []
    with pytest.raises(AWSError):
        call_with_retries(call, ORGANIZATIONS, waits.append, what="o")
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0]
