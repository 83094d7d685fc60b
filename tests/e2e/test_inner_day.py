"""Inner-day runs, the settle delay and hourly periods, end to end against the emulator server.

The engine runs in-process with an injected clock (a chosen instant a few days ago that then
advances with real time), so a test can run at 06:00, 12:00 and 18:00 of one day and again after
it settled, while real time drives the emulator's task durations. The CLI process, which has
the real clock, is tested with `--through now --settle 0`.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from emulator import Emulator, TaskRecord, seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, World, archived, role_arn
from log_exporter.aws.sessions import SessionFactory
from log_exporter.aws.state_store import StateStore
from log_exporter.core.config import Config, parse_config
from log_exporter.core.plan import SkipReason
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Window, from_ms, to_ms
from log_exporter.engine import Engine, RunOptions, RunReport

from .conftest import Exporter

A = "111111111111"
BUCKET = "custodian-log-archive"
API, VPC = "/aws/lambda/api", "vpc-flow-logs"
H, M = MS_PER_HOUR, 60_000


class Clock:
    """Real time moved to a chosen instant: the first reading after `at(ms)` is exactly `ms`,
    later ones advance with real time, so leases, polling and task durations behave."""

    def __init__(self) -> None:
        self._target = 0.0
        self._t0: float | None = None

    def at(self, ms: int) -> Clock:
        assert ms % 1000 == 0  # whole seconds are exact as float seconds
        self._target = ms / 1000
        self._t0 = None
        return self

    def __call__(self) -> float:
        now = time.time()
        if self._t0 is None:
            self._t0 = now
        return self._target + (now - self._t0)


def make_config(*, period: str = "day", settle: str = "1h", **destination: Any) -> Config:
    return parse_config(
        {
            "destination": {
                "bucket": BUCKET,
                "prefix": "logs",
                "period": period,
                "settle": settle,
                **destination,
            },
            "accounts": [
                {
                    "name": "prod",
                    "role": role_arn(A),
                    "regions": [REGION],
                    "groups": ["/aws/lambda/*", VPC],
                }
            ],
        }
    )


def run_at(config: Config, clock: Clock, ms: int, **options: Any) -> RunReport:
    engine = Engine(config, SessionFactory(region=REGION), clock=clock.at(ms))
    report = engine.run(RunOptions(**options))
    assert report.ok, [(r.error, r.failed) for r in report.lanes]
    return report


def ours(emu: Emulator, group: str) -> list[TaskRecord]:
    return sorted((t for t in emu.tasks if t.group == group), key=lambda t: t.from_ms)


def windows(tasks: list[TaskRecord]) -> list[Window]:
    return [Window(t.from_ms, t.to_ms) for t in tasks]


def assert_back_to_back(tasks: list[TaskRecord]) -> None:
    """No task's window overlaps another's, and none leaves a gap: fromTime = previous to + 1."""
    for a, b in pairwise(tasks):
        assert b.from_ms == a.to_ms + 1, (windows([a]), windows([b]))


def covered(config: Config, group: str) -> list[tuple[int, int]]:
    s3 = SessionFactory(region=REGION).s3()
    state = StateStore(s3, BUCKET, config.destination.prefix).load(A, REGION)
    return state.covered[group].spans


def new_tasks(emu: Emulator, before: int) -> list[tuple[str, Window]]:
    return [(t.group, Window(t.from_ms, t.to_ms)) for t in emu.tasks[before:]]


def test_inner_day_runs_then_settled_run_export_each_event_once(
    aws_env: None, emu: Emulator
) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    d1 = d0 + MS_PER_DAY
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0)
    seed.create_group(A, REGION, VPC, d0)

    def arrive(*stamps: int, groups: tuple[str, ...] = (API, VPC)) -> None:
        for g in groups:
            stream = "2026/11/01/[$LATEST]abc" if g == API else "eni-0abc-all"
            world.add(A, g, stream, [(ts, f"{g} at {from_ms(ts):%H:%M:%S.%f}") for ts in stamps])

    config = make_config(settle="1h")
    clock = Clock()

    # 06:00, settle 1h: the day up to 05:00; an event at 05:30 has arrived but is not settled
    arrive(d0, d0 + 1, d0 + 3 * H, d0 + 5 * H - 1, d0 + 5 * H + 30 * M)
    first = run_at(config, clock, d0 + 6 * H, partial=True)
    assert new_tasks(emu, 0) == [(g, Window(d0, d0 + 5 * H - 1)) for g in (API, VPC)]
    held = [s.window for s in first.lanes[0].skipped if s.reason == SkipReason.NOT_SETTLED]
    assert Window(d0 + 5 * H, d1 - 1) in held

    # 12:00: from the previous `to` + 1 ms (05:00:00.000 exactly) up to 11:00
    arrive(d0 + 5 * H, d0 + 8 * H, d0 + 11 * H - 1)
    before = len(emu.tasks)
    run_at(config, clock, d0 + 12 * H, partial=True)
    assert new_tasks(emu, before) == [(g, Window(d0 + 5 * H, d0 + 11 * H - 1)) for g in (API, VPC)]

    # 18:00: nothing arrived for VPC in this piece: it is probed empty, recorded, and gets no task
    arrive(d0 + 11 * H, d0 + 15 * H, d0 + 17 * H - 1, groups=(API,))
    before = len(emu.tasks)
    run_at(config, clock, d0 + 18 * H, partial=True)
    assert new_tasks(emu, before) == [(API, Window(d0 + 11 * H, d0 + 17 * H - 1))]

    # the evening's events, and the first ones of the next day
    arrive(d0 + 17 * H, d0 + 23 * H, d1 - 1, d1, d1 + 20 * M)

    # 00:30 next day, a run without --through: the day ended only 30 minutes ago (< settle)
    before = len(emu.tasks)
    fresh = run_at(config, clock, d1 + 30 * M)
    assert len(emu.tasks) == before
    held = [s.window for s in fresh.lanes[0].skipped if s.reason == SkipReason.NOT_SETTLED]
    assert held == [Window(d0 + 17 * H, d1 - 1)] * 2

    # 01:00 next day: the day settled; its remainder is exported, the next day is not in range
    run_at(config, clock, d1 + H)
    assert new_tasks(emu, before) == [(g, Window(d0 + 17 * H, d1 - 1)) for g in (API, VPC)]

    got, events = archived(BUCKET, "logs")
    day0 = Counter({k: n for k, n in world.expected().items() if k[3] < d1})
    assert got == day0  # every event of the day exactly once, none of the next day yet
    assert sum(day0.values()) == 14 + 11
    assert {e.day for e in events} == {f"{from_ms(d0):%Y-%m-%d}"}  # all in that day's folder
    folders = Counter((e.group, e.task_id) for e in events)
    assert Counter(g for g, _ in folders) == {API.lstrip("/"): 4, VPC: 3}  # a folder per piece
    assert_back_to_back(ours(emu, API))
    assert windows(ours(emu, VPC)) == [  # the piece without events got no task
        Window(d0, d0 + 5 * H - 1),
        Window(d0 + 5 * H, d0 + 11 * H - 1),
        Window(d0 + 17 * H, d1 - 1),
    ]
    for g in (API, VPC):
        assert covered(config, g) == [(d0, d1 - 1)]  # the day is archived whole

    # a rerun creates no task: the pieces cover the day
    before = len(emu.tasks)
    run_at(config, clock, d1 + 2 * H)
    assert len(emu.tasks) == before


def test_hourly_archive_across_a_day_boundary(aws_env: None, emu: Emulator) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    d1 = d0 + MS_PER_DAY
    world = World(BUCKET)
    seed.create_group(A, REGION, API, d0 + 20 * H)

    def arrive(*stamps: int) -> None:
        world.add(
            A, API, "s/[$LATEST]1", [(ts, f"at {from_ms(ts):%d %H:%M:%S.%f}") for ts in stamps]
        )

    config = make_config(period="hour", settle="10m")
    clock = Clock()

    arrive(d0 + 20 * H, d0 + 20 * H + 30 * M, d0 + 22 * H + 20 * M - 1, d0 + 22 * H + 25 * M)
    run_at(config, clock, d0 + 22 * H + 30 * M, partial=True)  # cutoff 22:20; 21:00 is empty
    arrive(
        d0 + 22 * H + 20 * M,
        d0 + 23 * H - 1,
        d0 + 23 * H,
        d1 - 1,
        d1,
        d1 + 35 * M - 1,
    )
    run_at(config, clock, d1 + 45 * M, partial=True)  # cutoff 00:35, across midnight
    arrive(d1 + 35 * M, d1 + H - 1, d1 + H, d1 + H + 10 * M - 1, d1 + H + 15 * M)
    run_at(config, clock, d1 + H + 20 * M, partial=True)  # cutoff 01:10
    arrive(d1 + H + 40 * M, d1 + 2 * H - 1, d1 + 2 * H + 5 * M)

    before = len(emu.tasks)
    run_at(config, clock, d1 + 2 * H + 9 * M)  # hour 01 ended 9 minutes ago: held back
    assert len(emu.tasks) == before
    run_at(config, clock, d1 + 2 * H + 10 * M)  # settled: its remainder; hour 02 waits

    assert windows(ours(emu, API)) == [
        Window(d0 + 20 * H, d0 + 21 * H - 1),
        Window(d0 + 22 * H, d0 + 22 * H + 20 * M - 1),
        Window(d0 + 22 * H + 20 * M, d0 + 23 * H - 1),
        Window(d0 + 23 * H, d1 - 1),
        Window(d1, d1 + 35 * M - 1),
        Window(d1 + 35 * M, d1 + H - 1),
        Window(d1 + H, d1 + H + 10 * M - 1),
        Window(d1 + H + 10 * M, d1 + 2 * H - 1),
    ]
    got, events = archived(BUCKET, "logs")
    expected = Counter({k: n for k, n in world.expected().items() if k[3] < d1 + 2 * H})
    assert got == expected and sum(got.values()) == 17  # each event once; 02:05 not yet
    for e in events:  # each event in the folder of its own UTC day and hour
        t = from_ms(e.timestamp_ms)
        assert (e.day, e.hour) == (f"{t:%Y-%m-%d}", t.hour), e.key
    assert Counter(hour for hour, _ in {(e.hour, e.task_id) for e in events}) == {
        20: 1,
        22: 2,
        23: 1,
        0: 2,
        1: 2,
    }
    assert covered(config, API) == [(d0 + 20 * H, d1 + 2 * H - 1)]  # the empty hour 21 too


def test_switching_an_archive_between_day_and_hour_is_refused(
    exporter: Exporter, emu: Emulator
) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    seed.put_events(A, REGION, API, "s", [(to_ms(yesterday) + 5, "hello")])
    daily = exporter.config(config_text("day"), "daily.yml")
    assert exporter("run", "--config", str(daily)).code == 0
    created = len(emu.tasks)
    hourly = exporter.config(config_text("hour"), "hourly.yml")

    result = exporter("run", "--config", str(hourly))

    assert result.code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"log-exporter: error: s3://{BUCKET}/logs is archived by day, but destination.period "
        "is 'hour'; switching would mix two folder layouts in one archive: keep period 'day', "
        "or give the new layout its own destination.prefix"
    ]
    assert len(emu.tasks) == created  # refused before any lane started
    other = exporter.config(config_text("hour", prefix="hourly"), "other.yml")
    assert exporter("run", "--config", str(other)).code == 0  # a new prefix is fine
    assert len(emu.tasks) == created + 1  # the one hour with an event


def config_text(period: str, prefix: str = "logs", extra: str = "") -> str:
    return (
        f"destination:\n  bucket: {BUCKET}\n  prefix: {prefix}\n  period: {period}\n"
        f'  settle: "0"\n{extra}accounts:\n  - name: prod\n    role: "{role_arn(A)}"\n'
        f"    regions: [{REGION}]\n    groups: ['/aws/*']\n"
    )


def wait_past_midnight(margin_s: float = 20.0) -> None:
    """Both runs must see the same UTC day."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if (midnight - now).total_seconds() < margin_s:
        time.sleep((midnight - now).total_seconds() + 0.5)


def test_cli_through_now_then_config_through_now(exporter: Exporter, emu: Emulator) -> None:
    wait_past_midnight()
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    t0, y0 = to_ms(today), to_ms(yesterday)
    now_ms = int(time.time() * 1000)
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    world = World(BUCKET)
    seed.create_group(A, REGION, API, y0)
    world.add(A, API, "s", [(y0, "y first"), (t0 - 1, "y last"), (t0, "t first")])
    world.add(A, API, "s", [(t0 + 1, "t second"), (now_ms - 1000, "t recent")])

    cfg = exporter.config(config_text("day").replace('settle: "0"', "settle: 12h"))
    first = exporter("run", "--config", str(cfg), "--through", "now", "--settle", "0")

    assert first.code == 0, first.output
    tasks = ours(emu, API)
    assert [t.from_ms for t in tasks] == [y0, t0]
    assert tasks[0].to_ms == t0 - 1  # yesterday whole
    cut = tasks[1].to_ms + 1  # today up to the run's now (minus settle 0)
    assert now_ms <= cut <= int(time.time() * 1000)
    got, _ = archived(BUCKET, "logs")
    assert got == world.expected()

    # later the same day, a scheduled run with `destination.through: now` in its config
    world.add(A, API, "s", [(cut, "t edge"), (cut + 1, "t after")])
    time.sleep(0.01)
    scheduled = exporter.config(config_text("day", extra="  through: now\n"), "scheduled.yml")
    second = exporter("run", "--config", str(scheduled))

    assert second.code == 0, second.output
    tasks = ours(emu, API)
    assert len(tasks) == 3 and tasks[2].from_ms == cut  # the previous `to` + 1 ms
    got, events = archived(BUCKET, "logs")
    assert got == world.expected()  # every event exactly once
    assert len({e.task_id for e in events if e.day == str(today)}) == 2
    assert all(e.day == f"{from_ms(e.timestamp_ms):%Y-%m-%d}" for e in events)
    # `--through DATE` is `--end DATE+1`; with --end too it is a usage error
    both = exporter("run", "--config", str(cfg), "--through", "now", "--end", str(today))
    assert both.code == 2 and "give --end or --through, not both" in both.stderr


def test_day_that_is_too_fresh_is_held_back(aws_env: None, emu: Emulator) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    seed.put_events(A, REGION, API, "s", [(d0 + 5, "early"), (d0 + MS_PER_DAY - 1, "late")])
    config = make_config(settle="12h")
    clock = Clock()

    fresh = run_at(config, clock, d0 + MS_PER_DAY + 12 * H - 1000)  # 11:59:59 the next day
    assert emu.tasks == []
    assert [s.reason for s in fresh.lanes[0].skipped] == [SkipReason.NOT_SETTLED]
    through = run_at(config, clock, d0 + MS_PER_DAY + 12 * H - 1000, partial=True)
    assert windows(ours(emu, API)) == [Window(d0, d0 + MS_PER_DAY - 1000 - 1)]
    assert through.lanes[0].archived
    run_at(config, clock, d0 + MS_PER_DAY + 12 * H)  # settled: the last second of the day
    assert windows(ours(emu, API))[-1] == Window(d0 + MS_PER_DAY - 1000, d0 + MS_PER_DAY - 1)
    got, _ = archived(BUCKET, "logs")
    assert sorted(k[3] for k in got.elements()) == [d0 + 5, d0 + MS_PER_DAY - 1]


class UncheckedEngine(Engine):
    """An engine without the archive-wide layout check, to reach each lane's own guard."""

    def check_layout(self, bucket: str | None = None) -> None:
        pass


def test_each_lane_guards_its_own_layout_too(aws_env: None, emu: Emulator) -> None:
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    seed.put_events(A, REGION, API, "s", [(d0 + 5, "early")])
    clock = Clock()
    run_at(make_config(period="hour", settle="0"), clock, d0 + MS_PER_DAY)
    created = len(emu.tasks)

    engine = UncheckedEngine(make_config(settle="0"), SessionFactory(region=REGION), clock=clock)
    report = engine.run(RunOptions())

    assert report.exit_code == 1 and len(emu.tasks) == created
    assert report.lanes[0].error == (
        f"prod/{REGION} in s3://{BUCKET}/logs is archived by hour, but destination.period is "
        "'day'; switching would mix two folder layouts in one archive: keep period 'hour', "
        "or give the new layout its own destination.prefix"
    )
