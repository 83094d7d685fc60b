"""The run's display: progress bars timed from observed task durations, and the summary table."""

from __future__ import annotations

import io
import re
from datetime import date

from rich.console import Console

from log_exporter.console import ProgressReporter, print_summary
from log_exporter.engine import RunReport
from log_exporter.lane import LaneResult
from log_exporter.plan import ExportItem, LanePlan, Skip, SkipReason
from log_exporter.windows import MS_PER_DAY, Window, day_window

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
