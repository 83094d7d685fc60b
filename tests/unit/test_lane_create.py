"""A lane creating its task and waiting (lane.py), over fake AWS and a fake clock: after a lost
CreateExportTask answer it looks for the task before every later try and before giving up, and
never forgets a window AWS may hold a task of; a slot held by one foreign task after another is
one wait, reported stuck; polling a task renews a short lease; and a write cut short by a stop
signal does not keep the lease from being released."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any, cast

import pytest

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.errors import AnswerLost, SlotBusy, Throttled
from log_exporter.aws.sessions import AccountClients
from log_exporter.aws.state_store import StateStore
from log_exporter.aws.tasks import TaskStatus
from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import ExportItem, PlanRange
from log_exporter.core.state import LaneState
from log_exporter.core.windows import Window
from log_exporter.errors import AWSError, StateConflictError, StuckError
from log_exporter.lane.build import build_lane
from log_exporter.lane.lane import Lane
from log_exporter.lane.pacer import MAX_THROTTLED, RunControl
from log_exporter.lane.settings import LaneSettings

GROUP = "/app/web"
ITEM = ExportItem(Window(0, 86_400_000 - 1), GROUP)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Store:
    """Saves a state by recording when (by the fake clock) and which intents it held."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.saves: list[tuple[float, list[tuple[str, str | None]]]] = []

    def save(self, state: LaneState) -> None:
        self.saves.append((self.clock(), [(i.name, i.task_id) for i in state.intents]))
        state.etag = f'"{len(self.saves)}"'


def status(task_id: str, name: str, code: str) -> TaskStatus:
    return TaskStatus(task_id, name, code, "", GROUP, ITEM.window, "", "", None, None)


class Tasks:
    """CreateExportTask answers in the order given: an exception to raise, or "made" (AWS makes
    the task and answers) or "made, lost" (AWS makes it and the answer is lost). Made tasks are
    listed among the active ones once `listed` says so, and end `runs` seconds after creation."""

    def __init__(self, clock: Clock, answers: list[Exception | str], runs: float = 1e9) -> None:
        self.clock = clock
        self.answers = deque(answers)
        self.runs = runs
        self.listed = True
        self.made: dict[str, tuple[str, float]] = {}  # id -> (name, created)

    def create(self, *, name: str, **_: Any) -> str:
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        task_id = f"T{len(self.made) + 1}"
        self.made[task_id] = (name, self.clock())
        if answer == "made, lost":
            raise AnswerLost("read timeout")
        return task_id

    def describe(self, task_id: str) -> TaskStatus | None:
        if task_id not in self.made:
            return None
        name, created = self.made[task_id]
        ended = self.clock() >= created + self.runs
        return status(task_id, name, "COMPLETED" if ended else "RUNNING")

    def active(self) -> list[TaskStatus]:
        found = [self.describe(t) for t in self.made] if self.listed else []
        return [s for s in found if s is not None and s.active]


class Archive:
    """The window's folder holds the output of the made tasks that ended."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks

    def task_folders(self, dest: str) -> list[str]:
        ended = [self.tasks.describe(t) for t in self.tasks.made]
        return [s.task_id for s in ended if s is not None and s.ended]


def make_lane(clock: Clock, tasks: Any, **settings: Any) -> tuple[Lane, Store]:
    store = Store(clock)
    lane = build_lane(
        account="prod",
        clients=AccountClients("111111111111", "us-east-1", cast(Any, None), cast(Any, None)),
        store=cast(StateStore, store),
        archive=cast(ArchiveBucket, Archive(tasks) if isinstance(tasks, Tasks) else None),
        selector=GroupSelector(["*"]),
        rng=PlanRange(None, 86_400_000, 86_400_000),
        settings=LaneSettings(bucket="b", prefix="p", **{"lease_seconds": 1e9, **settings}),
        owner="test",
        control=RunControl(clock=clock, sleep=clock.sleep),
    )
    lane.attempt.slot.tasks = tasks
    lane.lease.state = LaneState("111111111111", "us-east-1")
    return lane, store


# --- after a lost answer (review 12, §1 and §2) ---------------------------------------------------


def test_giving_up_after_a_lost_answer_keeps_the_window_for_the_next_run() -> None:
    """The last try before giving up was made but its answer lost, and AWS does not list the
    task yet: the lane fails, but the window's intent stays (its name, no id), saved, so the next
    run finds the task by its name or its folder instead of exporting the window again."""
    clock = Clock()
    tasks = Tasks(clock, [*[Throttled("Throttling")] * MAX_THROTTLED, "made, lost"])
    tasks.listed = False
    lane, store = make_lane(clock, tasks)

    with pytest.raises(AWSError, match=f"still refuses after {MAX_THROTTLED} tries"):
        lane.attempt.slot.export(ITEM)

    assert list(tasks.made) == ["T1"]  # AWS holds a task of the window
    (intent,) = lane.state.intents
    assert (intent.group, intent.window, intent.task_id) == (GROUP, ITEM.window, None)
    lane.lease.release()
    assert store.saves[-1][1] == [(intent.name, None)]  # what the next run reads


def test_giving_up_after_a_lost_answer_looks_for_the_task_first() -> None:
    clock = Clock()
    tasks = Tasks(clock, [*[Throttled("Throttling")] * MAX_THROTTLED, "made, lost"])
    lane, _ = make_lane(clock, tasks)

    got = lane.attempt.slot.create(ITEM, lane.attempt.record.name_of(ITEM))

    assert got == "T1"  # found among the active tasks by its name: adopted
    assert list(tasks.made) == ["T1"]


def test_after_a_lost_answer_every_later_try_looks_for_the_task_first() -> None:
    """The task made by the lost try is not listed while it runs, holds the slot, and then ends
    (its output in the window's folder) before the lane tries again: found there, not made
    twice."""
    clock = Clock()
    tasks = Tasks(clock, ["made, lost", SlotBusy("LimitExceeded"), "made"], runs=0.3)
    tasks.listed = False
    lane, _ = make_lane(clock, tasks)

    got = lane.attempt.slot.create(ITEM, lane.attempt.record.name_of(ITEM))

    assert list(tasks.made) == ["T1"]
    assert isinstance(got, TaskStatus) and (got.task_id, got.code) == ("T1", "COMPLETED")


# --- a slot held by one foreign task after another (review 12, §10) --------------------------------


class ForeignChain:
    """Somebody else's tasks hold the slot one after another, each for 2 s, for `seconds`."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds

    def _holder(self) -> str:
        return f"F{int(self.clock() // 2)}"

    def create(self, **_: Any) -> str:
        if self.clock() < self.seconds:
            raise SlotBusy("LimitExceeded")
        return "mine"

    def active(self) -> list[TaskStatus]:
        if self.clock() >= self.seconds:
            return []
        return [status(self._holder(), "someone-elses-export", "RUNNING")]

    def describe(self, task_id: str) -> TaskStatus | None:
        busy = task_id == self._holder() and self.clock() < self.seconds
        return status(task_id, "someone-elses-export", "RUNNING" if busy else "COMPLETED")


def test_a_slot_held_by_a_chain_of_foreign_tasks_is_one_wait_reported_stuck() -> None:
    clock = Clock()
    lane, _ = make_lane(clock, ForeignChain(clock, seconds=3600), stuck_seconds=10)

    with pytest.raises(StuckError, match="the export slot is busy with task F"):
        lane.attempt.slot.create(ITEM, lane.attempt.record.name_of(ITEM))

    assert clock() < 60  # each task held it 2 s, but the slot was busy for longer than 10 s


def test_a_slot_that_frees_within_the_limit_is_waited_for() -> None:
    clock = Clock()
    lane, _ = make_lane(clock, ForeignChain(clock, seconds=8), stuck_seconds=10)

    assert lane.attempt.slot.create(ITEM, lane.attempt.record.name_of(ITEM)) == "mine"


# --- polling a task renews the lease (review 12, §6) -----------------------------------------------


@pytest.mark.parametrize("known", [False, True], ids=["blind", "expected"])
def test_polling_a_long_task_renews_a_short_lease(known: bool) -> None:
    """A lease of 3 s and polls up to 30 s apart: every sleep goes through the lease's renewal,
    so from one write to the next never more than the lease passes."""
    clock = Clock()
    tasks = Tasks(clock, ["made"], runs=400.0)
    lane, store = make_lane(clock, tasks, lease_seconds=3.0)
    if known:
        lane.durations.observe(GROUP, 400.0, None)
    lane.lease.save()  # the lease, as written with the window's intent

    task_id = lane.attempt.slot.create(ITEM, lane.attempt.record.name_of(ITEM))
    assert isinstance(task_id, str)
    got = lane.attempt.slot.wait(ITEM, task_id, clock())

    assert got.code == "COMPLETED"
    times = [t for t, _ in store.saves] + [clock()]
    assert max(b - a for a, b in itertools.pairwise(times)) < 3.0


# --- a stop signal during a write (review 12, §11: one lane runs on the main thread) ----------------


class ConditionalStore:
    """One state object written on its ETag, as S3 does; `cut` makes the next write go through
    and then raise what a stop signal raises on the main thread, before its answer is read."""

    def __init__(self) -> None:
        self.stored: LaneState | None = None
        self.writes = 0
        self.cut = False

    def save(self, state: LaneState) -> None:
        if state.etag != (self.stored.etag if self.stored is not None else None):
            raise StateConflictError("the state was changed by another runner")
        self.writes += 1
        self.stored = LaneState.from_json(state.to_json(), etag=f'"{self.writes}"')
        if self.cut:
            self.cut = False
            raise KeyboardInterrupt  # the Terminated of a SIGTERM: state.etag is not updated
        state.etag = self.stored.etag

    def load(self, account_id: str, region: str, account: str = "NAME") -> LaneState:
        assert self.stored is not None
        return LaneState.from_json(self.stored.to_json(), etag=self.stored.etag)


def test_a_write_cut_short_by_a_stop_signal_does_not_keep_the_lease() -> None:
    clock = Clock()
    store = ConditionalStore()
    lane, _ = make_lane(clock, None, lease_seconds=60.0)
    lane.lease.store = cast(StateStore, store)
    lane.lease.save()  # the lease taken
    store.cut = True

    with pytest.raises(KeyboardInterrupt):
        lane.lease.save()  # the next intent, say: written, but its answer never read
    lane.lease.release()  # what the lane's `finally` does as the interrupt goes by

    assert store.stored is not None and store.stored.lease_owner is None
    assert lane.result.error is None
