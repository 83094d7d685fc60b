"""The Glue catalog's table over the archive (`log-exporter athena --apply`): its database created
when missing, then the table created or updated."""

from __future__ import annotations

from typing import Any

from log_exporter.aws.errors import AWS_ERRORS, answered_with, glue_error


def put_table(glue: Any, database: str, table: dict[str, Any]) -> str:
    """Create the database if missing, then create the table or update it; what was done
    (`created` or `updated`). AWSError 'cannot <what>: <code> <message>' when Glue refuses."""
    try:
        glue.get_database(Name=database)
    except AWS_ERRORS as exc:
        if not answered_with(exc, "EntityNotFoundException"):
            raise glue_error(f"read Glue database {database}", exc) from None
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except AWS_ERRORS as exc2:
            raise glue_error(f"create Glue database {database}", exc2) from None
    name = table["Name"]
    try:
        glue.create_table(DatabaseName=database, TableInput=table)
        return "created"
    except AWS_ERRORS as exc:
        if not answered_with(exc, "AlreadyExistsException"):
            raise glue_error(f"create table {database}.{name}", exc) from None
    try:
        glue.update_table(DatabaseName=database, TableInput=table)
    except AWS_ERRORS as exc:
        raise glue_error(f"update table {database}.{name}", exc) from None
    return "updated"
