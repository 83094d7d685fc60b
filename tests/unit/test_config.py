"""Config: validation with located one-line errors, and group patterns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from log_exporter.core.config import GroupSelector, load_config, parse_config, parse_duration
from log_exporter.errors import ConfigError

ROLE = "arn:aws:iam::111111111111:role/CloudCustodianRole"


def cfg(**account: Any) -> dict[str, Any]:
    acct = {"name": "demo", "role": ROLE, "groups": ["/aws/lambda/*"], **account}
    return {
        "destination": {"bucket": "custodian-log-archive", "prefix": "logs2"},
        "accounts": [acct],
    }


def test_issue_example_is_valid() -> None:
    c = parse_config(cfg(groups=["/aws/lambda/*", "vpc-flow-logs"]))
    a = c.accounts[0]
    assert a.role_chain == [ROLE]
    assert c.destination.settle == 12 * 3600 and c.destination.period == "day"


def test_role_chain_and_options() -> None:
    chain = [ROLE, "arn:aws:iam::222222222222:role/Member"]
    a = parse_config(
        cfg(role=chain, external_id="xyz", regions=["eu-west-1"], exclude=["re:.*test.*"])
    ).accounts[0]
    assert a.role_chain == chain and a.regions == ["eu-west-1"]
    assert parse_config(cfg(role=None)).accounts[0].role_chain == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "the file is empty"),
        ([1, 2], "expected a mapping"),
        ({"accounts": cfg()["accounts"]}, "destination: is required"),
        ({"destination": {"bucket": "abc"}}, "accounts: is required"),
        (cfg(groups=[]), "accounts[0].groups: List should have at least 1 item"),
        (cfg(groups="x"), "accounts[0].groups: Input should be a valid list"),
        (
            cfg(role="arn:aws:iam::1:user/x"),
            "accounts[0].role: 'arn:aws:iam::1:user/x' is not an IAM role ARN",
        ),
        (cfg(role=[]), "accounts[0].role: a role chain needs at least one role ARN"),
        (cfg(groups=["re:(unclosed"]), "accounts[0].groups: invalid regular expression"),
        (cfg(regions=["mars-1"]), "accounts[0].regions: 'mars-1' is not an AWS region name"),
        (cfg(colour="blue"), "accounts[0].colour: unknown key"),
        ({**cfg(), "extra": 1}, "extra: unknown key"),
        (
            {"destination": {"bucket": "Bad_Bucket"}, "accounts": cfg()["accounts"]},
            "destination.bucket: 'Bad_Bucket' is not a valid S3 bucket name",
        ),
        (
            {"destination": {"bucket": "192.168.1.1"}, "accounts": cfg()["accounts"]},
            "is not a valid S3 bucket name",
        ),
        (
            {"destination": {"bucket": "abc", "prefix": "/x"}, "accounts": cfg()["accounts"]},
            "must not start or end with '/'",
        ),
        (
            {"destination": {"bucket": "abc", "prefix": "a/../b"}, "accounts": cfg()["accounts"]},
            "empty, '.' or '..' segment",
        ),
        (
            {"destination": {"bucket": "abc", "prefix": "a//b"}, "accounts": cfg()["accounts"]},
            "empty, '.' or '..' segment",
        ),
        (
            {"destination": {"bucket": "abc", "settle": "soon"}, "accounts": cfg()["accounts"]},
            "destination.settle: expected a duration",
        ),
        (
            {"destination": {"bucket": "abc", "period": "week"}, "accounts": cfg()["accounts"]},
            "destination.period: Input should be 'day' or 'hour'",
        ),
        (
            {
                "destination": {"bucket": "abc"},
                "accounts": [cfg()["accounts"][0], cfg()["accounts"][0]],
            },
            "account name 'demo' is used twice",
        ),
    ],
)
def test_bad_configs_name_the_place(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("destination:\n  bucket: [unclosed\naccounts: []\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+, column \d+"):
        load_config(bad)
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(empty)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (0, 0),
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        (" 2h ", 7200),
    ],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-1", "1w", "h", True, 1.5, -5])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("include", "exclude", "name", "selected"),
    [
        (["/aws/lambda/*"], [], "/aws/lambda/api", True),
        (["/aws/lambda/*"], [], "/aws/lambda/2026/nested", True),  # * also matches /
        (["/aws/lambda/*"], [], "/aws/ecs/api", False),
        (["vpc-flow-logs"], [], "vpc-flow-logs", True),
        (["vpc-flow-logs"], [], "vpc-flow-logs-2", False),
        (["VPC*"], [], "vpc-flow-logs", False),  # case-sensitive like AWS
        (["re:/aws/(lambda|ecs)/.+"], [], "/aws/ecs/api", True),
        (["re:/aws/lambda"], [], "/aws/lambda/api", False),  # must match the whole name
        (["*"], ["*test*"], "/aws/lambda/test-fn", False),  # exclude wins
        (["/aws/lambda/*"], ["re:.*-dev$"], "/aws/lambda/api-dev", False),
        (["/aws/lambda/*"], ["re:.*-dev$"], "/aws/lambda/api-prod", True),
        (["/a/?"], [], "/a/b", True),
        (["/a/[bc]"], [], "/a/c", True),
    ],
)
def test_group_selector(include: list[str], exclude: list[str], name: str, selected: bool) -> None:
    assert GroupSelector(include, exclude).matches(name) is selected


@pytest.mark.parametrize(
    ("include", "prefixes"),
    [
        (["/aws/lambda/*", "vpc-flow-logs"], ["/aws/lambda/", "vpc-flow-logs"]),
        (["/aws/*", "/aws/lambda/*"], ["/aws/"]),
        (["re:.*"], [""]),
        (["*"], [""]),
    ],
)
def test_list_prefixes(include: list[str], prefixes: list[str]) -> None:
    assert GroupSelector(include).list_prefixes() == prefixes


def test_select_accounts() -> None:
    c = parse_config(cfg())
    assert [a.name for a in c.select([])] == ["demo"]
    with pytest.raises(ConfigError, match="--account 'nope' is not in the config"):
        c.select(["nope"])


def two(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """A config of two entries, `a` and `b`, each exporting /aws/lambda/*."""
    base = {"groups": ["/aws/lambda/*"]}
    return {
        "destination": {"bucket": "custodian-log-archive"},
        "accounts": [{"name": "a", **base, **first}, {"name": "b", **base, **second}],
    }


OTHER_ROLE = "arn:aws:iam::111111111111:role/Other"
HUB = "arn:aws:iam::999999999999:role/Hub"


@pytest.mark.parametrize(
    ("first", "second", "who", "region"),
    [
        pytest.param(
            {"role": ROLE, "regions": ["us-east-1", "eu-west-1"]},
            {"role": OTHER_ROLE, "regions": ["eu-west-1"]},
            "account 111111111111",
            "eu-west-1",
            id="two-roles-of-one-account",
        ),
        pytest.param(
            {"role": [HUB, ROLE], "regions": ["us-east-1"]},
            {"role": ROLE, "regions": ["us-east-1"]},
            "account 111111111111",
            "us-east-1",
            id="a-chain-ending-in-the-same-account",
        ),
        pytest.param(
            {"role": ROLE},
            {"role": OTHER_ROLE},
            "account 111111111111",
            "the ambient region",
            id="both-in-the-ambient-region",
        ),
        pytest.param(
            {"regions": ["us-east-1"]},
            {"regions": ["us-east-1"]},
            "the ambient account",
            "us-east-1",
            id="two-ambient-entries",
        ),
        pytest.param(
            {"role": ROLE, "regions": "all"},
            {"role": OTHER_ROLE, "regions": ["eu-west-1"]},
            "account 111111111111",
            "eu-west-1",
            id="all-regions-meets-a-listed-one",
        ),
        pytest.param(
            {"role": ROLE, "regions": ["eu-west-1"]},
            {"role": OTHER_ROLE, "regions": "all"},
            "account 111111111111",
            "every region",
            id="a-listed-region-meets-all-regions",
        ),
    ],
)
def test_two_entries_of_one_account_and_region_are_refused_naming_both(
    first: dict[str, Any], second: dict[str, Any], who: str, region: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(two(first, second), "c.yml")
    assert str(info.value) == (
        f"c.yml: accounts: accounts[0] ('a') and accounts[1] ('b') both export {who} in "
        f"{region}: one account and region is one lane (one export slot, one state); merge "
        "them into one entry"
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            {"role": ROLE, "regions": ["us-east-1"]},
            {"role": OTHER_ROLE, "regions": ["eu-west-1"]},
            id="one-account-two-regions",
        ),
        pytest.param(
            {"role": ROLE, "regions": ["us-east-1"]},
            {"role": "arn:aws:iam::222222222222:role/X", "regions": ["us-east-1"]},
            id="two-accounts-one-region",
        ),
        pytest.param(
            {"role": [ROLE, "arn:aws:iam::222222222222:role/X"]},
            {"role": ROLE},
            id="a-chain-through-the-other-account",
        ),
        # the ambient account and region are known at run time: the engine compares them
        pytest.param({"role": ROLE, "regions": ["us-east-1"]}, {}, id="role-and-ambient"),
        pytest.param(
            {"role": ROLE, "regions": ["us-east-1"]}, {"role": OTHER_ROLE}, id="ambient-region"
        ),
        pytest.param(
            {"role": ROLE, "regions": "all"},
            {"role": "arn:aws:iam::222222222222:role/X", "regions": "all"},
            id="all-regions-of-two-accounts",
        ),
    ],
)
def test_entries_of_different_lanes_are_valid(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert [a.name for a in parse_config(two(first, second)).accounts] == ["a", "b"]


def test_a_region_listed_twice_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"accounts\[0\].regions: region 'us-east-1' is listed twice"
    ):
        parse_config(cfg(regions=["us-east-1", "eu-west-1", "us-east-1"]))


def with_bucket(bucket: Any) -> dict[str, Any]:
    data = cfg()
    data["destination"] = {"bucket": bucket}
    return data


@pytest.mark.parametrize(
    ("bucket", "region", "expected"),
    [
        ("one-archive", "eu-west-1", "one-archive"),  # one bucket: every lane's (checked at run)
        ("archive-{region}", "eu-west-1", "archive-eu-west-1"),
        ({"us-east-1": "archive-use1", "eu-west-1": "archive-euw1"}, "eu-west-1", "archive-euw1"),
        ({"us-east-1": "archive-use1"}, "eu-west-1", None),  # reported, never dropped
    ],
)
def test_each_region_has_its_bucket(bucket: Any, region: str, expected: str | None) -> None:
    dest = parse_config(with_bucket(bucket)).destination
    assert dest.bucket_for(region) == expected
    assert dest.per_region == (bucket != "one-archive")
    assert dest.buckets([region, region]) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("bucket", "message"),
    [
        ({}, "destination.bucket: a map from regions to buckets needs at least one region"),
        ({"eu-west": "archive"}, "destination.bucket: 'eu-west' is not an AWS region name"),
        ({"eu-west-1": "Archive"}, "destination.bucket: eu-west-1: 'Archive' is not a valid S3"),
        ({"eu-west-1": "a-{region}"}, "destination.bucket: eu-west-1: a bucket of the map cannot"),
        ("a-{region}-{region}", "destination.bucket: 'a-{region}-{region}' holds {region} more"),
        ("Archive-{region}", "destination.bucket: 'Archive-ap-southeast-2' is not a valid S3"),
    ],
)
def test_bad_bucket_maps_name_the_field(bucket: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^config: " + re.escape(message)):
        parse_config(with_bucket(bucket))
