"""The lane's direct reads with fake AWS: stopping (Ctrl-C, deadline), the lease fence before
each PUT, and which windows go to the export queue instead (too large, read refused)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from log_exporter.aws.sessions import AccountClients
from log_exporter.core.config import GroupSelector
from log_exporter.core.direct import Event
from log_exporter.core.plan import ExportItem, PlanRange
from log_exporter.core.state import LaneState
from log_exporter.core.windows import Window
from log_exporter.errors import StateConflictError
from log_exporter.lane.build import build_lane
from log_exporter.lane.direct_reads import READ_WORKERS
from log_exporter.lane.lane import Lane
from log_exporter.lane.lease import LeaseLapsed
from log_exporter.lane.pacer import RunControl
from log_exporter.lane.settings import LaneSettings

DAY = 86_400_000
PAGES = 200  # of a slow read: 2 s or more


class Store:
    def __init__(self) -> None:
        self.saves = 0
        self.conflict_after: int | None = None  # saves that succeed before another runner's

    def save(self, state: LaneState) -> None:
        self.saves += 1
        if self.conflict_after is not None and self.saves > self.conflict_after:
            raise StateConflictError("another runner wrote the state")
        state.etag = f'"{self.saves}"'

    def load(self, *args: Any, **kwargs: Any) -> LaneState:
        return LaneState("111111111111", "us-east-1")


class Archive:
    def __init__(self) -> None:
        self.puts: list[str] = []
        self.on_put: Any = None

    def put(self, key: str, body: bytes, content_type: str = "") -> None:
        self.puts.append(key)
        if self.on_put is not None:
            self.on_put(key)

    def delete_task_output(self, dest: str, folder_id: str) -> int:
        return 0


class SlowLogs:
    """FilterLogEvents of a group: `pages` pages of one event each, 10 ms a page."""

    def __init__(self, pages: int = PAGES, delay: float = 0.01) -> None:
        self.pages = pages
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def filter_log_events(self, **kw: Any) -> dict[str, Any]:
        time.sleep(self.delay)
        with self.lock:
            self.calls += 1
        n = int(kw.get("nextToken", "0"))
        out: dict[str, Any] = {
            "events": [{"logStreamName": f"s{n}", "timestamp": kw["startTime"], "message": f"m{n}"}]
        }
        if n + 1 < self.pages:
            out["nextToken"] = str(n + 1)
        return out


def make_lane(
    logs: Any,
    strategy: str = "read",
    clock: Any = time.time,
    sleep: Any = time.sleep,
    **settings: Any,
) -> tuple[Lane, Store, Archive]:
    store, archive = Store(), Archive()
    lane = build_lane(
        account="prod",
        clients=AccountClients("111111111111", "us-east-1", logs, logs),
        store=cast(Any, store),
        archive=cast(Any, archive),
        selector=GroupSelector(["*"]),
        rng=PlanRange(None, DAY, DAY),
        settings=LaneSettings(bucket="b", prefix="p", strategy=strategy, read_rate=1e6, **settings),
        owner="me",
        control=RunControl(clock=clock, sleep=sleep),
    )
    return lane, store, archive


def batch(lane: Lane, groups: list[str]) -> list[ExportItem]:
    items = [ExportItem(Window(0, DAY - 1), g) for g in groups]
    for i in items:
        lane.attempt.backlog.keep[i.group] = {i}
    lane.attempt.reads.queue.extend(items)

    def work() -> None:  # straight to the reads, as `_export_all` with no export to run
        while lane.attempt.reads.queue:
            lane.attempt.reads.read_next()

    lane._work = work  # type: ignore[method-assign]
    return items


def test_ctrl_c_stops_the_direct_reads_in_flight() -> None:
    logs = SlowLogs()
    lane, _, archive = make_lane(logs)
    batch(lane, [f"/g{i}" for i in range(READ_WORKERS)])
    at_interrupt: list[int] = []

    def interrupt() -> None:  # Ctrl-C reaches the lane thread while it waits for the reads
        at_interrupt.append(logs.calls)
        raise KeyboardInterrupt

    lane.lease.heartbeat = interrupt  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        lane.run()
    # each worker stops at its next page: at most the page it was in, and one more
    assert logs.calls - at_interrupt[0] <= 2 * READ_WORKERS
    assert logs.calls < READ_WORKERS * PAGES
    assert archive.puts == []
    assert not lane.state.intents


def test_the_deadline_stops_the_direct_reads_in_flight_and_leaves_their_windows() -> None:
    logs = SlowLogs()
    lane, _, archive = make_lane(logs)
    items = batch(lane, [f"/g{i}" for i in range(READ_WORKERS)])
    stopped_at: list[int] = []
    check = lane.pacer.check_deadline

    def check_deadline() -> None:
        try:
            check()
        except BaseException:
            stopped_at.append(logs.calls)
            raise

    lane.pacer.check_deadline = check_deadline  # type: ignore[method-assign]
    result = lane.run(deadline=time.time() + 0.2)
    assert stopped_at, "the deadline never stopped the wait for the reads"
    assert logs.calls - stopped_at[0] <= 2 * READ_WORKERS
    assert logs.calls < READ_WORKERS * PAGES
    assert archive.puts == [] and not lane.state.intents
    assert not result.archived and result.error is None
    assert {i.group for i in items}.isdisjoint(lane.state.read)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_no_put_of_a_direct_folder_once_the_lease_may_have_lapsed() -> None:
    """The runner stalls (suspend, SIGSTOP) during its first object's PUT for longer than the
    lease: another runner may have taken over and be deleting this folder as cut short, so no
    further PUT of it is sent; the next state write finds the other runner and stops."""
    clock = FakeClock()
    lane, store, archive = make_lane(SlowLogs(pages=3, delay=0), clock=clock)
    lane.lease.assume_held(clock.now)  # the lease as the lane took it
    store.conflict_after = 1  # the batch's intents; the next write finds the other runner's
    batch(lane, ["/g"])

    def stall(key: str) -> None:
        if not key.endswith(".json"):
            clock.now += lane.settings.lease_seconds

    archive.on_put = stall
    result = lane.run()
    assert len(archive.puts) == 2, archive.puts  # the marker, the PUT under way at the stall
    assert result.busy
    assert not result.archived


def test_a_lapse_nobody_took_over_writes_the_window_again() -> None:
    """Stalled past the lease, but no other runner wrote the state: the lease is ours again;
    the folder cut short is deleted and the window read again into a new folder."""
    clock = FakeClock()
    lane, _, archive = make_lane(SlowLogs(pages=3, delay=0), clock=clock)
    lane.lease.assume_held(clock.now)  # the lease as the lane took it
    batch(lane, ["/g"])
    stalled: list[str] = []

    def stall(key: str) -> None:
        if not stalled and not key.endswith(".json"):
            stalled.append(key)
            clock.now += lane.settings.lease_seconds

    archive.on_put = stall
    result = lane.run()
    assert [i.group for i in result.archived] == ["/g"] and result.error is None
    folders = {k.split("/")[6] for k in archive.puts}  # p/<account>/g/1970/01/01/<folder>/
    assert len(folders) == 2  # the one cut short, and the one written whole
    assert len(archive.puts) == 2 + 4


def test_a_window_over_the_byte_cap_is_exported_instead_of_read() -> None:
    """`read` holds a window's events until they are rendered: one larger than
    `read_window_max_bytes` (message bytes + 26 an event) goes to the export queue."""
    lane, _, archive = make_lane(SlowLogs(pages=3, delay=0), read_window_max_bytes=60)
    (item,) = batch(lane, ["/big"])  # 3 events of 28 bytes: 84 > 60
    small, _, _ = make_lane(SlowLogs(pages=2, delay=0), read_window_max_bytes=60)
    batch(small, ["/small"])  # 56 <= 60: read

    lane.run()
    small.run()

    assert (
        list(lane.attempt.backlog.queue) == [item]
        and archive.puts == []
        and not lane.result.archived
    )
    assert [i.group for i in small.result.archived] == ["/small"]


def test_events_are_light() -> None:
    assert not hasattr(Event("s", 1, "m"), "__dict__")  # slots: no dict an event


def test_auto_exports_a_window_of_more_than_read_max_pages() -> None:
    lane, _, archive = make_lane(SlowLogs(pages=6, delay=0), strategy="auto", read_max_pages=5)
    (item,) = batch(lane, ["/big"])
    small, _, _ = make_lane(SlowLogs(pages=5, delay=0), strategy="auto", read_max_pages=5)
    batch(small, ["/five"])

    lane.run()
    small.run()

    assert (
        list(lane.attempt.backlog.queue) == [item]
        and archive.puts == []
        and not lane.result.archived
    )
    assert [i.group for i in small.result.archived] == ["/five"]


class Refusing(SlowLogs):
    """`/denied` is refused (AccessDenied), `/busy` throttled every time; the others read."""

    def filter_log_events(self, **kw: Any) -> dict[str, Any]:
        code = {"/denied": "AccessDeniedException", "/busy": "ThrottlingException"}.get(
            kw["logGroupName"]
        )
        if code:
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "FilterLogEvents")
        return super().filter_log_events(**kw)


def test_a_refused_read_is_exported_and_the_rest_of_the_batch_is_written() -> None:
    lane, _, archive = make_lane(Refusing(pages=1, delay=0), sleep=lambda s: None)
    items = batch(lane, ["/a", "/denied", "/busy", "/c"])

    result = lane.run()

    assert result.error is None, result.error
    assert [i.group for i in result.archived] == ["/a", "/c"]
    assert list(lane.attempt.backlog.queue) == [items[1], items[2]]  # exported by a task instead
    assert len(archive.puts) == 4  # two folders: a marker and an object each


def test_the_lease_runs_from_when_its_write_was_sent() -> None:
    """The runner stalls (SIGSTOP, suspend) while a state write is under way, for longer than the
    lease: the lease it wrote ran out meanwhile, and the write's late answer must not make it
    look renewed; no PUT of a direct folder follows, and the next renewal writes at once."""
    clock = FakeClock()
    lane, store, _ = make_lane(SlowLogs(pages=1, delay=0), clock=clock)
    lane.lease.assume_held(clock.now)
    save = store.save

    def stalled_save(state: LaneState) -> None:
        save(state)
        clock.now += lane.settings.lease_seconds  # the answer arrives after the stall

    store.save = stalled_save  # type: ignore[method-assign]
    lane.lease.save()
    with pytest.raises(LeaseLapsed):
        lane.lease.fence()
    store.save = save  # type: ignore[method-assign]
    saves = store.saves
    lane.lease.heartbeat()
    assert store.saves == saves + 1
