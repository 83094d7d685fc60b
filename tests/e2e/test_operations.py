"""Operating an archive end to end: `plan`, `status`, `stats`, `sync`, `run --dry-run`, the JSON
logs and the progress bars, through the real `log-exporter` process against the emulator.

Most tests start from a planted archive: day 1 archived, day 2 never exported (a gap), and day 3
of /aws/lambda/api failed three times (a failed day), the other groups' day 3 archived.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends

from emulator import Emulator, seed
from emulator.scenario import (
    REGION,
    World,
    archived,
    client_env,
    config_yaml,
    day_ms,
    edge_events,
    role_arn,
    sample_world,
)

from .conftest import EXPORTER, Exporter

A = "111111111111"
LANE = f"acct-{A}/{REGION}"
SELECTED = ("/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs")
DAY_MS = 86_400_000


@dataclass
class Planted:
    world: World
    cfg: Path
    d1: date
    d2: date
    d3: date

    def day(self, d: date) -> tuple[int, int]:
        return day_ms(d), day_ms(d) + DAY_MS - 1


def plant(exporter: Exporter, emu: Emulator, *, sparse: bool = False) -> Planted:
    """Day 1 archived; day 2 a gap; day 3 failed for /aws/lambda/api, archived for the others.
    With `sparse`, /aws/lambda/sparse has events on days 1 and 3 only."""
    today = datetime.now(UTC).date()
    d1, d2, d3 = (today - timedelta(days=n) for n in (3, 2, 1))
    world = sample_world(accounts=(A,), days=3)
    if sparse:
        seed.create_group(A, REGION, "/aws/lambda/sparse", day_ms(d1) + 60_000)
        world.add(A, "/aws/lambda/sparse", "s", edge_events(d1, "x") + edge_events(d3, "y"))
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    first = exporter("run", "--config", str(cfg), "--end", str(d2))
    assert first.code == 0, first.output
    emu.fail_tasks(3, account_id=A, group="/aws/lambda/api")
    second = exporter("run", "--config", str(cfg), "--start", str(d3))
    assert second.code == 1, second.output
    emu.reset_faults()
    return Planted(world, cfg, d1, d2, d3)


def task_windows(tasks: Any) -> Counter[tuple[str, int, int]]:
    return Counter((t.group, t.from_ms, t.to_ms) for t in tasks)


# --- plan -------------------------------------------------------------------------------------------
def test_plan_lists_exactly_what_run_then_does(exporter: Exporter, emu: Emulator) -> None:
    p = plant(exporter, emu, sparse=True)
    before = len(emu.tasks)

    plain = exporter("plan", "--config", str(p.cfg), "--format", "json")
    probed = exporter("plan", "--config", str(p.cfg), "--probe", "--format", "json")
    table = exporter("plan", "--config", str(p.cfg))
    dry = exporter("run", "--config", str(p.cfg), "--dry-run")

    assert (plain.code, probed.code, table.code, dry.code) == (0, 0, 0, 0), plain.output
    assert len(emu.tasks) == before  # planning creates no task
    assert dry.stdout == table.stdout  # `run --dry-run` is `plan`
    assert "Nothing was created" in table.stdout
    doc = json.loads(plain.stdout)
    (lane,) = doc["lanes"]
    planned = Counter((e["group"], e["from_ms"], e["to_ms"]) for e in lane["export"])
    gap = Counter((g, *p.day(p.d2)) for g in (*SELECTED, "/aws/lambda/sparse"))
    assert planned == gap + Counter([("/aws/lambda/api", *p.day(p.d3))])
    assert doc["tasks"] == lane["tasks"] == 5 and doc["created_tasks"] == 0
    assert lane["observed_tasks"] > 0 and lane["estimated_seconds"] > 0  # timed from AWS's tasks
    skipped = {(s["group"], s["reason"], s["from"][:10], s["days"]) for s in lane["skipped"]}
    assert ("/aws/lambda/api", "archived", str(p.d1), 1) in skipped
    assert ("vpc-flow-logs", "archived", str(p.d3), 1) in skipped
    assert any(g == "/aws/lambda/idle" and r == "no log streams" for g, r, _, _ in skipped)
    # --probe tells the sparse group's empty day 2 apart, as a run does before its task
    (probed_lane,) = json.loads(probed.stdout)["lanes"]
    assert [(e["group"], e["from_ms"]) for e in probed_lane["empty"]] == [
        ("/aws/lambda/sparse", day_ms(p.d2))
    ]
    expected = Counter((e["group"], e["from_ms"], e["to_ms"]) for e in probed_lane["export"])

    run = exporter("run", "--config", str(p.cfg))

    assert run.code == 0, run.output
    assert task_windows(emu.tasks[before:]) == expected  # exactly the plan, nothing else
    assert planned - expected == Counter([("/aws/lambda/sparse", *p.day(p.d2))])
    got, _ = archived(p.world.bucket, "logs")
    assert got == p.world.expected(groups=[*SELECTED, "/aws/lambda/sparse"])


# --- status -----------------------------------------------------------------------------------------
def test_status_finds_the_gap_and_the_failure_then_passes_after_a_run(
    exporter: Exporter, emu: Emulator
) -> None:
    p = plant(exporter, emu)

    table = exporter("status", "--config", str(p.cfg))
    as_json = exporter("status", "--config", str(p.cfg), "--format", "json")
    one = exporter("status", "--config", str(p.cfg), "--group", "vpc-*", "--format", "json")

    assert table.code == as_json.code == one.code == 1, table.output
    for group in SELECTED:
        assert f"gap {LANE} {group} {p.d2} (1 day)" in table.stdout
    assert f"failed {LANE} /aws/lambda/api {p.d3}: task " in table.stdout
    assert "Export failed" in table.stdout
    assert "3 days missing, 1 day failed" in table.stdout
    doc = json.loads(as_json.stdout)
    assert (doc["ok"], doc["gap_days"], doc["failed_days"]) == (False, 3, 1)
    groups = {g["group"]: g for g in doc["lanes"][0]["groups"]}
    assert set(groups) == {*SELECTED, "/aws/lambda/idle"}
    for name in SELECTED:
        g = groups[name]
        assert g["gaps"] == [{"first": str(p.d2), "last": str(p.d2), "days": 1}]
        assert g["first_archived"] == str(p.d1)
    api = groups["/aws/lambda/api"]
    assert (api["last_archived"], api["archived_days"], api["failed_days"]) == (str(p.d1), 1, 1)
    assert api["failed"][0]["from"].startswith(str(p.d3)) and "FAILED" in api["failed"][0]["error"]
    assert (groups["vpc-flow-logs"]["last_archived"], groups["vpc-flow-logs"]["failed"]) == (
        str(p.d3),
        [],
    )
    assert groups["/aws/lambda/idle"]["ok"] and groups["/aws/lambda/idle"]["gaps"] == []
    assert [g["group"] for g in json.loads(one.stdout)["lanes"][0]["groups"]] == ["vpc-flow-logs"]

    run = exporter("run", "--config", str(p.cfg))
    after = exporter("status", "--config", str(p.cfg), "--format", "json")
    after_table = exporter("status", "--config", str(p.cfg))

    assert run.code == 0, run.output
    assert after.code == after_table.code == 0, after.output
    doc = json.loads(after.stdout)
    assert (doc["ok"], doc["gap_days"], doc["failed_days"]) == (True, 0, 0)
    for g in doc["lanes"][0]["groups"]:
        if g["group"] in SELECTED:
            assert (g["first_archived"], g["last_archived"], g["archived_days"]) == (
                str(p.d1),
                str(p.d3),
                3,
            )
    assert "no gaps, no failed days" in after_table.stdout


# --- sync -------------------------------------------------------------------------------------------
def _s3(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


STATE_KEY = f"logs/.log-exporter/{A}/{REGION}.json"


def _state(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=STATE_KEY)["Body"].read())  # type: ignore[no-any-return]
    except s3.exceptions.NoSuchKey:
        return None


def test_sync_rebuilds_a_deleted_state_so_the_next_run_creates_no_task(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=3)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0
    s3 = _s3(exporter.endpoint_url)
    original = _state(s3, world.bucket)
    assert original is not None
    s3.delete_object(Bucket=world.bucket, Key=STATE_KEY)
    created = len(emu.tasks)

    dry = exporter("sync", "--config", str(cfg), "--dry-run")

    assert dry.code == 0, dry.output
    assert _state(s3, world.bucket) is None  # a dry run writes nothing
    assert "9 task folders in 3 groups (9 described by AWS, 0 taken as" in dry.stdout
    assert "would write the state (there was no state)" in dry.stdout
    assert "match no selected group" not in dry.stdout  # probe objects and state folder ignored

    done = exporter("sync", "--config", str(cfg))

    assert done.code == 0, done.output
    rebuilt = _state(s3, world.bucket)
    assert rebuilt is not None and rebuilt["covered"] == original["covered"]
    for group in SELECTED:
        assert f"{group}: +3 days" in done.stdout
    again = exporter("run", "--config", str(cfg))
    assert again.code == 0, again.output
    assert len(emu.tasks) == created  # the rebuilt state says it all: no task
    assert exporter("status", "--config", str(cfg)).code == 0


def test_sync_takes_a_whole_day_when_aws_no_longer_lists_the_task(
    exporter: Exporter, emu: Emulator
) -> None:
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    assert exporter("run", "--config", str(cfg)).code == 0
    s3 = _s3(exporter.endpoint_url)
    s3.delete_object(Bucket=world.bucket, Key=STATE_KEY)
    logs_backends[A][REGION].export_tasks.clear()  # an archive copied in from elsewhere
    created = len(emu.tasks)

    done = exporter("sync", "--config", str(cfg))

    assert done.code == 0, done.output
    assert "6 task folders in 3 groups (0 described by AWS, 6 taken as their whole" in done.stdout
    state = _state(s3, world.bucket)
    assert state is not None
    today = datetime.now(UTC).date()
    first = day_ms(today - timedelta(days=2))
    for group in SELECTED:
        assert state["covered"][group] == [[first, first + 2 * DAY_MS - 1]]
    assert exporter("run", "--config", str(cfg)).code == 0
    assert len(emu.tasks) == created


# --- stats ------------------------------------------------------------------------------------------
def _object_sizes(bucket: str) -> dict[str, int]:
    partition, owner = s3_backends.bucket_accounts[bucket]
    fake = s3_backends[owner][partition].get_bucket(bucket)
    return {k: len(fake.keys[k].value) for k in list(fake.keys.keys())}


def test_stats_reports_what_cloudwatch_received_and_what_the_archive_holds(
    exporter: Exporter, emu: Emulator
) -> None:
    p = plant(exporter, emu)
    sizes = _object_sizes(p.world.bucket)

    result = exporter("stats", "--config", str(p.cfg), "--days", "3", "--format", "json")
    table = exporter("stats", "--config", str(p.cfg), "--day", str(p.d2))

    assert result.code == table.code == 0, result.output
    (lane,) = json.loads(result.stdout)["lanes"]
    groups = {g["group"]: g for g in lane["groups"]}
    assert set(groups) == {*SELECTED, "/aws/lambda/idle"}
    for name in SELECTED:
        events = [e for e in p.world.events if e.group == name]
        assert groups[name]["stored_bytes"] == sum(len(e.message.encode()) for e in events)
        for d in groups[name]["days"]:
            day = date.fromisoformat(d["day"])
            received = [e for e in events if day_ms(day) <= e.timestamp_ms < day_ms(day) + DAY_MS]
            assert d["incoming_bytes"] == sum(len(e.message.encode()) for e in received)
            written = [
                key
                for t in emu.tasks
                if t.status == "COMPLETED" and t.group == name and t.from_ms == day_ms(day)
                for key in t.objects
            ]
            assert (d["objects"], d["archived_bytes"]) == (
                len(written),
                sum(sizes[k] for k in written),
            )
            archived_day = day == p.d1 or (day == p.d3 and name != "/aws/lambda/api")
            assert (d["objects"] > 0) == archived_day
            assert d["note"] == ("" if archived_day else "missing")
    assert [d["incoming_bytes"] for d in groups["/aws/lambda/idle"]["days"]] == [None] * 3
    assert "missing" in table.stdout and str(p.d2) in table.stdout
    assert "3 days look short" in table.stdout


# --- while it runs ----------------------------------------------------------------------------------
def test_json_logs_parse_line_by_line(exporter: Exporter, emu: Emulator) -> None:
    today = datetime.now(UTC).date()
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.fail_tasks(1, account_id=A, group="vpc-flow-logs")

    quiet = exporter(
        "-q",
        "--log-format",
        "json",
        "run",
        "--config",
        str(cfg),
        "--end",
        str(today - timedelta(days=1)),
    )
    full = exporter("--log-format", "json", "run", "--config", str(cfg))

    assert quiet.code == full.code == 0, quiet.output + full.output
    quiet_lines = [json.loads(line) for line in quiet.stderr.splitlines()]
    assert quiet_lines and {r["level"] for r in quiet_lines} == {"warning"}  # no info with -q
    assert {r["status"] for r in quiet_lines} == {"FAILED", "RETRY"}
    records = [json.loads(line) for line in full.stderr.splitlines()]
    finished = [r for r in records if r.get("status") == "COMPLETED"]
    assert len(finished) == 3  # the second day of the three groups
    for r in finished:
        assert r["account"] == f"acct-{A}" and r["region"] == REGION
        assert r["group"] in SELECTED and r["day"] == str(today - timedelta(days=1))
        assert re.fullmatch(r"[0-9a-f-]{36}", r["task_id"])
        assert isinstance(r["seconds"], float) and r["seconds"] > 0
    started = {r["task_id"] for r in records if r.get("status") == "STARTED"}
    assert started == {r["task_id"] for r in finished}
    assert any(r["message"].endswith("windows to export") for r in records)


def _read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    return out.decode("utf-8", "replace")


def test_progress_bars_on_a_terminal(exporter: Exporter, emu: Emulator) -> None:
    world = sample_world(accounts=(A,), days=2)
    cfg = exporter.config(config_yaml(world.bucket, [A]))
    emu.task_timing(base=0.2)
    leader, follower = pty.openpty()
    env = client_env(exporter.endpoint_url, TERM="xterm-256color", COLUMNS="150", LINES="30")
    proc = subprocess.Popen(
        [EXPORTER, "run", "--config", str(cfg)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    try:
        raw = _read_pty(leader, proc)
    finally:
        os.close(leader)

    assert proc.returncode == 0, raw
    assert "\x1b[" in raw  # a live display, redrawn in place
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    lane_bars = [line for line in text.replace("\r", "\n").splitlines() if LANE in line]
    assert any(re.search(r" [0-5]/6 +\d:\d\d:\d\d ", b) for b in lane_bars), lane_bars[-3:]
    assert any(re.search(r"/aws/lambda/\w+ \d{4}-\d\d-\d\d", b) for b in lane_bars)  # its task
    assert re.search(r"total .* 6/6 +0:00:00", text)
    assert "INFO" not in text  # bars instead of a line per task
    assert "everything asked for is archived" in text
    got, _ = archived(world.bucket, "logs")
    assert got == world.expected(groups=SELECTED)


def test_a_lane_that_cannot_be_read_is_reported_and_fails_the_check(
    exporter: Exporter, emu: Emulator
) -> None:
    B = "222222222222"
    world = sample_world(accounts=(A, B), days=1)
    cfg = exporter.config(config_yaml(world.bucket, [A, B]))
    assert exporter("run", "--config", str(cfg), "--account", f"acct-{A}").code == 0
    emu.deny_role(role_arn(B))

    status = exporter("status", "--config", str(cfg), "--format", "json")
    plan = exporter("plan", "--config", str(cfg))
    missing = exporter.config(config_yaml("no-such-bucket", [A]), "missing.yml")
    no_bucket = exporter("status", "--config", str(missing))

    assert status.code == plan.code == 1
    lanes = {lane["account"]: lane for lane in json.loads(status.stdout)["lanes"]}
    assert lanes[f"acct-{A}"]["error"] is None
    assert all(g["ok"] for g in lanes[f"acct-{A}"]["groups"])  # the readable lane is fine
    assert role_arn(B) in lanes[f"acct-{B}"]["error"]
    assert f"error acct-{B}/{REGION}: cannot assume role {role_arn(B)}" in plan.stdout
    assert no_bucket.code == 1
    assert (
        no_bucket.stderr.strip()
        == "log-exporter: error: archive bucket no-such-bucket does not exist"
    )
    assert "Traceback" not in status.output + plan.output + no_bucket.output
