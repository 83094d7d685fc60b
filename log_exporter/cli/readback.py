"""The commands that read the archive back: `cat` (one group's events between two instants, in
order) and `athena` (the DDL of an Athena table over the archive, or the table itself in Glue)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from log_exporter.cli.options import build_engine, config_option
from log_exporter.errors import AWSError, ConfigError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from log_exporter.aws.state_store import StateStore
    from log_exporter.core.config import Account, Config
    from log_exporter.core.state import LaneState
    from log_exporter.core.windows import Period
    from log_exporter.engine import Engine

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


def _account_id(engine: Engine, account: Account) -> str:
    """The account's id, as a run gets it: its last role's ARN, else its profile's or the
    ambient identity."""
    return engine.account_id(account)


def _read_bucket(config: Config, regions: Sequence[str]) -> str:
    """The one archive bucket the lanes of `regions` export to: a read-back command reads one
    bucket, so with a bucket per region, --region says which."""
    dest = config.destination
    if dest.single_bucket is not None:
        return dest.single_bucket
    for region in regions:
        if dest.bucket_for(region) is None:
            raise ConfigError(dest.no_bucket(region))
    buckets = dest.buckets(regions)
    if len(buckets) != 1 or not regions:
        raise UsageError(
            f"destination.bucket names a bucket per region ({', '.join(buckets)}): give "
            "--region to say which bucket to read"
        )
    return buckets[0]


def _read_account(engine: Engine, name: str) -> tuple[str, str]:
    """The (name, id) of the account `cat --account` names, reading only what it must: an
    `accounts:` entry (by name, or by id) without Organizations; a 12-digit id of an
    organization's account as it is; another name through one discovery. Never a member role."""
    from log_exporter.aws.organization import account_id_of
    from log_exporter.core.config import ACCOUNT_ID, select_accounts

    config = engine.config
    for entry in config.accounts:
        if name in (entry.name, account_id_of(entry)):
            return entry.name, _account_id(engine, entry)
    if config.organization is not None:
        if ACCOUNT_ID.match(name):
            return name, name
        found = select_accounts(engine.discovery().accounts, [name])[0]
        return found.name, _account_id(engine, found)
    select_accounts(config.accounts, [name])  # not in the config: the usual error
    raise AssertionError("unreachable")


def _state_regions(engine: Engine, store: StateStore, account_id: str) -> list[str]:
    """The regions of the account's lane states in `store`'s bucket (one LIST)."""
    from botocore.exceptions import ClientError

    folder = store.account_folder(account_id)
    regions: list[str] = []
    try:
        pages = (
            engine.factory.s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=store.bucket, Prefix=folder)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                region = str(obj["Key"])[len(folder) :]
                if region.endswith(".json") and "/" not in region:
                    regions.append(region.removesuffix(".json"))
    except ClientError as exc:
        raise AWSError(f"cannot list s3://{store.bucket}/{folder}: {exc}") from None
    return regions


def _instant(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from log_exporter.passes.readback import parse_instant

    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a day YYYY-MM-DD nor an ISO-8601 time (2026-11-03T14:00:00Z)"
        ) from None


def _archive_period(config: Config, states: list[LaneState]) -> Period:
    """The period the archive uses, from the lane states (the config's if none says)."""
    for state in states:
        if state.period in ("day", "hour") and any(state.covered.values()):
            period: Period = state.period
            return period
    return config.destination.period


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
    from log_exporter.core.config import load_config
    from log_exporter.core.windows import iso_ms
    from log_exporter.passes.readback import Event, GroupArchive, Knowledge

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
    # S3 only: no member role, no EC2 (the regions are those of the lane states archived)
    name, account_id = _read_account(engine, account)
    bucket = _read_bucket(config, regions)  # with a bucket per region, --region says which
    store = engine.store(bucket)
    states = [
        store.load(account_id, r) for r in regions or _state_regions(engine, store, account_id)
    ]
    dest = config.destination
    archive = GroupArchive(
        engine.factory.s3(),
        bucket,
        dest.prefix,
        account_id,
        group,
        _archive_period(config, states),
        knowledge=Knowledge.of(states, group),
        workers=WORKERS,
    )
    out = sys.stdout.buffer
    pending = bytearray()  # written 64 KiB at a time: one write per line would cost more
    gaps = 0
    items = archive.read(start, end, keep)
    try:
        for item in items:
            if not isinstance(item, Event):
                gaps += 1
                out.write(pending)
                out.flush()
                pending.clear()
                click.echo(str(item), err=True)
                continue
            if fmt == "json":
                doc = {
                    "timestamp": item.stamp,
                    "timestamp_ms": item.timestamp_ms,
                    "account": name,
                    "account_id": account_id,
                    "group": group,
                    "stream": item.stream,
                    "message": item.message,
                }
                pending += json.dumps(doc, ensure_ascii=False).encode()
            else:
                pending += item.raw
            pending += b"\n"
            if len(pending) >= 65536:
                out.write(pending)
                pending.clear()
        out.write(pending)
        out.flush()
    except BrokenPipeError:  # `cat ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        ctx.exit(0)
    except Exception:  # a read error: the lines read before it are printed, then the error
        with contextlib.suppress(OSError):
            out.write(pending)
            out.flush()
        raise
    finally:
        items.close()  # the period read ahead: its spool removed, its threads joined
    if archive.stats.skipped_lines:
        click.echo(
            f"log-exporter: {archive.stats.skipped_lines} lines of the archive were not events "
            "and were skipped",
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
    from log_exporter.core.athena import TableSpec, ddl, glue_policy, group_value, table_input
    from log_exporter.core.config import load_config

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
    ids = sorted({_account_id(engine, a) for a in engine.select(accounts)})
    dest = config.destination
    spec = TableSpec(
        bucket=_read_bucket(config, [region] if region else []),
        prefix=dest.prefix,
        account_ids=ids,
        period=dest.period,
        database=database,
        table=table,  # days from FIRST_DAY: an archive may hold days before destination.start
    )
    glue_region = region or engine.factory.default_region
    if show_policy:
        if not glue_region:
            raise UsageError(
                "no region for the Glue catalog: give --region (or set AWS_DEFAULT_REGION)"
            )
        catalog = engine.factory.account_id(engine.factory.ambient, [])
        click.echo(json.dumps(glue_policy(glue_region, catalog, database, table), indent=2))
        return
    if not apply:
        click.echo(ddl(spec))
        return
    if not glue_region:
        raise UsageError(
            "no region for the Glue catalog: give --region (or set AWS_DEFAULT_REGION)"
        )
    verb = _apply(engine.factory.glue(glue_region), database, table_input(spec))
    click.echo(f"{verb} table {database}.{table} in the Glue catalog of {glue_region}")


def _apply(glue: Any, database: str, table: dict[str, Any]) -> str:
    """Create the database if missing, then create the table or update it; what was done."""
    from botocore.exceptions import BotoCoreError, ClientError

    def fail(what: str, exc: Exception) -> AWSError:
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            return AWSError(
                f"cannot {what}: {err.get('Code', '')} {err.get('Message', '')}".rstrip(),
                code=str(err.get("Code", "")),
            )
        return AWSError(f"cannot {what}: {exc}")

    try:
        glue.get_database(Name=database)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
            raise fail(f"read Glue database {database}", exc) from None
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except (ClientError, BotoCoreError) as exc2:
            raise fail(f"create Glue database {database}", exc2) from None
    except BotoCoreError as exc:
        raise fail(f"read Glue database {database}", exc) from None
    name = table["Name"]
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
        return "created"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
            raise fail(f"create table {database}.{name}", exc) from None
    except BotoCoreError as exc:
        raise fail(f"create table {database}.{name}", exc) from None
    try:
        glue.update_table(DatabaseName=database, TableInput=table)
    except (ClientError, BotoCoreError) as exc:
        raise fail(f"update table {database}.{name}", exc) from None
    return "updated"


def register(cli: click.Group) -> None:
    """Add cat and athena to the `log-exporter` group."""
    for command in (cat, athena):
        cli.add_command(command)
