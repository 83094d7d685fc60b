"""The `retention` command: shorten the CloudWatch retention of groups whose archive is complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from log_exporter.cli.options import READ_PARALLEL, build_engine, lane_filters, stdout_console

if TYPE_CHECKING:
    from log_exporter.core.retention import RetentionDecision

EPILOG_RETENTION = """\b
Examples:
  log-exporter retention --config config.yml --days 90 --dry-run
  log-exporter retention --config config.yml --days 30 --account prod --group '/aws/lambda/*'

Sets each selected group's CloudWatch retention to N days, only when every day it
would delete (from the group's creation, not destination.start, to now minus N
days) is archived or known to be empty, as `status` sees it; otherwise it names the
missing days and leaves the group alone. A group whose retention is already N days
or less is left alone. N must leave a day the time to be archived: at least its
period, destination.settle and a day of schedule margin (3 days with the defaults).
Needs logs:PutRetentionPolicy in the member role
(`log-exporter policy --with-retention`). Exit 0 when every group was set or was
already fine, 1 when a group was refused or failed, 2 for a bad N.
"""


def parse_days(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    from log_exporter.core.retention import AWS_RETENTION_DAYS

    if value is not None and value not in AWS_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in AWS_RETENTION_DAYS)
        raise click.BadParameter(f"{value} is not a retention CloudWatch Logs accepts ({allowed})")
    return value


@click.command(epilog=EPILOG_RETENTION)
@lane_filters
@click.option(
    "--group",
    "group_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Only log groups matching (a name, a glob, or re:REGEX; repeatable).",
)
@click.option(
    "--days",
    type=int,
    required=True,
    callback=parse_days,
    metavar="N",
    help="The new retention in days (one of the values CloudWatch Logs accepts).",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.pass_context
def retention(
    ctx: click.Context,
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    group_patterns: tuple[str, ...],
    days: int,
    dry_run: bool,
) -> None:
    """Set the CloudWatch retention of groups whose archive holds every day it would delete."""
    from log_exporter.cli.render.retention import print_retention
    from log_exporter.core.config import GroupSelector, load_config
    from log_exporter.core.retention import too_short
    from log_exporter.engine import RunOptions
    from log_exporter.errors import UsageError
    from log_exporter.lane.view import LaneView
    from log_exporter.passes.retention import retention_of
    from log_exporter.passes.survey import survey

    config = load_config(config_path)
    dest = config.destination
    short = too_short(days, dest.period, dest.settle)
    if short is not None:
        raise UsageError(short)
    only = GroupSelector(group_patterns) if group_patterns else None

    def inspect(lane: LaneView) -> list[RetentionDecision]:
        return retention_of(lane, only, days, dry_run=dry_run)

    engine = build_engine(config, regions, READ_PARALLEL)
    options = RunOptions(accounts=accounts, regions=regions, partial=False)
    outcomes = survey(engine, options, inspect, debug=ctx.obj["debug"])
    print_retention(stdout_console(), outcomes, dry_run=dry_run)
    ok = all(o.error is None and all(d.ok for d in o.value or []) for o in outcomes)
    ctx.exit(0 if ok else 1)


def register(cli: click.Group) -> None:
    cli.add_command(retention)
