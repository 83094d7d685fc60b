"""The `organization:` block: its validation, the pure selection and merge of discovered
accounts, and the Organizations reader's paging and backoff (over botocore's Stubber)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from log_exporter.aws.organization import (
    OrgAccount,
    OrganizationReader,
    discover,
    enabled_regions,
    member_account,
    merge,
    select,
)
from log_exporter.core.config import Config, parse_config
from log_exporter.errors import AccessDeniedError, AWSError, ConfigError

ROLE = "arn:aws:iam::{account_id}:role/LogExporterMember"
BUCKET = {"bucket": "custodian-log-archive"}


def org_config(explicit: list[dict[str, Any]] | None = None, **block: Any) -> Config:
    data: dict[str, Any] = {
        "destination": BUCKET,
        "organization": {"role": ROLE, "groups": ["/aws/lambda/*"], **block},
    }
    if explicit is not None:
        data["accounts"] = explicit
    return parse_config(data)


# --- config ------------------------------------------------------------------------------------
def test_the_issue_example_is_valid() -> None:
    c = org_config(
        external_id="optional",
        groups=["/aws/lambda/*", "vpc-flow-logs"],
        exclude=["*-test"],
        ous=["ou-abcd-12345678"],
        accounts=["1111*", "prod-*"],
        exclude_accounts=["222222222222", "sandbox-*"],
        tags={"log-archive": "yes"},
        discovery_role="arn:aws:iam::999999999999:role/OrgReader",
        regions="all",
    )
    assert c.accounts == [] and c.organization is not None
    account = c.organization.account("123456789012", "prod-a")
    assert account.role_chain == ["arn:aws:iam::123456789012:role/LogExporterMember"]
    assert account.regions == "all" and account.external_id == "optional"


def test_a_chain_fills_in_every_account_id() -> None:
    hub = "arn:aws:iam::999999999999:role/Hub"
    c = org_config(role=[hub, ROLE])
    assert c.organization is not None
    assert c.organization.account("123456789012", "a").role_chain == [
        hub,
        "arn:aws:iam::123456789012:role/LogExporterMember",
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"role": "arn:aws:iam::111111111111:role/X"}, "organization.role: the role"),
        ({"role": "arn:aws:iam::{account}:role/X"}, "organization.role: 'arn:aws:iam::{account}"),
        ({"role": []}, "organization.role: a role chain needs at least one role ARN"),
        ({"groups": []}, "organization.groups: List should have at least 1 item"),
        ({"ous": ["engineering"]}, "organization.ous: 'engineering' is not an OU or root id"),
        ({"exclude_accounts": [""]}, "organization.exclude_accounts: an account id or name"),
        ({"regions": "most"}, "organization.regions: expected a list of regions or 'all'"),
        ({"regions": ["mars-1"]}, "organization.regions: 'mars-1' is not an AWS region name"),
        ({"regions": 5}, "organization.regions: Input should be a valid list"),
        ({"regions": [5]}, "organization.regions[0]: Input should be a valid string"),
        ({"discovery_role": "OrgReader"}, "organization.discovery_role: 'OrgReader' is not"),
        ({"tags": {"a": 1}}, "organization.tags.a: Input should be a valid string"),
        ({"colour": "blue"}, "organization.colour: unknown key"),
    ],
)
def test_bad_blocks_name_the_field(block: dict[str, Any], message: str) -> None:
    data = {"role": ROLE, "groups": ["x"], **block}
    with pytest.raises(ConfigError) as info:
        parse_config({"destination": BUCKET, "organization": data})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"destination": BUCKET}, "config: accounts: is required (or an `organization` block)"),
        ({"destination": BUCKET, "accounts": []}, "no account and there is no `organization`"),
    ],
)
def test_a_config_needs_accounts_or_an_organization(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_an_account_may_ask_for_all_its_regions() -> None:
    c = parse_config(
        {"destination": BUCKET, "accounts": [{"name": "a", "groups": ["x"], "regions": "all"}]}
    )
    assert c.accounts[0].regions == "all"


# --- selection (pure) ---------------------------------------------------------------------------
A = OrgAccount("111111111111", "prod-a")
B = OrgAccount("111122223333", "sandbox-b")
C = OrgAccount("222222222222", "prod-c")
D = OrgAccount("333333333333", "dev-d", "SUSPENDED")
E = OrgAccount("444444444444", "prod-e", "PENDING_CLOSURE")
LISTED = [A, B, C, D, E]


@pytest.mark.parametrize(
    ("block", "chosen", "reasons"),
    [
        ({}, [A, B, C], {D.id: "status SUSPENDED", E.id: "status PENDING_CLOSURE"}),
        (
            {"accounts": ["1111*"]},
            [A, B],
            {C.id: "not among organization.accounts", D.id: "status SUSPENDED"},
        ),
        ({"accounts": ["prod-*"]}, [A, C], {B.id: "not among organization.accounts"}),
        (
            {"exclude_accounts": ["222222222222", "sandbox-*"]},
            [A],
            {
                B.id: "organization.exclude_accounts 'sandbox-*'",
                C.id: "organization.exclude_accounts '222222222222'",
            },
        ),
        (
            {"accounts": ["prod-*"], "exclude_accounts": ["prod-c"]},
            [A],
            {C.id: "organization.exclude_accounts 'prod-c'"},
        ),
        # a glob matches the whole id or name, not a part of it
        ({"accounts": ["prod"]}, [], {A.id: "not among organization.accounts"}),
    ],
)
def test_select(block: dict[str, Any], chosen: list[OrgAccount], reasons: dict[str, str]) -> None:
    config = parse_config(
        {"destination": BUCKET, "organization": {"role": ROLE, "groups": ["x"], **block}}
    )
    assert config.organization is not None
    got, excluded = select(config.organization, LISTED)
    assert got == chosen
    why = {x.account.id: x.reason for x in excluded}
    assert {k: why[k] for k in reasons} == reasons
    assert set(why) == {a.id for a in LISTED} - {a.id for a in chosen}


def test_tags_must_all_match_and_are_asked_only_of_candidates() -> None:
    config = org_config(tags={"log-archive": "yes", "env": "prod"}, exclude_accounts=["sandbox-*"])
    assert config.organization is not None
    tags = {A.id: {"log-archive": "yes", "env": "prod"}, C.id: {"log-archive": "yes"}}
    asked: list[str] = []

    def tags_of(account_id: str) -> dict[str, str]:
        asked.append(account_id)
        return tags.get(account_id, {})

    got, excluded = select(config.organization, LISTED, tags_of)
    assert got == [A]
    assert asked == [A.id, C.id]  # not the excluded or inactive ones
    assert {x.account.id: x.reason for x in excluded}[C.id] == "tag env=prod missing"


def test_an_explicit_entry_wins_over_the_discovered_account() -> None:
    own = "arn:aws:iam::111111111111:role/Custom"
    config = org_config(
        explicit=[{"name": "prod", "role": own, "groups": ["only-this"], "regions": ["eu-west-1"]}]
    )
    accounts, discovered = merge(config, [A, C])
    assert [a.name for a in accounts] == ["prod", "prod-c"]
    assert accounts[0].role_chain == [own] and accounts[0].groups == ["only-this"]
    assert discovered == accounts[1:]
    assert discovered[0].role_chain == ["arn:aws:iam::222222222222:role/LogExporterMember"]


def test_an_entry_without_a_role_wins_over_its_discovered_twin() -> None:
    # run from the management account A: `mgmt` (no role) is A, as STS says
    config = org_config(explicit=[{"name": "mgmt", "groups": ["only-this"]}])
    accounts, discovered = merge(config, [A, C], ambient_id=A.id)
    assert [a.name for a in accounts] == ["mgmt", "prod-c"]
    assert accounts[0].role_chain == [] and accounts[0].groups == ["only-this"]
    assert [a.name for a in discovered] == ["prod-c"]
    client, stub = stubbed()
    stub.add_response("list_accounts", {"Accounts": [account(A), account(C)]}, {})
    with stub:
        found = discover(config, OrganizationReader(client), ambient_id=A.id)
    assert [a.name for a in found.accounts] == ["mgmt", "prod-c"]
    assert found.replaced == [(A, "mgmt")] and found.ambient_id == A.id


def test_names_that_clash_get_the_account_id() -> None:
    config = org_config(explicit=[{"name": "prod-a", "groups": ["x"]}])  # ambient: no id
    twins = [OrgAccount("555555555555", "shared"), OrgAccount("666666666666", "shared")]
    accounts, _ = merge(config, [A, *twins])
    assert [a.name for a in accounts] == [
        "prod-a",
        "prod-a-111111111111",
        "shared-555555555555",
        "shared-666666666666",
    ]


def test_a_worker_rebuilds_a_discovered_account_without_organizations() -> None:
    config = org_config(exclude_accounts=["sandbox-*"])
    account = member_account(config, A.id, A.name)
    assert account is not None and account.role_chain[0].split(":")[4] == A.id
    assert member_account(config, B.id, B.name) is None  # excluded since it was sent
    assert member_account(config, "not-an-id", "x") is None
    plain = parse_config({"destination": BUCKET, "accounts": [{"name": "a", "groups": ["x"]}]})
    assert member_account(plain, A.id, A.name) is None


# --- the reader (botocore Stubber) ---------------------------------------------------------------
def stubbed() -> tuple[Any, Stubber]:
    client = botocore.session.get_session().create_client(
        "organizations",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    return client, Stubber(client)


def account(a: OrgAccount) -> dict[str, Any]:
    return {
        "Id": a.id,
        "Arn": f"arn:aws:organizations::999999999999:account/o-x/{a.id}",
        "Email": "a@example.com",
        "Name": a.name,
        "State": a.status,  # what AWS sends since 2026-09-09 (`Status` retired)
    }


def test_accounts_are_paged_and_throttling_is_waited_out() -> None:
    client, stub = stubbed()
    stub.add_response("list_accounts", {"Accounts": [account(A)], "NextToken": "t1"}, {})
    stub.add_client_error("list_accounts", "TooManyRequestsException", http_status_code=400)
    stub.add_client_error("list_accounts", "TooManyRequestsException", http_status_code=400)
    stub.add_response("list_accounts", {"Accounts": [account(B)]}, {"NextToken": "t1"})
    slept: list[float] = []
    with stub:
        reader = OrganizationReader(client, sleep=slept.append)
        assert reader.accounts() == [A, B]
    stub.assert_no_pending_responses()
    assert slept == [0.5, 1.0] and reader.calls == 4


@pytest.mark.parametrize(
    ("fields", "selected"),
    [
        ({"State": "ACTIVE"}, True),
        ({"State": "SUSPENDED"}, False),
        ({"State": "CLOSED"}, False),
        ({"State": "PENDING_ACTIVATION"}, False),
        ({"State": "PENDING_CLOSURE"}, False),
        ({"State": "SUSPENDED", "Status": "ACTIVE"}, False),  # State wins
        ({"Status": "ACTIVE"}, True),  # an answer from before `State`
        ({"Status": "SUSPENDED"}, False),
    ],
)
def test_only_accounts_whose_state_is_active_are_selected(
    fields: dict[str, str], selected: bool
) -> None:
    client, stub = stubbed()
    listed = {"Id": A.id, "Name": A.name, **fields}
    stub.add_response("list_accounts", {"Accounts": [listed]}, {})
    with stub:
        found = discover(org_config(), OrganizationReader(client))
    assert [a.name for a in found.accounts] == ([A.name] if selected else [])
    reason = f"status {fields.get('State') or fields.get('Status')}"
    assert [x.reason for x in found.excluded] == ([] if selected else [reason])


def test_ous_are_walked_down_to_nested_ones() -> None:
    client, stub = stubbed()
    ou, nested = "ou-abcd-11111111", "ou-abcd-22222222"
    stub.add_response("list_accounts_for_parent", {"Accounts": [account(A)]}, {"ParentId": ou})
    stub.add_response(
        "list_organizational_units_for_parent",
        {"OrganizationalUnits": [{"Id": nested}], "NextToken": "n"},
        {"ParentId": ou},
    )
    stub.add_response(
        "list_organizational_units_for_parent",
        {"OrganizationalUnits": []},
        {"ParentId": ou, "NextToken": "n"},
    )
    stub.add_response("list_accounts_for_parent", {"Accounts": [account(C)]}, {"ParentId": nested})
    stub.add_response(
        "list_organizational_units_for_parent", {"OrganizationalUnits": []}, {"ParentId": nested}
    )
    with stub:
        assert OrganizationReader(client).accounts_under([ou]) == [A, C]
    stub.assert_no_pending_responses()


def test_discover_reads_tags_only_when_the_block_has_some() -> None:
    client, stub = stubbed()
    stub.add_response("list_accounts", {"Accounts": [account(A), account(B)]}, {})
    stub.add_response(
        "list_tags_for_resource",
        {"Tags": [{"Key": "archive", "Value": "yes"}]},
        {"ResourceId": A.id},
    )
    stub.add_response("list_tags_for_resource", {"Tags": []}, {"ResourceId": B.id})
    with stub:  # one tag reader: the stub answers in order
        found = discover(org_config(tags={"archive": "yes"}), OrganizationReader(client, workers=1))
    assert [a.name for a in found.accounts] == ["prod-a"] and found.calls == 3
    assert [(x.account.name, x.reason) for x in found.excluded] == [
        ("sandbox-b", "tag archive=yes missing")
    ]
    client, stub = stubbed()
    stub.add_response("list_accounts", {"Accounts": [account(A), account(B)]}, {})
    with stub:  # no tags in the block: no ListTagsForResource (the stub would refuse it)
        assert len(discover(org_config(), OrganizationReader(client)).accounts) == 2


def test_tags_are_read_a_few_accounts_at_a_time() -> None:
    import threading

    config = org_config(tags={"log-archive": "yes"})
    assert config.organization is not None
    listed = [OrgAccount(f"{i:012d}", f"app-{i}") for i in range(1, 9)]
    together = threading.Barrier(4, timeout=30)  # broken unless 4 reads run at once
    lock = threading.Lock()
    running: list[int] = [0, 0]  # now, most

    def tags_of(account_id: str) -> dict[str, str]:
        with lock:
            running[0] += 1
            running[1] = max(running)
        together.wait()
        with lock:
            running[0] -= 1
        return {"log-archive": "yes"} if account_id != listed[2].id else {}

    got, excluded = select(config.organization, listed, tags_of, workers=4)
    assert got == [a for a in listed if a != listed[2]]  # in the order listed
    assert [(x.account, x.reason) for x in excluded] == [(listed[2], "tag log-archive=yes missing")]
    assert running[1] == 4


def test_discovery_over_its_time_budget_fails_naming_it() -> None:
    client, stub = stubbed()
    now = [0.0]
    for _ in range(4):
        stub.add_client_error("list_accounts", "TooManyRequestsException", http_status_code=400)

    def sleep(s: float) -> None:
        now[0] += s

    reader = OrganizationReader(client, sleep=sleep, budget_s=3, clock=lambda: now[0])
    with stub, pytest.raises(AWSError) as info:
        reader.accounts()
    # waited 0.5 and 1 s; waiting 2 s more would pass the 3 s budget
    assert now[0] == 1.5 and reader.calls == 3
    assert "organization discovery: over its time budget of 3 s (3 Organizations calls" in str(
        info.value
    )


def test_the_dispatcher_gives_discovery_its_remaining_time_less_a_reserve() -> None:
    from log_exporter.aws_lambda.dispatcher import DISPATCH_RESERVE_S, discovery_budget

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 300_000

    assert discovery_budget(Context()) == 300 - DISPATCH_RESERVE_S
    assert discovery_budget(None) is None


@pytest.mark.parametrize(
    ("code", "error"),
    [("AccessDeniedException", AccessDeniedError), ("InvalidInputException", AWSError)],
)
def test_errors_are_one_line(code: str, error: type[Exception]) -> None:
    client, stub = stubbed()
    stub.add_client_error("list_accounts", code, "no", http_status_code=400)
    with stub, pytest.raises(error) as info:
        OrganizationReader(client, sleep=lambda s: None).accounts()
    assert f"AWS Organizations list_accounts: {code}: no" in str(info.value)


def test_a_transient_error_is_asked_again() -> None:
    client, stub = stubbed()
    stub.add_client_error("list_accounts", "ServiceException", http_status_code=500)
    stub.add_response("list_accounts", {"Accounts": [account(A)]}, {})
    with stub:
        assert OrganizationReader(client, sleep=lambda s: None).accounts() == [A]


def test_throttling_gives_up_after_the_last_try() -> None:
    client, stub = stubbed()
    for _ in range(3):
        stub.add_client_error("list_accounts", "TooManyRequestsException", http_status_code=400)
    with stub, pytest.raises(AWSError, match="TooManyRequestsException"):
        OrganizationReader(client, sleep=lambda s: None, max_tries=3).accounts()


def test_enabled_regions_leave_out_the_ones_not_opted_in() -> None:
    client = botocore.session.get_session().create_client(
        "ec2", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    regions = [
        {"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required"},
        {"RegionName": "af-south-1", "OptInStatus": "not-opted-in"},
        {"RegionName": "eu-south-1", "OptInStatus": "opted-in"},
    ]
    stub.add_response("describe_regions", {"Regions": regions}, {"AllRegions": False})
    with stub:
        assert enabled_regions(client) == ["eu-south-1", "us-east-1"]


# --- policies ------------------------------------------------------------------------------------
def test_the_runner_may_read_the_organization_and_assume_any_member_role() -> None:
    from log_exporter.core.policy import ORGANIZATION_READ_ACTIONS, runner_policy

    statements = {s["Sid"]: s for s in runner_policy(org_config())["Statement"]}
    assert statements["AssumeMemberRoles"]["Resource"] == "arn:aws:iam::*:role/LogExporterMember"
    assert statements["ReadOrganization"]["Action"] == list(ORGANIZATION_READ_ACTIONS)
    assert "AssumeDiscoveryRole" not in statements

    reader = "arn:aws:iam::999999999999:role/OrgReader"
    statements = {
        s["Sid"]: s for s in runner_policy(org_config(discovery_role=reader))["Statement"]
    }
    assert statements["AssumeDiscoveryRole"]["Resource"] == reader
    assert "ReadOrganization" not in statements  # the discovery role reads it


def test_regions_all_needs_describe_regions_in_the_member_role() -> None:
    from log_exporter.core.policy import MEMBER_REGIONS_ACTION, member_role_policy

    config = org_config(regions="all")
    assert config.organization is not None
    account = config.organization.account("123456789012", "a")
    granted = member_role_policy(account, "123456789012", ["us-east-1"], "b-u-c", "logs")
    assert MEMBER_REGIONS_ACTION in [s["Action"] for s in granted["Statement"]]
    listed = org_config(regions=["us-east-1"]).organization
    assert listed is not None
    plain = member_role_policy(
        listed.account("123456789012", "a"), "123456789012", ["us-east-1"], "b-u-c", "logs"
    )
    assert MEMBER_REGIONS_ACTION not in [s["Action"] for s in plain["Statement"]]


# --- sessions ------------------------------------------------------------------------------------
def test_regions_are_asked_in_a_session_that_may_only_describe_regions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    from log_exporter.aws.organization import DESCRIBE_REGIONS_ONLY
    from log_exporter.aws.sessions import SessionFactory
    from log_exporter.engine import Engine

    config = org_config(regions="all")
    assert config.organization is not None
    member = config.organization.account(A.id, A.name)
    factory = SessionFactory(region="us-east-1")
    session = botocore.session.get_session()
    sts = session.create_client(
        "sts", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    ec2 = session.create_client(
        "ec2", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    expires = datetime.now(UTC) + timedelta(hours=1)
    creds = {"AccessKeyId": "AKIAEXAMPLEEXAMPLE", "SecretAccessKey": "s", "SessionToken": "t"}
    sts_stub, ec2_stub = Stubber(sts), Stubber(ec2)
    sts_stub.add_response(
        "assume_role",
        {"Credentials": {**creds, "Expiration": expires}},
        {
            "RoleArn": member.role_chain[0],
            "RoleSessionName": "log-exporter",
            "Policy": DESCRIBE_REGIONS_ONLY,
        },
    )
    ec2_stub.add_response(
        "describe_regions", {"Regions": [{"RegionName": "eu-west-1"}]}, {"AllRegions": False}
    )
    monkeypatch.setattr(factory, "sts", lambda session=None, region=None: sts)
    monkeypatch.setattr(factory, "ec2", lambda credentials, region=None: ec2)
    with sts_stub, ec2_stub:
        assert Engine(config, factory).enabled_regions(member) == ["eu-west-1"]
    sts_stub.assert_no_pending_responses()
    assert json.loads(DESCRIBE_REGIONS_ONLY)["Statement"] == [
        {"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": "*"}
    ]


@pytest.mark.parametrize(
    ("region", "expected", "endpoint"),
    [
        ("us-gov-east-1", "us-gov-west-1", "https://organizations.us-gov-west-1.amazonaws.com"),
        ("cn-north-1", "cn-northwest-1", "https://organizations.cn-northwest-1.amazonaws.com.cn"),
        ("eu-west-1", "us-east-1", "https://organizations.us-east-1.amazonaws.com"),
    ],
)
def test_organizations_is_read_in_the_partition_of_the_default_region(
    region: str, expected: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from log_exporter.aws.sessions import SessionFactory

    factory = SessionFactory(region=region)
    assert factory.organizations().meta.endpoint_url == endpoint
    asked: list[str | None] = []

    def credentials(roles: list[str], external_id: str | None = None, **kw: Any) -> None:
        asked.append(kw.get("region"))

    monkeypatch.setattr(factory, "account_credentials", credentials)
    assert factory.organizations("arn:aws:iam::999999999999:role/R").meta.endpoint_url == endpoint
    assert asked == [expected]  # the discovery role's STS call too
