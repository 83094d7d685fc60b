"""The run's display: progress bars timed from observed task durations, and the summary table."""

from __future__ import annotations

import io
import re
from collections.abc import Set
from datetime import date

import pytest
from rich.console import Console

from log_exporter.cli.render.console import SUMMARY_ROWS, ProgressReporter, print_summary
from log_exporter.core.plan import ExportItem, LanePlan, Skip, SkipReason
from log_exporter.core.windows import MS_PER_DAY, Window, day_window
from log_exporter.engine import RunReport
from log_exporter.lane.result import LaneResult

A, B = "acct-a/us-east-1", "acct-b/us-east-1"


def item(n: int, group: str = "/aws/lambda/api") -> ExportItem:
    return ExportItem(day_window(date(2026, 11, 1 + n)), group)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def render(reporter: ProgressReporter) -> dict[str, str]:
    """The bars as text, one line per visible bar, keyed by its description."""
    out = io.StringIO()
    Console(file=out, width=140, force_terminal=False, color_system=None).print(
        reporter.progress.get_renderable()
    )
    return {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}


def test_bars_count_windows_and_time_the_rest_from_task_durations() -> None:
    clock = Clock()
    reporter = ProgressReporter(Console(file=io.StringIO()), clock=clock)
    reporter.lane_planned(A, LanePlan(items=[item(0), item(1), item(2), item(3)]))
    reporter.lane_planned(B, LanePlan(items=[item(0), item(1)]))
    bars = render(reporter)
    assert "0/6" in bars["total"] and "-:--:--" in bars["total"]  # nothing seen yet: no guess

    reporter.task_created(A, item(0), "t-1")
    assert "/aws/lambda/api 2026-11-01" in render(reporter)[A]  # the lane's current task
    clock.now += 10
    reporter.task_finished(A, item(0), "t-1", "COMPLETED", 10.0)
    bars = render(reporter)
    assert "1/4" in bars[A] and "0:00:30" in bars[A]  # 3 left x 10 s
    assert "0:00:20" in bars[B]  # no task of its own yet: the mean of all lanes
    assert "1/6" in bars["total"] and "0:00:30" in bars["total"]  # the slowest lane

    clock.now += 5
    assert "0:00:25" in render(reporter)[A]  # counts down between events

    reporter.notice(B, "export slot busy with someone-else; waiting")
    assert "export slot busy with someone-else; waiting" in render(reporter)[B]
    reporter.item_empty(A, item(1))  # no task: advances, keeps the per-task time
    assert "2/4" in render(reporter)[A] and "0:00:20" in render(reporter)[A]

    reporter.lane_finished(LaneResult("acct-a", "1", "us-east-1", archived=[item(0)]))
    bars = render(reporter)
    assert A not in bars  # a finished lane's bar goes
    failed = LaneResult("acct-b", "2", "us-east-1", failed=[(item(0), "boom")], error=None)
    reporter.lane_finished(failed)
    bars = render(reporter)
    assert "failed: 1 failed" in bars[B]  # a failed one stays, saying so


def test_summary_counts_skipped_days_not_ranges() -> None:
    def days(first: int, last: int) -> Window:
        d0 = day_window(date(2026, 11, 1)).start
        return Window(d0 + first * MS_PER_DAY, d0 + (last + 1) * MS_PER_DAY - 1)

    lane = LaneResult("acct-a", "111111111111", "us-east-1", archived=[item(5)], seconds=1.5)
    lane.skipped = [
        Skip("/g", days(0, 2), SkipReason.ARCHIVED),  # 3 days
        Skip("/g", Window(days(3, 3).start + 3_600_000, days(4, 4).end), SkipReason.NO_STREAMS),
        Skip("/h", days(0, 0), SkipReason.BEFORE_CREATION),  # 1 day
    ]
    out = io.StringIO()
    print_summary(Console(file=out, width=120), RunReport(lanes=[lane], seconds=2.0))
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "skipped" in line)
    row = next(line for line in lines if "acct-a" in line)

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]

    got = dict(zip(cells(header), cells(row), strict=True))
    assert (got["archived"], got["skipped"], got["time"]) == ("1", "6", "1.5s")


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]


def lanes(n: int, *, failing: Set[int] = frozenset(), error: Set[int] = frozenset()) -> RunReport:
    """`n` lanes `acct-0000`..: lane i archived i % 3 days, 1 empty, 2 tasks, i % 2 retries and
    took i % 50 seconds; those in `failing` failed a window, those in `error` stopped."""
    out = []
    for i in range(n):
        lane = LaneResult(
            f"acct-{i:04d}",
            f"{i:012d}",
            "us-east-1",
            archived=[item(d) for d in range(i % 3)],
            empty=[item(9)],
            tasks_created=2,
            retries=i % 2,
            seconds=float(i % 50),
        )
        if i in failing:
            lane.failed = [(item(7), f"boom {i}")]
        if i in error:
            lane.error = f"denied {i}"
        out.append(lane)
    return RunReport(lanes=out, seconds=60.0)


def summary(report: RunReport) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The table's rows as {account: {column: cell}}, and every line of the output."""
    out = io.StringIO()
    print_summary(Console(file=out, width=160), report)
    lines = out.getvalue().splitlines()
    header = cells(next(line for line in lines if "skipped" in line))
    rows = {}
    for line in lines:
        got = cells(line)
        if len(got) == len(header) and got != header and got[0]:
            rows[got[0]] = dict(zip(header, got, strict=True))
    return rows, lines


def test_summary_lists_every_lane_up_to_summary_rows() -> None:
    report = lanes(SUMMARY_ROWS, failing={3}, error={4})
    rows, lines = summary(report)
    assert list(rows) == [f"acct-{i:04d}" for i in range(SUMMARY_ROWS)]
    assert rows["acct-0002"] == {
        "account": "acct-0002",
        "region": "us-east-1",
        "archived": "2",
        "empty": "1",
        "skipped": "0",
        "failed": "0",
        "tasks": "2",
        "retries": "0",
        "time": "2.0s",
    }
    assert (rows["acct-0003"]["failed"], rows["acct-0004"]["failed"]) == ("1", "error")
    assert not any("log-exporter status" in line for line in lines)
    assert lines[-1] == "some work failed (60.0s, 15 retries)"


def totals(indexes: range | list[int]) -> dict[str, str]:
    """The totals row's number cells for the lanes `lanes()` makes at `indexes`."""
    return {
        "archived": str(sum(i % 3 for i in indexes)),
        "empty": str(len(indexes)),
        "skipped": "0",
        "tasks": str(2 * len(indexes)),
        "retries": str(sum(i % 2 for i in indexes)),
        "time": f"{max(i % 50 for i in indexes):.1f}s",
    }


@pytest.mark.parametrize(
    ("n", "failing", "error", "listed", "total_row"),
    [
        # all ok: no lane listed, one row for them all
        (200, set(), set(), [], "all 200 lanes"),
        # a few failing: those, then the rest totalled
        (200, {5, 50}, {150}, [5, 50, 150], "197 other lanes"),
        (SUMMARY_ROWS + 1, set(), set(), [], f"all {SUMMARY_ROWS + 1} lanes"),
        # more failing than fit: the first SUMMARY_ROWS, the others folded into the totals
        (
            200,
            set(range(0, 100, 2)),
            set(),
            [*range(0, 2 * SUMMARY_ROWS, 2)],
            "170 other lanes (20 need attention, see below)",
        ),
        # every lane stopped: SUMMARY_ROWS of them listed, all their errors below
        (
            50,
            set(),
            set(range(50)),
            [*range(SUMMARY_ROWS)],
            "20 other lanes (20 need attention, see below)",
        ),
    ],
)
def test_summary_with_many_lanes_lists_those_needing_attention_and_totals_the_rest(
    n: int,
    failing: set[int],
    error: set[int],
    listed: list[int],
    total_row: str,
) -> None:
    report = lanes(n, failing=failing, error=error)
    rows, lines = summary(report)
    assert list(rows) == [*(f"acct-{i:04d}" for i in listed), total_row]
    others = [i for i in range(n) if i not in listed]
    got = rows[total_row]
    assert got["region"] == ""
    assert got["failed"] == str(sum(i in failing for i in others))
    assert {k: got[k] for k in totals(others)} == totals(others)
    for i in listed:
        assert rows[f"acct-{i:04d}"]["failed"] == ("error" if i in error else "1")
    # every failure is still spelled out below the table, listed or not
    below = [line for line in lines if line.startswith(("failed ", "error "))]
    assert below == [
        f"error acct-{i:04d}/us-east-1: denied {i}"
        if i in error
        else f"failed acct-{i:04d}/us-east-1 /aws/lambda/api 2026-11-08: boom {i}"
        for i in sorted(failing | error)
    ]
    assert any("log-exporter status --config FILE` shows every lane" in line for line in lines)
    verdict = "some work failed" if failing or error else "everything asked for is archived"
    assert lines[-1] == f"{verdict} (60.0s, {sum(i % 2 for i in range(n))} retries)"


def test_summary_totals_remaining_and_skipped_days_of_folded_lanes() -> None:
    report = lanes(SUMMARY_ROWS + 10)
    report.lanes[1].remaining = 4  # needs attention: listed
    report.lanes[2].skipped = [Skip("/g", day_window(date(2026, 11, 1)), SkipReason.ARCHIVED)]
    rows, lines = summary(report)
    assert list(rows) == ["acct-0001", f"{SUMMARY_ROWS + 9} other lanes"]
    assert rows[f"{SUMMARY_ROWS + 9} other lanes"]["skipped"] == "1"
    assert "unfinished acct-0001/us-east-1: 4 windows left" in lines
