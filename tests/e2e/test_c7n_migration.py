"""Coming from c7n-logexporter end to end: an archive written the way c7n-logexporter writes it
(its export tasks, folders and marker objects), adopted by `sync`, continued by `run`."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.logs.models import logs_backends

from emulator import Emulator, seed
from emulator.scenario import REGION, World, archived, day_ms, edge_events, misplaced

from .conftest import Exporter

A = "111111111111"
BUCKET = "custodian-log-archive"
PREFIX = "logs2"
GROUPS = ("/aws/lambda/api", "vpc-flow-logs")
C7N_TO = 86_400_000 - 60_000  # c7n's `to`: the day's 23:59:00.000 (its machine in UTC)

# c7n-logexporter's README config, as is (no region, no settle: c7n has neither)
C7N_CONFIG = f"""
destination:
  bucket: {BUCKET}
  prefix: {PREFIX}

accounts:
  - name: custodian-demo
    role: "arn:aws:iam::{A}:role/CloudCustodianRole"
    groups:
      - "/aws/lambda/*"
      - "vpc-flow-logs"
"""


def seed_world(first: date, days: int) -> World:
    seed.create_bucket(BUCKET, REGION)
    world = World(BUCKET, REGION)
    for group in GROUPS:
        seed.create_group(A, REGION, group, day_ms(first) + 3_600_000)
        for i in range(days):
            d = first + timedelta(days=i)
            stream = f"{d:%Y/%m/%d}/[$LATEST]{i}" if "lambda" in group else "eni-0abc-all"
            world.add(A, group, stream, edge_events(d, group))
    return world


def clients(endpoint_url: str) -> tuple[Any, Any]:
    """S3 with the ambient credentials, CloudWatch Logs with the member role, as c7n uses them."""
    common: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": REGION}
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    role = boto3.client("sts", **common, **creds).assume_role(
        RoleArn=f"arn:aws:iam::{A}:role/CloudCustodianRole", RoleSessionName="c7n-log-exporter"
    )["Credentials"]
    logs = boto3.client(
        "logs",
        **common,
        aws_access_key_id=role["AccessKeyId"],
        aws_secret_access_key=role["SecretAccessKey"],
        aws_session_token=role["SessionToken"],
    )
    return boto3.client("s3", **common, **creds), logs


def c7n_export(
    s3: Any, logs: Any, group: str, days: list[date], utc_offset_ms: int = 0
) -> list[tuple[int, int]]:
    """What `c7n-log-exporter run` does for one group: its marker object (the group folder's
    key, `{}`), one task per day (`c7n-log-exporter-<day>`, [00:00, 23:59:00] of the day in the
    machine's time zone, `utc_offset_ms` east of UTC) into
    `<prefix>/<account>/<group without '/'>/<Y>/<m>/<d>`, and the marker tagged `LastExport`
    after each task is created. Returns the windows."""
    marker = f"{PREFIX}/{A}/{group.strip('/')}"
    s3.put_object(Bucket=BUCKET, Key=marker, Body=b"{}")
    windows = []
    for d in days:
        start = day_ms(d) - utc_offset_ms
        task = logs.create_export_task(
            taskName=f"c7n-log-exporter-{d:%Y-%m-%d}",
            logGroupName=group,
            fromTime=start,
            to=start + C7N_TO,
            destination=BUCKET,
            destinationPrefix=f"{marker}/{d:%Y/%m/%d}",
        )
        s3.put_object_tagging(
            Bucket=BUCKET,
            Key=marker,
            Tagging={
                "TagSet": [
                    {
                        "Key": "LastExport",
                        "Value": datetime(d.year, d.month, d.day, tzinfo=UTC).isoformat(),
                    }
                ]
            },
        )
        for _ in range(200):  # c7n creates the next task once the slot is free again
            out = logs.describe_export_tasks(taskId=task["taskId"])["exportTasks"][0]
            if out["status"]["code"] == "COMPLETED":
                break
            time.sleep(0.02)
        windows.append((start, start + C7N_TO))
    return windows


@pytest.mark.parametrize("aws_forgot", [False, True], ids=["tasks-listed", "tasks-forgotten"])
def test_sync_adopts_a_c7n_archive_and_run_continues_without_exporting_a_day_again(
    exporter: Exporter, emu: Emulator, aws_forgot: bool
) -> None:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=4)
    world = seed_world(first, 4)
    c7n_days = [first + timedelta(days=i) for i in range(3)]  # c7n stopped the day before
    s3, logs = clients(exporter.endpoint_url)
    c7n_windows = {g: c7n_export(s3, logs, g, c7n_days) for g in GROUPS}
    c7n_tasks = len(emu.tasks)
    markers = {g: s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{A}/{g.strip('/')}") for g in GROUPS}
    if aws_forgot:
        logs_backends[A][REGION].export_tasks.clear()
    cfg = exporter.config(C7N_CONFIG)

    # a run before sync would export c7n's days again: it refuses and says what to do
    early = exporter("run", "--config", str(cfg), "--settle", "0")
    assert early.code != 0 and "log-exporter sync" in early.output, early.output
    assert len(emu.tasks) == c7n_tasks

    synced = exporter("sync", "--config", str(cfg))

    assert synced.code == 0, synced.output
    assert "2 c7n-logexporter markers left alone" in synced.stdout, synced.stdout
    kind = "as c7n-logexporter's day window" if aws_forgot else "described by AWS"
    assert f"6 {kind}" in synced.stdout, synced.stdout
    assert "match no selected group" not in synced.stdout  # the markers are not strays
    assert "twice" not in synced.stdout

    ran = exporter("run", "--config", str(cfg), "--settle", "0")

    assert ran.code == 0, ran.output
    new = [t for t in emu.tasks[c7n_tasks:] if t.account_id == A]
    for group in GROUPS:
        windows = Counter((t.from_ms, t.to_ms) for t in new if t.group == group)
        assert set(windows.values()) == {1}  # no window twice
        for s, e in windows:  # no archived millisecond exported again
            assert all(e < cs or s > ce for cs, ce in c7n_windows[group]), (s, e)
        # c7n's lost minute of each of its days, and the day c7n did not export
        assert sorted(windows) == [
            *((day_ms(d) + C7N_TO + 1, day_ms(d) + 86_400_000 - 1) for d in c7n_days),
            (day_ms(today - timedelta(days=1)), day_ms(today) - 1),
        ]
    got, events = archived(BUCKET, f"{PREFIX}/")
    expected = world.expected()
    assert not expected - got, f"lost: {sorted(expected - got)[:3]}"
    assert not got - expected, f"twice: {sorted(got - expected)[:3]}"
    assert misplaced(events) == []  # a c7n archive made in UTC: every event in its own day
    for g, before in markers.items():  # c7n's markers left as they were
        after = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{A}/{g.strip('/')}")
        assert after["ETag"] == before["ETag"]
    again = exporter("run", "--config", str(cfg), "--settle", "0")
    assert again.code == 0, again.output
    assert len(emu.tasks) == c7n_tasks + len(new)
    assert exporter("status", "--config", str(cfg)).code == 0


def test_a_c7n_archive_made_in_another_time_zone_is_continued_exactly_once(
    exporter: Exporter, emu: Emulator
) -> None:
    """c7n-logexporter on a machine in New York (UTC-5): its "days" run 05:00 to 04:59 UTC the
    next day, filed under the local date. While AWS lists its tasks, sync records those exact
    windows, and the next run exports only what they miss: the first hours, each lost minute
    and the rest of the last day, each piece in its own UTC day's folder."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=4)
    world = seed_world(first, 4)
    s3, logs = clients(exporter.endpoint_url)
    offset = -5 * 3_600_000
    c7n_windows = {
        g: c7n_export(s3, logs, g, [first + timedelta(days=i) for i in range(3)], offset)
        for g in GROUPS
    }
    c7n_tasks = len(emu.tasks)
    cfg = exporter.config(C7N_CONFIG)

    synced = exporter("sync", "--config", str(cfg))
    ran = exporter("run", "--config", str(cfg), "--settle", "0")

    assert synced.code == 0, synced.output
    assert ran.code == 0, ran.output
    new = [t for t in emu.tasks[c7n_tasks:] if t.account_id == A]
    for group in GROUPS:
        windows = Counter((t.from_ms, t.to_ms) for t in new if t.group == group)
        assert set(windows.values()) == {1}
        for s, e in windows:
            assert all(e < cs or s > ce for cs, ce in c7n_windows[group]), (s, e)
    got, events = archived(BUCKET, f"{PREFIX}/")
    expected = world.expected()
    assert not expected - got, f"lost: {sorted(expected - got)[:3]}"
    assert not got - expected, f"twice: {sorted(got - expected)[:3]}"
    # what log-exporter wrote is in its own UTC day; c7n's shifted hours stay where c7n put them
    ours = {t.task_id for t in new}
    assert misplaced([e for e in events if e.task_id in ours]) == []
    assert misplaced(events) != []
