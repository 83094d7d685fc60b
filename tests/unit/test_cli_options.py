"""Options shared by the commands that are more than parsing one value: the days of `stats`, the
config of `export`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from log_exporter.cli.options import export_config, stats_days
from log_exporter.errors import ConfigError, UsageError


def test_stats_days_are_the_n_days_before_today_oldest_first() -> None:
    today = datetime.now(UTC).date()
    assert stats_days(None, 3) == [today - timedelta(days=n) for n in (3, 2, 1)]
    assert stats_days(None, 1) == [today - timedelta(days=1)]


def test_stats_day_is_that_day_alone_unless_in_the_future() -> None:
    assert stats_days(date(2026, 1, 2), 7) == [date(2026, 1, 2)]
    today = datetime.now(UTC).date()
    assert stats_days(today, 7) == [today]
    with pytest.raises(UsageError, match=r"^--day .* is in the future \(today is .* UTC\)$"):
        stats_days(today + timedelta(days=1), 7)


def export_options(**more: object) -> dict[str, object]:
    base: dict[str, object] = {
        "group": "/aws/lambda/api",
        "bucket": "archive",
        "prefix": "logs",
        "roles": (),
        "external_id": None,
        "region": None,
        "period": "day",
    }
    return {**base, **more}


def test_export_config_is_one_account_with_one_group() -> None:
    role = "arn:aws:iam::111111111111:role/LogExporter"
    config = export_config(**export_options(roles=(role,), region="eu-west-1", period="hour"))  # type: ignore[arg-type]
    (account,) = config.accounts
    assert (account.name, account.groups, account.role_chain, account.regions) == (
        "export",
        ["/aws/lambda/api"],
        [role],
        ["eu-west-1"],
    )
    assert (config.destination.bucket, config.destination.period) == ("archive", "hour")


@pytest.mark.parametrize(
    ("option", "value", "starts"),
    [
        ("bucket", "Bad_Bucket!", "--bucket: 'Bad_Bucket!' is not a valid S3 bucket name"),
        ("roles", ("not-an-arn",), "--role: 'not-an-arn' is not an IAM role ARN"),
        ("region", "moon", "--region: 'moon' is not an AWS region name"),
        ("group", "", "--group: a pattern cannot be empty"),
    ],
)
def test_export_config_mistakes_name_the_option(option: str, value: object, starts: str) -> None:
    with pytest.raises(ConfigError) as caught:
        export_config(**export_options(**{option: value}))  # type: ignore[arg-type]
    assert str(caught.value).startswith(starts)
