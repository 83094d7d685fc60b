"""How the CLI shows a run: progress bars on a terminal, log lines elsewhere, a summary table."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .progress import Reporter
from .windows import MS_PER_DAY, MS_PER_HOUR, from_ms, iso_ms

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from .engine import RunReport
    from .lane import LaneResult
    from .plan import ExportItem, LanePlan

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


class ProgressReporter(LogReporter):
    """rich progress bars on a terminal: a total and one bar per busy lane, with ETAs."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._total: TaskID = self.progress.add_task("total", total=0, current="")
        self._lanes: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def lane_planned(self, lane: str, plan: LanePlan) -> None:
        n = len(plan.items)
        with self._lock:
            total = self.progress.tasks[self._total].total or 0
            self.progress.update(self._total, total=total + n)
            if n:
                self._lanes[lane] = self.progress.add_task(lane, total=n, current="")

    def _advance(self, lane: str, current: str = "") -> None:
        with self._lock:
            self.progress.advance(self._total)
            if lane in self._lanes:
                self.progress.update(self._lanes[lane], advance=1, current=current)

    def task_created(self, lane: str, item: ExportItem, task_id: str) -> None:
        with self._lock:
            if lane in self._lanes:
                self.progress.update(self._lanes[lane], current=f"{item.group} {_day(item)}")

    def task_finished(
        self, lane: str, item: ExportItem, task_id: str, status: str, seconds: float
    ) -> None:
        if status == "COMPLETED":
            self._advance(lane)
        else:
            super().task_finished(lane, item, task_id, status, seconds)

    def item_empty(self, lane: str, item: ExportItem) -> None:
        self._advance(lane)

    def lane_finished(self, result: LaneResult) -> None:
        with self._lock:
            failed = len(result.failed)
            if result.name in self._lanes:
                self.progress.update(
                    self._lanes[result.name],
                    advance=failed,
                    current="[red]failed" if result.error or failed else "[green]done",
                )
            if failed:
                self.progress.advance(self._total, failed)
        if result.error:
            super().lane_finished(result)


def print_summary(console: Console, report: RunReport) -> None:
    """Per account: days archived, empty, skipped, failed, and the time taken; then failures."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="log-exporter run", title_justify="left")
    for col in ("account", "region", "archived", "empty", "skipped", "failed", "tasks", "time"):
        table.add_column(col, justify="right" if col not in ("account", "region") else "left")
    for r in report.lanes:
        skipped = sum(1 for s in r.skipped)
        status = "[red]error" if r.error else str(len(r.failed))
        table.add_row(
            escape(r.account),
            r.region,
            str(len(r.archived)),
            str(len(r.empty)),
            str(skipped),
            status,
            str(r.tasks_created),
            f"{r.seconds:.1f}s",
        )
    console.print(table)
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
    console.print(f"{verdict}[/] ({report.seconds:.1f}s)", highlight=False)
