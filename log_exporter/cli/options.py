"""Options and argument parsing shared by the click commands, and the engine they all build."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from log_exporter.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from log_exporter.aws.sessions import SessionFactory
    from log_exporter.core.config import Config
    from log_exporter.engine import Engine, RunOptions

DEFAULT_PARALLEL = 1000
READ_PARALLEL = 32  # lanes read at once by the read-only commands (plan, status, stats, ...)


def parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def parse_through(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> date | str | None:
    if value is None or value.strip().lower() == "now":
        return None if value is None else "now"
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither `now` nor a date YYYY-MM-DD") from None


def through_range(end: date | None, through: date | str | None) -> tuple[date | None, bool | None]:
    """(--end, partial) for RunOptions from --end and --through (None: the config's)."""
    if through is None:
        return end, None
    if end is not None:
        raise UsageError("give --end or --through, not both (--through D is --end D+1)")
    if not isinstance(through, date):
        return None, True  # now
    today = datetime.now(UTC).date()
    if through > today:
        raise UsageError(f"--through {through} is in the future (today is {today} UTC)")
    return through + timedelta(days=1), False


def stats_days(day: date | None, days: int) -> list[date]:
    """The UTC days of `stats`: --day, else the --days days before today."""
    today = datetime.now(UTC).date()
    if day is not None and day > today:
        raise UsageError(f"--day {day} is in the future (today is {today} UTC)")
    return [day] if day else [today - timedelta(days=n) for n in range(days, 0, -1)]


def run_options(
    *,
    start: date | None,
    end: date | None,
    through: date | str | None,
    settle: int | None,
    accounts: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
    pending_timeout: int | None = None,
    stuck_after: int | None = None,
) -> RunOptions:
    """RunOptions from the range options and the lane filters of a command."""
    from log_exporter.engine import RunOptions

    end, partial = through_range(end, through)
    return RunOptions(
        start=start,
        end=end,
        accounts=accounts,
        regions=regions,
        settle_seconds=settle,
        partial=partial,
        pending_timeout_seconds=pending_timeout,
        stuck_after_seconds=stuck_after,
    )


EXPORT_FIELDS = {
    "destination.bucket": "--bucket",
    "destination.prefix": "--prefix",
    "accounts[0].role": "--role",
    "accounts[0].groups": "--group",
    "accounts[0].external_id": "--external-id",
    "accounts[0].regions": "--region",
}


def export_config(
    *,
    group: str,
    bucket: str,
    prefix: str,
    roles: tuple[str, ...],
    external_id: str | None,
    region: str | None,
    period: str,
) -> Config:
    """The config of `export`'s options: one account (`export`) with one group; a mistake is
    a ConfigError naming the option, not the config's field."""
    from log_exporter.core.config import parse_config

    data = {
        "destination": {"bucket": bucket, "prefix": prefix, "period": period},
        "accounts": [
            {
                "name": "export",
                "role": list(roles) or None,
                "external_id": external_id,
                "regions": [region] if region else None,
                "groups": [group],
            }
        ],
    }
    try:
        return parse_config(data, "export")
    except ConfigError as exc:
        message = str(exc).removeprefix("export: ")
        for field, option in EXPORT_FIELDS.items():
            if message.startswith(field):
                message = option + message[len(field) :]
                break
        raise ConfigError(message) from None


def parse_duration_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | None:
    if value is None:
        return None
    from log_exporter.core.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    seconds = parse_duration_option(ctx, param, value)
    if seconds == 0:
        raise click.BadParameter("must be longer than 0 (e.g. 30m)")
    return seconds


def range_options(f: Any) -> Any:
    """--start, --end, --through, --settle, --pending-timeout and --stuck-after."""
    f = click.option(
        "--stuck-after",
        callback=parse_timeout,
        metavar="DURATION",
        help="Report a task in flight (or a busy export slot) this long as stuck and stop its "
        "lane; the task stays recorded for the next run (default: destination.stuck_after, 6h).",
    )(f)
    f = click.option(
        "--end",
        callback=parse_date,
        metavar="YYYY-MM-DD",
        help="First UTC day NOT exported (default: today, UTC; tomorrow with --through now "
        "or an hourly archive).",
    )(f)
    f = click.option(
        "--through",
        callback=parse_through,
        metavar="now|YYYY-MM-DD",
        help="Instead of --end: the last UTC day to export, or `now`: also the settled part of "
        "today (and of any unsettled day), up to now minus --settle (default: destination.through).",
    )(f)
    f = click.option(
        "--start",
        callback=parse_date,
        metavar="YYYY-MM-DD",
        help="First UTC day to export (default: destination.start, else each group's creation day).",
    )(f)
    f = click.option(
        "--settle",
        callback=parse_duration_option,
        metavar="DURATION",
        help="Only export windows that ended this long ago (e.g. 12h, 30m, 0; default: the config's, 12h).",
    )(f)
    f = click.option(
        "--pending-timeout",
        callback=parse_timeout,
        metavar="DURATION",
        help="Cancel and retry a task still PENDING after this long (default: "
        "destination.pending_timeout, 1h).",
    )(f)
    return f


def lane_filters(f: Any) -> Any:
    """--config (required), --account and --region."""
    f = click.option(
        "--region",
        "regions",
        multiple=True,
        metavar="REGION",
        help="Only this region (repeatable); also the region of accounts without `regions`.",
    )(f)
    f = click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="NAME",
        help="Only this account of the config (repeatable).",
    )(f)
    return config_option(f)


def config_option(f: Any) -> Any:
    """--config (required), the config file every command but `export` reads."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        required=True,
        metavar="FILE",
        help="YAML config: destination and accounts.",
    )(f)


def format_option(f: Any) -> Any:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="A table for people, or one JSON document on stdout.",
    )(f)


def stdout_console() -> Console:
    """rich on stdout; not a terminal: never wrap, so each row stays one line for grep and logs."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=1000)


def global_profile() -> str | None:
    """The `log-exporter --profile` of the command being run (None: not given)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    profile = obj.get("profile") if isinstance(obj, dict) else None
    return str(profile) if profile else None


def session_factory(
    regions: tuple[str, ...] | list[str] = (), parallel: int = DEFAULT_PARALLEL
) -> SessionFactory:
    """The sessions and clients of a command, the one place they are built: `--profile` is the
    ambient credentials, the first `--region` the ambient region; one pooled connection per
    lane worked at once, on the shared clients."""
    from log_exporter.aws.sessions import SessionFactory

    region = regions[0] if regions else None
    return SessionFactory(
        region=region, max_pool_connections=max(10, parallel), profile=global_profile()
    )


def build_engine(
    config: Config,
    regions: tuple[str, ...] | list[str],
    parallel: int = DEFAULT_PARALLEL,
    **kwargs: Any,
) -> Engine:
    """The engine every command uses, over `session_factory`."""
    from log_exporter.engine import Engine

    factory = session_factory(regions, parallel)
    return Engine(config, factory, max_parallel=parallel, **kwargs)
