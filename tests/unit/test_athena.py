"""The Athena table's projection against the archive's real layout: the location template, filled
in as Athena fills it for a partition, is exactly the folder `destination_prefix` gives a run."""

from __future__ import annotations

import re
from datetime import date

import pytest

from emulator.tasks import PROBE_BODY, format_line
from log_exporter.core.athena import (
    LINE_REGEX,
    TableSpec,
    ddl,
    example_query,
    fill_template,
    group_value,
    table_input,
)
from log_exporter.core.windows import MS_PER_HOUR, Window, day_window, destination_prefix, to_ms

ACCOUNTS = ("111111111111", "222222222222")
GROUPS = (
    "/aws/lambda/api",
    "vpc-flow-logs",
    "/aws/ecs/my.service#blue",
    "a//b",
    "/../x",
    "a/./b",
    "trailing/",
    "#/##./.",
    "/x",
    "x",
    "/" + "n" * 511,
)
DAYS = (date(2026, 1, 1), date(2026, 2, 28), date(2028, 2, 29), date(2026, 12, 31))


def java_date(fmt: str, d: date) -> str:
    """A day rendered with a Java DateTimeFormatter pattern, as Athena renders projected dates
    (the letters the table uses; an unknown letter fails the test)."""
    out = fmt
    for java, py in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d")):
        out = out.replace(java, py)
    assert not re.search(r"[A-Za-z]", out.replace("%Y", "").replace("%m", "").replace("%d", ""))
    return d.strftime(out)


def projected_partitions(spec: TableSpec, day: date) -> list[dict[str, str]]:
    """Every partition value set Athena projects for one day, from the table's own properties:
    each enum value, each injected group as a query gives it, the day, each hour."""
    props = table_input(spec)["Parameters"]
    assert props["projection.enabled"] == "true"
    assert props["projection.log_group.type"] == "injected"
    assert props["projection.account.type"] == "enum"
    first, last = props["projection.day.range"].split(",")
    assert last == "NOW" and first == java_date(props["projection.day.format"], spec.first_day)
    out = []
    for account in props["projection.account.values"].split(","):
        for group in GROUPS:
            values = {
                "account": account,
                "log_group": group_value(group),
                "day": java_date(props["projection.day.format"], day),
            }
            if spec.period == "hour":
                low, high = map(int, props["projection.hour.range"].split(","))
                digits = int(props["projection.hour.digits"])
                for h in range(low, high + 1):
                    out.append({**values, "hour": f"{h:0{digits}d}", "_group": group})
            else:
                out.append({**values, "_group": group})
    return out


@pytest.mark.parametrize("prefix", ["logs", "", "a/b/archive"])
@pytest.mark.parametrize("period", ["day", "hour"])
def test_projected_locations_are_the_archive_folders(prefix: str, period: str) -> None:
    spec = TableSpec(bucket="archive", prefix=prefix, account_ids=ACCOUNTS, period=period)  # type: ignore[arg-type]
    template = table_input(spec)["Parameters"]["storage.location.template"]
    seen = 0
    for day in DAYS:
        for values in projected_partitions(spec, day):
            group = values.pop("_group")
            hour = int(values.get("hour", "0"))
            window = Window(to_ms(day) + hour * MS_PER_HOUR, to_ms(day) + hour * MS_PER_HOUR)
            folder = destination_prefix(prefix, values["account"], group, window, period)  # type: ignore[arg-type]
            assert fill_template(template, values) == f"s3://archive/{folder}", values
            seen += 1
    assert seen == len(DAYS) * len(ACCOUNTS) * len(GROUPS) * (24 if period == "hour" else 1)


def test_the_injected_value_is_the_folder_form_of_the_name() -> None:
    assert group_value("/aws/lambda/api") == "aws/lambda/api"  # the leading '/' is dropped
    assert group_value("a//b") == "a/#/b"
    assert group_value("/../x") == "#../x"
    assert group_value("#") == "##"
    assert group_value("vpc-flow-logs") == "vpc-flow-logs"
    # the folder of the whole day as a run writes it
    w = day_window(date(2026, 11, 3))
    assert destination_prefix("logs", "1" * 12, "/../x", w) == f"logs/{'1' * 12}/#../x/2026/11/03"


def test_the_serde_splits_the_archive_line_and_leaves_the_probe_null() -> None:
    regex = re.compile(LINE_REGEX)  # Java's syntax for these constructs is Python's
    ms = to_ms(date(2026, 11, 3)) + 14 * MS_PER_HOUR + 123
    for message in ("hello world", "", "tab\there", "a carriage\rreturn", "  leading"):
        m = regex.match(format_line(ms, message))
        assert m is not None and m.groups() == ("2026-11-03T14:00:00.123Z", message)
    assert regex.match(PROBE_BODY.decode()) is None  # aws-logs-write-test: a row of NULLs
    assert regex.match("a continuation line of a multi-line message") is None


def test_ddl_and_table_input_agree() -> None:
    spec = TableSpec(
        bucket="archive",
        prefix="logs",
        account_ids=("222222222222", "111111111111", "111111111111"),
        period="hour",
        database="logs",
        table="archive",
        first_day=date(2026, 1, 1),
    )
    t = table_input(spec)
    text = ddl(spec)
    assert text.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `logs`.`archive` (")
    assert (
        "PARTITIONED BY (`account` string, `log_group` string, `day` string, `hour` string)" in text
    )
    for key, value in t["Parameters"].items():
        if key != "EXTERNAL":
            assert f"'{key}' = '{value}'" in text
    assert t["Parameters"]["projection.account.values"] == "111111111111,222222222222"
    assert t["Parameters"]["storage.location.template"] == (
        "s3://archive/logs/${account}/${log_group}/${day}/${hour}"
    )
    # the regex is written as a Hive string literal: each backslash doubled
    assert "'input.regex' = '(?s)^(\\\\d{4}-" in text
    assert t["StorageDescriptor"]["SerdeInfo"]["Parameters"]["input.regex"] == LINE_REGEX
    query = example_query(spec, "111111111111", "/aws/lambda/api", date(2026, 11, 3))
    assert "log_group = 'aws/lambda/api'" in query and "day = '2026/11/03'" in query
