"""What log_exporter/aws/botocore_internals.py relies on inside botocore, beyond its public API:
each test fails with a message naming what a new botocore changed, so an upgrade past the pinned
range (pyproject.toml) is caught here and not by lanes signing as the wrong account or retrying
without end.

- A shared logs client signs each call with `context['signing']['request_credentials']`.
- Each lane's standard-mode retries: the `needs-retry.<service>` and `after-call.<service>` events,
  `standard.RetryHandler`, `RetryQuotaChecker`, `StandardRetryConditions`,
  `ExponentialBackoff`, `RetryEventAdapter` with the keywords botocore_internals.py passes.
- `ServiceLoader` overrides `Loader.list_available_services`, which `load_service_model` asks.
- `RefreshableCredentials._advisory_refresh_timeout` / `_mandatory_refresh_timeout`, and a
  session's `_credentials`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore
import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.loaders import Loader
from botocore.retries import quota, standard

from log_exporter.aws.botocore_internals import LaneSigning, ServiceLoader
from log_exporter.aws.sessions import SessionFactory

REGION = "us-east-1"
WHY = f"botocore {botocore.__version__} changed what log_exporter/aws/botocore_internals.py relies on: "


class Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


class FakeLogs:
    """Answers the shared logs client's requests without a network: `before-send` returns a
    response, so botocore signs every request as usual and sends none."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.authorizations: list[str] = []

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        self.authorizations.append(str(request.headers.get("Authorization", b""), "utf-8"))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "r"}
        return AWSResponse(request.url, status, headers, Raw(json.dumps(body).encode()))


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> SessionFactory:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDAMBIENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    return SessionFactory(region=REGION, max_attempts=3)


def fake(factory: SessionFactory, answers: list[tuple[int, dict[str, Any]]]) -> FakeLogs:
    stub = FakeLogs(answers)
    shared = factory._shared_logs(REGION)
    shared.meta.events.register_first("before-send.cloudwatch-logs", stub)
    return stub


def test_each_lane_signs_with_its_own_credentials_on_the_shared_client(
    factory: SessionFactory,
) -> None:
    stub = fake(factory, [(200, {"exportTasks": []})])
    one = factory.lane_clients(Credentials("AKIDLANEONE", "s1"), "111111111111", REGION)
    two = factory.lane_clients(Credentials("AKIDLANETWO", "s2"), "222222222222", REGION)

    one.logs.describe_export_tasks()
    two.logs.describe_export_tasks()
    one.logs.get_paginator("describe_export_tasks").paginate().build_full_result()

    signed_with = [a.split("Credential=")[1].split("/")[0] for a in stub.authorizations]
    assert signed_with == ["AKIDLANEONE", "AKIDLANETWO", "AKIDLANEONE"], (
        WHY + "the signer no longer signs with context['signing']['request_credentials'] "
        f"(botocore.signers.RequestSigner.sign); requests were signed by {signed_with}"
    )


def test_a_throttled_call_is_retried_by_its_lanes_own_handler_and_quota(
    factory: SessionFactory,
) -> None:
    throttled = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    fake(factory, [throttled, throttled, (200, {"exportTasks": []})])
    lane = factory.lane_clients(Credentials("AKIDLANE", "s"), "111111111111", REGION)
    other = factory.lane_clients(Credentials("AKIDOTHER", "s"), "222222222222", REGION)
    signing = lane.logs._lane  # type: ignore[attr-defined]
    other_quota = other.logs._lane.quota._quota.available_capacity  # type: ignore[attr-defined]

    out = lane.logs.describe_export_tasks()

    assert out["ResponseMetadata"]["RetryAttempts"] == 2, (
        WHY + "the lane's handler on 'needs-retry.cloudwatch-logs' no longer retries "
        "(standard.RetryHandler.needs_retry)"
    )
    assert lane.retries.count == 2, WHY + "'after-call.cloudwatch-logs' no longer reaches the lane"
    assert signing.quota._quota.available_capacity < quota.RetryQuota.INITIAL_CAPACITY, (
        WHY + "the lane's RetryQuotaChecker was not charged for its retries"
    )
    assert other.logs._lane.quota._quota.available_capacity == other_quota  # type: ignore[attr-defined]


def test_create_export_task_is_not_retried_by_botocore(factory: SessionFactory) -> None:
    stub = fake(factory, [(400, {"__type": "LimitExceededException", "message": "busy"})])
    lane = factory.lane_clients(Credentials("AKIDLANE", "s"), "111111111111", REGION)

    with pytest.raises(lane.logs.exceptions.LimitExceededException):
        lane.logs_create.create_export_task(
            logGroupName="/g", fromTime=0, to=1, destination="bucket"
        )

    assert len(stub.authorizations) == 1, (
        WHY + "CreateExportTask was retried: the client's own retry handler no longer honours "
        "total_max_attempts=1, or 'needs-retry' handlers run differently"
    )


def parameters(func: Any) -> list[str]:
    """The parameter names of `func`, through botocore's `instance_cache` wrapper (which keeps
    the wrapped function in its closure, not in `__wrapped__`)."""
    for cell in getattr(func, "__closure__", None) or ():
        inner = cell.cell_contents
        if inspect.isfunction(inner):
            return parameters(inner)
    return list(inspect.signature(func).parameters)


def test_the_retry_classes_take_what_lane_signing_passes() -> None:
    expected = {
        standard.RetryHandler.__init__: ["retry_policy", "retry_event_adapter", "retry_quota"],
        standard.RetryPolicy.__init__: ["retry_checker", "retry_backoff"],
        standard.StandardRetryConditions.__init__: ["max_attempts"],
        standard.RetryQuotaChecker.__init__: ["quota"],
        standard.RetryQuotaChecker.release_retry_quota: ["context", "http_response"],
    }
    for func, names in expected.items():
        got = parameters(func)
        assert all(n in got for n in names), (
            WHY
            + f"{func.__qualname__} now takes {got}, botocore_internals.LaneSigning passes {names}"
        )
    assert parameters(standard.RetryHandler.needs_retry) == ["self", "kwargs"], (
        WHY + "standard.RetryHandler.needs_retry no longer takes the event's keywords"
    )
    LaneSigning(None, 3)  # builds with this botocore


def test_service_loader_still_overrides_what_botocore_asks() -> None:
    for name in ("list_available_services", "list_api_versions"):
        assert callable(getattr(Loader, name, None)), WHY + f"Loader.{name} is gone"
    assert parameters(Loader.list_available_services) == ["self", "type_name"], (
        WHY + "Loader.list_available_services changed its signature "
        f"{parameters(Loader.list_available_services)}; ServiceLoader overrides it"
    )
    assert parameters(Loader.list_api_versions) == ["self", "service_name", "type_name"], (
        WHY + "Loader.list_api_versions changed its signature; KnownServices calls it"
    )
    asked: list[str] = []

    class Spy(ServiceLoader):
        def list_available_services(self, type_name: str) -> Any:
            asked.append(type_name)
            return super().list_available_services(type_name)

        def all_services(self, type_name: str) -> list[str]:
            raise AssertionError(WHY + "loading a model listed every service's folder")

    Spy().load_service_model("logs", "service-2")
    assert asked == ["service-2"], (
        WHY + "Loader.load_service_model no longer asks list_available_services, so "
        "ServiceLoader's override does nothing"
    )


def test_refresh_timeouts_and_session_credentials_are_where_aws_py_sets_them(
    factory: SessionFactory,
) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=12)).isoformat()

    def metadata() -> dict[str, str]:
        return {"access_key": "a", "secret_key": "s", "token": "t", "expiry_time": expiry}

    creds = RefreshableCredentials.create_from_metadata(
        metadata=metadata(), refresh_using=metadata, method="assume-role"
    )
    for name in ("_advisory_refresh_timeout", "_mandatory_refresh_timeout"):
        assert isinstance(getattr(creds, name, None), int), WHY + f"{name} is gone"
    assert creds.refresh_needed(), "botocore's default: 15 minutes before expiry"
    creds._advisory_refresh_timeout = 60  # type: ignore[attr-defined]
    assert not creds.refresh_needed(), (
        WHY + "RefreshableCredentials.refresh_needed() no longer reads _advisory_refresh_timeout"
    )
    plain = Credentials("AKIDSESSION", "s")
    assert factory.session_with(plain).get_credentials() is plain, (
        WHY + "a session no longer uses the credentials set in its _credentials"
    )
