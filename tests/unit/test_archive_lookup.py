"""What `cat` and `athena` read (the bucket, the account, the archive's period), and how
`athena --apply` puts its table in Glue (over botocore's Stubber)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from log_exporter.aws.glue import put_table
from log_exporter.aws.sessions import SessionFactory
from log_exporter.core.config import Config, parse_config
from log_exporter.core.state import LaneState
from log_exporter.core.windows import Intervals
from log_exporter.engine import Engine
from log_exporter.errors import AWSError, ConfigError, UsageError
from log_exporter.passes.archive_lookup import archive_period, read_account, read_bucket
from log_exporter.passes.athena import table_spec

A, B = "111111111111", "222222222222"


@pytest.fixture(autouse=True)
def no_aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def make(bucket: Any = "archive", period: str = "day", **more: Any) -> Config:
    accounts = [
        {"name": "prod", "role": f"arn:aws:iam::{A}:role/X", "groups": ["g"]},
        {"name": "dev", "role": f"arn:aws:iam::{B}:role/X", "groups": ["g"]},
    ]
    return parse_config(
        {
            "destination": {"bucket": bucket, "prefix": "logs", "period": period},
            "accounts": accounts,
            **more,
        }
    )


def engine(config: Config) -> Engine:
    return Engine(config, SessionFactory(region="eu-west-1"))


PER_REGION = {"eu-west-1": "archive-eu", "us-east-1": "archive-us"}


@pytest.mark.parametrize(
    ("bucket", "regions", "expected"),
    [
        ("archive", [], "archive"),
        ("archive", ["us-east-1", "eu-west-1"], "archive"),
        (PER_REGION, ["us-east-1"], "archive-us"),
        (PER_REGION, ["eu-west-1", "eu-west-1"], "archive-eu"),
    ],
)
def test_read_bucket(bucket: Any, regions: list[str], expected: str) -> None:
    assert read_bucket(make(bucket), regions) == expected


def test_read_bucket_with_a_bucket_per_region_needs_one_region_of_the_map() -> None:
    with pytest.raises(UsageError, match=r"names a bucket per region .*: give --region"):
        read_bucket(make(PER_REGION), [])
    with pytest.raises(UsageError, match=r"\(archive-eu, archive-us\): give --region"):
        read_bucket(make(PER_REGION), ["eu-west-1", "us-east-1"])
    config = make(PER_REGION)
    with pytest.raises(ConfigError) as caught:
        read_bucket(config, ["ap-south-1"])
    assert str(caught.value) == config.destination.no_bucket("ap-south-1")


def test_archive_period_is_the_states_when_one_has_archived_something() -> None:
    config = make(period="day")
    nothing = LaneState(A, "eu-west-1", period="hour")  # nothing covered: says nothing
    hourly = LaneState(A, "us-east-1", period="hour", covered={"g": Intervals([(0, 999)])})
    assert archive_period(config, []) == "day"
    assert archive_period(config, [nothing]) == "day"
    assert archive_period(config, [nothing, hourly]) == "hour"


def test_read_account_by_name_or_id_without_a_call() -> None:
    e = engine(make())
    assert read_account(e, "dev") == ("dev", B)
    assert read_account(e, A) == ("prod", A)
    with pytest.raises(ConfigError, match="--account 'nope' is not in the config"):
        read_account(e, "nope")
    org = {"role": "arn:aws:iam::{account_id}:role/Member", "groups": ["g"]}
    # an organization's account id is taken as it is (no Organizations call)
    assert read_account(engine(make(organization=org)), "333333333333") == (
        "333333333333",
        "333333333333",
    )


def test_table_spec_holds_the_selected_accounts_ids_and_the_regions_bucket() -> None:
    e = engine(make(PER_REGION, period="hour"))
    spec = table_spec(e, ["prod"], "us-east-1", "logs", "archive")
    assert (spec.bucket, spec.prefix, spec.account_ids, spec.period) == (
        "archive-us",
        "logs",
        [A],
        "hour",
    )
    assert table_spec(e, [], "eu-west-1", "logs", "archive").account_ids == [A, B]


# --- put_table over Stubber --------------------------------------------------------------------
TABLE = {"Name": "archive", "TableType": "EXTERNAL_TABLE"}


@pytest.fixture
def glue() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "glue", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def test_put_table_creates_the_database_when_missing_then_the_table(glue: Any) -> None:
    with Stubber(glue) as stub:
        stub.add_client_error(
            "get_database", "EntityNotFoundException", expected_params={"Name": "logs"}
        )
        stub.add_response("create_database", {}, {"DatabaseInput": {"Name": "logs"}})
        stub.add_response("create_table", {}, {"DatabaseName": "logs", "TableInput": TABLE})
        assert put_table(glue, "logs", TABLE) == "created"
        stub.assert_no_pending_responses()


def test_put_table_updates_a_table_that_exists(glue: Any) -> None:
    with Stubber(glue) as stub:
        stub.add_response("get_database", {"Database": {"Name": "logs"}}, {"Name": "logs"})
        stub.add_client_error("create_table", "AlreadyExistsException")
        stub.add_response("update_table", {}, {"DatabaseName": "logs", "TableInput": TABLE})
        assert put_table(glue, "logs", TABLE) == "updated"
        stub.assert_no_pending_responses()


def test_put_table_refused_is_one_aws_error_naming_what_and_the_code(glue: Any) -> None:
    with Stubber(glue) as stub:
        stub.add_response("get_database", {"Database": {"Name": "logs"}}, {"Name": "logs"})
        stub.add_client_error("create_table", "AccessDeniedException", "not allowed")
        with pytest.raises(AWSError) as caught:
            put_table(glue, "logs", TABLE)
    assert (
        str(caught.value) == "cannot create table logs.archive: AccessDeniedException not allowed"
    )
    assert caught.value.code == "AccessDeniedException"
    with Stubber(glue) as stub:
        stub.add_client_error("get_database", "AccessDeniedException", "no")
        with pytest.raises(AWSError, match=r"^cannot read Glue database logs: AccessDenied"):
            put_table(glue, "logs", TABLE)
