"""The archive bucket's policy removed halfway, a log group deleted during the run, and a group
with thousands of streams: clear errors, a state that records exactly what was archived, and
an archive without a lost or doubled event once the cause is gone."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.faults import FaultMiddleware
from emulator.scenario import REGION, World, archived, config_yaml, day_ms, edge_events
from log_exporter.core.policy import Target, bucket_policy

from .conftest import (
    GROUPS,
    LEASE,
    Exporter,
    account_ids,
    assert_complete,
    covered_days,
    read_state,
    seed_world,
    task_folders,
    tasks_per_window,
)

Key = tuple[str, str, str, int, str]  # (account, group key, stream, timestamp, message)


def _when(condition: Callable[[], bool], action: Callable[[], None]) -> threading.Thread:
    """Run `action` in a thread as soon as `condition` holds (checked every 10 ms, 60 s at most)."""

    def run() -> None:
        for _ in range(6000):
            if condition():
                action()
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _s3(bucket: str) -> object:
    partition, owner = s3_backends.bucket_accounts[bucket]
    return s3_backends[owner][partition]


def test_bucket_policy_removed_halfway(emu: Emulator, exporter: Exporter) -> None:
    bucket, prefix = "policy-archive", "pol"
    accounts = account_ids(950_000_000_000, 2)
    world = seed_world(bucket, accounts, days=3)
    policy = json.dumps(bucket_policy(bucket, prefix, [Target(a, REGION) for a in accounts]))
    backend = _s3(bucket)
    backend.put_bucket_policy(bucket, policy.encode())  # type: ignore[attr-defined]
    emu.require_bucket_policy = True
    emu.task_timing(base=0.2)
    cfg = exporter.config(config_yaml(bucket, accounts, prefix=prefix))

    def completed() -> bool:
        return sum(t.status == "COMPLETED" for t in emu.tasks) >= 4

    remover = _when(completed, lambda: backend.delete_bucket_policy(bucket))  # type: ignore[attr-defined]
    first = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    remover.join(timeout=60)

    assert first.code == 1, first.output
    assert "Traceback" not in first.output and "unexpected" not in first.output
    assert f"the policy of bucket {bucket} does not let logs.{REGION}.amazonaws.com" in first.output
    # the state holds exactly what is in the archive: every covered day has its one complete
    # task folder, no other folder exists (partial output of refused tasks was removed)
    got, _ = archived(bucket, f"{prefix}/")
    expected = world.expected(groups=GROUPS, accounts=accounts)
    assert not (got - expected)
    folders = task_folders(bucket, prefix)
    assert set(folders.values()) <= {1}
    for account in accounts:
        state = read_state(bucket, prefix, account)
        assert state["lease"]["owner"] is None
        assert state["intents"] == []
        for group in GROUPS:
            in_archive = {d for (a, g, d) in folders if a == account and g == group.lstrip("/")}
            assert covered_days(state, group) == len(in_archive)
            for day in in_archive:  # each archived day is whole
                assert day_events(got, account, group, day) == day_events(
                    expected, account, group, day
                )
    assert 4 <= sum(folders.values()) < len(expected) // 5

    backend.put_bucket_policy(bucket, policy.encode())  # type: ignore[attr-defined]
    second = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert second.code == 0, second.output
    assert_complete(world, prefix, accounts, emu=emu)


def day_events(events: Counter[Key], account: str, group: str, day: str) -> Counter[Key]:
    """The events of one (account, group, UTC day) of a multiset from `World.expected` or
    `archived`."""
    return Counter(
        {
            k: n
            for k, n in events.items()
            if k[0] == account
            and k[1] == group.lstrip("/")
            and datetime.fromtimestamp(k[3] / 1000, UTC).strftime("%Y-%m-%d") == day
        }
    )


def test_a_log_group_deleted_during_the_run(emu: Emulator, exporter: Exporter) -> None:
    bucket, prefix = "deleted-archive", "del"
    (account,) = account_ids(960_000_000_000, 1)
    groups = ("/aws/lambda/api", "/aws/lambda/gone", "vpc-flow-logs")
    world = seed_world(bucket, [account], groups=groups, days=3)
    emu.task_timing(base=0.2)
    cfg = exporter.config(config_yaml(bucket, [account], prefix=prefix))

    def first_gone_task_done() -> bool:
        return any(t.group == "/aws/lambda/gone" and t.status == "COMPLETED" for t in emu.tasks)

    deleter = _when(
        first_gone_task_done,
        lambda: logs_backends[account][REGION].delete_log_group("/aws/lambda/gone"),
    )
    first = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
    deleter.join(timeout=60)

    assert first.code == 1, first.output
    assert "log group /aws/lambda/gone was deleted; skipping it" in first.output
    assert "/aws/lambda/gone" in first.stdout and "no longer exists" in first.stdout
    assert "Traceback" not in first.output and "unexpected" not in first.output
    kept = ("/aws/lambda/api", "vpc-flow-logs")
    got, _ = archived(bucket, f"{prefix}/")
    expected = world.expected(accounts=[account])
    assert not (got - expected)  # nothing twice, no partial output left behind
    gone_days = {k for k in got if k[1] == "aws/lambda/gone"}
    assert gone_days  # what was archived before the deletion stays
    state = read_state(bucket, prefix, account)
    assert covered_days(state, "/aws/lambda/gone") >= 1
    assert all(covered_days(state, g) == 3 for g in kept)
    assert state["intents"] == []
    before = len(emu.tasks)

    second = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert second.code == 0, second.output
    assert len(emu.tasks) == before  # nothing left to do: the group is gone, the rest archived
    got, _ = archived(bucket, f"{prefix}/")
    assert {k for k in got if k[1] != "aws/lambda/gone"} == set(world.expected(groups=kept))


def test_a_group_with_thousands_of_streams(emu: Emulator, exporter: Exporter) -> None:
    """3000 streams (Lambda-style nested names) in one day; the first try fails after writing
    half of them, so cleaning it up takes more than one page of ListObjects/DeleteObjects."""
    bucket, prefix = "streams-archive", "many"
    (account,) = account_ids(970_000_000_000, 1)
    group = "/aws/lambda/busy"
    day = datetime.now(UTC).date() - timedelta(days=1)
    seed.create_bucket(bucket, REGION)
    seed.create_group(account, REGION, group, day_ms(day))
    world = World(bucket, REGION)
    for i in range(3000):
        stream = f"{day:%Y/%m/%d}/[$LATEST]{i:05d}"
        world.add(account, group, stream, [(day_ms(day) + i * 1000, f"event {i}")])
    world.add(account, group, "edges", edge_events(day, "edge"))
    emu.fail_tasks(1, account_id=account, partial=True)
    cfg = exporter.config(config_yaml(bucket, [account], prefix=prefix))

    result = exporter("run", "--config", str(cfg), "--start", str(day))

    assert result.code == 0, result.output
    assert "removed 1500 partial objects" in result.output
    failed = [t for t in emu.tasks if t.status == "FAILED"]
    assert len(failed) == 1 and len(failed[0].objects) == 1500
    assert_complete(world, prefix, [account], groups=[group], emu=emu)
    assert tasks_per_window(emu, [account]) == {
        (account, group, day_ms(day), day_ms(day) + 86_399_999): 2
    }


def test_a_state_write_whose_answer_is_lost(
    emu: Emulator, exporter: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 stores a conditional PUT of the lane's state but the answer never arrives (500, as
    after a broken connection); botocore sends it again and S3 refuses the repeat (412: the
    ETag changed, by that very write). The lane must see its own write, not another runner."""
    bucket, prefix = "lost-archive", "lost"
    accounts = account_ids(975_000_000_000, 1)
    world = seed_world(bucket, accounts, days=3)
    cfg = exporter.config(config_yaml(bucket, accounts, prefix=prefix))
    original = FaultMiddleware.__call__
    state_puts: list[str] = []

    def losing_answers(
        self: FaultMiddleware, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "PUT" and "/.log-exporter/" in path:
            state_puts.append(path)
            if len(state_puts) in (3, 6):  # the write lands, its answer is lost
                b"".join(original(self, environ, lambda *a: lambda data: None))
                start_response("500 Internal Server Error", [("Content-Type", "application/xml")])
                return [b"<Error><Code>InternalError</Code><Message>lost</Message></Error>"]
        return original(self, environ, start_response)

    monkeypatch.setattr(FaultMiddleware, "__call__", losing_answers)

    result = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert result.code == 0, result.output
    assert len(state_puts) > 6
    assert_complete(world, prefix, accounts, emu=emu)
    assert set(tasks_per_window(emu, accounts).values()) == {1}
    assert read_state(bucket, prefix, accounts[0])["lease"]["owner"] is None
