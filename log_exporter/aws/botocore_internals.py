"""Everything log-exporter does with botocore beyond its public API, in one module: the lean
model loader, the shared logs client whose calls sign with their lane's credentials, each lane's
own standard-mode retry handler and quota, the retry counter and the other event hooks, and the
private attributes of credentials and sessions that are set directly.

botocore is pinned to one minor version (pyproject.toml) because of this module;
tests/unit/test_botocore_internals.py names what a newer botocore changed when one breaks it.
Named for what it is rather than for the logs client alone: the loader serves every session,
and the hooks are put on the S3 and STS clients too.

A lane costs no client of its own: the lanes of a region share one logs client, and each call
signs with its lane's credentials (see `share_between_lanes`), so 1,000 lanes start in moments
and fit in a few hundred MB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import botocore.session
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import DataNotFoundError, NoCredentialsError
from botocore.loaders import Loader
from botocore.retries import quota, standard
from botocore.utils import determine_content_length

# --- the model loader ----------------------------------------------------------------------------


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


def new_session(
    loader: Loader,
    *,
    region: str | None = None,
    credentials: Credentials | None = None,
    profile: str | None = None,
) -> botocore.session.Session:
    """A botocore session using `loader` (shared, so models are loaded once), in `region`,
    signing with `credentials` (set on the session directly: botocore has no public way to give
    a session credentials objects that refresh themselves), of `profile` of the config files."""
    session = botocore.session.Session(profile=profile)
    session.register_component("data_loader", loader)
    if region:
        session.set_config_variable("region", region)
    if credentials is not None:
        session._credentials = credentials  # type: ignore[attr-defined]
    return session


def set_refresh_margins(credentials: RefreshableCredentials, lifetime_s: float) -> None:
    """botocore refreshes 15 (advisory) and 10 (mandatory) minutes before expiry; scale that
    down for credentials that live less than an hour, so they are not refreshed every call."""
    credentials._advisory_refresh_timeout = int(min(15 * 60, max(lifetime_s / 4, 1)))  # type: ignore[attr-defined]
    credentials._mandatory_refresh_timeout = int(min(10 * 60, max(lifetime_s / 8, 1)))  # type: ignore[attr-defined]


# --- event hooks ---------------------------------------------------------------------------------


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


SMALL_BODY = 64 * 1024


def no_continue_for_small_bodies(params: dict[str, Any], **kwargs: Any) -> None:
    """botocore asks S3 for a `100 Continue` before it sends any PUT body: a round trip more on
    every lane state write, which only pays off for big bodies."""
    body = params.get("body")
    size = determine_content_length(body) if body is not None else None
    if size is not None and size <= SMALL_BODY:
        params.get("headers", {}).pop("Expect", None)


def send_small_bodies_at_once(s3: Any) -> None:
    """Make `s3` (an S3 client) send bodies of SMALL_BODY or less without `100 Continue`."""
    s3.meta.events.register_last("before-call.s3", no_continue_for_small_bodies)


SENT_KEY = "log_exporter_sent"  # where `time_answers` keeps when a request was sent


def time_answers(
    client: Any, observe: Callable[[Mapping[str, Any] | None, float, float], None]
) -> None:
    """Call `observe(metadata, sent, received)` for every answer `client` (a botocore client)
    gets, errors included: its ResponseMetadata, and the local times (time.time()) of sending
    the request and receiving the answer."""

    def sent(context: dict[str, Any], **_: Any) -> None:
        context[SENT_KEY] = time.time()

    def received(parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        started = context.get(SENT_KEY)
        if isinstance(started, float):
            observe(parsed.get("ResponseMetadata"), started, time.time())

    client.meta.events.register("before-call", sent)
    client.meta.events.register("after-call", received)


# --- the shared logs client ----------------------------------------------------------------------

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


NOT_RETRIED = "CreateExportTask"  # its LimitExceededException is no throttling (see below)


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
        if lane is None or operation is None or operation.name == NOT_RETRIED:
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
