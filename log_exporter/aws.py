"""The one place that builds AWS sessions, role chains and clients; the core only receives them.

Every client uses botocore's `standard` retry mode, except the one that creates export tasks:
botocore counts `LimitExceededException` as throttling and would retry it for up to 20 s, while
the lane knows the slot stays busy until a task ends, so that client does not retry and the lane
handles both cases itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import Loader

from .errors import AccessDeniedError, AWSError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

SESSION_NAME = "log-exporter"
CHAIN_DURATION_S = 3600  # a role reached through a chain lasts at most one hour


@dataclass(frozen=True)
class AccountClients:
    """The clients one lane (account and region) uses to read its log groups and export them."""

    account_id: str
    region: str
    logs: CloudWatchLogsClient
    logs_create: CloudWatchLogsClient  # no client-side retries: the lane handles them


class SessionFactory:
    """Builds sessions and clients; one shared model loader keeps memory flat across accounts."""

    def __init__(
        self,
        *,
        region: str | None = None,
        max_attempts: int = 10,
        max_pool_connections: int = 10,
    ) -> None:
        self._loader = Loader()
        self._region = region
        self._max_attempts = max_attempts
        self._pool = max_pool_connections
        self._lock = threading.Lock()
        self._ambient: boto3.Session | None = None

    def _session(self, **kwargs: Any) -> boto3.Session:
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        return boto3.Session(botocore_session=core, **kwargs)

    def _config(self, attempts: int | None = None) -> BotoConfig:
        return BotoConfig(
            retries={"mode": "standard", "max_attempts": attempts or self._max_attempts},
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
        return self.ambient.client(
            "s3", region_name=region or self.default_region, config=self._config()
        )

    def sts(self, session: boto3.Session | None = None, region: str | None = None) -> STSClient:
        return (session or self.ambient).client(
            "sts", region_name=region or self.default_region, config=self._config()
        )

    def account_session(
        self, roles: list[str], external_id: str | None = None, *, region: str | None = None
    ) -> boto3.Session:
        """A session in a member account: the ambient one, or one whose credentials come from
        assuming `roles` in order (each hop with the previous one's credentials), refreshed before
        they expire. `external_id` is passed to the last role of the chain."""
        if not roles:
            return self.ambient
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
        session = self._session(region_name=region or self.default_region)
        session._session._credentials = credentials  # type: ignore[attr-defined]
        return session

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
        return AccountClients(
            account_id=account_id,
            region=region,
            logs=session.client("logs", region_name=region, config=self._config()),
            logs_create=session.client("logs", region_name=region, config=self._config(1)),
        )
