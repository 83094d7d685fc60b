"""The one place that builds AWS sessions, role chains and clients; the core only receives them.

Every client retries as `retry.py` says (botocore's standard mode; CreateExportTask and the
Organizations calls not retried by botocore), and counts the retries botocore made for it, so
a run can say how many retries throttling cost. What this needs of botocore beyond its public
API (the model loader, the logs client the lanes of a region share, each lane's retry handler,
the event hooks) is in `botocore_internals`; AWS's errors are mapped by `errors`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ProfileNotFound

from log_exporter.aws.botocore_internals import (
    LaneClient,
    LaneSigning,
    OutsideLane,
    RetryCounter,
    ServiceLoader,
    new_session,
    send_small_bodies_at_once,
    set_refresh_margins,
    share_between_lanes,
)
from log_exporter.aws.errors import (
    AWS_ERRORS,
    assume_role_error,
    profile_error,
    unknown_profile_error,
)
from log_exporter.aws.retry import botocore_config
from log_exporter.aws.retry import resolve_max_attempts as resolve_max_attempts
from log_exporter.errors import AWSError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

SESSION_NAME = "log-exporter"
CHAIN_DURATION_S = 3600  # a role reached through a chain lasts at most one hour
ORGANIZATIONS_REGION = "us-east-1"  # Organizations' one endpoint (aws partition)
# ... and in the other partitions, by the partition of the default region
ORGANIZATIONS_REGIONS = {"aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}


def organizations_region(default_region: str | None) -> str:
    """The region serving Organizations in the partition of `default_region`."""
    from log_exporter.core.policy import partition

    return ORGANIZATIONS_REGIONS.get(partition(default_region or ""), ORGANIZATIONS_REGION)


@dataclass(frozen=True)
class AccountClients:
    """The clients one lane (account and region) uses to read its log groups and export them."""

    account_id: str
    region: str
    logs: CloudWatchLogsClient
    # CreateExportTask's client: `logs` itself today (botocore_internals keeps CreateExportTask
    # out of botocore's retries: a busy slot and a lost answer are the lane's to handle)
    logs_create: CloudWatchLogsClient
    retries: RetryCounter = field(default_factory=RetryCounter)  # botocore's, on these clients


def _known_profile(session: botocore.session.Session, where: str) -> botocore.session.Session:
    """`session`, once its profile is known to be in the AWS config files (ConfigError if not)."""
    try:
        session.get_scoped_config()
    except ProfileNotFound as exc:
        raise unknown_profile_error(where, exc) from None
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
        return new_session(self._loader, region=region, credentials=credentials, profile=profile)

    def _config(self, attempts: int | None = None) -> BotoConfig:
        return botocore_config(
            attempts or self._max_attempts,
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
        send_small_bodies_at_once(client)
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
                raise profile_error(where, profile, exc) from None
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
        lifetime = (
            datetime.fromisoformat(first["expiry_time"]) - datetime.now(UTC)
        ).total_seconds()
        set_refresh_margins(credentials, lifetime)
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
                    raise assume_role_error(roles[0], exc) from None
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
                except AWS_ERRORS as exc:
                    raise assume_role_error(arn, exc) from None
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
        except AWS_ERRORS as exc:
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
