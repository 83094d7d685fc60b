"""The Athena table over the archive (`log-exporter athena`): its spec from the config and the
accounts' ids, the Glue policy --apply needs, and creating (or updating) it in the Glue catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from log_exporter.aws.glue import put_table
from log_exporter.core.athena import TableSpec, glue_policy, table_input
from log_exporter.errors import UsageError
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
