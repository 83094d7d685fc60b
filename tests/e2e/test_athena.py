"""`log-exporter athena` end to end: the DDL printed, and `--apply` creating (then updating) the
table through the Glue API of the emulator, read back with GetTable."""

from __future__ import annotations

import json

from emulator import Emulator
from emulator.scenario import REGION, role_arn
from log_exporter.aws.sessions import SessionFactory
from log_exporter.core.athena import LINE_REGEX, TableSpec, projection

from .conftest import Exporter

BUCKET = "custodian-log-archive"
A, B = "111111111111", "222222222222"


def config_text(accounts: tuple[str, ...], period: str = "day") -> str:
    lines = [
        f"destination:\n  bucket: {BUCKET}\n  prefix: logs\n  period: {period}\n"
        "  start: 2026-01-01\naccounts:"
    ]
    lines += [
        f"  - name: acct-{a}\n    role: {role_arn(a)}\n    regions: [{REGION}]\n"
        '    groups: ["/aws/lambda/*"]'
        for a in accounts
    ]
    return "\n".join(lines) + "\n"


def test_athena_prints_the_ddl(exporter: Exporter, emu: Emulator) -> None:
    cfg = str(exporter.config(config_text((A, B), "hour")))
    result = exporter("athena", "--config", cfg, "--database", "logs", "--table", "archive")
    assert result.code == 0, result.output
    assert result.stdout.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `logs`.`archive` (")
    assert f"'projection.account.values' = '{A},{B}'" in result.stdout
    assert "'projection.hour.range' = '0,23'" in result.stdout
    assert (
        f"'storage.location.template' = 's3://{BUCKET}/logs/${{account}}/${{log_group}}/"
        "${day}/${hour}'"
    ) in result.stdout
    assert emu.calls.total() == 0  # the accounts' ids come from their role ARNs
    # days archived before destination.start (run --start, an adopted c7n archive) are queried
    # too: the day projection starts at CloudWatch Logs' first year, not at start (review14 §6)
    assert "'projection.day.range' = '2014/01/01,NOW'" in result.stdout

    result = exporter("athena", "--config", cfg, "--group", "/aws/lambda/api", "--group", "a//b")
    assert (result.code, result.stdout) == (0, "aws/lambda/api\na/#/b\n")

    bad = exporter("athena", "--config", cfg, "--table", "Bad-Name")
    assert bad.code == 2
    assert bad.stderr == (
        "log-exporter: error: --table 'Bad-Name': Athena names are lower-case letters, digits "
        "and _\n"
    )


def test_athena_apply_creates_then_updates_the_table_in_glue(
    exporter: Exporter, aws_env: None, emu: Emulator
) -> None:
    glue = SessionFactory(region=REGION).glue(REGION)
    cfg = str(exporter.config(config_text((A,))))

    result = exporter(
        "athena", "--config", cfg, "--database", "logs", "--table", "archive", "--apply"
    )

    assert result.code == 0, result.output
    assert result.stdout == f"created table logs.archive in the Glue catalog of {REGION}\n"
    table = glue.get_table(DatabaseName="logs", Name="archive")["Table"]
    spec = TableSpec(bucket=BUCKET, prefix="logs", account_ids=(A,))
    params = table["Parameters"]
    # from CloudWatch Logs' first year, not destination.start (2026-01-01)
    assert {k: params[k] for k in projection(spec)} == projection(spec)
    assert params["projection.day.range"] == "2014/01/01,NOW"
    assert params["storage.location.template"] == (
        f"s3://{BUCKET}/logs/${{account}}/${{log_group}}/${{day}}"
    )
    assert [k["Name"] for k in table["PartitionKeys"]] == ["account", "log_group", "day"]
    sd = table["StorageDescriptor"]
    assert sd["Location"] == f"s3://{BUCKET}/logs/"
    assert sd["SerdeInfo"]["Parameters"] == {"input.regex": LINE_REGEX}
    assert [c["Name"] for c in sd["Columns"]] == ["timestamp", "message"]

    # a second account in the config: --apply again updates the account values
    cfg2 = str(exporter.config(config_text((A, B)), "two.yml"))
    again = exporter(
        "athena", "--config", cfg2, "--database", "logs", "--table", "archive", "--apply"
    )
    assert again.code == 0, again.output
    assert again.stdout.startswith("updated table logs.archive")
    table = glue.get_table(DatabaseName="logs", Name="archive")["Table"]
    assert table["Parameters"]["projection.account.values"] == f"{A},{B}"


def test_athena_apply_refused_is_one_line_and_exit_1(exporter: Exporter, emu: Emulator) -> None:
    cfg = str(exporter.config(config_text((A,))))
    emu.throttle(1.0, services=("glue",))  # every Glue call refused, and no retry
    result = exporter("athena", "--config", cfg, "--apply", AWS_MAX_ATTEMPTS="1")
    assert result.code == 1, result.output
    assert result.stderr.startswith("log-exporter: error: cannot read Glue database default: ")
    assert result.stderr.count("\n") == 1


def test_athena_policy_names_only_the_glue_calls_of_apply(
    exporter: Exporter, emu: Emulator
) -> None:
    cfg = str(exporter.config(config_text((A,))))
    result = exporter("athena", "--config", cfg, "--policy", "--database", "logs", "--table", "t")
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    (statement,) = doc["Statement"]
    assert statement["Action"] == [
        "glue:CreateDatabase",
        "glue:CreateTable",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:UpdateTable",
    ]
    assert all(":glue:us-east-1:" in r for r in statement["Resource"])
    assert statement["Resource"][-1].endswith(":table/logs/t")
