"""`sync`: task folders found in the bucket's keys, cheaply, and the state rebuilt from them."""

from __future__ import annotations

import bisect
from datetime import date
from typing import Any

import pytest

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.tasks import ExportTasks, TaskStatus
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, Intervals, Window, day_window
from log_exporter.passes.sync import (
    Listing,
    TaskFolder,
    _folder_of,
    describe_tasks,
    list_task_folders,
    rebuild,
)

ROOT = "logs/111111111111/"
T1 = "0f8fad5b-d9cb-469f-a165-70867728950e"
T2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
GROUPS = {
    "aws/lambda/api": "/aws/lambda/api",
    "aws/lambda/api/v2": "/aws/lambda/api/v2",
    "vpc": "vpc",
}
D = day_window(date(2026, 11, 1))


@pytest.mark.parametrize(
    ("key", "period", "expect"),
    [
        (f"{ROOT}vpc/2026/11/01/{T1}/eni-1/000000.gz", "day", ("vpc", D, T1)),
        (  # a Lambda stream holds date-like folders of its own
            f"{ROOT}aws/lambda/api/2026/11/01/{T1}/2026/11/01/[$LATEST]abc/000000.gz",
            "day",
            ("/aws/lambda/api", D, T1),
        ),
        (  # a group nested in another group's name
            f"{ROOT}aws/lambda/api/v2/2026/11/01/{T2}/s/000000.gz",
            "day",
            ("/aws/lambda/api/v2", D, T2),
        ),
        (
            f"{ROOT}vpc/2026/11/01/07/{T1}/eni-1/000000.gz",
            "hour",
            ("vpc", Window(D.start + 7 * MS_PER_HOUR, D.start + 8 * MS_PER_HOUR - 1), T1),
        ),
        (f"{ROOT}vpc/2026/11/01/aws-logs-write-test", "day", None),  # AWS's probe object
        (f"{ROOT}vpc/2026/11/01/07/aws-logs-write-test", "hour", None),
        (f"{ROOT}other/2026/11/01/{T1}/s/000000.gz", "day", None),  # not a known group
        (f"{ROOT}vpc/2026/13/01/{T1}/s/000000.gz", "day", None),  # no such month
        (f"{ROOT}vpc/2026/11/01/{T1}/000000.gz", "day", ("vpc", D, T1)),  # stream-less copy
        (f"{ROOT}vpc/2026/11/01/{T1}", "day", None),  # a bare object, not a folder
        (f"{ROOT}vpc/2026/11/01/07/{T1}/s/000000.gz", "day", None),  # an hourly archive
    ],
)
def test_folder_of_a_key(key: str, period: str, expect: tuple[str, Window, str] | None) -> None:
    got = _folder_of(key, ROOT, GROUPS, period)  # type: ignore[arg-type]
    assert (None if got is None else (got.group, got.period, got.task_id)) == expect


class FakeS3:
    """list_objects_v2 over sorted keys: Prefix, StartAfter, MaxKeys, like S3."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        self.calls = 0

    def list_objects_v2(self, **kw: Any) -> dict[str, Any]:
        self.calls += 1
        keys = [k for k in self.keys if k.startswith(kw["Prefix"])]
        start = bisect.bisect_right(keys, kw.get("StartAfter", ""))
        page = keys[start : start + kw["MaxKeys"]]
        return {
            "Contents": [{"Key": k, "Size": 1} for k in page],
            "IsTruncated": start + kw["MaxKeys"] < len(keys),
        }


def test_listing_skips_the_rest_of_a_big_task_folder() -> None:
    keys = [
        f"{ROOT}vpc/2026/11/0{d}/{T1}/eni-{i:05d}/000000.gz" for d in (1, 2) for i in range(2500)
    ]
    keys += [f"{ROOT}vpc/2026/11/0{d}/aws-logs-write-test" for d in (1, 2, 3)]
    keys += [f"{ROOT}vpc/2026/11/03/{T2}/eni-1/000000.gz", f"{ROOT}stray/file.txt"]
    keys += ["logs/.log-exporter/111111111111/us-east-1.json", "logs/222222222222/vpc/x"]
    s3 = FakeS3(keys)

    out = list_task_folders(ArchiveBucket(s3, "b"), ROOT, ["vpc"], "day", page_size=1000)  # type: ignore[arg-type]

    assert [(f.period.start, f.task_id) for f in out.folders] == [
        (D.start, T1),
        (D.start + MS_PER_DAY, T1),
        (D.start + 2 * MS_PER_DAY, T2),
    ]
    assert out.folders[0].dest == f"{ROOT}vpc/2026/11/01"
    assert (out.strays, out.stray) == (1, [f"{ROOT}stray/file.txt"])
    assert out.requests == s3.calls == 3  # not 6: each big folder is left after its first page


class FakeLogs:
    """describe_export_tasks by id, or all tasks 50 a page (newest first), like AWS."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.calls: list[dict[str, Any]] = []

    def describe_export_tasks(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        if "taskId" in kw:
            return {"exportTasks": [t for t in self.tasks if t["taskId"] == kw["taskId"]]}
        start = int(kw.get("nextToken", 0))
        out: dict[str, Any] = {"exportTasks": self.tasks[start : start + kw["limit"]]}
        if start + kw["limit"] < len(self.tasks):
            out["nextToken"] = str(start + kw["limit"])
        return out


def task(task_id: str, code: str = "COMPLETED", group: str = "vpc") -> dict[str, Any]:
    return {
        "taskId": task_id,
        "taskName": f"log-exporter-{task_id}",
        "logGroupName": group,
        "from": D.start,
        "to": D.end,
        "status": {"code": code},
    }


def test_describe_tasks_by_id_for_a_few_and_by_listing_for_many() -> None:
    logs = FakeLogs([task(f"t{i:03d}") for i in range(180)])
    tasks = ExportTasks(logs, logs)  # type: ignore[arg-type]
    few = describe_tasks(tasks, ["t001", "t150", "gone"])
    assert sorted(few) == ["t001", "t150"] and len(logs.calls) == 3

    logs.calls.clear()
    wanted = [f"t{i:03d}" for i in range(0, 120)] + ["gone"]
    many = describe_tasks(tasks, wanted, by_id_max=50)
    assert len(many) == 120
    assert len(logs.calls) == 4  # every page, since one id is not there: 180 tasks / 50

    logs.calls.clear()
    early = describe_tasks(tasks, [f"t{i:03d}" for i in range(60)], by_id_max=50)
    assert len(early) == 60 and len(logs.calls) == 2  # stops once all are found


def status(task_id: str, code: str, window: Window | None = D, group: str = "vpc") -> TaskStatus:
    return TaskStatus(task_id, f"log-exporter-{task_id}", code, "", group, window, "b", "p", 1, 2)


def folder(task_id: str, day: int = 0, group: str = "vpc") -> TaskFolder:
    start = D.start + day * MS_PER_DAY
    return TaskFolder(group, Window(start, start + MS_PER_DAY - 1), task_id, "logs/x")


def test_rebuild_from_folders_keeps_what_the_bucket_cannot_tell() -> None:
    day = lambda n: Window(D.start + n * MS_PER_DAY, D.start + (n + 1) * MS_PER_DAY - 1)  # noqa: E731
    old = LaneState("111111111111", "us-east-1", period="day", etag='"e1"')
    old.mark_done("vpc", day(9))  # the state says so, the bucket has no folder for it
    old.mark_done("vpc", day(5), empty=True)  # known to hold no event: kept
    old.failures.append(Failure("vpc", day(1), "boom", 2, 7))  # archived since: dropped
    old.failures.append(Failure("vpc", day(6), "still", 1, 8))  # still missing: kept
    old.add_intent(Intent("vpc", day(7), "n7", "t7", 9))
    old.lease_owner, old.lease_expires_ms = "me", 123
    old.durations = {"vpc": 42.5}  # timing, which the bucket cannot tell: kept
    listing = Listing(
        folders=[
            folder("a", 0),  # COMPLETED: its window from AWS
            folder("b", 1),  # unknown to AWS: the whole day
            folder("c", 2),  # FAILED: partial output, not archived
            folder("d", 3),  # RUNNING: an intent for the next run to adopt
            folder("e", 4),
            folder("f", 4),  # two folders for one day
            folder("g", 8),  # AWS says the task is another group's: the whole day
        ]
    )
    tasks = {
        "a": status("a", "COMPLETED", Window(day(0).start, day(0).start + 3_600_000)),
        "c": status("c", "FAILED", day(2)),
        "d": status("d", "RUNNING", day(3)),
        "e": status("e", "COMPLETED", day(4)),
        "f": status("f", "COMPLETED", day(4)),
        "g": status("g", "COMPLETED", day(8), group="other"),
    }

    out = rebuild(old, listing, tasks, "day", now_ms=1000)

    new = out.state
    expected = [
        (day(0).start, day(0).start + 3_600_000),
        (day(1).start, day(1).end),
        (day(4).start, day(5).end),
        (day(8).start, day(8).end),
    ]
    assert new.covered["vpc"].spans == expected
    assert new.empty["vpc"].spans == [(day(5).start, day(5).end)]
    # the FAILED task's partial output: the next run deletes it before exporting the day again
    assert [(f.window, f.cleanup) for f in new.failures] == [(day(2), "c"), (day(6), None)]
    assert new.failures[1].error == "still"
    assert new.durations == {"vpc": 42.5}
    assert sorted((i.window, i.task_id) for i in new.intents) == [(day(3), "d"), (day(7), "t7")]
    assert (new.lease_owner, new.lease_expires_ms, new.etag) == ("me", 123, '"e1"')
    assert (out.described, out.whole_period) == (3, 2)
    assert [f.task_id for f, _ in out.partial] == ["c"]
    assert [f.task_id for f in out.running] == ["d"]
    assert out.doubled == [("vpc", day(4))]
    change = {c.group: c for c in out.changes}["vpc"]
    assert [str(s) for s in change.added] == ["2026-11-01..2026-11-02", "2026-11-05", "2026-11-09"]
    assert [str(s) for s in change.dropped] == ["2026-11-10"]
    assert out.had_state


def test_rebuild_without_a_state_starts_fresh() -> None:
    old = LaneState("111111111111", "us-east-1")
    out = rebuild(old, Listing(folders=[folder("a", 0)]), {}, "day", now_ms=0)
    assert out.state.etag is None and not out.had_state  # saved with If-None-Match
    assert out.state.covered["vpc"].spans == [(D.start, D.end)]


def test_rebuild_keeps_output_to_delete_even_for_an_archived_window() -> None:
    old = LaneState("111111111111", "us-east-1", period="day")
    old.failures.append(Failure("vpc", D, "task t FAILED; cannot delete", 1, 7, cleanup="t"))
    out = rebuild(old, Listing(folders=[folder("a", 0)]), {}, "day", now_ms=0)
    assert out.state.covered["vpc"].spans == [(D.start, D.end)]
    assert [(f.window, f.cleanup) for f in out.state.failures] == [(D, "t")]


def test_rebuild_leaves_out_the_folders_of_an_earlier_group_of_the_same_name() -> None:
    """A group deleted and created again: the old group's folders (written before the new
    group's creation) are neither its coverage nor a second folder of the same day."""
    created = D.start + 5 * MS_PER_DAY
    old = LaneState("111111111111", "us-east-1", period="day")
    old.created = {"vpc": created}
    old.previous = {"vpc@1": Intervals([(D.start, D.end)])}
    earlier, current = folder("a", 0), folder("b", 0)
    listing = Listing(
        folders=[earlier, current], written={earlier: created - 1, current: created + 1}
    )
    tasks = {t: status(t, "COMPLETED", D) for t in ("a", "b")}

    out = rebuild(old, listing, tasks, "day", now_ms=created + 2)

    assert out.earlier == [earlier]
    assert out.doubled == []
    assert out.state.covered["vpc"].spans == [(D.start, D.end)]  # from the current group's folder
    assert out.state.created == {"vpc": created}
    assert out.state.previous == {"vpc@1": Intervals([(D.start, D.end)])}
