"""The commands that read the archive back: `cat` (one group's events between two instants, in
order) and `athena` (the DDL of an Athena table over the archive, or the table itself in Glue)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import click

from log_exporter.cli.options import build_engine, config_option
from log_exporter.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

WORKERS = 8  # objects `cat` reads at once

EPILOG_CAT = """\b
Examples:
  log-exporter cat --config config.yml --account prod --group /aws/lambda/api \\
      --start 2026-11-03T14:00:00Z --end 2026-11-03T15:00:00Z
  log-exporter cat -c config.yml --account prod --group /aws/lambda/api \\
      --start 2026-11-01 --end 2026-11-04 --grep 'ERROR|Task timed out'
  log-exporter cat -c config.yml --account prod --group vpc-flow-logs \\
      --start 2026-11-03 --end 2026-11-04 --format json | jq -r .stream | sort | uniq -c

Prints the archived events with --start <= timestamp < --end (a day means its
00:00 UTC; a time without a zone is UTC), one a line, in timestamp order across
every stream and every task piece of the days (or hours) the range touches: the
archive's own line, or with --format json an object with timestamp, timestamp_ms,
account, account_id, group, stream and message. Only the archive bucket is read
(and, for an account without a role, sts:GetCallerIdentity for its id), only the
folders of the range (and the neighbour days of a day whose events
c7n-logexporter, run outside UTC, filed under its local date: `sync` records
them); never a member role or EC2, even with `regions: all` (the regions are those
of the account's lane states; with a bucket per region, --region says which). With
an `organization:` block, --account may be an `accounts:` entry's name or id, or a
discovered account's id (no Organizations call) or name (one discovery). Memory holds the objects being read at once (8) and a period's merge
buffers (16 MiB; 4 KiB an object for a period of more than 4,096 objects), not
the range; a day's (or hour's) events in range are sorted through a temporary
file. A day (or hour) the archive does not hold, or holds only in part, is
reported on stderr (`gap: ...`) and the exit code is 1; one the state knows to be
empty, or before the group was created, is not a gap. Exit 2: bad usage or config.
"""

EPILOG_ATHENA = """\b
Examples:
  log-exporter athena --config config.yml > table.sql
  log-exporter athena --config config.yml --database logs --table archive --apply
  log-exporter athena --config config.yml --group /aws/lambda/api    (its log_group value)
  log-exporter athena --config config.yml --policy                   (what --apply needs)

Prints CREATE EXTERNAL TABLE for Athena over the archive, with partition
projection (no crawler, no MSCK REPAIR): `account` (the config's account ids),
`log_group` (injected: every query gives it, as the group's folder in the archive,
e.g. 'aws/lambda/api' for /aws/lambda/api; --group prints it), `day` ('2026/11/03')
and, for period hour, `hour` ('14'). Columns: `timestamp` (the line's ISO time, a
string) and `message`. --apply creates the table (and the database if missing)
through the Glue API, or updates it to this definition; it needs the permissions
--policy prints. Exit 1 when Glue refuses, 2 for bad usage or config.
"""


def _instant(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from log_exporter.passes.readback import parse_instant

    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a day YYYY-MM-DD nor an ISO-8601 time (2026-11-03T14:00:00Z)"
        ) from None


# --- cat --------------------------------------------------------------------------------------------
@click.command(name="cat", epilog=EPILOG_CAT)
@config_option
@click.option(
    "--account",
    required=True,
    metavar="NAME",
    help="The account: its name in the config (or as discovered), or its id.",
)
@click.option("--group", required=True, metavar="NAME", help="The log group's name.")
@click.option(
    "--start",
    required=True,
    callback=_instant,
    metavar="T",
    help="First instant (a day or a time).",
)
@click.option(
    "--end", required=True, callback=_instant, metavar="T", help="First instant NOT printed."
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Only the lane states of this region (repeatable; default: those in the archive).",
)
@click.option("--grep", metavar="REGEX", help="Only events whose message matches (re.search).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The archive's line, or one JSON object a line.",
)
@click.pass_context
def cat(
    ctx: click.Context,
    config_path: str,
    account: str,
    group: str,
    start: int,
    end: int,
    regions: tuple[str, ...],
    grep: str | None,
    fmt: str,
) -> None:
    """Print one log group's archived events between two instants, in timestamp order."""
    from log_exporter.cli.render.readback import event_json, write_events
    from log_exporter.core.config import load_config
    from log_exporter.core.windows import iso_ms
    from log_exporter.passes.archive_lookup import group_read
    from log_exporter.passes.readback import Event, Gap

    if end <= start:
        raise UsageError(f"--end {iso_ms(end)} must be after --start {iso_ms(start)}")
    keep: Callable[[str], bool] | None = None
    if grep is not None:
        try:
            pattern = re.compile(grep)
        except re.error as exc:
            raise UsageError(f"--grep {grep!r} is not a regular expression: {exc}") from None

        def keep(message: str) -> bool:
            return pattern.search(message) is not None

    config = load_config(config_path)
    engine = build_engine(config, regions, WORKERS)
    read = group_read(engine, account, group, regions, workers=WORKERS)

    def line(event: Event) -> bytes:
        if fmt == "json":
            return event_json(event, read.account, read.account_id, group)
        return event.raw

    def gap(item: Gap) -> None:
        click.echo(str(item), err=True)

    gaps = write_events(read.archive.read(start, end, keep), line=line, gap=gap)
    if gaps is None:  # `cat ... | head`: the reader has what it wanted
        ctx.exit(0)
    skipped = read.archive.stats.skipped_lines
    if skipped:
        click.echo(
            f"log-exporter: {skipped} lines of the archive were not events and were skipped",
            err=True,
        )
    ctx.exit(1 if gaps else 0)


# --- athena -----------------------------------------------------------------------------------------
@click.command(epilog=EPILOG_ATHENA)
@config_option
@click.option("--database", default="default", show_default=True, help="Glue database.")
@click.option("--table", default="log_archive", show_default=True, help="Table name.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="NAME",
    help="Only these accounts in the table's `account` values (default: all).",
)
@click.option("--region", metavar="REGION", help="Region of the Glue catalog (default: ambient).")
@click.option("--apply", is_flag=True, help="Create (or update) the table through the Glue API.")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Print the log_group value of a group name and exit.",
)
@click.option(
    "--policy", "show_policy", is_flag=True, help="Print the IAM policy --apply needs and exit."
)
def athena(
    config_path: str,
    database: str,
    table: str,
    accounts: tuple[str, ...],
    region: str | None,
    apply: bool,
    groups: tuple[str, ...],
    show_policy: bool,
) -> None:
    """Print the DDL of an Athena table over the archive (partition projection); --apply creates it."""
    from log_exporter.core.athena import ddl, group_value
    from log_exporter.core.config import load_config
    from log_exporter.passes.athena import apply_policy, apply_table, glue_region, table_spec

    for name, value in (("--database", database), ("--table", table)):
        if not re.fullmatch(r"[a-z0-9_]{1,255}", value):
            raise UsageError(f"{name} {value!r}: Athena names are lower-case letters, digits and _")
    if sum(map(bool, (apply, show_policy, groups))) > 1:
        raise UsageError("give one of --apply, --policy and --group")
    config = load_config(config_path)
    if groups:
        for g in groups:
            click.echo(group_value(g))
        return
    engine = build_engine(config, (region,) if region else ())
    spec = table_spec(engine, accounts, region, database, table)
    catalog_region = glue_region(engine, region)
    if show_policy:
        click.echo(json.dumps(apply_policy(engine, catalog_region, database, table), indent=2))
        return
    if not apply:
        click.echo(ddl(spec))
        return
    verb = apply_table(engine, catalog_region, spec)
    click.echo(f"{verb} table {database}.{table} in the Glue catalog of {catalog_region}")


def register(cli: click.Group) -> None:
    """Add cat and athena to the `log-exporter` group."""
    for command in (cat, athena):
        cli.add_command(command)
