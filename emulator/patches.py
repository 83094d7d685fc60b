"""Idempotent, reversible monkey-patches that route moto's export-task, STS and describe code
through the active emulator."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import moto.backends
import moto.core.responses
import moto.iam.models
from moto.cloudwatch.models import CloudWatchBackend
from moto.core.exceptions import AccessDeniedError
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
from moto.logs.models import LogGroup, LogsBackend, LogStream
from moto.logs.responses import LogsResponse
from moto.organizations.models import FakeAccount
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
from moto.sts.models import AssumedRole, STSBackend

from . import metrics

if TYPE_CHECKING:
    from .core import Emulator

_stack: list[Emulator] = []  # installed emulators; the last one is active
_originals: dict[tuple[type, str], Any] = {}


def active() -> Emulator:
    if not _stack:
        raise RuntimeError("no emulator is installed")
    return _stack[-1]


def installed() -> Emulator | None:
    return _stack[-1] if _stack else None


def install(emulator: Emulator) -> None:
    """Make `emulator` the one moto consults; moto is patched once, however often this runs."""
    if _stack and _stack[-1] is emulator:
        return
    if emulator in _stack:
        _stack.remove(emulator)
    _stack.append(emulator)
    if _originals:
        return
    for cls, name, fn in _PATCHES:
        _originals[(cls, name)] = cls.__dict__.get(name)
        setattr(cls, name, fn)


def uninstall(emulator: Emulator) -> None:
    """Stop consulting `emulator`; the one installed before it takes over again, and when none
    is left moto is put back exactly as it was."""
    if emulator in _stack:
        _stack.remove(emulator)
    if _stack or not _originals:
        return
    for (cls, name), original in _originals.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    _originals.clear()


# -- LogsBackend -----------------------------------------------------------------------------


def _create_export_task(
    self: LogsBackend,
    taskName: str | None,
    logGroupName: str,
    destination: str,
    destinationPrefix: str | None,
    fromTime: int | None,
    to: int | None,
    logStreamNamePrefix: str | None = None,
) -> str:
    return active().engine.create(
        self,
        group=logGroupName,
        from_ms=fromTime,
        to_ms=to,
        destination=destination,
        prefix=destinationPrefix,
        task_name=taskName,
        stream_prefix=logStreamNamePrefix,
    )


def _describe_export_tasks(self: LogsBackend, task_id: str | None = None) -> list[Any]:
    return active().engine.query(self, task_id)


def _cancel_export_task(self: LogsBackend, task_id: str) -> None:
    active().engine.cancel(self, task_id)


# -- LogsResponse ----------------------------------------------------------------------------


def _r_create_export_task(self: LogsResponse) -> str:
    task_id = self.logs_backend.create_export_task(  # type: ignore[call-arg]
        taskName=self._get_param("taskName"),
        logGroupName=self._get_param("logGroupName"),
        destination=self._get_param("destination"),
        destinationPrefix=self._get_param("destinationPrefix", "exportedlogs"),
        fromTime=self._get_int_param("from"),
        to=self._get_int_param("to"),
        logStreamNamePrefix=self._get_param("logStreamNamePrefix"),
    )
    return json.dumps({"taskId": task_id})


def _r_describe_export_tasks(self: LogsResponse) -> str:
    tasks, token = active().engine.describe(
        self.logs_backend,
        task_id=self._get_param("taskId"),
        status_code=self._get_param("statusCode"),
        limit=self._get_param("limit"),
        next_token=self._get_param("nextToken"),
    )
    if not active().execution_info:  # optional in AWS's documentation: answers may lack it
        tasks = [{k: v for k, v in t.items() if k != "executionInfo"} for t in tasks]
    out: dict[str, Any] = {"exportTasks": tasks}
    if token:
        out["nextToken"] = token
    return json.dumps(out)


# -- models: cheap describe, AWS fields ----------------------------------------------------------


def _stream_update(self: LogStream) -> None:
    """Recompute first/last event timestamps only over events added since the last call
    (moto rescans every event of every stream on each DescribeLogStreams)."""
    events = self.events
    n, seen = len(events), getattr(self, "_emulator_seen", 0)
    if n == seen:
        return
    fresh = events if n < seen or self.first_event_timestamp is None else events[seen:]
    stamps = [e.timestamp for e in fresh]
    if fresh is not events:
        stamps += [self.first_event_timestamp, self.last_event_timestamp]
    self.first_event_timestamp = min(stamps) if stamps else None
    self.last_event_timestamp = max(stamps) if stamps else None
    self._emulator_seen = n  # type: ignore[attr-defined]


EMPTY_TOKEN = "empty:"  # a token of `Emulator.empty_pages`' empty pages
FILTER_PAGE_BYTES = 1_048_576  # FilterLogEvents stops a page at 1 MB, or 10,000 events
EVENT_OVERHEAD = 26  # bytes AWS counts per event on top of its message


def _filter_log_events(
    self: LogGroup,
    log_group_name: str,
    log_stream_names: list[str],
    start_time: int,
    end_time: int,
    limit: int | None,
    next_token: str | None,
    filter_pattern: str,
    interleaved: bool,
) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
    """moto's pages stop at `limit` (10,000) events; AWS's also at 1 MB: cut there, and point
    the token at the page's last event (moto's token form), so the next page goes on after it.
    With `Emulator.empty_pages(n)`, `n` empty pages (no event, a token `empty:<left>:<then>`)
    come before each page of events, and after the last one."""
    emulator = installed()
    empties = emulator.faults.empty_pages if emulator is not None else 0
    if empties and not next_token:  # the first page is an empty one
        return [], f"{EMPTY_TOKEN}{empties - 1}:S", []
    if next_token and next_token.startswith(EMPTY_TOKEN):
        count, _, then = next_token[len(EMPTY_TOKEN) :].partition(":")
        if int(count) > 0:
            return [], f"{EMPTY_TOKEN}{int(count) - 1}:{then}", []
        if then == "E":  # the read's last (empty) page
            return [], None, []
        next_token = then[1:] or None  # S: the first page of events; T<token>: the next one
    events, token, searched = _originals[(LogGroup, "filter_log_events")](
        self,
        log_group_name,
        log_stream_names,
        start_time,
        end_time,
        limit,
        next_token,
        filter_pattern,
        interleaved,
    )
    size = 0
    for n, e in enumerate(events):
        size += len(str(e.get("message", "")).encode()) + EVENT_OVERHEAD
        if size > FILTER_PAGE_BYTES and n > 0:
            last = events[n - 1]
            token = f"{log_group_name}@{last['logStreamName']}@{last['eventId']}"
            return events[:n], _empties(token, empties), searched
    return events, _empties(token, empties), searched


def _empties(token: str | None, empties: int) -> str | None:
    """The token after a page of events: with empty pages on, `empties` empty pages come next,
    before the next page of events or, after the last one, as the read's end."""
    if not empties:
        return token
    if token is None:
        return f"{EMPTY_TOKEN}{empties - 1}:E"
    return f"{EMPTY_TOKEN}{empties}:T{token}"


def _group_to_describe_dict(self: LogGroup) -> dict[str, Any]:
    out: dict[str, Any] = _originals[(LogGroup, "to_describe_dict")](self)
    out.setdefault("logGroupClass", "STANDARD")
    return out


# -- STS -----------------------------------------------------------------------------------------


def _assume_role(
    self: STSBackend,
    region_name: str,
    role_session_name: str,
    role_arn: str,
    policy: str,
    duration: int,
    external_id: str,
) -> AssumedRole:
    faults = active().faults
    if role_arn in faults.denied_roles:
        raise AccessDeniedError(
            f"arn:aws:iam::{self.account_id}:user/moto", f"sts:AssumeRole on resource: {role_arn}"
        )
    lifetime = faults.credential_lifetime
    if lifetime is not None:
        duration = lifetime
    role: AssumedRole = _originals[(STSBackend, "assume_role")](
        self, region_name, role_session_name, role_arn, policy, duration, external_id
    )
    faults.note_credentials(role.access_key_id, time.time() + duration)
    return role


# -- S3 ------------------------------------------------------------------------------------------

_CONDITIONAL_PUT = threading.Lock()  # guards _OBJECT_LOCKS
_OBJECT_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def _s3_put_object(self: S3Response) -> Any:
    """S3 checks If-Match / If-None-Match and writes in one step; moto checks, then writes, so
    two racing conditional PUTs could both succeed. Serialise the conditional ones, per object
    (one lock for all would make every lane's state write wait for every other's)."""
    original = _originals[(S3Response, "put_object")]
    if "If-Match" in self.headers or "If-None-Match" in self.headers:
        key = (str(getattr(self, "bucket_name", "")), str(self.parse_key_name()))
        with _CONDITIONAL_PUT:
            lock = _OBJECT_LOCKS.setdefault(key, threading.Lock())
        with lock:
            return original(self)
    return original(self)


def _bucket_permission(self: FakeBucket, action: str, resource: str) -> Any:
    """moto applies every statement of a bucket policy to every S3 request, whatever its
    Principal, and denies when a statement's conditions are not met: a statement for the logs
    service (`logs.<region>.amazonaws.com`) would refuse the bucket owner's own writes. In AWS a
    statement applies only to its principals; the logs service's requests are judged by
    emulator/policy.py, so such statements are left out here."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    kept = [st for st in statements if not _service_only(st.get("Principal"))]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(
        action, resource
    )


def _service_only(principal: Any) -> bool:
    return isinstance(principal, dict) and set(principal) == {"Service"}


# -- speed: moto's server recomputes on every request what never changes ----------------------------

_MOTO_MODULES: frozenset[str] | None = None
_METHOD_NAMES: dict[type, list[str]] = {}


def _list_of_moto_modules() -> frozenset[str]:
    """The server lists moto's package folders (a stat per service) on every request, under its
    global lock; the folders do not change while it runs."""
    global _MOTO_MODULES
    if _MOTO_MODULES is None:
        _MOTO_MODULES = frozenset(_originals[(moto.backends, "list_of_moto_modules")]())
    return _MOTO_MODULES


def _method_names_from_class(clazz: type) -> list[str]:
    """moto runs inspect.getmembers over the response class on every request."""
    names = _METHOD_NAMES.get(clazz)
    if names is None:
        original = _originals[(moto.core.responses, "method_names_from_class")]
        names = _METHOD_NAMES[clazz] = original(clazz)
    return names


_ACCOUNT_OF_KEY: dict[str, str] = {}


def _get_account_id_from(access_key: str) -> str:
    """moto finds the account of a request's access key by scanning every account's IAM keys, on
    every request: with a thousand accounts that is most of the server's time. Remember where
    each key was found (and check it is still there); a key found nowhere (the ambient
    `testing` one) belongs to the default account, as moto says."""
    account_id = _ACCOUNT_OF_KEY.get(access_key)
    default = moto.iam.models.DEFAULT_ACCOUNT_ID
    if account_id == default:
        return account_id
    if account_id is not None:
        backends = moto.iam.models.iam_backends[account_id]
        if any(access_key in backends[p].access_keys for p in moto.iam.models.PARTITION_NAMES):
            return account_id
    account_id = str(_originals[(moto.iam.models, "get_account_id_from")](access_key))
    _ACCOUNT_OF_KEY[access_key] = account_id
    return account_id


def _describe_regions(self: Any, region_names: list[str] | None = None) -> list[Any]:
    """An account's enabled regions as the emulator was told (`Emulator.enable_regions`); moto
    lists the same regions for every account."""
    regions = _originals[(RegionsAndZonesBackend, "describe_regions")](self, region_names)
    enabled = active().enabled_regions.get(self.account_id)
    return regions if enabled is None else [r for r in regions if r.name in enabled]


def _org_account_describe(self: FakeAccount) -> dict[str, Any]:
    """An account as Organizations answers since 2026-09-09: `State`, and no `Status` (retired;
    moto still sends both)."""
    described = dict(_originals[(FakeAccount, "describe")](self))
    described.pop("Status", None)
    return described


_PATCHES: list[tuple[Any, str, Any]] = [  # (class or module, attribute, replacement)
    (LogsBackend, "create_export_task", _create_export_task),
    (LogsBackend, "describe_export_tasks", _describe_export_tasks),
    (LogsBackend, "cancel_export_task", _cancel_export_task),
    (LogsResponse, "create_export_task", _r_create_export_task),
    (LogsResponse, "describe_export_tasks", _r_describe_export_tasks),
    (LogStream, "_update", _stream_update),
    (LogGroup, "to_describe_dict", _group_to_describe_dict),
    (LogGroup, "filter_log_events", _filter_log_events),
    (STSBackend, "assume_role", _assume_role),
    (S3Response, "put_object", _s3_put_object),
    (FakeBucket, "get_permission", _bucket_permission),
    (moto.backends, "list_of_moto_modules", _list_of_moto_modules),
    (moto.core.responses, "method_names_from_class", _method_names_from_class),
    (moto.iam.models, "get_account_id_from", _get_account_id_from),
    (CloudWatchBackend, "get_metric_data", metrics.get_metric_data),  # AWS/Logs metrics
    (RegionsAndZonesBackend, "describe_regions", _describe_regions),
    (FakeAccount, "describe", _org_account_describe),
]
