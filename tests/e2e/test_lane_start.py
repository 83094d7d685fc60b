"""How a lane starts, against the emulator server, with the engine in this process: what it reads
before its first task, the lease taken with the first intent, and the logs client its region's
lanes share (each call signing as its own lane)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from botocore.exceptions import NoCredentialsError

from emulator import Emulator, seed
from emulator.scenario import REGION, role_arn
from log_exporter.aws.sessions import SessionFactory
from log_exporter.aws.state_store import StateStore
from log_exporter.core.config import Config, parse_config
from log_exporter.core.plan import SkipReason
from log_exporter.core.state import LaneState, state_key
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, to_ms
from log_exporter.engine import Engine, RunOptions, RunReport

A, B = "121212121212", "343434343434"
BUCKET = "lane-start-archive"
WRITTEN, SILENT, EARLY = "/app/written", "/app/silent", "/app/early"
H = MS_PER_HOUR


def config(*accounts: str) -> Config:
    return parse_config(
        {
            "destination": {"bucket": BUCKET, "prefix": "logs", "settle": "0"},
            "accounts": [
                {
                    "name": f"acct-{a}",
                    "role": role_arn(a),
                    "regions": [REGION],
                    "groups": ["/app/*"],
                }
                for a in accounts
            ],
        }
    )


def days() -> tuple[int, int, int]:
    """The three UTC days before today, as the ms of their midnights."""
    d0 = to_ms(datetime.now(UTC).date() - timedelta(days=3))
    return d0, d0 + MS_PER_DAY, d0 + 2 * MS_PER_DAY


def seed_groups(account: str) -> tuple[int, int, int]:
    """WRITTEN: events on each of the three days, in one stream (its first event on day 0, its
    last on day 2); SILENT: created on day 0, no stream; EARLY: written on day 0 only."""
    d0, d1, d2 = days()
    for group in (WRITTEN, SILENT, EARLY):
        seed.create_group(account, REGION, group, d0)
    seed.put_events(
        account, REGION, WRITTEN, "s", [(d0 + H, "a"), (d1 + 12 * H, "b"), (d2 + 23 * H, "c")]
    )
    seed.put_events(account, REGION, EARLY, "s", [(d0 + 5 * H, "only")])
    return d0, d1, d2


def days_start() -> date:
    return datetime.fromtimestamp(days()[0] / 1000, UTC).date()


def run(config: Config) -> RunReport:
    report = Engine(config, SessionFactory(region=REGION)).run(RunOptions(start=days_start()))
    assert report.ok, [(r.error, r.failed) for r in report.lanes]
    return report


def state_path(account: str) -> str:
    return f"/{BUCKET}/{state_key('logs', account, REGION)}"


def test_a_first_run_reads_streams_only_where_there_is_work_and_probes_only_unknown_days(
    aws_env: None, emu: Emulator
) -> None:
    seed_groups(A)
    before = emu.calls

    report = run(config(A))

    calls = emu.calls - before
    lane = report.lanes[0]
    assert sorted((t.group, t.from_ms) for t in emu.tasks) == sorted(
        [(WRITTEN, d) for d in days()] + [(EARLY, days()[0])]
    )
    # one DescribeLogStreams per group with windows to do; days holding the newest stream's
    # first or last event need no probe, so only WRITTEN's middle day is probed
    assert calls[("logs", "DescribeLogStreams")] == 3
    assert calls[("logs", "FilterLogEvents")] == 1
    reasons = Counter(s.reason for s in lane.skipped)
    assert reasons[SkipReason.NO_STREAMS] == 1  # SILENT, its whole range in one skip
    assert {(s.group, s.reason) for s in lane.skipped} >= {
        (SILENT, SkipReason.NO_STREAMS),
        (EARLY, SkipReason.NO_WRITES),
    }
    # an empty archive: no read of the lane's state; its lease went with the first intent
    state_calls = emu.s3_calls(state_path(A))
    assert state_calls["GetObject"] == 0
    assert state_calls["PutObject"] == len(emu.tasks) + 1  # one intent each, then the release


def test_the_state_remembers_each_groups_task_duration_for_the_next_run(
    aws_env: None, emu: Emulator
) -> None:
    seed_groups(A)
    run(config(A))
    state = StateStore(SessionFactory(region=REGION).s3(), BUCKET, "logs").load(A, REGION)
    assert set(state.durations) == {WRITTEN, EARLY}  # the groups that had tasks
    assert all(0 < s < 5 for s in state.durations.values())  # the emulator's tasks: ~0.1 s


def test_a_rerun_with_nothing_to_do_reads_the_state_and_writes_nothing(
    aws_env: None, emu: Emulator
) -> None:
    seed_groups(A)
    run(config(A))
    tasks, before, state_before = len(emu.tasks), emu.calls, emu.s3_calls(state_path(A))

    report = run(config(A))

    assert len(emu.tasks) == tasks
    assert report.lanes[0].tasks_created == 0
    state_calls = emu.s3_calls(state_path(A)) - state_before
    # the run's layout check reads the first state it lists, then the lane reads its own
    assert state_calls == Counter({"GetObject": 2})
    calls = emu.calls - before
    # SILENT and EARLY still have unarchived days in range, so their streams are read again
    # (and say there is nothing to do); WRITTEN is archived and is not asked about
    assert calls[("logs", "DescribeLogStreams")] == 2
    assert calls[("logs", "FilterLogEvents")] == 0
    assert calls[("logs", "CreateExportTask")] == 0


def test_a_lane_that_loses_the_race_for_its_first_write_starts_over_and_creates_nothing(
    aws_env: None, emu: Emulator
) -> None:
    """Runner B plans a new lane while runner A exports all of it: B's first write (its lease
    and first intent) finds A's state, so B starts over, reads it and has nothing left."""
    seed_groups(A)
    cfg = config(A)
    first = Engine(cfg, SessionFactory(region=REGION), owner="runner-a")
    raced: list[RunReport] = []

    class RacingStore(StateStore):
        def save(self, state: LaneState) -> None:
            if not raced:
                raced.append(first.run(RunOptions(start=days_start())))
            super().save(state)

    class Second(Engine):
        def store(self, bucket: str | None = None) -> StateStore:
            return RacingStore(self._archive_s3(bucket), BUCKET, "logs")

    second = Second(cfg, SessionFactory(region=REGION), owner="runner-b")
    report = second.run(RunOptions(start=days_start()))

    assert raced and raced[0].ok
    assert raced[0].lanes[0].tasks_created == 4
    assert report.ok, [(r.error, r.failed) for r in report.lanes]
    assert report.lanes[0].tasks_created == 0
    assert report.lanes[0].archived == []
    per_window = Counter((t.group, t.from_ms) for t in emu.tasks)
    assert len(per_window) == 4 and set(per_window.values()) == {1}
    state = StateStore(SessionFactory(region=REGION).s3(), BUCKET, "logs").load(A, REGION)
    assert state.lease_owner is None and state.intents == []


def test_lanes_share_one_logs_client_and_each_call_signs_as_its_own_lane(
    aws_env: None, emu: Emulator
) -> None:
    for account, n in ((A, 3), (B, 1)):
        for i in range(n):
            seed.create_group(account, REGION, f"/app/{account}-{i}")
    factory = SessionFactory(region=REGION)
    lanes = {
        a: factory.lane_clients(factory.account_credentials([role_arn(a)]), a, REGION)
        for a in (A, B)
    }
    assert lanes[A].logs._client is lanes[B].logs._client  # type: ignore[attr-defined]

    def names(account: str) -> list[str]:
        pages = (
            lanes[account]
            .logs.get_paginator("describe_log_groups")
            .paginate(
                PaginationConfig={"PageSize": 1}  # every page is a request of its own
            )
        )
        return [g["logGroupName"] for page in pages for g in page["logGroups"]]

    assert names(A) == [f"/app/{A}-{i}" for i in range(3)]
    assert names(B) == [f"/app/{B}-0"]
    assert [g["logGroupName"] for g in lanes[B].logs.describe_log_groups()["logGroups"]] == [
        f"/app/{B}-0"
    ]
    # the shared client called directly belongs to no lane: it signs as nobody
    with pytest.raises(NoCredentialsError):
        lanes[A].logs._client.describe_log_groups()  # type: ignore[attr-defined]


def test_each_lane_counts_and_spends_only_its_own_retries(aws_env: None, emu: Emulator) -> None:
    factory = SessionFactory(region=REGION)
    a, b = (
        factory.lane_clients(factory.account_credentials([role_arn(x)]), x, REGION) for x in (A, B)
    )
    emu.unavailable_burst(2, services=("logs",), operations=("DescribeLogGroups",))

    a.logs.describe_log_groups()
    b.logs.describe_log_groups()

    assert (a.retries.count, b.retries.count) == (2, 0)


def test_a_lane_stopped_before_reading_its_groups_counts_each_as_one_window_left(
    aws_env: None, emu: Emulator
) -> None:
    """Windows of a group whose streams were not read yet may be years of nothing: until they
    are read, the group counts as one window left (enough for a Lambda worker to requeue the
    lane), not as every day since it was created."""
    seed_groups(A)
    engine = Engine(config(A), SessionFactory(region=REGION))
    report = engine.run(RunOptions(start=days_start(), deadline=time.time() - 1))

    lane = report.lanes[0]
    assert lane.error is None and lane.tasks_created == 0
    assert lane.remaining == 3  # WRITTEN, SILENT, EARLY: 9 windows planned, none read
    assert emu.calls[("logs", "DescribeLogStreams")] == 0
