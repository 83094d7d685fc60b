"""`make bench` / `python -m bench`: the real `log-exporter run` against the emulator on
loopback, one table row per scenario, next to the lower bound no exporter can beat.

The lower bound is the busiest lane's summed task time, from the emulator's own record of when
each task was created and when it ended: AWS allows one active export task per account and
region, so a lane's tasks can only run back to back. Wall time (spawn to exit), CPU time and
peak RSS are the exporter process's own; the emulator runs in this process and is not counted.

    python -m bench                  # every scenario, then `--help` start-up times
    python -m bench --only 6x4x5     # one scenario (repeatable; `startup` for --help alone)
    python -m bench --only cat       # `log-exporter cat` over one large archived day
    python -m bench --only 6x4x5 --only 6x4x5-no-info   # with and without executionInfo
    python -m bench --quick          # smaller worlds and shorter tasks, for development
"""

from __future__ import annotations

import argparse
import compileall
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import log_exporter
from emulator import Emulator, EmulatorServer, seed
from emulator.scenario import client_env

from .cat import CatRow, run_cat
from .measure import run_exporter, startup_seconds
from .report import Row, Timeline, notes, table
from .scenarios import (
    BUCKET,
    PREFIX,
    SCENARIOS,
    Scenario,
    expected_events,
    run_args,
    seed_world,
    state_paths,
    today_utc,
    write_config,
)


def warm_up(env: dict[str, str]) -> None:
    """One request of each kind the exporter makes, so that moto's one-time costs (loading its
    service models, creating backends) do not land on the exporter's first lanes."""
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_scenario(s: Scenario, emu: Emulator, env: dict[str, str], workdir: Path) -> Row:
    """Seed the scenario's world into a clean emulator, run the exporter once, and read back
    what happened from the emulator's record."""
    emu.reset()
    emu.execution_info = s.execution_info
    emu.task_timing(
        pending=s.pending_seconds, base=s.task_seconds - s.pending_seconds, bytes_per_second=None
    )
    if s.read_quota is not None:
        emu.read_quotas(filter_log_events=s.read_quota, get_log_events=5 * s.read_quota)
    today = today_utc()
    seeded = seed_world(s, today)
    config = write_config(s, workdir / f"{s.name}.yml", seeded)

    first: list[float] = []
    record = emu.record_call

    def note_first(service: str, operation: str, path: str = "") -> None:
        if not first:
            first.append(time.time())
        record(service, operation, path)

    emu.record_call = note_first  # type: ignore[method-assign]
    cpu = _cpu()
    try:
        child = run_exporter(run_args(s, config, today), env)
    finally:
        del emu.record_call
    emulator_cpu = _cpu() - cpu
    emu.wait_idle(timeout=60)

    tasks = [t for t in emu.tasks if not t.foreign]
    done = {(t.account_id, t.region, t.group, t.from_ms) for t in tasks if t.status == "COMPLETED"}
    exact: bool | None = None
    windows = len(done)
    if s.verify_archive:  # every seeded event exactly once, whichever way its window went
        events = seed.read_archive(BUCKET, PREFIX + "/")
        got = Counter((e.account_id, e.group, str(e.timestamp_ms), e.message) for e in events)
        exact = got == expected_events(s, seeded, today)
        windows = len({(e.account_id, e.group, e.day) for e in events})
    state_calls: Counter[str] = Counter()
    for account in seeded.accounts:
        for path in state_paths(s, account):
            state_calls += emu.s3_calls(path)
    return Row(
        scenario=s,
        child=child,
        bound=emu.lower_bound() if s.strategy == "export" else s.export_bound,
        tasks=len(tasks),
        archived_windows=windows,
        limit_exceeded=emu.limit_exceeded,
        calls=emu.calls,
        emulator_cpu=emulator_cpu,
        state_calls=state_calls,
        timeline=Timeline.of(tasks, child, first[0] if first else child.started_at),
        exact=exact,
        reads_throttled=sum(
            n
            for (svc, op, _), n in emu.injected.items()
            if (svc, op) == ("logs", "FilterLogEvents")
        ),
    )


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="log-exporter against the emulator, next to the lower bound (not a test).",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*names, "startup", "cat"],
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(names)}, startup, or cat",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller worlds and shorter tasks, for development"
    )
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if args.quick:
        chosen = [s.quick() for s in chosen]

    # The exporter as installed: pip byte-compiles a package it installs, but an editable
    # checkout is compiled by its first import, unless PYTHONDONTWRITEBYTECODE is set (as on
    # some CI machines), and then by every start (~35 ms of each run here).
    compileall.compile_dir(str(Path(log_exporter.__file__).parent), quiet=1)
    rows: list[Row] = []
    startup: tuple[float, float] | None = None
    cat_row: CatRow | None = None
    with (
        tempfile.TemporaryDirectory(prefix="log-exporter-bench-") as tmp,
        Emulator() as emu,
        EmulatorServer(emu) as server,
    ):
        env = client_env(server.endpoint_url)
        warm_up(env)
        for s in chosen:
            print(f"bench: {s.name}: {s.summary} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            tries = sorted(
                (run_scenario(s, emu, env, Path(tmp)) for _ in range(s.runs)),
                key=lambda r: r.child.wall / r.bound if r.bound > 0 else r.child.wall,
            )
            failed = [r for r in tries if not r.ok]
            row = failed[0] if failed else tries[len(tries) // 2]  # a failure is never hidden
            row.ratios = [r.ratio for r in tries if r.ratio is not None]
            rows.append(row)
            print(
                f"bench: {s.name}: wall {row.child.wall:.2f} s, lower bound {row.bound:.2f} s,"
                f" exit {row.child.code} ({time.perf_counter() - started:.0f} s with seeding)",
                file=sys.stderr,
                flush=True,
            )
        if not args.only or "startup" in args.only:
            startup = startup_seconds(env)
        if not args.only or "cat" in args.only:
            print("bench: cat: one large archived day read back ...", file=sys.stderr, flush=True)
            cat_row = run_cat(emu, env, Path(tmp))

    if rows:
        print(table(rows))
        print()
        print("\n".join(notes(rows)))
    if startup is not None:
        print(
            f"- startup: `log-exporter --help` {startup[0]:.3f} s, "
            f"`log-exporter run --help` {startup[1]:.3f} s (median of 7); target < 0.5 s."
        )
    if cat_row is not None:
        print("\n".join(cat_row.render()))
    return 0 if all(r.ok for r in rows) and (cat_row is None or cat_row.ok) else 1


if __name__ == "__main__":
    sys.exit(main())
