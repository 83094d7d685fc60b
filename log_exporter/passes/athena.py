"""The Athena table over the archive (`log-exporter athena`): its spec from the config and the
accounts' ids, the Glue policy --apply needs, and creating (or updating) it in the Glue catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from log_exporter.core.athena import TableSpec, glue_policy, table_input
from log_exporter.errors import AWSError, UsageError
from log_exporter.passes.archive_lookup import read_bucket

if TYPE_CHECKING:
    from log_exporter.engine import Engine

NO_GLUE_REGION = "no region for the Glue catalog: give --region (or set AWS_DEFAULT_REGION)"


def table_spec(
    engine: Engine, accounts: Sequence[str], region: str | None, database: str, table: str
) -> TableSpec:
    """The table over the archive bucket (of `region`, with a bucket per region) for the
    accounts named (all without names); days from FIRST_DAY: an archive may hold days before
    destination.start."""
    ids = sorted({engine.account_id(a) for a in engine.select(accounts)})
    return TableSpec(
        bucket=read_bucket(engine.config, [region] if region else []),
        prefix=engine.config.destination.prefix,
        account_ids=ids,
        period=engine.config.destination.period,
        database=database,
        table=table,
    )


def glue_region(engine: Engine, region: str | None) -> str | None:
    """The Glue catalog's region: --region, else the ambient one (None: neither says)."""
    return region or engine.factory.default_region


def apply_policy(engine: Engine, region: str | None, database: str, table: str) -> dict[str, Any]:
    """The identity policy --apply needs, in the catalog of the ambient account in `region`."""
    if not region:
        raise UsageError(NO_GLUE_REGION)
    catalog = engine.factory.account_id(engine.factory.ambient, [])
    return glue_policy(region, catalog, database, table)


def apply_table(engine: Engine, region: str | None, spec: TableSpec) -> str:
    """Create (or update) the table in the Glue catalog of `region`: `created` or `updated`."""
    if not region:
        raise UsageError(NO_GLUE_REGION)
    return put_table(engine.factory.glue(region), spec.database, table_input(spec))


def _failure(what: str, exc: Exception) -> AWSError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return AWSError(
            f"cannot {what}: {err.get('Code', '')} {err.get('Message', '')}".rstrip(),
            code=str(err.get("Code", "")),
        )
    return AWSError(f"cannot {what}: {exc}")


def put_table(glue: Any, database: str, table: dict[str, Any]) -> str:
    """Create the database if missing, then create the table or update it; what was done."""
    try:
        glue.get_database(Name=database)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
            raise _failure(f"read Glue database {database}", exc) from None
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except (ClientError, BotoCoreError) as exc2:
            raise _failure(f"create Glue database {database}", exc2) from None
    except BotoCoreError as exc:
        raise _failure(f"read Glue database {database}", exc) from None
    name = table["Name"]
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
        return "created"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
            raise _failure(f"create table {database}.{name}", exc) from None
    except BotoCoreError as exc:
        raise _failure(f"create table {database}.{name}", exc) from None
    try:
        glue.update_table(DatabaseName=database, TableInput=table)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(f"update table {database}.{name}", exc) from None
    return "updated"
