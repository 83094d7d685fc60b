"""`make bench` / `python -m bench`: run the real `log-exporter` against the emulator on loopback
and print one table row per scenario, next to the lower bound no exporter can beat.

The lower bound is the busiest lane's summed task time, from the emulator's own record of when
each task was created and when it ended (AWS allows one active export task per account and
region, so a lane's tasks can only run back to back). Wall time, CPU time and peak RSS are the
exporter process's own (the emulator runs in this process and is not counted).

    python -m bench                 # every scenario, then `--help` startup times
    python -m bench --only 6x4x5    # one scenario (repeatable)
    python -m bench --quick         # smaller worlds, for development
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from emulator import Emulator, EmulatorServer, TaskRecord
from emulator.scenario import client_env

from .measure import ChildRun, run_exporter, startup_seconds
from .scenarios import (
    SCENARIOS,
    Scenario,
    account_ids,
    run_args,
    seed_world,
    state_path,
    today_utc,
    write_config,
)

LOGS_COLUMNS = {
    "CreateExportTask": "Create",
    "DescribeExportTasks": "Describe",
    "FilterLogEvents": "Filter",
    "DescribeLogStreams": "Streams",
    "DescribeLogGroups": "Groups",
}


@dataclass(frozen=True)
class Timeline:
    """Where the last lane to finish (the one the run waited for) spent its wall time beyond its
    tasks' own durations."""

    first_task: float  # seconds from spawning the exporter to the lane's first task
    mean_gap: float  # seconds from a task's end to the creation of the lane's next task
    tail: float  # seconds from the lane's last task's end to the exporter's exit

    @classmethod
    def of(cls, tasks: list[TaskRecord], child: ChildRun) -> Timeline | None:
        lanes: dict[tuple[str, str], list[TaskRecord]] = {}
        for t in tasks:
            if t.ended_at is not None:
                lanes.setdefault((t.account_id, t.region), []).append(t)
        if not lanes:
            return None
        last = max(lanes.values(), key=lambda ts: max(t.ended_at or 0 for t in ts))
        last.sort(key=lambda t: t.created_at)
        gaps = [b.created_at - (a.ended_at or 0) for a, b in zip(last, last[1:])]
        return cls(
            first_task=last[0].created_at - child.started_at,
            mean_gap=sum(gaps) / len(gaps) if gaps else 0.0,
            tail=child.started_at + child.wall - (last[-1].ended_at or 0),
        )


@dataclass
class Row:
    scenario: Scenario
    child: ChildRun
    bound: float
    tasks: int
    archived_windows: int
    limit_exceeded: int
    calls: Counter[tuple[str, str]]
    state_calls: Counter[str] = field(default_factory=Counter)
    timeline: Timeline | None = None

    @property
    def ok(self) -> bool:
        expected = 0 if self.scenario.archived else self.scenario.windows
        return self.child.code == 0 and self.archived_windows == expected

    @property
    def ratio(self) -> float | None:
        return self.child.wall / self.bound if self.bound > 0 else None

    def logs(self, operation: str) -> int:
        return self.calls[("logs", operation)]

    def service(self, name: str) -> int:
        return sum(n for (svc, _), n in self.calls.items() if svc == name)


def warm_up(env: dict[str, str]) -> None:
    """One request of each kind the exporter makes, so that moto's one-time costs (loading its
    service models, creating backends) are not counted against the exporter's first lanes."""
    import boto3

    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    url = env["AWS_ENDPOINT_URL"]
    s3 = session.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket="bench-warm-up")
    s3.head_bucket(Bucket="bench-warm-up")
    s3.put_object(Bucket="bench-warm-up", Key="k", Body=b"{}", IfNoneMatch="*")
    s3.get_object(Bucket="bench-warm-up", Key="k")["Body"].read()
    s3.list_objects_v2(Bucket="bench-warm-up", Prefix="k", Delimiter="/")
    sts = session.client("sts", endpoint_url=url)
    sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/warm-up", RoleSessionName="warm-up")
    logs = session.client("logs", endpoint_url=url)
    logs.create_log_group(logGroupName="/bench/warm-up")
    logs.describe_log_groups(logGroupNamePrefix="/bench/")
    logs.describe_log_streams(logGroupName="/bench/warm-up", orderBy="LastEventTime", limit=1)
    logs.filter_log_events(logGroupName="/bench/warm-up", startTime=0, endTime=1, limit=1)
    logs.describe_export_tasks(statusCode="RUNNING", limit=50)


def run_scenario(s: Scenario, emu: Emulator, env: dict[str, str], workdir: Path) -> Row:
    emu.reset()
    emu.task_timing(
        pending=s.pending_seconds, base=s.task_seconds - s.pending_seconds, bytes_per_second=None
    )
    today = today_utc()
    seed_world(s, today)
    config = write_config(s, workdir / f"{s.name}.yml")
    child = run_exporter(run_args(s, config, today), env)
    emu.wait_idle(timeout=30)
    tasks = [t for t in emu.tasks if not t.foreign]
    done = {(t.account_id, t.group, t.from_ms) for t in tasks if t.status == "COMPLETED"}
    state_calls: Counter[str] = Counter()
    for account in account_ids(s.accounts):
        state_calls += emu.s3_calls(state_path(account))
    return Row(
        scenario=s,
        child=child,
        bound=emu.lower_bound(),
        tasks=len(tasks),
        archived_windows=len(done),
        limit_exceeded=emu.limit_exceeded,
        calls=emu.calls,
        state_calls=state_calls,
        timeline=Timeline.of(tasks, child),
    )


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    head = [
        "scenario",
        "tasks",
        "wall s",
        "lower bound s",
        "ratio",
        *LOGS_COLUMNS.values(),
        "Describe/task",
        "LimitExceeded",
        "STS",
        "S3",
        "RSS MB",
        "CPU s",
        "CPU ms/task",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        per_task = r.logs("DescribeExportTasks") / r.tasks if r.tasks else None
        cpu_task = r.child.cpu / r.tasks * 1000 if r.tasks else None
        cells = [
            r.scenario.name + ("" if r.ok else " (FAILED)"),
            str(r.tasks),
            _f(r.child.wall),
            _f(r.bound),
            _f(r.ratio, 3),
            *(str(r.logs(op)) for op in LOGS_COLUMNS),
            _f(per_task, 1),
            str(r.limit_exceeded),
            str(r.service("sts")),
            str(r.service("s3")),
            _f(r.child.max_rss_mb, 0),
            _f(r.child.cpu),
            _f(cpu_task, 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        s = r.scenario
        line = f"- {s.name}: {s.summary}; target {s.target}."
        if s.archived:
            ops = ", ".join(f"{op} {n}" for op, n in sorted(r.state_calls.items())) or "none"
            line += (
                f" Tasks created: {r.tasks}; whole run (start-up + plan) {r.child.wall:.2f} s;"
                f" S3 requests on the lane's state object: {sum(r.state_calls.values())} ({ops})."
            )
        if r.timeline is not None:
            tl = r.timeline
            line += (
                f" Last lane to finish: first task {tl.first_task:.2f} s after spawn, then"
                f" {tl.mean_gap * 1000:.0f} ms from a task's end to the next task,"
                f" exit {tl.tail:.2f} s after its last task ended."
            )
        if not r.ok:
            tail = (r.child.stderr.strip().splitlines() or ["no output"])[-1]
            line += f" FAILED: exit {r.child.code}, {r.archived_windows} windows archived: {tail}"
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Speed of log-exporter against the emulator, next to the lower bound.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*names, "startup"],
        help="run only this scenario (repeatable); `startup` times `--help` alone",
    )
    parser.add_argument("--quick", action="store_true", help="smaller worlds, for development")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if args.quick:
        chosen = [s.quick() for s in chosen]

    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="log-exporter-bench-") as tmp,
        Emulator() as emu,
        EmulatorServer(emu) as server,
    ):
        env = client_env(server.endpoint_url)
        warm_up(env)
        for s in chosen:
            print(f"bench: {s.summary} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            row = run_scenario(s, emu, env, Path(tmp))
            rows.append(row)
            print(
                f"bench: {s.name}: wall {row.child.wall:.2f} s, bound {row.bound:.2f} s,"
                f" exit {row.child.code} ({time.perf_counter() - started:.0f} s with seeding)",
                file=sys.stderr,
                flush=True,
            )
        startup = None
        if not args.only or "startup" in args.only:
            startup = startup_seconds(env)

    if rows:
        print(table(rows))
        print()
        print("\n".join(notes(rows)))
    if startup is not None:
        print(
            f"- startup: `log-exporter --help` {startup[0]:.3f} s, "
            f"`log-exporter run --help` {startup[1]:.3f} s (median of 7); target < 0.5 s."
        )
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
