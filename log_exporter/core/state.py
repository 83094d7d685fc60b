"""A lane's state in the archive bucket: one small JSON object per account and region.

It records what is archived (covered intervals per group), what failed, the task a runner is
about to create or is waiting for (the intent, written before CreateExportTask), and the lease of
the runner working the lane. Reading it is one GET; every write is a conditional PUT on the ETag
read, so two runners can never both believe they own a lane or overwrite each other's progress.
An object that is not a lane state, or one of a newer version, is refused (StateError), never
written over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from log_exporter.core.windows import Intervals, Period, Window
from log_exporter.errors import (
    StateTooNewError,
    StateUnreadableError,
)

if TYPE_CHECKING:
    pass

STATE_VERSION = 1
STATE_FOLDER = ".log-exporter"


@dataclass
class Intent:
    """A task this lane creates or waits for; `task_id` is None until it is known."""

    group: str
    window: Window
    name: str
    task_id: str | None = None
    since_ms: int = 0
    direct: bool = False  # a direct read (direct.py): `task_id` is its folder's id, not a task's


@dataclass
class Failure:
    group: str
    window: Window
    error: str
    attempts: int
    at_ms: int
    # the task whose partial output could not be deleted: it is deleted before the window is
    # exported again, and until then the window is not exported
    cleanup: str | None = None


@dataclass
class LaneState:
    account_id: str
    region: str
    period: Period | None = None
    covered: dict[str, Intervals] = field(default_factory=dict)
    empty: dict[str, Intervals] = field(default_factory=dict)
    # of `covered`, the windows archived by reading their events directly (direct.py)
    read: dict[str, Intervals] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    lease_owner: str | None = None
    lease_expires_ms: int = 0
    # smoothed task duration of each group, in seconds: the next run's first polls use it
    durations: dict[str, float] = field(default_factory=dict)
    # each group's creationTime (ms) when last seen: a group created again under the same name
    # is a new group, and the coverage of the one before is kept in `previous`
    created: dict[str, int] = field(default_factory=dict)
    previous: dict[str, Intervals] = field(default_factory=dict)  # "<group>@<creation ms>"
    # times whose events are in a neighbour day's folder, not their UTC day's: c7n-logexporter
    # run outside UTC filed its local days (`sync` records them; `cat` reads those folders too)
    displaced: dict[str, Intervals] = field(default_factory=dict)
    etag: str | None = None  # of the object this was read from; None when there was none

    # --- queries -------------------------------------------------------------------------
    def coverage(self, group: str) -> Intervals:
        return self.covered.setdefault(group, Intervals())

    def leased_by_other(self, owner: str, now_ms: int) -> bool:
        return self.lease_owner not in (None, owner) and self.lease_expires_ms > now_ms

    def uncleaned(self) -> list[Failure]:
        """Failures whose task left output that is still to be deleted."""
        return [f for f in self.failures if f.cleanup]

    def incarnation(self, group: str) -> int | None:
        """The creation time of `group` if a group of that name existed before it, else None."""
        if any(k.rsplit("@", 1)[0] == group for k in self.previous):
            return self.created.get(group)
        return None

    # --- changes -------------------------------------------------------------------------
    def mark_done(
        self, group: str, window: Window, *, empty: bool = False, read: bool = False
    ) -> None:
        """`window` of `group` is archived (or known to hold no event; `read`: by a direct
        read). A failure whose output is still to be deleted stays: until it is, that output is
        in the archive twice."""
        self.coverage(group).add(window)
        if empty:
            self.empty.setdefault(group, Intervals()).add(window)
        if read:
            self.read.setdefault(group, Intervals()).add(window)
        self.failures = [
            f for f in self.failures if f.cleanup or not (f.group == group and f.window == window)
        ]
        self.drop_intent(group, window)

    def mark_failed(
        self, group: str, window: Window, error: str, now_ms: int, *, cleanup: str | None = None
    ) -> Failure:
        same = [f for f in self.failures if f.group == group and f.window == window]
        attempts = 1 + sum(f.attempts for f in same)
        cleanup = cleanup or next((f.cleanup for f in same if f.cleanup), None)
        self.failures = [f for f in self.failures if not (f.group == group and f.window == window)]
        failure = Failure(group, window, error, attempts, now_ms, cleanup)
        self.failures.append(failure)
        self.drop_intent(group, window)
        return failure

    def add_intent(self, intent: Intent) -> None:
        self.drop_intent(intent.group, intent.window)
        self.intents.append(intent)

    def drop_intent(self, group: str, window: Window) -> None:
        self.intents = [i for i in self.intents if not (i.group == group and i.window == window)]

    def observe_groups(self, created: Mapping[str, int]) -> list[str]:
        """Record the groups' creation times; return the groups whose recorded time differs:
        deleted and created again under the same name. Such a group starts over as a new one:
        the old one's coverage moves to `previous` (its folders stay in the archive), its
        windows known empty and its failures are forgotten (except output still to delete)."""
        renewed: list[str] = []
        for group, ms in created.items():
            known = self.created.get(group)
            if not ms or known == ms:
                continue
            self.created[group] = ms
            if known is None:
                continue  # first seen (or a state written before creation times were kept)
            renewed.append(group)
            old = self.covered.pop(group, None)
            if old:
                self.previous[f"{group}@{known}"] = old
            self.empty.pop(group, None)
            self.read.pop(group, None)
            self.failures = [f for f in self.failures if f.group != group or f.cleanup]
        return renewed

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
                    **({"cleanup": f.cleanup} if f.cleanup else {}),
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
                    **({"direct": True} if i.direct else {}),
                }
                for i in self.intents
            ],
            # new keys only when used: a state without them keeps its old bytes
            **(
                {"read": {g: iv.spans for g, iv in sorted(self.read.items()) if iv}}
                if any(self.read.values())
                else {}
            ),
            **({"created": dict(sorted(self.created.items()))} if self.created else {}),
            **(
                {"previous": {k: iv.spans for k, iv in sorted(self.previous.items()) if iv}}
                if self.previous
                else {}
            ),
            **(
                {"displaced": {g: iv.spans for g, iv in sorted(self.displaced.items()) if iv}}
                if any(self.displaced.values())
                else {}
            ),
        }

    @classmethod
    def from_json(cls, data: Any, etag: str | None = None) -> LaneState:
        """Parse a state object's JSON; raise ValueError naming the bad field (or the version)."""
        if isinstance(data, dict):
            version = data.get("version", STATE_VERSION)
            if isinstance(version, int) and version > STATE_VERSION:
                raise StateTooNewError(
                    f"version {version} was written by a newer log-exporter (this one reads "
                    f"version {STATE_VERSION}): upgrade log-exporter"
                )
        try:
            m = StateModel.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            message = "is required" if first["type"] == "missing" else first["msg"]
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ValueError(f"{where}: {message}{more}") from None
        lease = m.lease or LeaseModel()
        return cls(
            account_id=m.account_id,
            region=m.region,
            period=m.period,
            covered={g: Intervals(s) for g, s in m.covered.items()},
            empty={g: Intervals(s) for g, s in m.empty.items()},
            read={g: Intervals(s) for g, s in m.read.items()},
            failures=[
                Failure(f.group, Window(f.start, f.to), f.error, f.attempts, f.at_ms, f.cleanup)
                for f in m.failures
            ],
            intents=[
                Intent(i.group, Window(i.start, i.to), i.name, i.task_id, i.since_ms, i.direct)
                for i in m.intents
            ],
            lease_owner=lease.owner,
            lease_expires_ms=lease.expires_ms,
            durations={
                str(g): float(v)
                for g, v in m.durations.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            },
            created=dict(m.created),
            previous={k: Intervals(s) for k, s in m.previous.items()},
            displaced={g: Intervals(s) for g, s in m.displaced.items()},
            etag=etag,
        )


# --- the typed shape of a state object (what `LaneState.to_json` writes) ---------------------
Span = tuple[int, int]


class LeaseModel(BaseModel):
    owner: str | None = None
    expires_ms: int = 0


class GroupWindowModel(BaseModel):
    """A window of a group, as failures and intents record it (`from` and `to`, inclusive)."""

    model_config = ConfigDict(populate_by_name=True)

    group: str
    start: int = Field(alias="from")
    to: int


class FailureModel(GroupWindowModel):
    error: str
    attempts: int
    at_ms: int
    cleanup: str | None = None


class IntentModel(GroupWindowModel):
    name: str
    task_id: str | None = None
    since_ms: int = 0
    direct: bool = False


class StateModel(BaseModel):
    """A lane state object; unknown keys are ignored (an older writer of the same version)."""

    version: StrictInt = STATE_VERSION  # "2" is no version: not read as this one's
    account_id: str
    region: str
    period: Literal["day", "hour"] | None = None
    lease: LeaseModel | None = None
    covered: dict[str, list[Span]] = Field(default_factory=dict)
    empty: dict[str, list[Span]] = Field(default_factory=dict)
    read: dict[str, list[Span]] = Field(default_factory=dict)
    failures: list[FailureModel] = Field(default_factory=list)
    intents: list[IntentModel] = Field(default_factory=list)
    durations: dict[str, Any] = Field(default_factory=dict)  # a bad entry is dropped, not fatal
    created: dict[str, int] = Field(default_factory=dict)
    previous: dict[str, list[Span]] = Field(default_factory=dict)
    displaced: dict[str, list[Span]] = Field(default_factory=dict)


def parse_state(
    body: bytes, where: str, etag: str | None = None, account: str = "NAME"
) -> LaneState:
    """A state object's bytes as a LaneState; StateError naming `where` (s3://bucket/key) and
    what is wrong when they are not a state this version can read, and how to rebuild it
    (`account`: the lane's account name in the config)."""
    rebuild = f"`log-exporter sync --config FILE --account {account}` rebuilds it"
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateUnreadableError(
            f"{where}: not a lane state (not JSON: {exc}); nothing was written over it, {rebuild}",
            key=where,
            etag=etag,
        ) from None
    try:
        return LaneState.from_json(data, etag=etag)
    except StateTooNewError as exc:
        raise StateTooNewError(f"{where}: {exc}", key=where, etag=etag) from None
    except (ValueError, TypeError) as exc:
        raise StateUnreadableError(
            f"{where}: not a lane state ({exc}); nothing was written over it, {rebuild}",
            key=where,
            etag=etag,
        ) from None


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
