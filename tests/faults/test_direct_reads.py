"""Direct reads (`destination.strategy: read`/`auto`) under faults: SIGKILL at seeded moments of
a run (the next run deletes or completes the folder a killed read left), two runners at once,
lost PutObject answers, and throttled reads; each ends with the archive compared event by event
with what was seeded."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.s3.models import s3_backends

from emulator import Emulator
from emulator.scenario import REGION, World, config_yaml, day_ms, edge_events

from .conftest import LEASE, Exporter, account_ids, assert_complete, read_state, seed_world

TRIALS = int(os.environ.get("LOG_EXPORTER_FAULT_TRIALS", "20")) // 2
SEED = int(os.environ.get("LOG_EXPORTER_FAULT_SEED", "8"))
BUCKET = "direct-archive"
DAYS = 2
MARKER = ".log-exporter-read.json"


def read_config(prefix: str, accounts: list[str], strategy: str = "read", quota: int = 50) -> str:
    yaml = config_yaml(BUCKET, accounts, prefix=prefix)
    lines = f"  strategy: {strategy}\n  read_quota: {quota}\n"
    return yaml.replace("accounts:\n", lines + "accounts:\n", 1)


def busy_world(accounts: list[str], world: World | None = None) -> World:
    """The fault suite's world, with three more streams a day in the Lambda group, so a
    window's folder holds several objects and a kill can land between them."""
    world = seed_world(BUCKET, accounts, days=DAYS, world=world)
    first = datetime.now(UTC).date() - timedelta(days=DAYS)
    for account in accounts:
        for i in range(DAYS):
            d = first + timedelta(days=i)
            for s in range(3):
                stream = f"{d:%Y/%m/%d}/[$LATEST]more{s}"
                world.add(account, "/aws/lambda/api", stream, edge_events(d, f"{account}{s}"))
    return world


def bucket_keys(prefix: str) -> dict[str, bytes]:
    partition, owner = s3_backends.bucket_accounts[BUCKET]
    fake = s3_backends[owner][partition].get_bucket(BUCKET)
    return {
        k: fake.keys[k].value
        for k in list(fake.keys.keys())
        if k.startswith(prefix + "/") and hasattr(fake.keys.get(k), "value")
    }


def assert_folders_whole(prefix: str) -> None:
    """Every direct read's folder holds its marker and exactly the objects the marker lists."""
    keys = bucket_keys(prefix)
    folders: dict[str, set[str]] = {}
    for key in keys:
        if "/.log-exporter/" in key:
            continue
        parts = key.split("/")
        at = next(i for i, p in enumerate(parts) if len(p) == 36 and p.count("-") == 4)
        folder = "/".join(parts[: at + 1])
        folders.setdefault(folder, set()).add("/".join(parts[at + 1 :]))
    assert folders, "nothing archived"
    for folder, names in folders.items():
        assert MARKER in names, f"{folder} has no marker: {sorted(names)[:3]}"
        listed = set(json.loads(keys[f"{folder}/{MARKER}"])["objects"])
        assert names - {MARKER} == listed, f"{folder}: {sorted(names ^ listed)[:3]}"


def assert_done(prefix: str, accounts: list[str]) -> None:
    for account in accounts:
        state = read_state(BUCKET, prefix, account)
        assert state["intents"] == [] and state["failures"] == [], state
        assert state["lease"]["owner"] is None


def puts(emu: Emulator) -> int:
    return emu.calls[("s3", "PutObject")]


def test_killed_direct_reads_are_finished_by_the_next_run(
    emu: Emulator, exporter: Exporter
) -> None:
    world = World(BUCKET)
    trials = [account_ids(700_000_000_000 + 100 * i, 2) for i in range(TRIALS)]
    for accounts in trials:
        busy_world(accounts, world)
    # how many PutObjects one undisturbed run makes, to kill the trials anywhere in them
    before = puts(emu)
    probe = account_ids(790_000_000_000, 2)
    busy_world(probe, world)
    cfg = exporter.config(read_config("probe", probe), "probe.yml")
    assert exporter("run", "--config", str(cfg)).code == 0
    total = puts(emu) - before
    cut_short = 0
    for i, accounts in enumerate(trials):
        rng = random.Random(SEED * 1_000_003 + i)
        prefix = f"d{i:03d}"
        cfg = exporter.config(read_config(prefix, accounts), f"{prefix}.yml")
        start = puts(emu)
        at = rng.randrange(1, total)
        proc = exporter.popen("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)
        deadline = time.monotonic() + 60
        while puts(emu) - start < at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.01))
        proc.kill()
        proc.communicate(timeout=30)
        for account in accounts:
            try:
                state = read_state(BUCKET, prefix, account)
            except AssertionError:
                continue  # killed before its first write
            cut_short += sum(1 for x in state["intents"] if x.get("direct"))

        second = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

        assert second.code == 0, f"trial {i} (seed {SEED}): {second.output}"
        assert_complete(world, prefix, accounts)
        assert_folders_whole(prefix)
        assert_done(prefix, accounts)
    assert not emu.tasks  # not one export task
    assert cut_short >= 1  # some kills did land inside a direct read


def test_a_folder_a_killed_read_left_half_written_is_deleted_and_read_again(
    emu: Emulator, exporter: Exporter
) -> None:
    accounts = account_ids(710_000_000_000, 1)
    world = busy_world(accounts)
    cfg = exporter.config(read_config("half", accounts), "half.yml")
    assert exporter("run", "--config", str(cfg)).code == 0
    # Turn one finished read into one killed halfway: an object gone, its intent back, its
    # window not archived.
    key = "half/.log-exporter/" + accounts[0] + f"/{REGION}.json"
    state = read_state(BUCKET, "half", accounts[0])
    keys = bucket_keys("half")
    marker = next(k for k in sorted(keys) if k.endswith(MARKER) and "lambda" in k)
    folder = marker.rsplit("/", 1)[0]
    listed = json.loads(keys[marker])["objects"]
    assert len(listed) >= 2
    _delete(f"{folder}/{listed[-1]}")
    day = day_ms(datetime.strptime("/".join(folder.split("/")[-4:-1]), "%Y/%m/%d").date())
    window = [day, day + 86_400_000 - 1]
    state["covered"]["/aws/lambda/api"] = _minus(state["covered"]["/aws/lambda/api"], window)
    state["read"] = {}
    state["intents"] = [
        {
            "group": "/aws/lambda/api",
            "from": window[0],
            "to": window[1],
            "name": "n",
            "task_id": folder.rsplit("/", 1)[1],
            "since_ms": 0,
            "direct": True,
        }
    ]
    _put(key, json.dumps(state).encode())

    again = exporter("run", "--config", str(cfg))

    assert again.code == 0, again.output
    assert_complete(world, "half", accounts)
    assert_folders_whole("half")
    assert not any(k.startswith(folder + "/") for k in bucket_keys("half"))  # deleted
    assert_done("half", accounts)


def _minus(spans: list[list[int]], window: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in spans:
        if not (a <= window[1] and window[0] <= b):
            out.append([a, b])
        else:
            if a < window[0]:
                out.append([a, window[0] - 1])
            if b > window[1]:
                out.append([window[1] + 1, b])
    return out


def _fake() -> Any:
    partition, owner = s3_backends.bucket_accounts[BUCKET]
    return s3_backends[owner][partition]


def _delete(key: str) -> None:
    _fake().delete_object(BUCKET, key)


def _put(key: str, body: bytes) -> None:
    _fake().put_object(BUCKET, key, body)


def test_two_runners_at_once_read_every_window_once(emu: Emulator, exporter: Exporter) -> None:
    accounts = account_ids(720_000_000_000, 2)
    world = busy_world(accounts)
    cfg = exporter.config(read_config("two", accounts, quota=10), "two.yml")
    procs = [exporter.popen("run", "--config", str(cfg)) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outs
    assert_complete(world, "two", accounts)
    assert_folders_whole("two")
    assert_done("two", accounts)


def test_lost_put_object_answers_are_sent_again(emu: Emulator, exporter: Exporter) -> None:
    accounts = account_ids(730_000_000_000, 1)
    world = busy_world(accounts)
    cfg = exporter.config(read_config("lost", accounts), "lost.yml")
    emu.lose_answers(6, how="500", services=("s3",), operations=("PutObject",))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert emu.injected[("s3", "PutObject", "InternalFailure")] == 6
    assert_complete(world, "lost", accounts)
    assert_folders_whole("lost")
    assert_done("lost", accounts)


def test_throttled_reads_back_off_without_failing_a_window(
    emu: Emulator, exporter: Exporter
) -> None:
    accounts = account_ids(740_000_000_000, 2)
    world = busy_world(accounts)
    # AWS's quota far below what the config claims: the reads run into ThrottlingException
    emu.read_quotas(filter_log_events=2, get_log_events=5)
    # most reads throttled: more often in a row than botocore retries, so the lane backs off too
    emu.throttle(0.8, services=("logs",), operations=("FilterLogEvents",), seed=3)
    cfg = exporter.config(read_config("slow", accounts, quota=50), "slow.yml")

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    throttled = Counter(
        {k: v for k, v in emu.injected.items() if k[:2] == ("logs", "FilterLogEvents")}
    )
    assert sum(throttled.values()) >= 3, throttled
    assert_complete(world, "slow", accounts)
    assert_folders_whole("slow")
    assert_done("slow", accounts)
