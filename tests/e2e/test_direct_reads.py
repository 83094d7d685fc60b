"""`destination.strategy: read` and `auto` end to end: small windows archived by reading their
events, in the layout and line format an export task writes, readable by `status` and `sync`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from moto.s3.models import s3_backends

from emulator import Emulator
from emulator.scenario import REGION, archived, config_yaml, misplaced, sample_world

from .conftest import Exporter

A = "111111111111"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
MARKER = ".log-exporter-read.json"


def with_strategy(yaml: str, strategy: str, extra: str = "") -> str:
    lines = f"  strategy: {strategy}\n  read_quota: 50\n{extra}"
    return yaml.replace("accounts:\n", lines + "accounts:\n", 1)


def keys(bucket: str) -> list[str]:
    partition, owner = s3_backends.bucket_accounts[bucket]
    return sorted(s3_backends[owner][partition].get_bucket(bucket).keys.keys())


def state_of(bucket: str, account_id: str) -> dict[str, object]:
    partition, owner = s3_backends.bucket_accounts[bucket]
    obj = (
        s3_backends[owner][partition]
        .get_bucket(bucket)
        .keys[f"logs/.log-exporter/{account_id}/{REGION}.json"]
    )
    data: dict[str, object] = json.loads(obj.value)
    return data


def test_read_archives_every_event_once_without_a_task(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(with_strategy(config_yaml(world.bucket, [A]), "read"))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert misplaced(events) == []
    assert emu.tasks == []  # not one export task
    folders = {(e.group, e.day, e.task_id) for e in events}
    assert len(folders) == 3 * 3  # one folder a group and day, as a task's
    markers = [k for k in keys(world.bucket) if k.endswith(MARKER)]
    assert len(markers) == len(folders)
    state = state_of(world.bucket, A)
    assert state["intents"] == []
    assert set(state["read"]) == set(SELECTED)  # type: ignore[arg-type]
    # `cat` reads it back as it would a task's output (the marker is not an event)
    first = min(e.timestamp_ms for e in events if e.group == "aws/lambda/api")
    day = datetime.fromtimestamp(first / 1000, UTC).date()
    shown = exporter(
        "cat", "--config", str(cfg), "--account", f"acct-{A}", "--group", "/aws/lambda/api",
        "--start", f"{day}", "--end", f"{day + timedelta(days=3)}",
    )  # fmt: skip
    assert shown.code == 0, shown.output
    expected = sorted(
        (e for e in world.events if e.group == "/aws/lambda/api"),
        key=lambda e: (e.timestamp_ms, e.stream),
    )
    lines = shown.stdout.splitlines()
    assert len(lines) == len(expected)
    assert all(e.message in line for e, line in zip(expected, lines, strict=True))
    # a second run has nothing to do
    again = exporter("run", "--config", str(cfg))
    assert again.code == 0, again.output
    assert archived(world.bucket, "logs")[0] == got


def test_auto_reads_small_groups_and_exports_large_ones(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    big = "vpc-flow-logs"
    # the flow logs' group holds far more than read_max_bytes a day: its windows are exported
    noon = [e.timestamp_ms for e in world.events if e.group == big and "noon" in e.message]
    world.add(A, big, "eni-0abc-bulk", [(t + 1, "x" * 20_000) for t in noon])
    yaml = with_strategy(config_yaml(world.bucket, [A]), "auto", "  read_max_bytes: 2000\n")
    cfg = exporter.config(yaml)
    emu.task_timing(base=1.0)  # the reads have time to go on while the first task runs

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    got, events = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert misplaced(events) == []
    assert {t.group for t in emu.tasks} <= set(SELECTED)
    state = state_of(world.bucket, A)
    read = set(state.get("read", {}))  # type: ignore[arg-type]
    exported = {t.group for t in emu.tasks}
    assert exported == {big}  # the large group by export tasks, three days
    assert len(emu.tasks) == 3
    assert read == {"/aws/lambda/api", "/aws/lambda/worker"}  # the small ones read
    # the export slot and the direct reads worked at the same time: folders were written
    # while a task was running
    partition, owner = s3_backends.bucket_accounts[world.bucket]
    bucket = s3_backends[owner][partition].get_bucket(world.bucket)
    written = [
        bucket.keys[k].last_modified.replace(tzinfo=UTC).timestamp()
        for k in keys(world.bucket)
        if k.endswith(MARKER)
    ]
    assert len(written) == 6
    assert any(t.created_at < w < (t.ended_at or 0) for t in emu.tasks for w in written)


def test_sync_rebuilds_direct_reads_from_their_markers(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(with_strategy(config_yaml(world.bucket, [A]), "read"))
    assert exporter("run", "--config", str(cfg)).code == 0
    original = state_of(world.bucket, A)
    partition, owner = s3_backends.bucket_accounts[world.bucket]
    backend = s3_backends[owner][partition]
    backend.delete_object(world.bucket, f"logs/.log-exporter/{A}/{REGION}.json")
    # one folder as a read killed halfway leaves it: its marker, not all its objects
    marker = next(k for k in keys(world.bucket) if k.endswith(MARKER) and "worker" in k)
    folder = marker.rsplit("/", 1)[0]
    for name in json.loads(backend.get_bucket(world.bucket).keys[marker].value)["objects"]:
        backend.delete_object(world.bucket, f"{folder}/{name}")

    done = exporter("sync", "--config", str(cfg))

    assert done.code == 0, done.output
    assert "9 task folders in 3 groups (0 described by AWS, 0 taken as" in done.stdout
    assert "8 read directly" in done.stdout
    rebuilt = state_of(world.bucket, A)
    assert rebuilt["covered"]["/aws/lambda/api"] == original["covered"]["/aws/lambda/api"]  # type: ignore[index]
    assert rebuilt["covered"]["/aws/lambda/worker"] != original["covered"]["/aws/lambda/worker"]  # type: ignore[index]
    [failure] = rebuilt["failures"]  # type: ignore[misc]
    assert failure["cleanup"] == folder.rsplit("/", 1)[1]

    again = exporter("run", "--config", str(cfg))

    assert again.code == 0, again.output
    assert emu.tasks == []
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)
    assert not any(k.startswith(folder + "/") for k in keys(world.bucket))  # deleted
    final = state_of(world.bucket, A)
    assert final["covered"] == original["covered"] and final["failures"] == []


def test_plan_shows_which_windows_are_read_and_which_exported(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=3)
    big = "vpc-flow-logs"
    noon = [e.timestamp_ms for e in world.events if e.group == big and "noon" in e.message]
    world.add(A, big, "eni-0abc-bulk", [(t + 1, "x" * 20_000) for t in noon])
    yaml = with_strategy(config_yaml(world.bucket, [A]), "auto", "  read_max_bytes: 2000\n")
    cfg = exporter.config(yaml)

    doc = exporter("plan", "--config", str(cfg), "--format", "json")
    text = exporter("plan", "--config", str(cfg))

    assert doc.code == 0 and text.code == 0, doc.output + text.output
    [lane] = json.loads(doc.stdout)["lanes"]
    assert {w["group"] for w in lane["export"]} == {big}
    assert len(lane["export"]) == 3
    assert {w["group"] for w in lane["read"]} == {"/aws/lambda/api", "/aws/lambda/worker"}
    assert len(lane["read"]) == 6
    assert "3 tasks, 6 windows read directly" in text.stdout
    assert "read directly" in text.stdout
    assert emu.tasks == [] and not archived(world.bucket, "logs")[1]  # nothing was done
