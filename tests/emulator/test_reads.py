"""The emulator's read side as AWS: FilterLogEvents pages stop at 1 MB (or 10,000 events), and
the read quotas per account and region answer ThrottlingException above them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator, seed
from log_exporter.aws.reads import DirectReader, ReadRate
from log_exporter.core.direct import WindowTooLarge
from log_exporter.core.windows import Window

from .conftest import Aws

A, B = "111111111111", "222222222222"
DAY = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


def read_all(logs: object, group: str) -> list[list[dict[str, object]]]:
    pages = []
    kwargs: dict[str, object] = {"logGroupName": group, "startTime": DAY, "endTime": DAY + 999_999}
    while True:
        out = logs.filter_log_events(**kwargs)  # type: ignore[attr-defined]
        pages.append(out["events"])
        if not out.get("nextToken"):
            return pages
        kwargs["nextToken"] = out["nextToken"]


def test_filter_log_events_pages_stop_at_one_megabyte(emu: Emulator, aws: Aws) -> None:
    seed.create_group(A, "us-east-1", "/big", DAY - 1)
    events = [(DAY + i, f"{i:06d} " + "x" * 100_000) for i in range(25)]  # ~2.5 MB
    seed.put_events(A, "us-east-1", "/big", "s", events)

    pages = read_all(aws.client("logs", A), "/big")

    assert [len(p) for p in pages] == [10, 10, 5]  # 10 x (100,007 + 26) bytes <= 1 MiB < 11
    got = [(e["timestamp"], e["message"]) for p in pages for e in p]
    assert got == events  # every event once, in order


def test_read_quota_per_account_and_region(emu: Emulator, aws: Aws) -> None:
    for account in (A, B):
        seed.create_group(account, "us-east-1", "/g", DAY - 1)
    emu.read_quotas(filter_log_events=1, get_log_events=25)
    a, b = aws.client("logs", A), aws.client("logs", B)

    def filter_(logs: object) -> None:
        logs.filter_log_events(logGroupName="/g", startTime=DAY, endTime=DAY + 1)  # type: ignore[attr-defined]

    filter_(a)
    with pytest.raises(ClientError) as caught:
        filter_(a)  # the second within a second
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    filter_(b)  # another account has its own quota
    assert emu.injected[("logs", "FilterLogEvents", "ThrottlingException")] == 1
    emu.reset_faults()
    filter_(a)  # no quota after a reset


def test_filter_log_events_can_answer_empty_pages_with_a_token(emu: Emulator, aws: Aws) -> None:
    seed.create_group(A, "us-east-1", "/big", DAY - 1)
    events = [(DAY + i, f"{i:06d} " + "x" * 100_000) for i in range(25)]
    seed.put_events(A, "us-east-1", "/big", "s", events)
    emu.empty_pages(2)

    pages = read_all(aws.client("logs", A), "/big")

    assert [len(p) for p in pages] == [0, 0, 10, 0, 0, 10, 0, 0, 5, 0, 0]
    assert [(e["timestamp"], e["message"]) for p in pages for e in p] == events


@pytest.mark.parametrize("max_pages", [None, 3])
def test_the_reader_follows_empty_pages_to_the_end(
    emu: Emulator, aws: Aws, max_pages: int | None
) -> None:
    """A reader that stopped at the first empty page would archive the window as empty (or
    part of it); `auto`'s page cap counts pages of events only."""
    seed.create_group(A, "us-east-1", "/big", DAY - 1)
    events = [(DAY + i, f"{i:06d} " + "x" * 100_000) for i in range(25)]  # 3 pages
    seed.put_events(A, "us-east-1", "/big", "s", events)
    emu.empty_pages(2)
    reader = DirectReader(aws.client("logs", A), ReadRate(1e6), lambda fn: fn())

    got = reader.read("/big", Window(DAY, DAY + 999_999), max_pages=max_pages)

    assert [(e.timestamp, e.message) for e in got] == events
    assert reader.requests == 11
    with pytest.raises(WindowTooLarge):
        reader.read("/big", Window(DAY, DAY + 999_999), max_pages=2)
