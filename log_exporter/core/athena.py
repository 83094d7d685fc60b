"""The Athena table over the archive (`log-exporter athena`): one Glue table input, with partition
projection on the archive's own layout, and the DDL text made from it. Pure: no AWS call.

The partitions are the key's parts: `account` (an `enum` of the config's account ids),
`log_group` (`injected`: the *key form* of the name, see `group_value`; a query must give it
with `=` or `IN`), `day` (`date`, `yyyy/MM/dd`) and, for `period: hour`, `hour` (`integer`,
two digits). `storage.location.template` joins them exactly as `windows.destination_prefix`
does, so a projected partition's location is the folder a run writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from log_exporter.core.policy import partition
from log_exporter.core.windows import Period, group_key

DEFAULT_DATABASE = "default"
DEFAULT_TABLE = "log_archive"
FIRST_DAY = date(2014, 1, 1)  # CloudWatch Logs began in 2014: no archive holds an older day
SERDE = "org.apache.hadoop.hive.serde2.RegexSerDe"
INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
# The archive's line `2026-11-03T14:00:00.123Z message`. A line that does not match gives a row
# of NULLs: AWS's `aws-logs-write-test` probe object in a day folder, and the continuation lines
# of a message that holds a newline. (?s): a message may hold a carriage return.
LINE_REGEX = r"(?s)^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (.*)$"
COLUMNS = (("timestamp", "string"), ("message", "string"))
DAY_FORMAT = "yyyy/MM/dd"  # Java DateTimeFormatter, as Athena reads it


@dataclass(frozen=True)
class TableSpec:
    """What the table is over: the archive, its accounts and its period."""

    bucket: str
    prefix: str
    account_ids: Sequence[str]
    period: Period = "day"
    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    first_day: date = FIRST_DAY

    @property
    def location(self) -> str:
        return "/".join(p for p in (f"s3://{self.bucket}", self.prefix) if p) + "/"

    @property
    def partition_keys(self) -> list[str]:
        keys = ["account", "log_group", "day"]
        return [*keys, "hour"] if self.period == "hour" else keys


def group_value(group: str) -> str:
    """The value of `log_group` for a log group name: its folder in the archive (the name
    without its leading '/', odd segments escaped), e.g. `aws/lambda/api` for `/aws/lambda/api`."""
    return group_key(group)


def location_template(spec: TableSpec) -> str:
    """`s3://<bucket>/<prefix>/${account}/${log_group}/${day}[/${hour}]`."""
    return spec.location + "/".join("${" + k + "}" for k in spec.partition_keys)


def projection(spec: TableSpec) -> dict[str, str]:
    """The table properties that make Athena compute partitions instead of looking them up."""
    props = {
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": ",".join(sorted(set(spec.account_ids))),
        "projection.log_group.type": "injected",
        "projection.day.type": "date",
        "projection.day.format": DAY_FORMAT,
        "projection.day.range": f"{spec.first_day:%Y/%m/%d},NOW",
        "projection.day.interval": "1",
        "projection.day.interval.unit": "DAYS",
    }
    if spec.period == "hour":
        props |= {
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "projection.hour.digits": "2",
        }
    props["storage.location.template"] = location_template(spec)
    return props


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """A location template with each `${name}` replaced by its partition value, as Athena does
    when it projects a partition (plain text substitution; the values are used as written in
    the query)."""
    out = template
    for name, value in values.items():
        out = out.replace("${" + name + "}", value)
    return out


def table_input(spec: TableSpec) -> dict[str, Any]:
    """The Glue `TableInput` of the table (CreateTable and UpdateTable take it as is)."""
    return {
        "Name": spec.table,
        "Description": "CloudWatch Logs archive written by log-exporter",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "text", **projection(spec)},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in spec.partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
            "Location": spec.location,
            "InputFormat": INPUT_FORMAT,
            "OutputFormat": OUTPUT_FORMAT,
            "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": {"input.regex": LINE_REGEX}},
        },
    }


def _quote(text: str) -> str:
    """A Hive DDL string literal: backslashes and quotes escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ddl(spec: TableSpec) -> str:
    """`CREATE EXTERNAL TABLE` for Athena, made from the same `table_input` that --apply sends."""
    t = table_input(spec)
    sd = t["StorageDescriptor"]
    columns = ",\n".join(f"  `{c['Name']}` {c['Type']}" for c in sd["Columns"])
    parts = ", ".join(f"`{k['Name']}` {k['Type']}" for k in t["PartitionKeys"])
    serde = ",\n".join(
        f"  {_quote(k)} = {_quote(v)}" for k, v in sd["SerdeInfo"]["Parameters"].items()
    )
    props = ",\n".join(
        f"  {_quote(k)} = {_quote(v)}" for k, v in t["Parameters"].items() if k != "EXTERNAL"
    )
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{spec.database}`.`{spec.table}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({parts})\n"
        f"ROW FORMAT SERDE {_quote(sd['SerdeInfo']['SerializationLibrary'])}\n"
        f"WITH SERDEPROPERTIES (\n{serde}\n)\n"
        f"STORED AS INPUTFORMAT {_quote(sd['InputFormat'])}\n"
        f"OUTPUTFORMAT {_quote(sd['OutputFormat'])}\n"
        f"LOCATION {_quote(sd['Location'])}\n"
        f"TBLPROPERTIES (\n{props}\n);"
    )


def example_query(spec: TableSpec, account_id: str, group: str, day: date) -> str:
    """A query for one day's errors of one group (the README's example)."""
    hour = "  -- AND hour = '14'\n" if spec.period == "hour" else ""
    return (
        f'SELECT "timestamp", message, "$path" AS object\n'
        f'FROM "{spec.database}"."{spec.table}"\n'
        f"WHERE account = '{account_id}'\n"
        f"  AND log_group = {_sql(group_value(group))}\n"
        f"  AND day = '{day:%Y/%m/%d}'\n"
        f"{hour}"
        f"  AND regexp_like(message, '(?i)error')\n"
        f'ORDER BY "timestamp";'
    )


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def glue_policy(region: str, catalog_account: str, database: str, table: str) -> dict[str, Any]:
    """The identity policy `athena --apply` needs: create (or update) the one table, and its
    database if missing. Nothing else uses Glue."""
    arn = f"arn:{partition(region)}:glue:{region}:{catalog_account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AthenaTable",
                "Effect": "Allow",
                "Action": [
                    "glue:CreateDatabase",
                    "glue:CreateTable",
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:UpdateTable",
                ],
                "Resource": [
                    f"{arn}:catalog",
                    f"{arn}:database/{database}",
                    f"{arn}:table/{database}/{table}",
                ],
            }
        ],
    }
