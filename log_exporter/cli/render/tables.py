"""How `plan`, `status`, `stats` and `sync` show their results: rich tables for people, plain JSON
documents (one per command) for machines and monitors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from log_exporter.core.labels import duration, window_label
from log_exporter.core.plan import ExportItem, Skip
from log_exporter.core.status import DaySpan, days_touched
from log_exporter.core.windows import Window, iso_ms

if TYPE_CHECKING:
    from rich.console import Console

    from log_exporter.core.status import GroupStatus
    from log_exporter.passes.forecast import LaneForecast
    from log_exporter.passes.stats import GroupStats
    from log_exporter.passes.survey import LaneOutcome
    from log_exporter.passes.sync import SyncResult


# --- small pieces ---------------------------------------------------------------------------------
def print_json(doc: dict[str, Any]) -> None:
    """One JSON document on stdout, indented (`--format json`)."""
    import json

    import click

    click.echo(json.dumps(doc, indent=2))


def runs(windows: Iterable[Window]) -> list[tuple[Window, int]]:
    """Adjacent windows joined: (the joined window, how many windows it holds), oldest first."""
    out: list[tuple[Window, int]] = []
    for w in sorted(windows):
        if out and out[-1][0].end + 1 == w.start:
            out[-1] = (Window(out[-1][0].start, w.end), out[-1][1] + 1)
        else:
            out.append((w, 1))
    return out


def size(n: float | None) -> str:
    """Bytes for people: `812 B`, `1.5 KiB`, `3.2 GiB`; `-` when unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def counted(count: int, noun: str) -> str:
    """`1 day`, `3 days`."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _window_json(w: Window) -> dict[str, Any]:
    return {"from": iso_ms(w.start), "to": iso_ms(w.end), "from_ms": w.start, "to_ms": w.end}


def _span_json(s: DaySpan) -> dict[str, Any]:
    return {"first": str(s.first), "last": str(s.last), "days": s.days}


def _lane_json(o: LaneOutcome[Any]) -> dict[str, Any]:
    return {
        "account": o.spec.account.name,
        "account_id": o.account_id or None,
        "region": o.spec.region,
        "error": o.error,
    }


def _errors(console: Console, outcomes: Sequence[LaneOutcome[Any]]) -> None:
    from rich.markup import escape

    for o in outcomes:
        if o.error:
            console.print(
                f"[red]error[/] {escape(o.name)}: {escape(o.error)}",
                highlight=False,
                soft_wrap=True,
            )


# --- plan -----------------------------------------------------------------------------------------
def plan_json(outcomes: Sequence[LaneOutcome[LaneForecast]]) -> dict[str, Any]:
    lanes: list[dict[str, Any]] = []
    for o in outcomes:
        doc = _lane_json(o)
        f = o.value
        if f is not None:
            doc.update(
                groups=f.groups,
                tasks=f.tasks,
                estimated_seconds=round(f.seconds, 1),
                task_seconds=round(f.task_seconds, 1),
                observed_tasks=f.observed,
                probed=f.probed,
                export=[{"group": i.group, **_window_json(i.window)} for i in f.plan.items],
                read=[{"group": i.group, **_window_json(i.window)} for i in f.read],
                empty=[{"group": i.group, **_window_json(i.window)} for i in f.empty],
                skipped=[
                    {
                        "group": s.group,
                        **_window_json(s.window),
                        "reason": s.reason.value,
                        "days": len(days_touched([s.window])),
                    }
                    for s in f.plan.skips
                ],
                in_flight=[
                    {"group": i.group, **_window_json(i.window), "task_id": i.task_id}
                    for i in f.in_flight
                ],
            )
        lanes.append(doc)
    done = [o.value for o in outcomes if o.value is not None]
    return {
        "lanes": lanes,
        "tasks": sum(f.tasks for f in done),
        "estimated_seconds": round(max((f.seconds for f in done), default=0.0), 1),
        "created_tasks": 0,
    }


def _by_group(items: Iterable[ExportItem]) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for i in items:
        out.setdefault(i.group, []).append(i.window)
    return out


def _skips_by_group(skips: Iterable[Skip]) -> dict[str, list[Skip]]:
    out: dict[str, list[Skip]] = {}
    for s in skips:
        out.setdefault(s.group, []).append(s)
    return out


def print_plan(console: Console, outcomes: Sequence[LaneOutcome[LaneForecast]]) -> None:
    """Per lane: a line with its tasks and time, then per group what is exported and skipped."""
    from rich.markup import escape
    from rich.table import Table

    for o in outcomes:
        f = o.value
        if f is None:
            continue
        basis = (
            f"median of {f.observed} recent tasks" if f.observed else "assumed: no task seen yet"
        )
        head = (
            f"[bold]{escape(o.name)}[/] ({o.account_id}): {counted(f.tasks, 'task')}"
            f"{f', {len(f.read)} windows read directly' if f.read else ''}, about "
            f"{duration(f.seconds)} ({duration(f.task_seconds)} a task, {basis})"
        )
        console.print(head, highlight=False, soft_wrap=True)
        table = Table()
        table.add_column("group")
        table.add_column("export (one task each)")
        if f.read:
            table.add_column("read directly")
        table.add_column("skipped")
        export = _by_group(f.plan.items)
        read = _by_group(f.read)
        empty = _by_group(f.empty)
        skips = _skips_by_group(f.plan.skips)
        busy = _by_group(ExportItem(i.window, i.group) for i in f.in_flight)
        for group in sorted(set(export) | set(skips) | set(empty) | set(busy) | set(read)):
            todo = [f"{window_label(w)} ({n})" for w, n in runs(export.get(group, []))]
            todo += [f"{window_label(w)} in flight" for w in busy.get(group, [])]
            why = [f"{window_label(w)} no events" for w, _ in runs(empty.get(group, []))]
            why += [f"{window_label(s.window)} {s.reason.value}" for s in skips.get(group, [])]
            direct = [f"{window_label(w)} ({n})" for w, n in runs(read.get(group, []))]
            cells = [escape(group), "\n".join(todo) or "-"]
            cells += ["\n".join(direct) or "-"] if f.read else []
            table.add_row(*cells, "\n".join(why) or "-")
        console.print(table)
    _errors(console, outcomes)
    done = [o.value for o in outcomes if o.value is not None]
    total = sum(f.tasks for f in done)
    longest = max((f.seconds for f in done), default=0.0)
    console.print(
        f"{counted(total, 'task')} in {counted(len(done), 'lane')}; about {duration(longest)} (lanes run in "
        "parallel, tasks one at a time in each). Nothing was created.",
        highlight=False,
        soft_wrap=True,
    )


# --- status ---------------------------------------------------------------------------------------
def _group_json(g: GroupStatus) -> dict[str, Any]:
    return {
        "group": g.group,
        "listed": g.listed,
        "ok": g.ok,
        "first_archived": str(g.first_archived) if g.first_archived else None,
        "last_archived": str(g.last_archived) if g.last_archived else None,
        "archived_days": g.archived_days,
        "empty_days": g.empty_days,
        "gap_days": g.gap_days,
        "gaps": [_span_json(s) for s in g.gaps],
        "failed_days": g.failed_days,
        "failed": [
            {
                **_window_json(f.window),
                "error": f.error,
                "attempts": f.attempts,
                "at": iso_ms(f.at_ms),
            }
            for f in g.failures
        ],
        "in_flight": [
            {
                **_window_json(i.window),
                "task_id": i.task_id,
                "task_name": i.name,
                "stuck": i in g.stuck,
            }
            for i in g.in_flight
        ],
    }


def status_ok(outcomes: Sequence[LaneOutcome[list[GroupStatus]]]) -> bool:
    return all(o.error is None and all(g.ok for g in o.value or []) for o in outcomes)


def status_json(outcomes: Sequence[LaneOutcome[list[GroupStatus]]]) -> dict[str, Any]:
    lanes = [{**_lane_json(o), "groups": [_group_json(g) for g in o.value or []]} for o in outcomes]
    groups = [g for o in outcomes for g in o.value or [] if g.listed]
    return {
        "ok": status_ok(outcomes),
        "gap_days": sum(g.gap_days for g in groups),
        "failed_days": sum(g.failed_days for g in groups),
        "lanes": lanes,
    }


def print_status(console: Console, outcomes: Sequence[LaneOutcome[list[GroupStatus]]]) -> None:
    """One row per group, then a line per gap, failed day and task in flight."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="log-exporter status", title_justify="left")
    for col in ("account", "region", "group", "first", "last", "archived", "empty", "gaps"):
        table.add_column(col, justify="right" if col in ("archived", "empty", "gaps") else "left")
    table.add_column("failed", justify="right")
    table.add_column("in flight", justify="right")
    for o in outcomes:
        for g in o.value or []:
            name = escape(g.group) + ("" if g.listed else " [dim](not in CloudWatch)[/]")
            table.add_row(
                escape(o.spec.account.name),
                o.spec.region,
                name,
                str(g.first_archived or "-"),
                str(g.last_archived or "-"),
                str(g.archived_days),
                str(g.empty_days),
                f"[red]{g.gap_days}[/]" if g.gap_days and g.listed else str(g.gap_days),
                f"[red]{g.failed_days}[/]" if g.failures and g.listed else str(g.failed_days),
                str(len(g.in_flight)),
            )
    console.print(table)
    for o in outcomes:
        for g in o.value or []:
            where = f"{escape(o.name)} {escape(g.group)}"
            for s in g.gaps:
                console.print(
                    f"[red]gap[/] {where} {s} ({counted(s.days, 'day')})",
                    highlight=False,
                    soft_wrap=True,
                )
            for f in g.failures:
                console.print(
                    f"[red]failed[/] {where} {window_label(f.window)}: {escape(f.error)} "
                    f"(failed in {f.attempts} run{'s' if f.attempts > 1 else ''}, "
                    f"last at {iso_ms(f.at_ms)})",
                    highlight=False,
                    soft_wrap=True,
                )
            for i in g.in_flight:
                label = "[red]stuck[/]" if i in g.stuck else "[yellow]in flight[/]"
                console.print(
                    f"{label} {where} {window_label(i.window)}: "
                    f"task {i.task_id or '(being created)'} since {iso_ms(i.since_ms)}",
                    highlight=False,
                    soft_wrap=True,
                )
    _errors(console, outcomes)
    doc = status_json(outcomes)
    if doc["ok"]:
        console.print("[green]no gaps, no failed days[/]", highlight=False, soft_wrap=True)
    else:
        console.print(
            f"[red]{counted(doc['gap_days'], 'day')} missing, {counted(doc['failed_days'], 'day')} failed[/]"
            + (" (and lanes that could not be read)" if any(o.error for o in outcomes) else ""),
            highlight=False,
            soft_wrap=True,
        )


# --- stats ----------------------------------------------------------------------------------------
def stats_json(outcomes: Sequence[LaneOutcome[list[GroupStats]]]) -> dict[str, Any]:
    lanes = []
    for o in outcomes:
        groups = [
            {
                "group": g.group,
                "stored_bytes": g.stored_bytes,
                "days": [
                    {
                        "day": str(d.day),
                        "incoming_bytes": d.incoming_bytes,
                        "objects": d.objects,
                        "archived_bytes": d.archived_bytes,
                        "note": d.note,
                    }
                    for d in g.days
                ],
            }
            for g in o.value or []
        ]
        lanes.append({**_lane_json(o), "groups": groups})
    return {"lanes": lanes}


def print_stats(console: Console, outcomes: Sequence[LaneOutcome[list[GroupStats]]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="CloudWatch beside the archive", title_justify="left")
    for col in ("account", "region", "group", "stored", "day", "incoming", "objects", "archived"):
        right = col in ("stored", "incoming", "objects", "archived")
        table.add_column(col, justify="right" if right else "left")
    table.add_column("note")
    notes = 0
    for o in outcomes:
        for g in o.value or []:
            for n, d in enumerate(g.days or [None]):
                first = n == 0
                row = [
                    escape(o.spec.account.name) if first else "",
                    o.spec.region if first else "",
                    escape(g.group) if first else "",
                    size(g.stored_bytes) if first else "",
                ]
                if d is None:
                    row += ["-", "-", "-", "-", ""]
                else:
                    notes += bool(d.note)
                    row += [
                        str(d.day),
                        size(d.incoming_bytes),
                        str(d.objects),
                        size(d.archived_bytes),
                        f"[yellow]{d.note}[/]" if d.note else "",
                    ]
                table.add_row(*row)
    console.print(table)
    _errors(console, outcomes)
    console.print(
        "incoming: CloudWatch's IncomingBytes (uncompressed, by ingestion time); archived: the "
        "gzip objects filed under that day (by event time).",
        highlight=False,
        soft_wrap=True,
        style="dim",
    )
    if notes:
        console.print(
            f"[yellow]{notes} days look short[/]: `missing` = CloudWatch received data, the "
            "archive has nothing; `small` = under 2% of it (check with `log-exporter status`)",
            highlight=False,
            soft_wrap=True,
        )


# --- sync -----------------------------------------------------------------------------------------
def _c7n(r: SyncResult) -> str:
    """What `sync` found of a c7n-logexporter archive, for its summary line."""
    out = f", {r.c7n_window} as c7n-logexporter's day window" if r.c7n_window else ""
    if r.listing.markers:
        out += f"; {counted(len(r.listing.markers), 'c7n-logexporter marker')} left alone"
    return out


def print_sync(
    console: Console, outcomes: Sequence[LaneOutcome[SyncResult]], *, dry_run: bool
) -> None:
    from rich.markup import escape

    for o in outcomes:
        r = o.value
        if r is None:
            continue
        groups = {f.group for f in r.listing.folders}
        verb = "would write" if dry_run else "wrote"
        was = "replacing the existing state" if r.had_state else "there was no state"
        console.print(
            f"[bold]{escape(o.name)}[/] ({o.account_id}): {len(r.listing.folders)} task folders "
            f"in {len(groups)} groups ({r.described} described by AWS, {r.whole_period} taken as "
            f"their whole period{_c7n(r)}{f', {r.read} read directly' if r.read else ''}), "
            f"{counted(r.listing.requests, 'list request')}; {verb} "
            f"the state ({was})",
            highlight=False,
            soft_wrap=True,
        )
        for c in r.changes:
            added = ", ".join(str(s) for s in c.added)
            dropped = ", ".join(str(s) for s in c.dropped)
            line = f"  {escape(c.group)}:"
            if added:
                line += f" [green]+{counted(sum(s.days for s in c.added), 'day')}[/] ({added})"
            if dropped:
                line += f" [red]-{counted(sum(s.days for s in c.dropped), 'day')}[/] ({dropped})"
            console.print(line, highlight=False, soft_wrap=True)
        for folder in r.running:
            console.print(
                f"  [yellow]in flight[/] {escape(folder.group)} {window_label(folder.period)}: "
                f"task {folder.task_id} is still running; the next run adopts it",
                highlight=False,
                soft_wrap=True,
            )
        for folder, status in r.partial:
            console.print(
                f"  [red]partial output[/] of {status.code} task {folder.task_id} "
                f"({escape(folder.group)} {window_label(folder.period)}) is not counted; the "
                f"next run deletes s3://{o.bucket}/{escape(folder.dest)}/{folder.task_id}/ "
                "before it exports that window again",
                highlight=False,
                soft_wrap=True,
            )
        if r.earlier:
            console.print(
                f"  {counted(len(r.earlier), 'task folder')} written before its group was created "
                "belong to an earlier group of the same name: not counted for the current one",
                highlight=False,
                soft_wrap=True,
            )
        if r.set_aside:
            console.print(
                f"  [yellow]unreadable state[/] kept aside as {escape(r.set_aside)}",
                highlight=False,
                soft_wrap=True,
            )
        for group, w in r.doubled:
            console.print(
                f"  [yellow]twice[/] {escape(group)} {window_label(w)} is in more than one "
                "task folder: its events may be archived twice",
                highlight=False,
                soft_wrap=True,
            )
        if r.listing.strays:
            examples = ", ".join(r.listing.stray[:3])
            console.print(
                f"  [yellow]{r.listing.strays} objects[/] match no selected group's layout and "
                f"were left out (e.g. {escape(examples)})",
                highlight=False,
                soft_wrap=True,
            )
    _errors(console, outcomes)
    if dry_run:
        console.print("dry run: no state was written", highlight=False, soft_wrap=True)
