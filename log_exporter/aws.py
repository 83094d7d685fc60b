"""The one place that builds AWS sessions, role chains and clients; the core only receives them.

Every client uses botocore's `standard` retry mode, except for CreateExportTask: botocore counts
its `LimitExceededException` as throttling and would retry it for up to 20 s, while the lane
knows the slot stays busy until a task ends, so the lanes' logs client does not retry that call
(`retry_all_but_create`) and the lane handles both cases itself. Every client counts the retries botocore made for it, so a run can
say how many retries throttling cost.

A lane costs one logs client and nothing else here: member accounts share one botocore session,
and the clients of a service share their class, model and caches (see `MemberClients`), so 1,000
lanes fit in a few hundred MB.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import Loader
from botocore.retries import quota, standard
from botocore.utils import determine_content_length

from .errors import AccessDeniedError, AWSError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

SESSION_NAME = "log-exporter"
CHAIN_DURATION_S = 3600  # a role reached through a chain lasts at most one hour
DEFAULT_MAX_ATTEMPTS = 10


def attempts_from_env() -> int | None:
    """AWS_MAX_ATTEMPTS, the SDKs' own knob (an explicit botocore Config would ignore it)."""
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


class RetryCounter:
    """Counts botocore's own retries: an `after-call` handler adding up the RetryAttempts of every
    answered call (errors included), from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def __call__(self, parsed: Any = None, **kwargs: Any) -> None:
        meta = parsed.get("ResponseMetadata") if isinstance(parsed, dict) else None
        retries = int((meta or {}).get("RetryAttempts") or 0)
        if retries:
            with self._lock:
                self._count += retries

    @property
    def count(self) -> int:
        return self._count

    def watch(self, client: Any) -> None:
        """Count the retries of `client` (a boto3 client) from now on."""
        client.meta.events.register("after-call", self)


class MemberClients(botocore.session.Session):
    """One botocore session that builds every member account's clients, each signing with the
    credentials it is built with.

    A botocore session per account costs ~140 KiB (its own event handlers and config), and each
    client builds its own class (a method and a docstring per operation, ~130 KiB), its own model
    of the service (which then builds its own copy of each operation's shapes, ~70 KiB) and its
    own cache of event-name aliases (~15 ms of CPU over its first calls): with 1,000 lanes that
    was most of the process. Here the accounts share the session, and the clients of a service
    share one class, one model and one alias cache; a lane's client then costs ~170 KiB and
    ~3 ms to build.
    """

    def __init__(self, loader: Loader) -> None:
        super().__init__()
        self.register_component("data_loader", loader)
        self._building = threading.Lock()
        self._next_credentials: Credentials | None = None
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}  # event name -> its alias; the same for every client
        self._models: dict[str, Any] = {}  # service -> the ServiceModel its clients share
        self.get_component("event_emitter").register_last(
            "creating-client-class", self._reuse_class
        )

    def get_credentials(self) -> Credentials | None:
        """The credentials of the client being built (the ambient chain when none is given)."""
        if self._next_credentials is not None:
            return self._next_credentials
        return super().get_credentials()

    def client_with(self, credentials: Credentials | None, service: str, **kwargs: Any) -> Any:
        with self._building:  # one at a time: the session is not thread-safe while building
            self._next_credentials = credentials
            try:
                client = self.create_client(service, **kwargs)
            finally:
                self._next_credentials = None
        events = client.meta.events
        if isinstance(getattr(events, "_alias_name_cache", None), dict):
            events._alias_name_cache = self._aliases  # type: ignore[attr-defined]
        model = self._models.setdefault(service, client.meta.service_model)
        resolver = getattr(client, "_ruleset_resolver", None)
        if model is not client.meta.service_model and hasattr(client.meta, "_service_model"):
            client.meta._service_model = model
            if resolver is not None and hasattr(resolver, "_service_model"):
                resolver._service_model = model
        return client

    def _reuse_class(
        self,
        class_attributes: dict[str, Any],
        base_classes: list[type],
        event_name: str = "",
        **kwargs: Any,
    ) -> None:
        """botocore builds a class per client; derive each from the service's first one."""
        shared = self._classes.get(event_name)
        if shared is None:
            name = "Shared" + event_name.rsplit(".", 1)[-1].title().replace("-", "")
            shared = self._classes[event_name] = type(
                name, tuple(base_classes), dict(class_attributes)
            )
        class_attributes.clear()
        base_classes[:] = [shared]


def retry_all_but_create(client: Any, max_attempts: int) -> None:
    """Give a logs client built with one attempt botocore's standard-mode retries for every call
    but CreateExportTask, whose LimitExceededException botocore would retry as throttling (the
    lane handles that call's errors itself). This is `botocore.retries.standard`'s own handler
    and quota, behind a filter, so one client serves a lane instead of two."""
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota())
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(),
        ),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=retry_quota,  # type: ignore[arg-type]  # the stubs say RetryQuota; botocore passes this
    )

    def needs_retry(operation: Any = None, **kwargs: Any) -> float | None:
        if operation is None or operation.name == "CreateExportTask":
            return None
        return handler.needs_retry(operation=operation, **kwargs)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"after-call.{service}", retry_quota.release_retry_quota)
    client.meta.events.register(f"needs-retry.{service}", needs_retry)


SMALL_BODY = 64 * 1024


def no_continue_for_small_bodies(params: dict[str, Any], **kwargs: Any) -> None:
    """botocore asks S3 for a `100 Continue` before it sends any PUT body: a round trip more on
    every lane state write, which only pays off for big bodies."""
    body = params.get("body")
    size = determine_content_length(body) if body is not None else None
    if size is not None and size <= SMALL_BODY:
        params.get("headers", {}).pop("Expect", None)


@dataclass(frozen=True)
class AccountClients:
    """The clients one lane (account and region) uses to read its log groups and export them."""

    account_id: str
    region: str
    logs: CloudWatchLogsClient
    logs_create: CloudWatchLogsClient  # CreateExportTask is not retried: the lane handles it
    retries: RetryCounter = field(default_factory=RetryCounter)  # botocore's, on these clients


class SessionFactory:
    """Builds sessions and clients; one shared model loader keeps memory flat across accounts."""

    def __init__(
        self,
        *,
        region: str | None = None,
        max_attempts: int | None = None,
        max_pool_connections: int = 10,
    ) -> None:
        self._loader = Loader()
        self._region = region
        self._max_attempts = max_attempts or attempts_from_env() or DEFAULT_MAX_ATTEMPTS
        self._pool = max_pool_connections
        self._lock = threading.Lock()
        self._ambient: boto3.Session | None = None
        self._members: MemberClients | None = None
        self._sts: dict[str | None, STSClient] = {}  # ambient STS clients by region
        self.retries = RetryCounter()  # botocore's retries on the S3 and STS clients built here

    def _session(self, **kwargs: Any) -> boto3.Session:
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        return boto3.Session(botocore_session=core, **kwargs)

    def _config(self, attempts: int | None = None) -> BotoConfig:
        return BotoConfig(
            # `total_max_attempts` counts the first try; botocore's `max_attempts` would count
            # retries only, so 1 there still retried CreateExportTask once
            retries={"mode": "standard", "total_max_attempts": attempts or self._max_attempts},
            max_pool_connections=self._pool,
            user_agent_extra="log-exporter",
        )

    @property
    def ambient(self) -> boto3.Session:
        """The caller's own credentials: they read and write the archive bucket."""
        with self._lock:
            if self._ambient is None:
                self._ambient = self._session(region_name=self._region)
            return self._ambient

    @property
    def default_region(self) -> str | None:
        return self._region or self.ambient.region_name

    def s3(self, region: str | None = None) -> S3Client:
        client = self.ambient.client(
            "s3", region_name=region or self.default_region, config=self._config()
        )
        self.retries.watch(client)
        client.meta.events.register_last("before-call.s3", no_continue_for_small_bodies)
        return client

    def sts(self, session: boto3.Session | None = None, region: str | None = None) -> STSClient:
        """An STS client; the ambient one is built once per region (every account's AssumeRole
        starts there)."""
        region = region or self.default_region
        if session is None:
            with self._lock:
                cached = self._sts.get(region)
            if cached is not None:
                return cached
        client = (session or self.ambient).client("sts", region_name=region, config=self._config())
        self.retries.watch(client)
        if session is None:
            with self._lock:
                client = self._sts.setdefault(region, client)
        return client

    def account_session(
        self, roles: list[str], external_id: str | None = None, *, region: str | None = None
    ) -> boto3.Session:
        """A session in a member account: the ambient one, or one whose credentials come from
        assuming `roles` in order (each hop with the previous one's credentials), refreshed before
        they expire. `external_id` is passed to the last role of the chain."""
        credentials = self.account_credentials(roles, external_id, region=region)
        return self.session_with(credentials, region=region)

    def session_with(
        self, credentials: Credentials | None, *, region: str | None = None
    ) -> boto3.Session:
        """A session signing with `credentials` (None: the ambient session)."""
        if credentials is None:
            return self.ambient
        session = self._session(region_name=region or self.default_region)
        session._session._credentials = credentials  # type: ignore[attr-defined]
        return session

    def account_credentials(
        self, roles: list[str], external_id: str | None = None, *, region: str | None = None
    ) -> Credentials | None:
        """A member account's credentials, as `account_session` gets them, without a session
        (None: the ambient credentials, when there is no role to assume)."""
        if not roles:
            return None
        fetch = self._chain_fetcher(roles, external_id, region or self.default_region)
        first = fetch()
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=first, refresh_using=fetch, method="assume-role"
        )
        # botocore refreshes 15 (advisory) and 10 (mandatory) minutes before expiry; scale that
        # down for credentials that live less than an hour, so they are not refreshed every call.
        lifetime = (
            datetime.fromisoformat(first["expiry_time"]) - datetime.now(UTC)
        ).total_seconds()
        credentials._advisory_refresh_timeout = int(min(15 * 60, max(lifetime / 4, 1)))  # type: ignore[attr-defined]
        credentials._mandatory_refresh_timeout = int(min(10 * 60, max(lifetime / 8, 1)))  # type: ignore[attr-defined]
        return credentials

    def _chain_fetcher(
        self, roles: list[str], external_id: str | None, region: str | None
    ) -> Callable[[], dict[str, str]]:
        def fetch() -> dict[str, str]:
            creds: dict[str, Any] | None = None
            for i, arn in enumerate(roles):
                if creds is None:
                    sts = self.sts(region=region)
                else:
                    sts = self._session(
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"],
                        region_name=region,
                    ).client("sts", config=self._config())
                kwargs: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": SESSION_NAME}
                if external_id and i == len(roles) - 1:
                    kwargs["ExternalId"] = external_id
                if len(roles) > 1:
                    kwargs["DurationSeconds"] = CHAIN_DURATION_S
                try:
                    creds = dict(sts.assume_role(**kwargs)["Credentials"])
                except ClientError as exc:
                    err = exc.response.get("Error", {})
                    raise AccessDeniedError(
                        f"cannot assume role {arn}: {err.get('Code', 'Error')}: "
                        f"{err.get('Message', '')}".rstrip(": "),
                        code=str(err.get("Code", "")),
                    ) from None
                except BotoCoreError as exc:
                    raise AWSError(f"cannot assume role {arn}: {exc}") from None
            assert creds is not None
            expiry = creds["Expiration"]
            if isinstance(expiry, datetime):
                expiry = expiry.astimezone(UTC).isoformat()
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": str(expiry),
            }

        return fetch

    def account_id(self, session: boto3.Session, roles: list[str]) -> str:
        """The member account's id: from the last role ARN, else from GetCallerIdentity."""
        if roles:
            return roles[-1].split(":")[4]
        try:
            return str(self.sts(session).get_caller_identity()["Account"])
        except (ClientError, BotoCoreError) as exc:
            raise AWSError(f"cannot identify the ambient AWS account: {exc}") from None

    def account_clients(
        self, session: boto3.Session, account_id: str, region: str
    ) -> AccountClients:
        """The clients of a lane, signing with `session`'s credentials."""
        return self.lane_clients(session.get_credentials(), account_id, region)

    def lane_clients(
        self, credentials: Credentials | None, account_id: str, region: str
    ) -> AccountClients:
        """The clients of a lane, signing with `credentials` (None: the ambient ones): one logs
        client, which does not retry CreateExportTask (see `retry_all_but_create`)."""
        with self._lock:
            if self._members is None:
                self._members = MemberClients(self._loader)
            members = self._members
        logs = members.client_with(credentials, "logs", region_name=region, config=self._config(1))
        retry_all_but_create(logs, self._max_attempts)
        clients = AccountClients(account_id=account_id, region=region, logs=logs, logs_create=logs)
        clients.retries.watch(logs)
        return clients

    def cloudwatch(self, session: boto3.Session, region: str) -> CloudWatchClient:
        """CloudWatch (metrics) of a member account, for `log-exporter stats`."""
        return session.client("cloudwatch", region_name=region, config=self._config())

    def sqs(self) -> SQSClient:
        """The Lambda deployment's lane queue, with the ambient credentials."""
        return self.ambient.client("sqs", region_name=self.default_region, config=self._config())
