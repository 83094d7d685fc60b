"""What a benchmark run measured, and the table and notes printed from it."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from emulator import TaskRecord

from .measure import ChildRun
from .scenarios import Scenario

# (service, operation) -> short name, in the order the table lists them
CALL_NAMES = {
    ("logs", "CreateExportTask"): "Create",
    ("logs", "DescribeExportTasks"): "Describe",
    ("logs", "FilterLogEvents"): "Filter",
    ("logs", "DescribeLogStreams"): "Streams",
    ("logs", "DescribeLogGroups"): "Groups",
    ("sts", "AssumeRole"): "AssumeRole",
    ("organizations", "ListAccounts"): "ListAccounts",
    ("organizations", "ListAccountsForParent"): "ListAccountsForParent",
    ("organizations", "ListOrganizationalUnitsForParent"): "ListOUsForParent",
}


@dataclass(frozen=True)
class Timeline:
    """Where the wall time went beyond the tasks' own durations, for the lane that finished
    last (the one the run waited for)."""

    first_request: float  # seconds from spawn to the exporter's first request (Python start-up)
    first_task: float  # seconds from spawn to that lane's first task
    mean_gap: float  # seconds from one of its tasks' end to its next task's creation
    mean_gap_all: float  # the same over every lane
    tail: float  # seconds from its last task's end to the exporter's exit
    peak_lanes: int  # most tasks running at once: lanes busy together
    any_first_task: float = 0.0  # seconds from spawn to the run's first task
    last_lane_started: float = 0.0  # seconds from spawn to the last lane's first task

    @classmethod
    def of(cls, tasks: list[TaskRecord], child: ChildRun, first_request: float) -> Timeline | None:
        lanes: dict[tuple[str, str], list[TaskRecord]] = {}
        for t in sorted(tasks, key=lambda t: t.created_at):
            if t.ended_at is not None:
                lanes.setdefault((t.account_id, t.region), []).append(t)
        if not lanes:
            return None
        last = max(lanes.values(), key=lambda ts: max(t.ended_at or 0.0 for t in ts))
        gaps = [b.created_at - (a.ended_at or 0.0) for a, b in itertools.pairwise(last)]
        all_gaps = [
            b.created_at - (a.ended_at or 0.0)
            for ts in lanes.values()
            for a, b in itertools.pairwise(ts)
        ]
        return cls(
            first_request=first_request - child.started_at,
            first_task=last[0].created_at - child.started_at,
            mean_gap=sum(gaps) / len(gaps) if gaps else 0.0,
            mean_gap_all=sum(all_gaps) / len(all_gaps) if all_gaps else 0.0,
            tail=child.started_at + child.wall - max(t.ended_at or 0.0 for t in last),
            peak_lanes=peak_overlap(tasks),
            any_first_task=min(ts[0].created_at for ts in lanes.values()) - child.started_at,
            last_lane_started=max(ts[0].created_at for ts in lanes.values()) - child.started_at,
        )


def peak_overlap(tasks: list[TaskRecord]) -> int:
    """The most tasks active at the same moment."""
    edges = sorted(
        [(t.created_at, 1) for t in tasks] + [(t.ended_at, -1) for t in tasks if t.ended_at],
        key=lambda e: (e[0], e[1]),
    )
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@dataclass
class Row:
    scenario: Scenario
    child: ChildRun
    bound: float  # the lower bound: the busiest lane's summed task durations
    tasks: int
    archived_windows: int  # distinct windows with a COMPLETED task
    limit_exceeded: int  # CreateExportTask calls refused because the slot was busy
    calls: Counter[tuple[str, str]]
    emulator_cpu: float  # CPU seconds the emulator (this process) spent meanwhile
    state_calls: Counter[str] = field(default_factory=Counter)  # on the lanes' state objects
    timeline: Timeline | None = None
    ratios: list[float] = field(default_factory=list)  # of every run, when it ran several
    exact: bool | None = None  # the archive holds every seeded event once (when checked)
    reads_throttled: int = 0  # FilterLogEvents answered ThrottlingException

    @property
    def ok(self) -> bool:
        expected = 0 if self.scenario.archived else self.scenario.windows
        return (
            self.child.code == 0 and self.archived_windows == expected and self.exact is not False
        )

    @property
    def organizations_calls(self) -> int:
        return sum(n for (svc, _), n in self.calls.items() if svc == "organizations")

    @property
    def ratio(self) -> float | None:
        return self.child.wall / self.bound if self.bound > 0 else None

    @property
    def describes_per_task(self) -> float | None:
        return self.calls[("logs", "DescribeExportTasks")] / self.tasks if self.tasks else None

    @property
    def cpu_ms_per_task(self) -> float | None:
        return self.child.cpu / self.tasks * 1000 if self.tasks else None

    def calls_by_kind(self) -> str:
        named = [f"{name} {self.calls[key]}" for key, name in CALL_NAMES.items() if self.calls[key]]
        s3 = sum(n for (svc, _), n in self.calls.items() if svc == "s3")
        state = sum(self.state_calls.values())
        named.append(f"S3 {s3} ({state} on lane states)")
        known = set(CALL_NAMES)
        other = sum(n for k, n in self.calls.items() if k not in known and k[0] != "s3")
        if other:
            named.append(f"other {other}")
        return ", ".join(named)


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEAD = (
    "scenario",
    "lanes",
    "tasks",
    "wall s",
    "lower bound s",
    "ratio",
    "Describe/task",
    "own LimitExceeded",
    "API calls by kind",
    "peak RSS MB",
    "CPU s",
    "CPU ms/task",
)


def table(rows: list[Row]) -> str:
    """One Markdown table row per scenario (readable as is in a terminal)."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "|".join("---" for _ in HEAD) + "|"]
    for r in rows:
        cells = [
            r.scenario.name + ("" if r.ok else " FAILED"),
            str(r.scenario.lanes),
            str(r.tasks),
            _f(r.child.wall),
            _f(r.bound),
            _f(r.ratio, 3),
            _f(r.describes_per_task, 1),
            str(r.limit_exceeded),
            r.calls_by_kind(),
            _f(r.child.max_rss_mb, 0),
            _f(r.child.cpu, 1),
            _f(r.cpu_ms_per_task, 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        s = r.scenario
        line = f"- {s.name}: {s.summary}; target: {s.target}."
        if len(r.ratios) > 1:
            shown = ", ".join(f"{x:.3f}" for x in r.ratios)
            line += f" Run {len(r.ratios)} times, the row is the median run (ratios {shown})."
        if s.archived:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(r.state_calls.items())) or "none"
            line += (
                f" Tasks created: {r.tasks}. Whole run, start-up and planning included:"
                f" {r.child.wall:.2f} s. S3 requests on the lane's state object:"
                f" {sum(r.state_calls.values())} ({ops})."
            )
        tl = r.timeline
        if tl is not None:
            after = (r.child.wall - tl.first_request) / r.bound if r.bound > 0 else None
            line += (
                f" Python start-up: first request {tl.first_request:.2f} s after spawn"
                f" (ratio without it: {_f(after, 3)})."
                f" Lane that finished last: first task at {tl.first_task:.2f} s,"
                f" {tl.mean_gap * 1000:.0f} ms from a task's end to its next task"
                f" ({tl.mean_gap_all * 1000:.0f} ms over all lanes),"
                f" exit {tl.tail:.2f} s after its last task ended."
                f" Lanes busy at once: {tl.peak_lanes}."
            )
        if s.organization and tl is not None:
            line += (
                f" Organization: {r.organizations_calls} Organizations calls;"
                f" first task {tl.any_first_task:.2f} s after spawn, the last of the"
                f" {s.lanes:,} lanes ({s.regions} regions, a bucket each) started at"
                f" {tl.last_lane_started:.2f} s."
            )
        if s.strategy != "export":
            line += (
                f" Strategy {s.strategy}: lower bound = the export-only bound, {s.windows:,}"
                f" tasks x {s.task_seconds:g} s; FilterLogEvents"
                f" {r.calls[('logs', 'FilterLogEvents')]:,}, throttled {r.reads_throttled}."
            )
        if r.exact is not None:
            line += " Archive checked: every event once." if r.exact else " ARCHIVE WRONG."
        line += f" Emulator CPU meanwhile: {r.emulator_cpu:.1f} s."
        if not r.ok:
            tail = (r.child.stderr.strip().splitlines() or ["no output"])[-1]
            line += f" FAILED: exit {r.child.code}, {r.archived_windows} windows archived: {tail}"
        out.append(line)
    return out
