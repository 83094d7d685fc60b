"""Reading the archive back, the pure parts: instants, lines, the spool's runs, the gaps."""

from __future__ import annotations

import gzip
import heapq
import io
import random
from datetime import date
from typing import Any

import pytest

from emulator.tasks import PROBE_BODY, format_line
from log_exporter.core.state import LaneState
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Intervals, Window, to_ms
from log_exporter.passes.readback import (
    _RECORD,
    Event,
    Gap,
    GroupArchive,
    Knowledge,
    Spool,
    parse_instant,
    parse_object,
)

D = to_ms(date(2026, 11, 3))


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-03", D),
        ("2026-11-03T14:00:00Z", D + 14 * MS_PER_HOUR),
        ("2026-11-03T14:00:00.123Z", D + 14 * MS_PER_HOUR + 123),
        ("2026-11-03T14:00:00", D + 14 * MS_PER_HOUR),  # no zone: UTC
        ("2026-11-03T16:00:00+02:00", D + 14 * MS_PER_HOUR),
        (" 2026-11-03 ", D),
    ],
)
def test_parse_instant(text: str, ms: int) -> None:
    assert parse_instant(text) == ms


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "03/11/2026", ""])
def test_parse_instant_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


def test_parse_object_keeps_the_range_and_the_archive_lines() -> None:
    lines = [
        format_line(D - 1, "day before"),
        format_line(D, "first"),
        format_line(D + 5, ""),  # an empty message
        format_line(D + 7, "multi\nline\n\nmessage"),  # a newline inside a message
        format_line(D + MS_PER_DAY - 1, "last ms"),
        format_line(D + MS_PER_DAY, "next day"),
    ]
    text = "\n".join(lines) + "\n"
    events, skipped = parse_object(text, D, D + MS_PER_DAY)
    assert events == [
        (D, format_line(D, "first")),
        (D + 5, format_line(D + 5, "")),
        (D + 7, format_line(D + 7, "multi\nline\n\nmessage")),
        (D + MS_PER_DAY - 1, format_line(D + MS_PER_DAY - 1, "last ms")),
    ]
    assert skipped == 0
    kept, _ = parse_object(text, D, D + MS_PER_DAY, lambda m: "line" in m)
    assert [ts for ts, _ in kept] == [D + 7]


def test_parse_object_counts_lines_that_are_not_events() -> None:
    events, skipped = parse_object(PROBE_BODY.decode(), 0, 2**62)
    assert (events, skipped) == ([], 1)
    text = "garbage\n" + format_line(D, "x") + "\n"
    assert parse_object(text, 0, 2**62) == ([(D, format_line(D, "x"))], 1)


@pytest.mark.parametrize("bufsize", [1, 7, 64, 4096])
def test_spool_reads_runs_back_whatever_the_buffer(bufsize: int) -> None:
    rng = random.Random(bufsize)
    spool = Spool()
    runs = []
    want = []
    for stream in range(5):
        events = sorted((rng.randrange(1000), "x" * rng.randrange(300)) for _ in range(50))
        data = b"".join(_RECORD.pack(ts, stream, len(m)) + m.encode() for ts, m in events)
        runs.append(spool.append(data))
        want += [(ts, stream, m.encode()) for ts, m in events]
    spool.flush()
    merged = list(
        heapq.merge(*(spool.records(o, n, bufsize) for o, n in runs), key=lambda r: (r[0], r[1]))
    )
    assert merged == sorted(want, key=lambda r: (r[0], r[1]))
    spool.close()


class FakeS3:
    """list_objects_v2 pages and get_object over a dict of key -> bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.listed: list[str] = []

    def get_paginator(self, name: str) -> Any:
        s3 = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                s3.listed.append(Prefix)
                keys = sorted(k for k in s3.objects if k.startswith(Prefix))
                return [{"Contents": [{"Key": k} for k in keys]}]

        return Paginator()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key])}


def archive_of(objects: dict[str, list[tuple[int, str]]], **kwargs: Any) -> GroupArchive:
    data = {
        k: gzip.compress(("\n".join(format_line(ts, m) for ts, m in v) + "\n").encode())
        for k, v in objects.items()
    }
    data["logs/111111111111/api/2026/11/03/aws-logs-write-test"] = PROBE_BODY
    return GroupArchive(FakeS3(data), "b", "logs", "111111111111", "/api", "day", **kwargs)  # type: ignore[arg-type]


def test_read_merges_pieces_and_streams_in_order_and_lists_only_the_range() -> None:
    day = "logs/111111111111/api/2026/11/03"
    archive = archive_of(
        {
            f"{day}/t1/s/b/000000.gz": [(D + 9, "b9"), (D + 1, "b1")],
            f"{day}/t1/s/a/000000.gz": [(D + 5, "a5"), (D + 1, "a1")],
            f"{day}/t2/s/a/000000.gz": [(D + 20, "a20"), (D + 12, "a12")],
        },
        workers=1,
    )
    out = list(archive.read(D + 1, D + 20))
    assert [(e.timestamp_ms, e.stream, e.message) for e in out if isinstance(e, Event)] == [
        (D + 1, "s/a", "a1"),
        (D + 1, "s/b", "b1"),
        (D + 5, "s/a", "a5"),
        (D + 9, "s/b", "b9"),
        (D + 12, "s/a", "a12"),
    ]
    assert archive._archive._s3.listed == [f"{day}/"]  # type: ignore[attr-defined]
    assert archive.stats.skipped_lines == 0


def test_gaps_missing_and_partial_and_known_empty() -> None:
    d1, d2 = D + MS_PER_DAY, D + 2 * MS_PER_DAY
    objects = {
        f"logs/111111111111/api/2026/11/0{n}/t/s/000000.gz": [(ms + 1, "x")]
        for n, ms in ((3, D), (5, d2))
    }
    # nothing known: a folder without objects is a gap, the others are whole
    out = list(archive_of(objects).read(D, D + 3 * MS_PER_DAY))
    assert [str(g) for g in out if isinstance(g, Gap)] == [
        "gap: 2026-11-04 has no archive (s3://b/logs/111111111111/api/2026/11/04/)"
    ]
    # the state knows the 4th empty and the 5th archived only up to 06:00
    known = Knowledge(
        covered=Intervals([(D, d2 + 6 * MS_PER_HOUR - 1)]),
        empty=Intervals([(d1, d2 - 1)]),
        known=True,
    )
    out = list(archive_of(objects, knowledge=known).read(D, D + 3 * MS_PER_DAY))
    assert [str(g) for g in out if isinstance(g, Gap)] == [
        "gap: 2026-11-05 is archived only in part: 06:00:00.000..23:59:59.999 UTC not yet "
        "(s3://b/logs/111111111111/api/2026/11/05/)"
    ]
    # asked only up to 06:00 of the 5th: no gap
    out = list(archive_of(objects, knowledge=known).read(D, d2 + 6 * MS_PER_HOUR))
    assert not [g for g in out if isinstance(g, Gap)]
    assert [e.message for e in out if isinstance(e, Event)] == ["x", "x"]


def test_a_line_that_is_not_utf8_keeps_its_own_bytes() -> None:
    key = "logs/111111111111/api/2026/11/03/t/s/000000.gz"
    body = format_line(D + 1, "caf\u00e9 ").encode() + b"\xff\xfe end\n"
    s3 = FakeS3({key: gzip.compress(body)})
    archive = GroupArchive(s3, "b", "logs", "111111111111", "/api", "day")  # type: ignore[arg-type]
    (event,) = [e for e in archive.read(D, D + MS_PER_DAY) if isinstance(e, Event)]
    assert event.raw == body.rstrip(b"\n")  # what `cat` prints: the archive's own line
    assert event.message == "caf\u00e9 \ufffd\ufffd end"  # JSON gets replacement characters


def test_the_time_before_the_group_was_created_is_no_gap() -> None:
    # created at 20:00 of the 3rd; an older group of the name (created the 1st) is known too
    state = LaneState("111111111111", "us-east-1", created={"/api": D + 20 * MS_PER_HOUR})
    state.mark_done("/api", Window(D + 20 * MS_PER_HOUR, D + MS_PER_DAY - 1))
    objects = {"logs/111111111111/api/2026/11/03/t/s/000000.gz": [(D + 21 * MS_PER_HOUR, "x")]}
    out = list(archive_of(objects, knowledge=Knowledge.of([state], "/api")).read(D, D + MS_PER_DAY))
    assert [str(g) for g in out if isinstance(g, Gap)] == []
    out = list(archive_of({}, knowledge=Knowledge.of([state], "/api")).read(D - MS_PER_DAY, D))
    assert out == []  # a day wholly before the creation: nothing, not a gap
    state.previous[f"/api@{D - 2 * MS_PER_DAY}"] = Intervals([(D - 2 * MS_PER_DAY, D - 1)])
    k = Knowledge.of([state], "/api")
    assert k.created_ms == D - 2 * MS_PER_DAY and k.covered.covers(Window(D - MS_PER_DAY, D - 1))


def test_a_day_displaced_into_a_neighbour_folder_is_read_from_it() -> None:
    # c7n-logexporter in UTC-5: its folder of the 2nd holds the 3rd's 00:00-04:59
    folder = "logs/111111111111/api/2026/11/0{}/t{}/s/000000.gz"
    objects = {
        folder.format(2, 1): [(D - 1, "2nd"), (D + 1, "early 3rd")],
        folder.format(3, 2): [(D + 6 * MS_PER_HOUR, "3rd")],
        folder.format(4, 3): [(D + MS_PER_DAY + 1, "4th")],
    }
    covered = Intervals([(D - MS_PER_DAY, D + 2 * MS_PER_DAY - 1)])
    plain = Knowledge(covered, Intervals(), known=True)
    out = list(archive_of(objects, knowledge=plain).read(D, D + MS_PER_DAY))
    assert [e.message for e in out if isinstance(e, Event)] == ["3rd"]  # before the fix: silent
    displaced = Intervals([(D, D + 5 * MS_PER_HOUR - 1)])
    shifted = Knowledge(covered, Intervals(), known=True, displaced=displaced)
    out = list(archive_of(objects, knowledge=shifted).read(D, D + MS_PER_DAY))
    assert [str(e) if isinstance(e, Gap) else e.message for e in out] == ["early 3rd", "3rd"]
