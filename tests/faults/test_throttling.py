"""Throttling and ServiceUnavailable from CloudWatch Logs and S3: the run retries with jittered
backoff (botocore's standard mode, then the lane's own) and completes the whole archive; the
summary counts every retry, so each error the emulator injected shows up there exactly once."""

from __future__ import annotations

import re

from emulator import Emulator
from emulator.scenario import config_yaml

from .conftest import Exporter, account_ids, assert_complete, seed_world, tasks_per_window

BUCKET = "throttled-archive"


def summary_retries(stdout: str) -> int:
    """The run's retry count from the summary's last line (`..., 17 retries)`); 0 when absent."""
    m = re.search(r"\((?:[\d.]+s), (\d+) retries\)\s*$", stdout.strip().splitlines()[-1])
    return int(m.group(1)) if m else 0


def test_a_fifth_of_logs_and_s3_calls_throttled(emu: Emulator, exporter: Exporter) -> None:
    accounts = account_ids(800_000_000_000, 2)
    world = seed_world(BUCKET, accounts, days=2)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="t20"))
    # CreateExportTask, which only the lane's own backoff retries, first: the first one is
    # throttled whatever the order of the lanes' calls (the rule's first draw is 0.13)
    emu.throttle(0.25, services=("logs",), operations=("CreateExportTask",), seed=1)
    emu.throttle(0.2, services=("logs", "s3"), seed=8)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    injected = emu.injected
    assert {s for s, _, _ in injected} == {"logs", "s3"}
    assert any(op == "CreateExportTask" for _, op, _ in injected)  # the lane's own backoff too
    assert summary_retries(result.stdout) == sum(injected.values()) > 0
    emu.reset_faults()
    assert_complete(world, "t20", accounts, emu=emu)
    assert set(tasks_per_window(emu, accounts).values()) == {1}


def test_service_unavailable_bursts(emu: Emulator, exporter: Exporter) -> None:
    accounts = account_ids(810_000_000_000, 2)
    world = seed_world(BUCKET, accounts, days=2)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="burst"))
    for operations in (
        ["DescribeLogGroups"],
        ["DescribeLogStreams"],
        ["CreateExportTask"],
        ["DescribeExportTasks"],
    ):
        emu.unavailable_burst(3, services=("logs",), operations=operations)
    emu.unavailable_burst(3, services=("s3",))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert sum(emu.injected.values()) == 15
    assert summary_retries(result.stdout) == 15
    assert_complete(world, "burst", accounts, emu=emu)


def test_errors_that_outlast_botocores_retries_are_retried_by_the_lane(
    emu: Emulator, exporter: Exporter
) -> None:
    """With AWS_MAX_ATTEMPTS=2, longer bursts escape botocore: planning, polling and creating
    still back off and go on instead of failing the lane."""
    accounts = account_ids(820_000_000_000, 1)
    world = seed_world(BUCKET, accounts, days=2)
    cfg = exporter.config(config_yaml(BUCKET, accounts, prefix="outlast"))
    for operations in (["DescribeLogGroups"], ["DescribeLogStreams"], ["DescribeExportTasks"]):
        emu.unavailable_burst(5, services=("logs",), operations=operations)
    emu.unavailable_burst(4, services=("logs",), operations=["CreateExportTask"])

    result = exporter("run", "--config", str(cfg), AWS_MAX_ATTEMPTS="2")

    assert result.code == 0, result.output
    assert "unexpected" not in result.output
    assert sum(emu.injected.values()) == 19
    assert summary_retries(result.stdout) == 19
    assert_complete(world, "outlast", accounts, emu=emu)
