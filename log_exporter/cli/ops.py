"""The commands to operate an archive: `plan` (what a run would do; also `run --dry-run`),
`status` (what is archived and what is missing, for people and monitors), `stats` (CloudWatch's
own figures beside the archive's) and `sync` (the state rebuilt from the bucket's objects)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import click

from log_exporter.cli.options import (
    READ_PARALLEL,
    build_engine,
    format_option,
    lane_filters,
    parse_date,
    range_options,
    run_options,
    stats_days,
    stdout_console,
)

if TYPE_CHECKING:
    from log_exporter.core.config import Config
    from log_exporter.engine import RunOptions


EPILOG_PLAN = """\b
Examples:
  log-exporter plan --config config.yml
  log-exporter plan --config config.yml --start 2026-01-01 --end 2026-02-01 --format json
  log-exporter plan --config config.yml --account prod --probe
  log-exporter run --config config.yml --dry-run     (the same as plan)

Per account, region and group: the days a run would export (one task each), the
days it would skip and why, and an estimate of the time it takes, from the export
tasks the account finished recently. Nothing is created. With --probe, each day is
also checked for events, as a run does before creating its task, so days without
any event are told apart (one FilterLogEvents call per day).
"""

EPILOG_STATUS = """\b
Examples:
  log-exporter status --config config.yml
  log-exporter status --config config.yml --account prod --group '/aws/lambda/*'
  log-exporter status --config config.yml --format json | jq '.lanes[].groups[]'

Per log group: first and last archived day, archived and empty days, gaps (settled
days without an archive since the group's creation or destination.start, up to its
last write), failed days with their last error, and tasks in flight. Exit 1 when
there are gaps, failed days or lanes that cannot be read, so it can run in a monitor.
"""

EPILOG_STATS = """\b
Examples:
  log-exporter stats --config config.yml
  log-exporter stats --config config.yml --day 2026-11-01 --format json
  log-exporter stats --config config.yml --days 30 --group vpc-flow-logs

For each group: CloudWatch's storedBytes and, per UTC day, its IncomingBytes metric
(GetMetricData) beside the archive's objects and bytes for that day. A day where
CloudWatch received data but the archive holds nothing (or under 2% of it) is
flagged. CloudWatch keeps daily figures for 455 days.
"""

EPILOG_SYNC = """\b
Examples:
  log-exporter sync --config config.yml --dry-run
  log-exporter sync --config config.yml --account prod

Rebuilds each lane's state from the task folders in the bucket (for an archive
copied in by hand, or a lost state object), without exporting or deleting anything.
A folder's window comes from DescribeExportTasks while AWS still lists the task,
else it is the folder's whole day (or hour). Days known to be empty, failures and
tasks in flight are kept from the old state. Refuses a lane a runner is working on.
An unreadable state object is rebuilt only with --account (the bad object is copied
to <key>.corrupt-<ms> first); one written by a newer log-exporter never is.
"""


def _groups(f: Any) -> Any:
    return click.option(
        "--group",
        "group_patterns",
        multiple=True,
        metavar="PATTERN",
        help="Only log groups matching (a name, a glob, or re:REGEX; repeatable).",
    )(f)


# --- plan -------------------------------------------------------------------------------------------
def show_plan(
    ctx: click.Context,
    config: Config,
    options: RunOptions,
    *,
    parallel: int = READ_PARALLEL,
    probe: bool = False,
    fmt: str = "table",
) -> int:
    """Plan every lane of `options` and render it; the exit code (1 if a lane could not be
    planned). Used by `plan` and `run --dry-run`."""
    from log_exporter.cli.render.tables import plan_json, print_json, print_plan
    from log_exporter.passes.forecast import forecast_lane
    from log_exporter.passes.survey import survey

    engine = build_engine(config, tuple(options.regions), parallel)
    outcomes = survey(
        engine, options, lambda lane: forecast_lane(lane, probe=probe), debug=ctx.obj["debug"]
    )
    if fmt == "json":
        print_json(plan_json(outcomes))
    else:
        print_plan(stdout_console(), outcomes)
    return 1 if any(o.error for o in outcomes) else 0


@click.command(epilog=EPILOG_PLAN)
@lane_filters
@range_options
@click.option("--probe", is_flag=True, help="Check each day for events, as a run does.")
@format_option
@click.pass_context
def plan(
    ctx: click.Context,
    /,
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    start: date | None,
    end: date | None,
    settle: int | None,
    through: date | str | None,
    probe: bool,
    fmt: str,
    **_run_only: Any,  # options of `run` that planning does not use (--pending-timeout)
) -> None:
    """Show what a run would do, per account, region and group; create nothing."""
    from log_exporter.core.config import load_config

    config = load_config(config_path)
    options = run_options(
        start=start, end=end, through=through, settle=settle, accounts=accounts, regions=regions
    )
    ctx.exit(show_plan(ctx, config, options, probe=probe, fmt=fmt))


# --- status -----------------------------------------------------------------------------------------
@click.command(epilog=EPILOG_STATUS)
@lane_filters
@_groups
@format_option
@click.pass_context
def status(
    ctx: click.Context,
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    group_patterns: tuple[str, ...],
    fmt: str,
) -> None:
    """Show what is archived, what is missing and what failed; exit 1 on gaps or failures."""
    from log_exporter.cli.render.tables import print_json, print_status, status_json, status_ok
    from log_exporter.core.config import GroupSelector, load_config
    from log_exporter.core.status import GroupStatus
    from log_exporter.engine import RunOptions
    from log_exporter.lane.view import LaneView
    from log_exporter.passes.status import status_of
    from log_exporter.passes.survey import survey

    config = load_config(config_path)
    only = GroupSelector(group_patterns) if group_patterns else None
    # Whole settled days (or hours, for an hourly archive), like a run without --through.
    options = RunOptions(accounts=accounts, regions=regions, partial=False)

    def inspect(lane: LaneView) -> list[GroupStatus]:
        return status_of(lane, only, config.destination.stuck_after)

    engine = build_engine(config, regions, READ_PARALLEL)
    outcomes = survey(engine, options, inspect, debug=ctx.obj["debug"])
    if fmt == "json":
        print_json(status_json(outcomes))
    else:
        print_status(stdout_console(), outcomes)
    ctx.exit(0 if status_ok(outcomes) else 1)


# --- stats ------------------------------------------------------------------------------------------
@click.command(epilog=EPILOG_STATS)
@lane_filters
@_groups
@click.option(
    "--day", callback=parse_date, metavar="YYYY-MM-DD", help="Only this UTC day (default: --days)."
)
@click.option(
    "--days",
    type=click.IntRange(1, 455),
    default=7,
    show_default=True,
    metavar="N",
    help="The N UTC days before today.",
)
@format_option
@click.pass_context
def stats(
    ctx: click.Context,
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    group_patterns: tuple[str, ...],
    day: date | None,
    days: int,
    fmt: str,
) -> None:
    """Show CloudWatch's figures for each group beside what the archive holds, per day."""
    from log_exporter.aws.archive import ArchiveBucket
    from log_exporter.aws.metrics import LogMetrics
    from log_exporter.cli.render.tables import print_json, print_stats, stats_json
    from log_exporter.core.config import GroupSelector, load_config
    from log_exporter.engine import RunOptions
    from log_exporter.lane.view import LaneView
    from log_exporter.passes.stats import GroupStats, group_stats
    from log_exporter.passes.survey import survey

    config = load_config(config_path)
    wanted = stats_days(day, days)
    only = GroupSelector(group_patterns) if group_patterns else None
    engine = build_engine(config, regions, READ_PARALLEL)
    accounts_by_name = {a.name: a for a in engine.accounts()}
    s3 = engine.factory.s3()
    dest = config.destination

    def inspect(lane: LaneView) -> list[GroupStats]:
        session = engine.account_session(accounts_by_name[lane.account])
        return group_stats(
            groups=lane.groups,
            metrics=LogMetrics(engine.factory.cloudwatch(session, lane.region)),
            archive=ArchiveBucket(s3, lane.settings.bucket),
            prefix=dest.prefix,
            account_id=lane.account_id,
            selector=lane.selector,
            days=wanted,
            only=only,
        )

    outcomes = survey(
        engine, RunOptions(accounts=accounts, regions=regions), inspect, debug=ctx.obj["debug"]
    )
    if fmt == "json":
        print_json(stats_json(outcomes))
    else:
        print_stats(stdout_console(), outcomes)
    ctx.exit(1 if any(o.error for o in outcomes) else 0)


# --- sync -------------------------------------------------------------------------------------------
@click.command(epilog=EPILOG_SYNC)
@lane_filters
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.pass_context
def sync(
    ctx: click.Context,
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Rebuild the state from the objects in the bucket, exporting nothing."""
    from log_exporter.aws.archive import ArchiveBucket
    from log_exporter.cli.render.tables import print_sync
    from log_exporter.core.config import load_config
    from log_exporter.engine import RunOptions
    from log_exporter.lane.view import LaneView
    from log_exporter.passes.survey import survey
    from log_exporter.passes.sync import SyncResult, sync_view

    config = load_config(config_path)
    dest = config.destination
    engine = build_engine(config, regions, READ_PARALLEL)
    options = RunOptions(accounts=accounts, regions=regions)
    for bucket in engine.buckets(engine.lane_specs(options)):
        engine.bucket_region(bucket)  # a missing bucket is one line, before anything else
        engine.check_layout(bucket)  # an archive kept by hour is not read as one kept by day
    s3 = engine.factory.s3()

    def inspect(lane: LaneView) -> SyncResult:
        return sync_view(
            lane,
            ArchiveBucket(s3, lane.settings.bucket),
            prefix=dest.prefix,
            period=dest.period,
            owner=engine.owner,
            clock=engine.clock,
            rebuild_unreadable=lane.account in accounts,  # only when asked by name
            dry_run=dry_run,
        )

    outcomes = survey(engine, options, inspect, debug=ctx.obj["debug"])
    print_sync(stdout_console(), outcomes, dry_run=dry_run)
    ctx.exit(1 if any(o.error for o in outcomes) else 0)


def register(cli: click.Group) -> None:
    for command in (plan, status, stats, sync):
        cli.add_command(command)
