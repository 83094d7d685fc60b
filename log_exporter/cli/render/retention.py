"""What `retention` prints: a row per group (its retention before and after, what was done and
why), then a line per group refused or failed and per lane that could not be read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from log_exporter.core.retention import Outcome, days_label

if TYPE_CHECKING:
    from rich.console import Console

    from log_exporter.core.retention import RetentionDecision
    from log_exporter.passes.survey import LaneOutcome


def print_retention(
    console: Console,
    outcomes: list[LaneOutcome[list[RetentionDecision]]],
    *,
    dry_run: bool,
) -> None:
    """A row per group (old and new retention, what was done and why), then one line per group
    refused (its first missing days) or failed, and per lane that could not be read."""
    table = Table(title="log-exporter retention", title_justify="left")
    for col in ("account", "region", "group", "before", "after", "result", "why"):
        table.add_column(col)
    for o in outcomes:
        for d in o.value or []:
            color = "green" if d.outcome in (Outcome.SET, Outcome.WOULD_SET) else "red"
            color = "dim" if d.outcome is Outcome.ALREADY else color
            table.add_row(
                escape(o.spec.account.name),
                o.spec.region,
                escape(d.group),
                days_label(d.old),
                days_label(d.new if d.outcome in (Outcome.SET, Outcome.WOULD_SET) else d.old),
                f"[{color}]{d.outcome}[/]",
                escape(d.why),
            )
    console.print(table)
    for o in outcomes:
        if o.error:
            console.print(f"[red]error[/] {escape(o.name)}: {escape(o.error)}", highlight=False)
        for d in o.value or []:
            where = f"{escape(o.name)} {escape(d.group)}"
            if d.outcome is Outcome.REFUSED:
                first = ", ".join(str(s) for s in d.missing[:3])
                more = ", ..." if len(d.missing) > 3 else ""
                console.print(
                    f"[red]refused[/] {where}: not archived: {first}{more} "
                    f"({days_label(d.missing_days)}); "
                    "run `log-exporter run` (with --start for days before destination.start) "
                    "and try again",
                    highlight=False,
                    soft_wrap=True,
                )
            elif d.outcome is Outcome.FAILED:
                console.print(f"[red]failed[/] {where}: {escape(d.error)}", highlight=False)
    if dry_run:
        console.print("dry run: no retention was changed", highlight=False)
