"""Seeding moto's backends directly (old events, back-dated groups, buckets) and reading back the
exported archive as events."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.logs.models import LogEvent, logs_backends
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from .tasks import PROBE_KEY

if TYPE_CHECKING:
    from moto.logs.models import LogGroup
    from moto.s3.models import FakeBucket

DEFAULT_ACCOUNT = DEFAULT_ACCOUNT_ID
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ACCOUNT = re.compile(r"\d{12}")


def _naive_utc(ms: int) -> datetime:
    """moto keeps naive UTC datetimes."""
    return (_EPOCH + timedelta(milliseconds=ms)).replace(tzinfo=None)


def create_bucket(name: str, region: str, account_id: str = DEFAULT_ACCOUNT) -> FakeBucket:
    """A bucket owned by `account_id` in `region` (returned as is if that account has it)."""
    backend = s3_backends[account_id][get_partition(region)]
    if name in backend.buckets:
        return backend.buckets[name]
    return backend.create_bucket(name, region)


def create_group(
    account_id: str,
    region: str,
    name: str,
    created_at_ms: int | None = None,
    *,
    retention_days: int | None = None,
) -> LogGroup:
    """A log group (kept if it exists), its creationTime back-dated to `created_at_ms`."""
    backend = logs_backends[account_id][region]
    group = backend.groups.get(name)
    if group is None:
        group = backend.create_log_group(name, {})
    if created_at_ms is not None:
        group.creation_time = _naive_utc(created_at_ms)
    if retention_days is not None:
        group.retention_in_days = retention_days
    return group


def put_events(
    account_id: str,
    region: str,
    group: str,
    stream: str,
    events: Iterable[tuple[int, str]],
    *,
    ingestion_ms: int | None = None,
) -> int:
    """Append (timestamp_ms, message) events, any age, bypassing PutLogEvents' 14-day limit.

    Creates the group (created at the oldest event) and the stream if missing. Each event is
    ingested at its own timestamp unless `ingestion_ms` is given. Returns the number added.
    """
    items = sorted(events)
    if not items:
        return 0
    backend = logs_backends[account_id][region]
    log_group = backend.groups.get(group) or create_group(account_id, region, group, items[0][0])
    if stream not in log_group.streams:
        log_group.create_log_stream(stream)
        log_group.streams[stream].creation_time = _naive_utc(items[0][0])
    log_stream = log_group.streams[stream]
    added = [
        LogEvent(ts if ingestion_ms is None else ingestion_ms, {"timestamp": ts, "message": msg})
        for ts, msg in items
    ]
    log_stream.events.extend(added)
    log_stream.stored_bytes += sum(len(m.encode()) for _, m in items)
    log_stream.upload_sequence_token += 1
    newest = max(e.ingestion_time for e in added)
    last = log_stream.last_ingestion_time
    if last is None or _naive_utc(newest) > last:
        log_stream.last_ingestion_time = _naive_utc(newest)
    log_stream._update()
    return len(added)


@dataclass(frozen=True)
class ArchivedEvent:
    """One event line of an exported object, with what its key says.

    Keys are `[root/]<account_id>/<group key>/<YYYY>/<MM>/<DD>[/<HH>]/<taskId>/<stream>/NNNNNN.gz`;
    `group` is the key form (the name without its leading '/'). Fields the key does not carry
    (a plain `exportedlogs/<taskId>/...` export) are "" / None.
    """

    key: str
    account_id: str
    group: str
    day: str  # "YYYY-MM-DD"
    task_id: str
    stream: str
    timestamp_ms: int
    message: str
    hour: int | None = None


def parse_line(line: str) -> tuple[int, str]:
    """`2026-11-01T23:59:59.999Z hello` -> (ms, "hello")."""
    stamp, _, message = line.partition(" ")
    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (t - _EPOCH) // timedelta(milliseconds=1), message


def parse_key(key: str) -> tuple[str, str, str, int | None, str, str]:
    """(account_id, group, day, hour, task_id, stream) from an exported object's key."""
    parts = key.split("/")
    task_at = next((i for i, p in enumerate(parts[:-1]) if _UUID.fullmatch(p)), None)
    if task_at is None:
        return "", "", "", None, "", ""
    task_id, stream = parts[task_at], "/".join(parts[task_at + 1 : -1])
    head = parts[:task_at]
    acct_at = next((i for i, p in enumerate(head) if _ACCOUNT.fullmatch(p)), None)
    if acct_at is None:
        return "", "", "", None, task_id, stream
    rest = head[acct_at + 1 :]

    def digits(seg: str, n: int) -> bool:
        return len(seg) == n and seg.isdigit()

    hour: int | None = None
    if len(rest) >= 5 and digits(rest[-4], 4) and all(digits(s, 2) for s in rest[-3:]):
        hour, rest = int(rest[-1]), rest[:-1]
    if len(rest) >= 4 and digits(rest[-3], 4) and digits(rest[-2], 2) and digits(rest[-1], 2):
        day = "-".join(rest[-3:])
        group = "/".join(rest[:-3])
    else:
        day, group, hour = "", "/".join(rest), None
    return head[acct_at], group, day, hour, task_id, stream


def read_archive(bucket: str, prefix: str = "") -> list[ArchivedEvent]:
    """Every event of every exported `.gz` object under `prefix` (probe objects skipped)."""
    partition, owner = s3_backends.bucket_accounts[bucket]
    fake = s3_backends[owner][partition].get_bucket(bucket)
    out: list[ArchivedEvent] = []
    for key in sorted(k for k in list(fake.keys.keys()) if k.startswith(prefix)):
        if not key.endswith(".gz") or key.rsplit("/", 1)[-1] == PROBE_KEY:
            continue
        obj = fake.keys.get(key)
        if obj is None or not hasattr(obj, "value"):
            continue  # delete marker
        account_id, group, day, hour, task_id, stream = parse_key(key)
        text = gzip.decompress(obj.value).decode("utf-8")
        for line in text.splitlines():
            if line:
                ts, message = parse_line(line)
                out.append(
                    ArchivedEvent(key, account_id, group, day, task_id, stream, ts, message, hour)
                )
    return out


@dataclass(frozen=True)
class SeedAccount:
    """An account to create in the seeded organization: under the OU at `ou` (a path of OU
    names such as `prod/eu`; None: the root), with tags and a status."""

    name: str
    ou: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    status: str = "ACTIVE"  # its State (SUSPENDED, CLOSED...: Organizations still lists it)


@dataclass(frozen=True)
class SeededOrganization:
    """What `create_organization` made: ids of the root, of each OU (by path) and account."""

    management: str
    root: str
    ous: dict[str, str]
    accounts: dict[str, str]  # name -> id (moto makes the ids up)


def create_organization(
    accounts: Iterable[SeedAccount], management: str = DEFAULT_ACCOUNT
) -> SeededOrganization:
    """An AWS Organization managed by `management` (made if it has none), with its nested OUs
    and accounts, straight in moto's backend. Accounts keep their names; ids are moto's."""
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[management]["aws"]
    if backend.org is None:
        backend.create_organization(region="us-east-1", FeatureSet="ALL")
    root = backend.org.root_id
    ous: dict[str, str] = {}

    def ou_id(path: str | None) -> str:
        if not path:
            return str(root)
        if path not in ous:
            parent, _, name = path.rpartition("/")
            made = backend.create_organizational_unit(Name=name, ParentId=ou_id(parent))
            ous[path] = made["OrganizationalUnit"]["Id"]
        return ous[path]

    ids: dict[str, str] = {}
    for spec in accounts:
        status = backend.create_account(
            AccountName=spec.name,
            Email=f"{spec.name}@example.com",
            Tags=[{"Key": k, "Value": v} for k, v in spec.tags],
        )
        account_id = str(status["CreateAccountStatus"]["AccountId"])
        parent = ou_id(spec.ou)
        if parent != root:
            backend.move_account(
                AccountId=account_id, SourceParentId=root, DestinationParentId=parent
            )
        made = backend.get_account_by_id(account_id)
        made.state = made.status = spec.status  # AWS sends `State` only (see patches.py)
        ids[spec.name] = account_id
    return SeededOrganization(management, str(root), dict(ous), ids)
