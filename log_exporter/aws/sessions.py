"""The one place that builds AWS sessions, role chains and clients; the core only receives them.

Every client uses botocore's `standard` retry mode, except for CreateExportTask: botocore counts
its `LimitExceededException` as throttling and would retry it for up to 20 s, while the lane
knows the slot stays busy until a task ends, so that call is not retried here and the lane
handles both cases itself. Every client counts the retries botocore made for it, so a run can
say how many retries throttling cost.

A lane costs no client of its own: the lanes of a region share one logs client, and each call
signs with its lane's credentials (see `share_between_lanes`), so 1,000 lanes start in
moments and fit in a few hundred MB.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast, overload

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    DataNotFoundError,
    NoCredentialsError,
    ProfileNotFound,
)
from botocore.loaders import Loader
from botocore.retries import quota, standard
from botocore.utils import determine_content_length

from log_exporter.errors import AccessDeniedError, AWSError, ConfigError
from log_exporter.settings import positive_int_or_unset, resolve

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

SESSION_NAME = "log-exporter"
CHAIN_DURATION_S = 3600  # a role reached through a chain lasts at most one hour
DEFAULT_MAX_ATTEMPTS = 10
ORGANIZATIONS_REGION = "us-east-1"  # Organizations' one endpoint (aws partition)
# ... and in the other partitions, by the partition of the default region
ORGANIZATIONS_REGIONS = {"aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}


def organizations_region(default_region: str | None) -> str:
    """The region serving Organizations in the partition of `default_region`."""
    from log_exporter.core.policy import partition

    return ORGANIZATIONS_REGIONS.get(partition(default_region or ""), ORGANIZATIONS_REGION)


def resolve_max_attempts(explicit: int | None = None) -> int:
    """`explicit`, else AWS_MAX_ATTEMPTS (the SDKs' own knob, which an explicit botocore Config
    would ignore; a value that is not a positive integer is ignored), else 10."""
    return resolve(
        explicit or None, "AWS_MAX_ATTEMPTS", positive_int_or_unset, DEFAULT_MAX_ATTEMPTS
    )


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


class KnownServices(Sequence[str]):
    """The services with a model of one type, as botocore's Loader lists them, except that `in`
    looks at that one service's folder and the full list is made only when used."""

    def __init__(self, loader: ServiceLoader, type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name

    def __contains__(self, service: object) -> bool:
        if not isinstance(service, str):
            return False
        try:
            return bool(self._loader.list_api_versions(service, self._type_name))
        except DataNotFoundError:
            return False

    def _all(self) -> list[str]:
        return self._loader.all_services(self._type_name)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())


class ServiceLoader(Loader):
    """botocore's model loader, except that checking that a service exists before loading its
    model does not list the folder of every service botocore knows (~900 directory listings,
    ~50 ms of every start, before the first request)."""

    def list_available_services(self, type_name: str) -> Any:
        return KnownServices(self, type_name)

    def all_services(self, type_name: str) -> list[str]:
        return list(super().list_available_services(type_name))  # cached by botocore


LANE_KEY = "_log_exporter_lane"  # the private keyword a LaneClient adds to each call


class OutsideLane(Credentials):
    """The default credentials of a shared logs client: a call that does not come through a
    LaneClient has none, and fails as unsigned calls do instead of signing as somebody else."""

    def __init__(self) -> None:
        super().__init__("", "")

    def get_frozen_credentials(self) -> Any:
        raise NoCredentialsError()


@dataclass(eq=False)
class LaneSigning:
    """What the calls of one lane on its region's shared logs client sign with (None when not
    even ambient credentials were found: the calls then fail unsigned), and its own share of
    botocore's standard-mode retries: their handler and quota, and the count of retries made."""

    credentials: Credentials | None
    max_attempts: int
    retries: RetryCounter = field(default_factory=RetryCounter)
    quota: standard.RetryQuotaChecker = field(init=False)
    handler: standard.RetryHandler = field(init=False)

    def __post_init__(self) -> None:
        self.quota = standard.RetryQuotaChecker(quota.RetryQuota())
        self.handler = standard.RetryHandler(
            retry_policy=standard.RetryPolicy(
                retry_checker=standard.StandardRetryConditions(max_attempts=self.max_attempts),
                retry_backoff=standard.ExponentialBackoff(),
            ),
            retry_event_adapter=standard.RetryEventAdapter(),
            retry_quota=self.quota,  # type: ignore[arg-type]  # the stubs say RetryQuota; botocore passes this
        )


def _lane_of(context: Any) -> LaneSigning | None:
    lane = context.get(LANE_KEY) if isinstance(context, dict) else None
    return lane if isinstance(lane, LaneSigning) else None


def share_between_lanes(client: Any) -> None:
    """Make one logs client serve every lane of a region, each call signing with its lane's
    credentials: botocore signs a request with `request_credentials` from its signing context
    when there are some, and a LaneClient passes its lane with every call. Building a client is
    milliseconds of CPU and ~170 KiB; with hundreds of lanes starting together, that was most
    of the time before their first tasks.

    Retries are botocore's standard mode, with each lane's own handler and quota (a throttled
    account does not spend the others' retries), for every call but CreateExportTask, whose
    LimitExceededException botocore would retry as throttling (the lane handles that call's
    errors itself)."""
    service = client.meta.service_model.service_id.hyphenize()

    def take_lane(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        lane = params.pop(LANE_KEY, None)
        if isinstance(lane, LaneSigning):
            context[LANE_KEY] = lane
            if lane.credentials is not None:
                context.setdefault("signing", {})["request_credentials"] = lane.credentials

    def needs_retry(operation: Any = None, request_dict: Any = None, **kwargs: Any) -> float | None:
        lane = _lane_of((request_dict or {}).get("context"))
        if lane is None or operation is None or operation.name == "CreateExportTask":
            return None
        return lane.handler.needs_retry(operation=operation, request_dict=request_dict, **kwargs)

    def after_call(context: Any = None, **kwargs: Any) -> None:
        lane = _lane_of(context)
        if lane is not None:
            lane.quota.release_retry_quota(context=context, **kwargs)
            lane.retries(**kwargs)

    events = client.meta.events
    events.register(f"provide-client-params.{service}", take_lane)
    events.register(f"needs-retry.{service}", needs_retry)
    events.register(f"after-call.{service}", after_call)


class LanePaginator:
    """A paginator of the shared client whose every page is asked for as the lane."""

    def __init__(self, paginator: Any, lane: LaneSigning) -> None:
        self._paginator = paginator
        self._lane = lane

    def paginate(self, **kwargs: Any) -> Any:
        return self._paginator.paginate(**kwargs, **{LANE_KEY: self._lane})


class LaneClient:
    """One lane's view of its region's shared logs client (see `share_between_lanes`): the
    same methods, each call carrying the lane."""

    def __init__(self, client: Any, lane: LaneSigning) -> None:
        self._client = client
        self._lane = lane

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "get_paginator":
            return lambda operation: LanePaginator(attr(operation), self._lane)
        if name.startswith("_") or not callable(attr) or name in ("can_paginate", "close"):
            return attr
        lane = self._lane

        def call(**kwargs: Any) -> Any:
            return attr(**kwargs, **{LANE_KEY: lane})

        return call


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


def _known_profile(session: botocore.session.Session, where: str) -> botocore.session.Session:
    """`session`, once its profile is known to be in the AWS config files (ConfigError if not)."""
    try:
        session.get_scoped_config()
    except ProfileNotFound as exc:
        files = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        raise ConfigError(
            f"{where}: the AWS profile {exc.kwargs.get('profile', '')!r} is not in {files} "
            "(nor in the shared credentials file)"
        ) from None
    return session


class SessionFactory:
    """Builds sessions and clients; one shared model loader keeps memory flat across accounts."""

    def __init__(
        self,
        *,
        region: str | None = None,
        max_attempts: int | None = None,
        max_pool_connections: int = 10,
        profile: str | None = None,
    ) -> None:
        self._loader = ServiceLoader()
        self._region = region
        self._profile = profile  # `--profile`: the ambient session's; else AWS_PROFILE, default
        self._profiles: dict[str, botocore.session.Session] = {}  # accounts' `profile:`
        self._max_attempts = resolve_max_attempts(max_attempts)
        self._pool = max_pool_connections
        self._lock = threading.Lock()
        self._sts_lock = threading.Lock()  # lanes starting together build the STS client once
        self._ambient: botocore.session.Session | None = None
        self._logs: dict[str, Any] = {}  # the shared logs client of each region
        self._sts: dict[str | None, STSClient] = {}  # ambient STS clients by region
        self.retries = RetryCounter()  # botocore's retries on the S3 and STS clients built here

    def _session(
        self,
        region: str | None = None,
        credentials: Credentials | None = None,
        profile: str | None = None,
    ) -> botocore.session.Session:
        """A botocore session sharing the factory's model loader (boto3's Session would only
        wrap it, and cost its import); with `profile`, that profile of the AWS config files."""
        session = botocore.session.Session(profile=profile)
        session.register_component("data_loader", self._loader)
        if region:
            session.set_config_variable("region", region)
        if credentials is not None:
            session._credentials = credentials  # type: ignore[attr-defined]
        return session

    def _config(self, attempts: int | None = None) -> BotoConfig:
        return BotoConfig(
            # `total_max_attempts` counts the first try; botocore's `max_attempts` would count
            # retries only, so 1 there still retried CreateExportTask once
            retries={"mode": "standard", "total_max_attempts": attempts or self._max_attempts},
            max_pool_connections=self._pool,
            user_agent_extra="log-exporter",
        )

    @property
    def ambient(self) -> botocore.session.Session:
        """The caller's own credentials: they read and write the archive bucket."""
        with self._lock:
            if self._ambient is None:
                where = "--profile" if self._profile else "AWS_PROFILE"
                session = self._session(region=self._region, profile=self._profile)
                self._ambient = _known_profile(session, where)
            return self._ambient

    def profile_session(self, profile: str, where: str = "profile") -> botocore.session.Session:
        """A session of a profile of the AWS config files (an account's `profile:`), built once;
        an unknown profile is a ConfigError naming `where` it was given."""
        with self._lock:
            if profile not in self._profiles:
                session = self._session(region=self._region, profile=profile)
                self._profiles[profile] = _known_profile(session, where)
            return self._profiles[profile]

    @property
    def default_region(self) -> str | None:
        return self._region or self.ambient.get_config_variable("region")

    def s3(self, region: str | None = None) -> S3Client:
        client = cast(
            "S3Client",
            self.ambient.create_client(
                "s3", region_name=region or self.default_region, config=self._config()
            ),
        )
        self.retries.watch(client)
        client.meta.events.register_last("before-call.s3", no_continue_for_small_bodies)
        return client

    def sts(
        self, session: botocore.session.Session | None = None, region: str | None = None
    ) -> STSClient:
        """An STS client; the ambient one is built once per region (every account's AssumeRole
        starts there), even when many lanes ask for it at the same moment."""
        region = region or self.default_region
        if session is not None:
            return self._new_sts(session, region)
        with self._sts_lock:
            client = self._sts.get(region)
            if client is None:
                client = self._sts[region] = self._new_sts(self.ambient, region)
            return client

    def _new_sts(self, session: botocore.session.Session, region: str | None) -> STSClient:
        client = cast(
            "STSClient",
            session.create_client("sts", region_name=region, config=self._config()),
        )
        self.retries.watch(client)
        return client

    def account_session(
        self, roles: list[str], external_id: str | None = None, *, region: str | None = None
    ) -> botocore.session.Session:
        """A session in a member account: the ambient one, or one whose credentials come from
        assuming `roles` in order (each hop with the previous one's credentials), refreshed before
        they expire. `external_id` is passed to the last role of the chain."""
        credentials = self.account_credentials(roles, external_id, region=region)
        return self.session_with(credentials, region=region)

    def session_with(
        self, credentials: Credentials | None, *, region: str | None = None
    ) -> botocore.session.Session:
        """A session signing with `credentials` (None: the ambient session)."""
        if credentials is None:
            return self.ambient
        return self._session(region=region or self.default_region, credentials=credentials)

    def account_credentials(
        self,
        roles: list[str],
        external_id: str | None = None,
        *,
        region: str | None = None,
        policy: str | None = None,
        profile: str | None = None,
        where: str = "profile",
    ) -> Credentials | None:
        """A member account's credentials, as `account_session` gets them, without a session
        (None: the ambient credentials, when there is no role to assume and no `profile`).
        With `profile`, the chain starts from that profile's credentials instead of the
        ambient ones (or, with no role, they are the account's). `policy` is a session policy
        (JSON) passed with the last role: the session may do only what it allows."""
        base = self.profile_session(profile, where) if profile else None
        if not roles:
            if base is None:
                return None
            try:
                found = base.get_credentials()
            except BotoCoreError as exc:
                raise AWSError(f"{where}: the AWS profile {profile!r}: {exc}") from None
            if found is None:
                raise AWSError(f"{where}: the AWS profile {profile!r} gives no credentials")
            return found
        fetch = self._chain_fetcher(
            roles, external_id, region or self.default_region, policy=policy, base=base
        )
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
        self,
        roles: list[str],
        external_id: str | None,
        region: str | None,
        *,
        policy: str | None = None,
        base: botocore.session.Session | None = None,
    ) -> Callable[[], dict[str, str]]:
        """Assumes the chain, its first hop with `base`'s credentials (None: the ambient ones)."""
        first: list[STSClient] = []  # `base`'s STS client, built at the first fetch

        def first_sts() -> STSClient:
            if base is None:
                return self.sts(region=region)
            if not first:
                try:  # the profile's credentials are loaded here (SSO token, process, keys)
                    first.append(self._new_sts(base, region))
                except BotoCoreError as exc:
                    raise AWSError(f"cannot assume role {roles[0]}: {exc}") from None
            return first[0]

        def fetch() -> dict[str, str]:
            creds: dict[str, Any] | None = None
            for i, arn in enumerate(roles):
                if creds is None:
                    sts = first_sts()
                else:
                    hop = Credentials(
                        creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
                    )
                    sts = self._new_sts(self._session(region=region, credentials=hop), region)
                kwargs: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": SESSION_NAME}
                if external_id and i == len(roles) - 1:
                    kwargs["ExternalId"] = external_id
                if policy and i == len(roles) - 1:
                    kwargs["Policy"] = policy
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

    def account_id(self, session: botocore.session.Session, roles: list[str]) -> str:
        """The member account's id: from the last role ARN, else from GetCallerIdentity."""
        if roles:
            return roles[-1].split(":")[4]
        try:
            return str(self.sts(session).get_caller_identity()["Account"])
        except (ClientError, BotoCoreError) as exc:
            raise AWSError(f"cannot identify the ambient AWS account: {exc}") from None

    def account_clients(
        self, session: botocore.session.Session, account_id: str, region: str
    ) -> AccountClients:
        """The clients of a lane, signing with `session`'s credentials."""
        return self.lane_clients(session.get_credentials(), account_id, region)

    def lane_clients(
        self, credentials: Credentials | None, account_id: str, region: str
    ) -> AccountClients:
        """The clients of a lane, signing with `credentials` (None: the ambient ones): its view
        of the region's shared logs client (see `share_between_lanes`)."""
        lane = LaneSigning(credentials or self.ambient.get_credentials(), self._max_attempts)
        logs = cast("CloudWatchLogsClient", LaneClient(self._shared_logs(region), lane))
        return AccountClients(
            account_id=account_id, region=region, logs=logs, logs_create=logs, retries=lane.retries
        )

    def _shared_logs(self, region: str) -> Any:
        with self._lock:
            client = self._logs.get(region)
            if client is None:
                session = self._session(region=region, credentials=OutsideLane())
                # one attempt: the lanes' own handlers retry (see `share_between_lanes`)
                client = session.create_client("logs", region_name=region, config=self._config(1))
                share_between_lanes(client)
                self._logs[region] = client
            return client

    def cloudwatch(self, session: botocore.session.Session, region: str) -> CloudWatchClient:
        """CloudWatch (metrics) of a member account, for `log-exporter stats`."""
        return cast(
            "CloudWatchClient",
            session.create_client("cloudwatch", region_name=region, config=self._config()),
        )

    def glue(self, region: str) -> Any:
        """The Glue catalog, with the ambient credentials, for `log-exporter athena --apply`."""
        return self.ambient.create_client("glue", region_name=region, config=self._config())

    def organizations(self, role: str | None = None) -> Any:
        """AWS Organizations (served from one region of the default region's partition), with
        the ambient credentials or those of `role`. Throttling is retried by the caller
        (`organization.py`)."""
        region = organizations_region(self.default_region)
        session = self.session_with(
            self.account_credentials([role], region=region) if role else None, region=region
        )
        return session.create_client("organizations", region_name=region, config=self._config(1))

    def ec2(self, credentials: Credentials | None, region: str | None = None) -> Any:
        """EC2 of a member account (for DescribeRegions: `regions: all`)."""
        session = self.session_with(credentials, region=region)
        return session.create_client(
            "ec2",
            region_name=region or self.default_region or ORGANIZATIONS_REGION,
            config=self._config(),
        )

    def sqs(self) -> SQSClient:
        """The Lambda deployment's lane queue, with the ambient credentials."""
        return cast(
            "SQSClient",
            self.ambient.create_client(
                "sqs", region_name=self.default_region, config=self._config()
            ),
        )
