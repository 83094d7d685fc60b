"""Rebuilding a lane's state from the archive bucket itself, for an archive copied in by hand or a
lost (or unreadable) state object: nothing is exported and nothing is deleted.

Each task folder `<prefix>/<account_id>/<group>/<YYYY>/<MM>/<DD>[/<HH>]/<taskId>/` is one export.
Its exact window comes from DescribeExportTasks in the member account when AWS still lists the
task; otherwise the folder's whole period is taken as archived. A folder of a FAILED or CANCELLED
task holds partial output: it is reported, not counted, and recorded as a failure whose output
the next run deletes before it exports the window again. A task still running becomes an intent,
which the next run adopts. A folder written before its group's creation time belongs to an
earlier group of the same name (deleted and created again): it is neither counted nor doubled. The listing skips the rest of a task folder once it has seen one of
its objects, so a day with thousands of streams costs one request, not one per thousand objects.

A folder no task has the id of may be a direct read's (`destination.strategy`: see direct.py):
its marker object `.log-exporter-read.json` gives its exact window, and lists its objects; with
all of them there it counts as archived (and read directly), else it is partial output, recorded
as a failure whose folder the next run deletes before it reads the window again.

An archive written by c7n-logexporter has the same layout. Its marker objects (an object whose key
is a group's folder, `<prefix>/<account_id>/<group>`, tagged `LastExport` with the last day it
exported) are recognised and left alone. Its tasks exported `[D 00:00, D 23:59:00.000]` of the
exporting machine's local day (UTC in Lambda), losing the rest of the last minute: a folder AWS
still describes is recorded with its exact window, and a folder of a day up to `LastExport` that
AWS no longer lists is taken as c7n's UTC window, so the next run exports the lost minute into
the same day's folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise

from log_exporter.aws.archive import PROBE_OBJECT, ArchiveBucket
from log_exporter.aws.reads import read_folder
from log_exporter.aws.tasks import ExportTasks, TaskStatus
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.status import DaySpan, day_spans, days_touched
from log_exporter.core.windows import (
    Intervals,
    Period,
    Window,
    group_key,
    period_window,
    to_ms,
    utc_day,
)
from log_exporter.errors import LaneBusyError, StateUnreadableError
from log_exporter.lane.view import LaneView

C7N_MARKER_TAG = "LastExport"  # c7n-logexporter's tag on its marker objects
C7N_LAST_MS = 86_340_000  # c7n's `to`: 23:59:00.000 of the day, inclusive
BY_ID_MAX = 50  # up to this many folders, each task is described by id; beyond, all are listed


@dataclass(frozen=True, order=True)
class TaskFolder:
    """One task's output folder: `<dest>/<task_id>/`, `dest` holding the period's folder."""

    group: str
    period: Window  # the day (or hour) the folder is filed under
    task_id: str
    dest: str


@dataclass
class Listing:
    folders: list[TaskFolder] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)  # a few keys no known group's layout explains
    strays: int = 0  # how many such keys there are
    requests: int = 0
    written: dict[TaskFolder, int] = field(default_factory=dict)  # a first object's time, ms
    markers: dict[str, str] = field(default_factory=dict)  # group -> c7n-logexporter marker key


def _folder_of(
    key: str, root: str, group_keys: Mapping[str, str], period: Period
) -> TaskFolder | None:
    """The task folder `key` lies in, or None (a probe object, or not this layout)."""
    parts = key[len(root) :].split("/")
    tail = 5 if period == "hour" else 4  # YYYY MM DD [HH] taskId, then at least one more part
    for i in range(1, len(parts) - tail):
        name = group_keys.get("/".join(parts[:i]))
        if name is None:
            continue
        y, m, d = parts[i : i + 3]
        if not (len(y) == 4 and len(m) == 2 and len(d) == 2 and (y + m + d).isdigit()):
            continue
        try:
            start = to_ms(date(int(y), int(m), int(d)))
        except ValueError:
            continue
        if period == "hour":
            h = parts[i + 3]
            if not (len(h) == 2 and h.isdigit() and int(h) < 24):
                continue
            start += int(h) * 3_600_000
        task_id = parts[i + tail - 1]
        if not task_id or task_id == PROBE_OBJECT or (len(task_id) == 2 and task_id.isdigit()):
            continue  # a probe object, or an hour folder where a day's task folder should be
        dest = root + "/".join(parts[: i + tail - 1])
        return TaskFolder(name, period_window(start, period), task_id, dest)
    return None


def list_task_folders(
    archive: ArchiveBucket,
    root: str,
    groups: Iterable[str],
    period: Period,
    page_size: int = 1000,
) -> Listing:
    """Every task folder under `root` (`<prefix>/<account_id>/`) of one of `groups`.

    Keys that are neither a task's output nor a probe object of one of `groups` are counted in
    `strays`, and the first few kept in `stray` as examples.
    """
    group_keys = {group_key(g): g for g in groups}
    out = Listing()
    seen: set[TaskFolder] = set()
    after = ""
    while True:
        contents, truncated = archive.page(root, page_size, after)
        out.requests += 1
        folder: TaskFolder | None = None
        for key, modified_ms in contents:
            folder = _folder_of(key, root, group_keys, period)
            marker = group_keys.get(key[len(root) :])
            if marker is not None:
                out.markers[marker] = key  # c7n-logexporter's, left alone
            elif folder is not None and folder not in seen:
                seen.add(folder)
                out.folders.append(folder)
                if modified_ms is not None:
                    out.written[folder] = modified_ms
            elif folder is None and key.rsplit("/", 1)[-1] != PROBE_OBJECT:
                out.strays += 1
                if len(out.stray) < 5:
                    out.stray.append(key)
        if not contents or not truncated:
            break
        last = contents[-1][0]
        # Skip the rest of the last key's task folder: '0' is the character after '/'.
        after = f"{folder.dest}/{folder.task_id}0" if folder is not None else last
    out.folders.sort()
    return out


def describe_tasks(
    tasks: ExportTasks, task_ids: Iterable[str], by_id_max: int = BY_ID_MAX
) -> dict[str, TaskStatus]:
    """The export tasks AWS still lists among `task_ids`: one call per id for a few, else one
    listing of the account-region's tasks (50 a page) that stops once all are found."""
    wanted = set(task_ids)
    if len(wanted) > by_id_max:
        return tasks.find(wanted)
    found: dict[str, TaskStatus] = {}
    for task_id in sorted(wanted):
        status = tasks.describe(task_id)
        if status is not None:
            found[task_id] = status
    return found


@dataclass
class GroupChange:
    group: str
    added: list[DaySpan]  # days archived per the bucket that the old state lacked
    dropped: list[DaySpan]  # days the old state had that the bucket does not hold


@dataclass
class SyncResult:
    """The rebuilt state and what was found on the way."""

    state: LaneState
    listing: Listing = field(default_factory=Listing)
    described: int = 0  # folders whose window came from DescribeExportTasks
    c7n_window: int = 0  # of the others, folders taken as c7n-logexporter's day window
    whole_period: int = 0  # folders taken as their whole period (AWS no longer lists the task)
    read: int = 0  # folders of direct reads, complete (their window from their marker)
    partial: list[tuple[TaskFolder, TaskStatus]] = field(default_factory=list)  # FAILED/CANCELLED
    running: list[TaskFolder] = field(default_factory=list)  # still active: now intents
    doubled: list[tuple[str, Window]] = field(default_factory=list)  # periods in >1 folder
    earlier: list[TaskFolder] = field(default_factory=list)  # of a group of the same name before
    changes: list[GroupChange] = field(default_factory=list)
    had_state: bool = False
    set_aside: str | None = None  # where an unreadable state object was copied before the rebuild


def rebuild(
    old: LaneState,
    listing: Listing,
    tasks: Mapping[str, TaskStatus],
    period: Period,
    now_ms: int,
    c7n_last: Mapping[str, date] | None = None,
    reads: Mapping[str, tuple[Window, bool]] | None = None,
) -> SyncResult:
    """A new state from the task folders (pure). What the bucket cannot tell is kept from `old`:
    the windows known to be empty, failures not archived since (or whose output is still to be
    deleted), intents, the task durations seen, the groups' creation times and the coverage of
    earlier groups of the same names, the lease, the ETag. `c7n_last`: per group, the
    `LastExport` day of its c7n-logexporter marker; the first folder written of a day up to it
    that AWS no longer lists is c7n's (a later one of that day is log-exporter's). `reads`: per
    folder id that is a direct read's, its window and whether it is complete."""
    new = LaneState(old.account_id, old.region, period=period, etag=old.etag)
    new.created, new.previous = dict(old.created), dict(old.previous)
    new.displaced = {g: Intervals(iv.spans) for g, iv in old.displaced.items()}
    out = SyncResult(new, listing, had_state=old.etag is not None)
    per_period: dict[tuple[str, Window], list[Window]] = {}
    # c7n's window is that of the first folder written of a day: a later one is log-exporter's
    first: dict[tuple[str, Window], TaskFolder] = {}
    for f in sorted(listing.folders, key=lambda f: listing.written.get(f, now_ms)):
        if listing.written.get(f, now_ms) >= old.created.get(f.group, 0):
            first.setdefault((f.group, f.period), f)
    for f in listing.folders:
        if listing.written.get(f, now_ms) < old.created.get(f.group, 0):
            out.earlier.append(f)  # written before its group was created: an earlier group's
            continue
        status = tasks.get(f.task_id)
        if status is not None and status.group not in ("", f.group):
            status = None  # not this folder's task after all
        last = (c7n_last or {}).get(f.group)
        read = (reads or {}).get(f.task_id) if status is None else None
        c7n_day = read is None and (
            status is None
            and period == "day"
            and last is not None
            and f.period.start <= to_ms(last)
        )
        seen = None  # a later folder of a c7n day: the rest of the day (the minute c7n lost)
        if read is not None:
            window, complete = read
            if not complete:
                if not any(x.cleanup == f.task_id for x in old.failures):
                    error = f"direct read cut short: partial output in {f.dest}/{f.task_id}/"
                    new.failures.append(Failure(f.group, window, error, 1, now_ms, f.task_id))
                continue
            new.read.setdefault(f.group, Intervals()).add(window)
            out.read += 1
        elif c7n_day and first[(f.group, f.period)] == f:
            window = Window(f.period.start, f.period.start + C7N_LAST_MS)
            out.c7n_window += 1
        elif status is None:
            window = f.period
            out.whole_period += 1
            if c7n_day:
                seen = Window(f.period.start + C7N_LAST_MS + 1, f.period.end)
        elif status.code == "COMPLETED":
            window = status.window or f.period
            out.described += 1
        elif status.active:
            window = status.window or f.period
            new.add_intent(Intent(f.group, window, status.name, status.task_id, now_ms))
            out.running.append(f)
            continue
        else:
            out.partial.append((f, status))
            window = status.window or f.period
            if not any(x.cleanup == f.task_id for x in old.failures):
                error = f"task {f.task_id} {status.code}: partial output in {f.dest}/{f.task_id}/"
                new.failures.append(Failure(f.group, window, error, 1, now_ms, f.task_id))
            continue
        new.coverage(f.group).add(window)
        per_period.setdefault((f.group, f.period), []).append(seen or window)
        for piece in Intervals([(f.period.start, f.period.end)]).missing(window):
            new.displaced.setdefault(f.group, Intervals()).add(piece)  # c7n outside UTC
    # Pieces of one period (inner-day runs, the minute c7n-logexporter lost) are not doubles.
    out.doubled = sorted(k for k, ws in per_period.items() if _overlap(ws))
    for group, iv in old.empty.items():
        for a, b in iv.spans:
            new.mark_done(group, Window(a, b), empty=True)
    to_delete = {(f.group, f.window) for f in new.failures}  # partial output found above
    new.failures += [
        f
        for f in old.failures
        if f.cleanup
        or (
            (f.group, f.window) not in to_delete
            and not new.covered.get(f.group, Intervals()).covers(f.window)
        )
    ]
    for intent in old.intents:
        if not any(i.group == intent.group and i.window == intent.window for i in new.intents):
            new.intents.append(intent)
    new.lease_owner, new.lease_expires_ms = old.lease_owner, old.lease_expires_ms
    new.durations = dict(old.durations)
    out.changes = changes(old, new)
    return out


def _overlap(windows: list[Window]) -> bool:
    ws = sorted(windows)
    return any(b.start <= a.end for a, b in pairwise(ws))


def _days(state: LaneState, group: str) -> set[date]:
    iv = state.covered.get(group, Intervals())
    return days_touched(Window(a, b) for a, b in iv.spans)


def changes(old: LaneState, new: LaneState) -> list[GroupChange]:
    """Per group, the days the rebuild adds to and drops from the old state."""
    out: list[GroupChange] = []
    for group in sorted(set(old.covered) | set(new.covered)):
        before, after = _days(old, group), _days(new, group)
        if before != after:
            out.append(GroupChange(group, day_spans(after - before), day_spans(before - after)))
    return out


def sync_lane(
    *,
    old: LaneState,
    archive: ArchiveBucket,
    tasks: ExportTasks,
    root: str,
    groups: Iterable[str],
    period: Period,
    owner: str,
    now_ms: int,
    created: Mapping[str, int] | None = None,
) -> SyncResult:
    """List the lane's task folders, ask AWS about their tasks and rebuild the state from them.

    `groups` are the names the folders may belong to (the selected groups, and those the old
    state knows); `created` their creation times (a group created again starts over, as in a
    run). Refuses (LaneBusyError) while another runner holds the lane's lease: it would
    overwrite the state a moment later. Saving is the caller's, so a dry run is this call alone.
    """
    if old.leased_by_other(owner, now_ms):
        raise LaneBusyError(
            f"{old.account_id}/{old.region}: runner {old.lease_owner} holds it; sync when it is done"
        )
    old.observe_groups(created or {})
    names = set(groups) | set(old.covered) | set(old.empty)
    listing = list_task_folders(archive, root, names, period)
    described = describe_tasks(tasks, {f.task_id for f in listing.folders})
    c7n_last = {g: d for g, key in listing.markers.items() if (d := c7n_last_export(archive, key))}
    reads: dict[str, tuple[Window, bool]] = {}
    for f in listing.folders:
        if f.task_id not in described:  # a direct read's, if its marker says so (one GET)
            marker, complete = read_folder(archive, f"{f.dest}/{f.task_id}")
            if marker is not None:
                reads[f.task_id] = (Window(marker["from"], marker["to"]), complete)
    return rebuild(old, listing, described, period, now_ms, c7n_last, reads)


def sync_view(
    view: LaneView,
    archive: ArchiveBucket,
    *,
    prefix: str,
    period: Period,
    owner: str,
    clock: Callable[[], float],
    rebuild_unreadable: bool,
    dry_run: bool,
) -> SyncResult:
    """`sync_lane` for one lane of `log-exporter sync`, and the rebuilt state saved (unless
    `dry_run`). An unreadable state is rebuilt only when `rebuild_unreadable` (the lane's account
    was named): the bad object is set aside first, and the new state replaces it only if nobody
    wrote it meanwhile; otherwise its error is the lane's."""
    bad: StateUnreadableError | None = None
    try:
        old = view.load_state()
    except StateUnreadableError as exc:
        if not rebuild_unreadable:
            raise
        bad, old = exc, LaneState(view.account_id, view.region, etag=exc.etag)
    groups = view.groups.matching(view.selector)
    result = sync_lane(
        old=old,
        archive=archive,
        tasks=view.tasks,
        root="/".join(p for p in (prefix, view.account_id) if p) + "/",
        groups=[name for name, _ in groups],
        period=period,
        owner=owner,
        now_ms=int(clock() * 1000),
        created=dict(groups),
    )
    if not dry_run:
        if bad is not None:  # kept aside, then replaced only if nobody wrote it meanwhile
            result.set_aside = view.store.set_aside(bad, int(clock() * 1000))
        view.store.save(result.state)
    return result


def c7n_last_export(archive: ArchiveBucket, key: str) -> date | None:
    """The UTC day of a c7n-logexporter marker's `LastExport` tag (an ISO time, UTC when it has
    no zone: c7n writes the day's midnight), or None when it has none."""
    value = archive.tags(key).get(C7N_MARKER_TAG)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.date() if when.tzinfo is None else utc_day(to_ms(when))
