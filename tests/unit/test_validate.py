"""`validate`'s rules over a config, without AWS: which accounts and regions a run would cover,
and the first mistake named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from log_exporter.aws.sessions import SessionFactory
from log_exporter.core.config import Config, parse_config
from log_exporter.errors import ConfigError, UsageError
from log_exporter.passes.validate import coverage, regions_in, selected_accounts, validate

ROLE = "arn:aws:iam::{}:role/LogExporter"


def make(accounts: list[dict[str, Any]], bucket: Any = "archive", **more: Any) -> Config:
    data: dict[str, Any] = {"destination": {"bucket": bucket}, "accounts": accounts, **more}
    return parse_config(data, "config.yml")


def account(name: str, id_: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "role": ROLE.format(id_), "groups": ["g"], **more}


@pytest.mark.parametrize(
    ("configured", "regions", "ambient", "expected"),
    [
        (["eu-west-1", "us-east-1"], (), None, ["eu-west-1", "us-east-1"]),
        (["eu-west-1", "us-east-1"], ("us-east-1",), None, ["us-east-1"]),
        (["eu-west-1"], ("us-east-1",), "eu-west-1", []),  # none among --region
        (None, ("us-east-1", "eu-west-1"), "ap-south-1", ["us-east-1", "eu-west-1"]),
        (None, (), "ap-south-1", ["ap-south-1"]),
        (None, (), None, []),
    ],
)
def test_regions_in(
    configured: list[str] | None, regions: tuple[str, ...], ambient: str | None, expected: list[str]
) -> None:
    assert regions_in(configured, regions, ambient) == expected


def test_coverage_lists_the_accounts_with_regions_among_region_options() -> None:
    config = make(
        [
            account("prod", "111111111111", regions=["eu-west-1", "us-east-1"]),
            account("dev", "222222222222", regions=["eu-west-1"]),
            account("all", "333333333333", regions="all"),
        ]
    )
    out = coverage(config, "config.yml", config.accounts, ("us-east-1",), None)
    assert [(c.account.name, c.regions, c.all_regions) for c in out.accounts] == [
        ("prod", ["us-east-1"], False),
        ("all", [], True),  # asked of AWS at run time: whatever --region says
    ]
    assert out.lanes == 2
    assert out.organization_regions == []


def test_an_account_without_a_region_is_a_usage_error_naming_it() -> None:
    config = make([account("prod", "111111111111")])
    with pytest.raises(UsageError, match=r"^accounts\[prod\]: no region: set `regions`"):
        coverage(config, "config.yml", config.accounts, (), None)
    assert coverage(config, "config.yml", config.accounts, (), "eu-west-1").lanes == 1


def test_a_region_without_a_bucket_names_the_file_the_account_and_the_region() -> None:
    config = make(
        [account("prod", "111111111111", regions=["eu-west-1", "us-east-1"])],
        bucket={"eu-west-1": "archive-eu"},
    )
    with pytest.raises(ConfigError, match=r"^my\.yml: accounts\[prod\] runs in us-east-1: "):
        coverage(config, "my.yml", config.accounts, (), None)
    # only the lanes run are checked
    assert coverage(config, "my.yml", config.accounts, ("eu-west-1",), None).lanes == 1


def test_two_entries_of_one_lane_in_the_regions_they_run_in_are_refused() -> None:
    # two entries of the ambient account: one lane once they run in the same region
    config = make(
        [{"name": "a", "groups": ["g"], "regions": ["eu-west-1"]}, {"name": "b", "groups": ["h"]}]
    )
    with pytest.raises(ConfigError, match=r"^config\.yml: accounts: .*'a'.*'b'"):
        coverage(config, "config.yml", config.accounts, (), "eu-west-1")
    with pytest.raises(ConfigError, match=r"^config\.yml: accounts: "):
        coverage(config, "config.yml", config.accounts[1:], ("eu-west-1",), None)
    # elsewhere they are two lanes
    assert coverage(config, "config.yml", config.accounts, (), "us-east-1").lanes == 2


def test_an_organization_needs_a_region_and_a_bucket_for_each() -> None:
    org = {"role": "arn:aws:iam::{account_id}:role/Member", "groups": ["g"]}
    config = make([], organization=org)
    with pytest.raises(UsageError, match=r"^organization: no region"):
        coverage(config, "config.yml", [], (), None)
    assert coverage(config, "config.yml", [], (), "eu-west-1").organization_regions == ["eu-west-1"]
    mapped = make(
        [],
        bucket={"eu-west-1": "archive-eu"},
        organization={**org, "regions": ["eu-west-1", "us-east-1"]},
    )
    with pytest.raises(ConfigError, match=r"^config\.yml: organization runs in us-east-1: "):
        coverage(mapped, "config.yml", [], (), None)


def test_selected_accounts_with_an_organization_ignore_names_it_may_discover() -> None:
    entries = [account("prod", "111111111111", regions=["eu-west-1"])]
    plain = make(entries)
    with pytest.raises(ConfigError, match="--account 'nope' is not in the config"):
        selected_accounts(plain, ["nope"])
    org = {"role": "arn:aws:iam::{account_id}:role/Member", "groups": ["g"]}
    assert selected_accounts(make(entries, organization=org), ["nope"]) == []
    assert [a.name for a in selected_accounts(plain, [])] == ["prod"]


def test_validate_checks_each_selected_profile_in_the_aws_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tmp_path / "config"
    files.write_text("[profile known]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(files))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    config = make(
        [
            {"name": "a", "profile": "known", "groups": ["g"], "regions": ["eu-west-1"]},
            {"name": "b", "profile": "unknown", "groups": ["g"], "regions": ["us-east-1"]},
        ]
    )
    out = validate(config, "config.yml", ["a"], (), SessionFactory())
    assert [c.account.name for c in out.accounts] == ["a"]
    with pytest.raises(ConfigError, match=r"^accounts\[b\]\.profile: the AWS profile 'unknown'"):
        validate(config, "config.yml", [], (), SessionFactory())
    # the ambient region comes from the AWS config when --region is not given
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    ambient = make([{"name": "c", "profile": "known", "groups": ["g"]}])
    assert validate(ambient, "config.yml", [], (), SessionFactory()).accounts[0].regions == [
        "ap-south-1"
    ]
    assert validate(ambient, "config.yml", [], ("us-east-1",), SessionFactory()).accounts[
        0
    ].regions == ["us-east-1"]
