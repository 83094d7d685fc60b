"""Fault-injection fixtures: the end-to-end emulator server and `log-exporter` process, plus
worlds of many accounts and the checks every fault test ends with (nothing lost, nothing twice).

The `server` and `exporter` fixtures are the end-to-end ones; `emu` is the Lambda suite's, which
installs the emulator for each test and uninstalls it afterwards: several suites may share one
pytest worker process, and moto consults whichever emulator was installed last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, World, archived, day_ms, edge_events, misplaced
from tests.deploy.conftest import _restore_core_logger, aws, emu, queue_url
from tests.e2e.conftest import EXPORTER, Exporter, Result, exporter, server

# the end-to-end fixtures, and the Lambda suite's (boto3 in this process talks to the emulator)
__all__ = [
    "EXPORTER",
    "Exporter",
    "Result",
    "_restore_core_logger",
    "aws",
    "emu",
    "exporter",
    "queue_url",
    "server",
]

GROUPS = ("/aws/lambda/api", "vpc-flow-logs")
LEASE = "1"  # seconds: a killed run's lease blocks the next run this long (default 120)


def account_ids(base: int, n: int) -> list[str]:
    return [f"{base + i:012d}" for i in range(n)]


def seed_world(
    bucket: str,
    accounts: Sequence[str],
    *,
    groups: Sequence[str] = GROUPS,
    days: int = 3,
    today: date | None = None,
    world: World | None = None,
) -> World:
    """`days` days (ending yesterday, UTC) of edge events in each group of each account, plus an
    excluded group; the bucket is created in the ambient account."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days)
    seed.create_bucket(bucket, REGION)
    world = world or World(bucket, REGION)
    for n, account in enumerate(accounts):
        for group in groups:
            seed.create_group(account, REGION, group, day_ms(first) + 3_600_000)
            for i in range(days):
                d = first + timedelta(days=i)
                stream = f"{d:%Y/%m/%d}/[$LATEST]{n}{i}" if "lambda" in group else "eni-0abc-all"
                world.add(account, group, stream, edge_events(d, f"{account}{group}"))
        seed.put_events(account, REGION, "/aws/lambda/x-test", "s", edge_events(first, "excluded"))
    return world


def task_folders(bucket: str, prefix: str) -> Counter[tuple[str, str, str]]:
    """How many distinct task folders each (account, group, day) has in the archive."""
    _, events = archived(bucket, f"{prefix}/" if prefix else "")
    seen = {(e.account_id, e.group, e.day, e.task_id) for e in events}
    return Counter((a, g, d) for a, g, d, _ in seen)


def tasks_per_window(emu: Emulator, accounts: Sequence[str]) -> Counter[tuple[str, str, int, int]]:
    """How many export tasks were created for each (account, group, from, to)."""
    return Counter(
        (t.account_id, t.group, t.from_ms, t.to_ms)
        for t in emu.tasks
        if t.account_id in accounts and not t.foreign
    )


def assert_complete(
    world: World,
    prefix: str,
    accounts: Sequence[str],
    *,
    groups: Sequence[str] = GROUPS,
    emu: Emulator | None = None,
) -> None:
    """Every event of `accounts` archived exactly once, in its own day, one task folder per
    (account, group, day); with `emu`, also no more than one task COMPLETED per window."""
    got, events = archived(world.bucket, f"{prefix}/" if prefix else "")
    got = Counter({k: v for k, v in got.items() if k[0] in accounts})
    expected = world.expected(groups=groups, accounts=accounts)
    lost = expected - got
    twice = got - expected
    assert not lost, f"lost {sum(lost.values())} events, e.g. {sorted(lost)[:3]}"
    assert not twice, f"{sum(twice.values())} events archived twice, e.g. {sorted(twice)[:3]}"
    assert misplaced([e for e in events if e.account_id in accounts]) == []
    folders = {k: v for k, v in task_folders(world.bucket, prefix).items() if k[0] in accounts}
    assert set(folders.values()) == {1}, {k: v for k, v in folders.items() if v != 1}
    if emu is not None:
        done = Counter(
            (t.account_id, t.group, t.from_ms)
            for t in emu.tasks
            if t.account_id in accounts and t.status == "COMPLETED" and not t.foreign
        )
        assert set(done.values()) == {1}, {k: v for k, v in done.items() if v != 1}


def read_state(bucket: str, prefix: str, account_id: str, region: str = REGION) -> dict[str, Any]:
    """A lane's state object, read straight from moto (no request, no injected fault)."""
    partition, owner = s3_backends.bucket_accounts[bucket]
    fake = s3_backends[owner][partition].get_bucket(bucket)
    key = "/".join(p for p in (prefix, ".log-exporter", account_id, f"{region}.json") if p)
    obj = fake.keys.get(key)
    assert obj is not None, f"no state object at {key}"
    data: dict[str, Any] = json.loads(obj.value)
    return data


def covered_days(state: dict[str, Any], group: str) -> int:
    """Whole days covered for `group` in a state object."""
    return sum((b - a + 1) // 86_400_000 for a, b in state.get("covered", {}).get(group, []))
