"""How the CLI shows a run: progress bars on a terminal, log lines elsewhere, a summary table."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from log_exporter.core.windows import MS_PER_DAY, MS_PER_HOUR, from_ms, iso_ms
from log_exporter.progress import Reporter

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, Task, TaskID
    from rich.text import Text

    from log_exporter.core.plan import ExportItem, LanePlan
    from log_exporter.engine import RunReport
    from log_exporter.lane.result import LaneResult

log = logging.getLogger("log_exporter")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's structured fields (`extra=`)."""

    FIELDS = ("lane", "account", "region", "group", "window", "day", "task_id", "status", "seconds")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": iso_ms(int(record.created * 1000)),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in self.FIELDS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(fmt: str, level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("log_exporter")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _day(item: ExportItem) -> str:
    return f"{from_ms(item.window.start):%Y-%m-%d}"


def label(item: ExportItem) -> str:
    """`/aws/lambda/api 2026-11-01` for a whole day, `... 2026-11-01T05h` for an hour, else the
    exact window."""
    w = item.window
    if w.start % MS_PER_DAY == 0 and w.duration_ms == MS_PER_DAY:
        return f"{item.group} {_day(item)}"
    if w.start % MS_PER_HOUR == 0 and w.duration_ms == MS_PER_HOUR:
        return f"{item.group} {from_ms(w.start):%Y-%m-%dT%Hh}"
    return f"{item.group} {w}"


def _fields(lane: str, item: ExportItem | None = None, **more: Any) -> dict[str, Any]:
    account, _, region = lane.rpartition("/")
    out: dict[str, Any] = {"lane": lane, "account": account, "region": region}
    if item is not None:
        out.update(group=item.group, window=str(item.window), day=_day(item))
    out.update(more)
    return out


class LogReporter(Reporter):
    """Plain log lines, one per task event: for CI, cron and Lambda."""

    def lane_planned(self, lane: str, plan: LanePlan) -> None:
        log.info("%s: %d windows to export", lane, len(plan.items), extra=_fields(lane))

    def task_created(self, lane: str, item: ExportItem, task_id: str) -> None:
        log.info(
            "%s: %s: task %s started",
            lane,
            label(item),
            task_id,
            extra=_fields(lane, item, task_id=task_id, status="STARTED"),
        )

    def task_finished(
        self, lane: str, item: ExportItem, task_id: str, status: str, seconds: float
    ) -> None:
        level = logging.INFO if status == "COMPLETED" else logging.WARNING
        log.log(
            level,
            "%s: %s: task %s %s in %.1fs",
            lane,
            label(item),
            task_id,
            status,
            seconds,
            extra=_fields(lane, item, task_id=task_id, status=status, seconds=round(seconds, 3)),
        )

    def items_skipped(self, lane: str, items: list[ExportItem]) -> None:
        log.debug(
            "%s: %d planned windows left the plan (no writes then, or the lane starts over)",
            lane,
            len(items),
            extra=_fields(lane, skipped=len(items)),
        )

    def item_read(self, lane: str, item: ExportItem, folder_id: str, seconds: float) -> None:
        log.info(
            "%s: %s: read directly into %s in %.1fs",
            lane,
            label(item),
            folder_id,
            seconds,
            extra=_fields(lane, item, folder=folder_id, status="READ", seconds=round(seconds, 3)),
        )

    def item_empty(self, lane: str, item: ExportItem) -> None:
        log.debug(
            "%s: %s: no events, nothing to export",
            lane,
            label(item),
            extra=_fields(lane, item, status="EMPTY"),
        )

    def item_retry(self, lane: str, item: ExportItem, reason: str) -> None:
        log.warning(
            "%s: %s: retrying: %s",
            lane,
            label(item),
            reason,
            extra=_fields(lane, item, status="RETRY"),
        )

    def notice(self, lane: str, message: str) -> None:
        log.info("%s: %s", lane, message, extra=_fields(lane))

    def lane_finished(self, result: LaneResult) -> None:
        if result.error:
            log.error("%s: failed: %s", result.name, result.error, extra=_fields(result.name))
        else:
            log.info(
                "%s: done: %d archived, %d empty, %d failed in %.1fs",
                result.name,
                len(result.archived),
                len(result.empty),
                len(result.failed),
                result.seconds,
                extra=_fields(result.name, seconds=round(result.seconds, 3)),
            )


def eta_column(clock: Callable[[], float]) -> ProgressColumn:
    """A column with the time left from the export tasks' observed durations, read from the
    task's `eta` field (a `clock()` time), counting down between events. rich's own ETA follows
    the speed of the bar, which empty days (no task) and retries make meaningless."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            deadline = task.fields.get("eta")
            if task.finished:
                left = 0
            elif deadline is None:
                return Text("-:--:--", style="progress.remaining")
            else:
                left = max(0, round(deadline - clock()))
            text = f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
            return Text(text, style="progress.remaining")

    return EtaColumn()


class ProgressReporter(LogReporter):
    """rich progress bars on a terminal: a total and one bar per busy lane, with the lane's
    windows done / to do, what it is doing now, and an ETA from the task durations seen.

    A lane's bar goes when the lane is done (a failed lane's stays, in red); log lines (warnings,
    notices) are printed above the bars.
    """

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.clock = clock
        self.progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            eta_column(clock),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._total: TaskID = self.progress.add_task("total", total=0, current="", eta=None)
        self._lanes: dict[str, TaskID] = {}
        self._left: dict[str, int] = {}  # windows a lane has still to do
        self._seconds: dict[str, list[float]] = {}  # a lane's completed tasks' durations
        self._deadline: dict[str, float | None] = {}
        self._streams: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        # Log lines written straight to the terminal would tear the bars: send them through
        # the (redirected) sys.stderr, which prints them above the live display.
        for h in logging.getLogger("log_exporter").handlers:
            if isinstance(h, logging.StreamHandler) and h.stream is not sys.stderr:
                self._streams.append((h, h.setStream(sys.stderr)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h, stream in self._streams:
            h.setStream(stream)
        self._streams.clear()
        self.progress.stop()

    def _mean(self, lane: str) -> float | None:
        own = self._seconds.get(lane) or [s for v in self._seconds.values() for s in v]
        return sum(own) / len(own) if own else None

    def _estimate(self, lane: str) -> None:
        """Re-time `lane` (its windows left times its mean task) and the total (the slowest
        lane: lanes run in parallel). Call with the lock held."""
        mean = self._mean(lane)
        self._deadline[lane] = None if mean is None else self.clock() + self._left[lane] * mean
        if lane in self._lanes:
            self.progress.update(self._lanes[lane], eta=self._deadline[lane])
        known = [d for d in self._deadline.values() if d is not None]
        self.progress.update(self._total, eta=max(known) if known else None)

    def lane_planned(self, lane: str, plan: LanePlan) -> None:
        n = len(plan.items)
        with self._lock:
            total = self.progress.tasks[self._total].total or 0
            self.progress.update(self._total, total=total + n)
            if lane in self._lanes:  # planned again (it started over): the same bar
                bar = self._lanes[lane]
                self.progress.update(bar, total=(self.progress.tasks[bar].total or 0) + n)
                self._left[lane] += n
                self._estimate(lane)
            elif n:
                self._lanes[lane] = self.progress.add_task(lane, total=n, current="", eta=None)
                self._left[lane] = n
                self._estimate(lane)

    def _status(self, lane: str, text: str) -> None:
        with self._lock:
            if lane in self._lanes:
                self.progress.update(self._lanes[lane], current=text)

    def _advance(self, lane: str, seconds: float | None = None) -> None:
        with self._lock:
            self.progress.advance(self._total)
            if lane in self._lanes:
                self.progress.update(self._lanes[lane], advance=1)
                self._left[lane] = max(0, self._left[lane] - 1)
                first = seconds is not None and not self._seconds
                if seconds is not None:
                    self._seconds.setdefault(lane, []).append(seconds)
                self._estimate(lane)
                for other in self._left if first else ():  # the first duration times them all
                    if other != lane and other in self._deadline:
                        self._estimate(other)

    def task_created(self, lane: str, item: ExportItem, task_id: str) -> None:
        self._status(lane, label(item))

    def task_finished(
        self, lane: str, item: ExportItem, task_id: str, status: str, seconds: float
    ) -> None:
        if status == "COMPLETED":
            self._advance(lane, seconds)
        else:
            super().task_finished(lane, item, task_id, status, seconds)

    def items_skipped(self, lane: str, items: list[ExportItem]) -> None:
        n = len(items)
        with self._lock:
            total = self.progress.tasks[self._total].total or 0
            self.progress.update(self._total, total=max(0, total - n))
            if lane in self._lanes:
                bar = self._lanes[lane]
                left = (self.progress.tasks[bar].total or 0) - n
                self.progress.update(bar, total=max(0, left))
                self._left[lane] = max(0, self._left[lane] - n)
                self._estimate(lane)

    def item_empty(self, lane: str, item: ExportItem) -> None:
        self._advance(lane)

    def item_read(self, lane: str, item: ExportItem, folder_id: str, seconds: float) -> None:
        self._advance(lane)  # a read's time says nothing of the tasks' (the estimate's basis)

    def item_retry(self, lane: str, item: ExportItem, reason: str) -> None:
        self._status(lane, f"[yellow]retrying {label(item)}")
        super().item_retry(lane, item, reason)

    def notice(self, lane: str, message: str) -> None:
        self._status(lane, f"[yellow]{message}")
        super().notice(lane, message)

    def lane_finished(self, result: LaneResult) -> None:
        with self._lock:
            failed = len(result.failed)
            self._deadline.pop(result.name, None)
            if result.name in self._lanes:
                bar = self._lanes[result.name]
                if result.error or failed:
                    why = result.error or f"{failed} failed"
                    self.progress.update(bar, advance=failed, current=f"[red]failed: {why}")
                else:
                    self.progress.update(bar, current="[green]done", visible=False)
            if failed:
                self.progress.advance(self._total, failed)
            known = [d for d in self._deadline.values() if d is not None]
            self.progress.update(self._total, eta=max(known) if known else None)
        if result.error:
            super().lane_finished(result)


SUMMARY_ROWS = 30
"""Lanes the summary table lists one by one; with more, it lists only those that need attention
(at most this many) and totals the rest in one row."""


def _needs_attention(r: LaneResult) -> bool:
    return bool(r.error or r.failed or r.remaining)


def _skipped_days(r: LaneResult) -> int:
    return sum((s.window.end // MS_PER_DAY) - (s.window.start // MS_PER_DAY) + 1 for s in r.skipped)


def _lane_row(r: LaneResult) -> tuple[str, ...]:
    from rich.markup import escape

    status = "[red]error" if r.error else str(len(r.failed))
    return (
        escape(r.account),
        r.region,
        str(len(r.archived)),
        str(len(r.empty)),
        str(_skipped_days(r)),
        status,
        str(r.tasks_created),
        str(r.retries),
        f"{r.seconds:.1f}s",
    )


def _totals_row(lanes: list[LaneResult], listed: int) -> tuple[str, ...]:
    """One row for `lanes` (those not listed): their sums, and the longest time among them."""
    archived = empty = skipped = failed = tasks = retries = attention = 0
    seconds = 0.0
    for r in lanes:
        archived += len(r.archived)
        empty += len(r.empty)
        skipped += _skipped_days(r)
        failed += len(r.failed)
        tasks += r.tasks_created
        retries += r.retries
        seconds = max(seconds, r.seconds)
        attention += _needs_attention(r)
    name = f"{len(lanes)} other lanes" if listed else f"all {len(lanes)} lanes"
    if attention:
        name += f" [yellow]({attention} need attention, see below)[/]"
    return (
        name,
        "",
        str(archived),
        str(empty),
        str(skipped),
        str(failed),
        str(tasks),
        str(retries),
        f"{seconds:.1f}s",
    )


def print_summary(console: Console, report: RunReport) -> None:
    """Per account: days archived, empty, skipped, failed, and the time taken; then failures.

    With more than SUMMARY_ROWS lanes, only the lanes that need attention (an error, failed
    windows or windows left) get a row, at most SUMMARY_ROWS of them, and one row totals the
    others; every failure is still listed below the table.
    """
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="log-exporter run", title_justify="left")
    cols = ("account", "region", "archived", "empty", "skipped", "failed", "tasks", "retries")
    for col in (*cols, "time"):
        table.add_column(col, justify="right" if col not in ("account", "region") else "left")
    if len(report.lanes) <= SUMMARY_ROWS:
        for r in report.lanes:
            table.add_row(*_lane_row(r))
    else:
        listed: list[LaneResult] = []
        others: list[LaneResult] = []
        for r in report.lanes:
            if len(listed) < SUMMARY_ROWS and _needs_attention(r):
                listed.append(r)
            else:
                others.append(r)
        for r in listed:
            table.add_row(*_lane_row(r))
        if others:
            if listed:
                table.add_section()
            table.add_row(*_totals_row(others, len(listed)))
    console.print(table)
    if len(report.lanes) > SUMMARY_ROWS:
        console.print(
            f"{len(report.lanes)} lanes, only those needing attention listed:"
            " `log-exporter status --config FILE` shows every lane",
            style="dim",
            highlight=False,
        )
    for r in report.lanes:
        if r.error:
            console.print(f"[red]error[/] {escape(r.name)}: {escape(r.error)}", highlight=False)
        for item, why in r.failed:
            console.print(
                f"[red]failed[/] {escape(r.name)} {escape(label(item))}: {escape(why)}",
                highlight=False,
            )
        if r.remaining:
            console.print(
                f"[yellow]unfinished[/] {escape(r.name)}: {r.remaining} windows left",
                highlight=False,
            )
    verdict = "[green]everything asked for is archived" if report.ok else "[red]some work failed"
    retries = f", {report.retries} retries" if report.retries else ""
    console.print(f"{verdict}[/] ({report.seconds:.1f}s{retries})", highlight=False)


def run_reporter(log_format: str, *, quiet: bool) -> LogReporter:
    """How a run reports: progress bars on a terminal (text logs, not --quiet), else log lines."""
    from rich.console import Console

    err = Console(stderr=True)
    use_bars = err.is_terminal and log_format == "text" and not quiet
    return ProgressReporter(err) if use_bars else LogReporter()


def summary_console() -> Console:
    """The console of a run's summary: stdout; not a terminal: 160 columns wide."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=160)
