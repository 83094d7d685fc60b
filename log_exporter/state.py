"""A lane's state in the archive bucket: one small JSON object per account and region.

It records what is archived (covered intervals per group), what failed, the task a runner is
about to create or is waiting for (the intent, written before CreateExportTask), and the lease of
the runner working the lane. Reading it is one GET; every write is a conditional PUT on the ETag
read, so two runners can never both believe they own a lane or overwrite each other's progress.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .errors import BucketError, StateConflictError
from .windows import Intervals, Period, Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STATE_VERSION = 1
STATE_FOLDER = ".log-exporter"
CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


@dataclass
class Intent:
    """A task this lane creates or waits for; `task_id` is None until it is known."""

    group: str
    window: Window
    name: str
    task_id: str | None = None
    since_ms: int = 0


@dataclass
class Failure:
    group: str
    window: Window
    error: str
    attempts: int
    at_ms: int


@dataclass
class LaneState:
    account_id: str
    region: str
    period: Period | None = None
    covered: dict[str, Intervals] = field(default_factory=dict)
    empty: dict[str, Intervals] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    lease_owner: str | None = None
    lease_expires_ms: int = 0
    # smoothed task duration of each group, in seconds: the next run's first polls use it
    durations: dict[str, float] = field(default_factory=dict)
    etag: str | None = None  # of the object this was read from; None when there was none

    # --- queries -------------------------------------------------------------------------
    def coverage(self, group: str) -> Intervals:
        return self.covered.setdefault(group, Intervals())

    def leased_by_other(self, owner: str, now_ms: int) -> bool:
        return self.lease_owner not in (None, owner) and self.lease_expires_ms > now_ms

    # --- changes -------------------------------------------------------------------------
    def mark_done(self, group: str, window: Window, *, empty: bool = False) -> None:
        """`window` of `group` is archived (or known to hold no event)."""
        self.coverage(group).add(window)
        if empty:
            self.empty.setdefault(group, Intervals()).add(window)
        self.failures = [f for f in self.failures if not (f.group == group and f.window == window)]
        self.drop_intent(group, window)

    def mark_failed(self, group: str, window: Window, error: str, now_ms: int) -> Failure:
        attempts = 1 + sum(
            f.attempts for f in self.failures if f.group == group and f.window == window
        )
        self.failures = [f for f in self.failures if not (f.group == group and f.window == window)]
        failure = Failure(group, window, error, attempts, now_ms)
        self.failures.append(failure)
        self.drop_intent(group, window)
        return failure

    def add_intent(self, intent: Intent) -> None:
        self.drop_intent(intent.group, intent.window)
        self.intents.append(intent)

    def drop_intent(self, group: str, window: Window) -> None:
        self.intents = [i for i in self.intents if not (i.group == group and i.window == window)]

    # --- serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "account_id": self.account_id,
            "region": self.region,
            "period": self.period,
            "lease": {"owner": self.lease_owner, "expires_ms": self.lease_expires_ms},
            "covered": {g: iv.spans for g, iv in sorted(self.covered.items()) if iv},
            "empty": {g: iv.spans for g, iv in sorted(self.empty.items()) if iv},
            "failures": [
                {
                    "group": f.group,
                    "from": f.window.start,
                    "to": f.window.end,
                    "error": f.error,
                    "attempts": f.attempts,
                    "at_ms": f.at_ms,
                }
                for f in self.failures
            ],
            "durations": dict(sorted(self.durations.items())),
            "intents": [
                {
                    "group": i.group,
                    "from": i.window.start,
                    "to": i.window.end,
                    "name": i.name,
                    "task_id": i.task_id,
                    "since_ms": i.since_ms,
                }
                for i in self.intents
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], etag: str | None = None) -> LaneState:
        lease = data.get("lease") or {}
        return cls(
            account_id=str(data["account_id"]),
            region=str(data["region"]),
            period=data.get("period"),
            covered={g: Intervals(map(tuple, s)) for g, s in data.get("covered", {}).items()},
            empty={g: Intervals(map(tuple, s)) for g, s in data.get("empty", {}).items()},
            failures=[
                Failure(
                    f["group"], Window(f["from"], f["to"]), f["error"], f["attempts"], f["at_ms"]
                )
                for f in data.get("failures", [])
            ],
            intents=[
                Intent(
                    i["group"],
                    Window(i["from"], i["to"]),
                    i["name"],
                    i.get("task_id"),
                    i.get("since_ms", 0),
                )
                for i in data.get("intents", [])
            ],
            lease_owner=lease.get("owner"),
            lease_expires_ms=int(lease.get("expires_ms", 0)),
            durations={
                str(g): float(v)
                for g, v in (data.get("durations") or {}).items()
                if isinstance(v, int | float)
            },
            etag=etag,
        )


def period_switch_message(archive: str, archived: Period, configured: Period) -> str:
    """The one line that refuses to add a second key layout (day vs hour folders) to an archive."""
    return (
        f"{archive} is archived by {archived}, but destination.period is {configured!r}; "
        f"switching would mix two folder layouts in one archive: keep period {archived!r}, "
        "or give the new layout its own destination.prefix"
    )


def state_key(prefix: str, account_id: str, region: str) -> str:
    parts = [prefix, STATE_FOLDER, account_id, f"{region}.json"]
    return "/".join(p for p in parts if p)


class StateStore:
    """Reads and writes lane states in the archive bucket with the ambient credentials."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def key(self, account_id: str, region: str) -> str:
        return state_key(self.prefix, account_id, region)

    def load(self, account_id: str, region: str) -> LaneState:
        key = self.key(account_id, region)
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return LaneState(account_id=account_id, region=region)
            raise self._bucket_error("read", key, exc) from None
        data = json.loads(obj["Body"].read())
        return LaneState.from_json(data, etag=obj["ETag"])

    def save(self, state: LaneState) -> None:
        """Write `state` if nobody else wrote it since it was read; raise StateConflictError if
        somebody did."""
        key = self.key(state.account_id, state.region)
        body = json.dumps(state.to_json(), separators=(",", ":")).encode()
        try:
            if state.etag is None:
                out = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
            else:
                out = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfMatch=state.etag,
                    ContentType="application/json",
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in CONFLICT_CODES or status in ("412", "409"):
                etag = self._stored_etag(key, body)
                if etag is not None:
                    state.etag = etag
                    return
                raise StateConflictError(
                    f"the state of {state.account_id}/{state.region} was changed by another runner"
                ) from None
            raise self._bucket_error("write", key, exc) from None
        state.etag = out["ETag"]

    def _stored_etag(self, key: str, body: bytes) -> str | None:
        """The ETag of `key` if it holds exactly `body`: a write of ours that S3 stored but whose
        answer was lost, so botocore sent it again and S3 refused the repeat. The body names our
        lease and its expiry to the millisecond, so no other runner writes the same bytes."""
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        return str(obj["ETag"]) if obj["Body"].read() == body else None

    def archived_period(self, max_reads: int = 20) -> Period | None:
        """The period of the archive under the prefix, from the first lane state that has
        archived something (one LIST and usually one GET); None for a new archive."""
        folder = "/".join(p for p in (self.prefix, STATE_FOLDER) if p) + "/"
        reads = 0
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder, PaginationConfig={"PageSize": max_reads}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith(".json"):
                        continue
                    try:
                        body = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"]
                    except self._s3.exceptions.NoSuchKey:
                        continue  # deleted since the listing
                    data = json.loads(body.read())
                    period = data.get("period")
                    if period in ("day", "hour") and any(data.get("covered", {}).values()):
                        return "hour" if period == "hour" else "day"
                    reads += 1
                    if reads >= max_reads:
                        return None  # the lanes still check their own state
        except ClientError as exc:
            raise self._bucket_error("list", folder, exc) from None
        return None

    def account_folder(self, account_id: str) -> str:
        """Where the states of an account's lanes (one per region) are kept."""
        return "/".join(p for p in (self.prefix, STATE_FOLDER, account_id) if p) + "/"

    def delete(self, account_id: str, region: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self.key(account_id, region))

    def _bucket_error(self, verb: str, key: str, exc: ClientError) -> BucketError:
        err = exc.response.get("Error", {})
        return BucketError(
            f"cannot {verb} s3://{self.bucket}/{key}: {err.get('Code', '')} {err.get('Message', '')}".rstrip(),
            code=str(err.get("Code", "")),
        )
