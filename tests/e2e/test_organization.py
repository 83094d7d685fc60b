"""One config for an AWS Organization, end to end: accounts discovered in nested OUs, by tags and
exclusions, an explicit entry winning over a discovered account, and `regions: all`."""

from __future__ import annotations

from emulator import Emulator, seed
from emulator.scenario import REGION, archived
from emulator.seed import SeedAccount, SeededOrganization
from tests.faults.conftest import assert_complete, seed_world

from .conftest import Exporter

BUCKET = "org-archive"
ROLE = "arn:aws:iam::{account_id}:role/LogExporterMember"


def seed_organization() -> SeededOrganization:
    yes = (("log-archive", "yes"),)
    return seed.create_organization(
        [
            SeedAccount("app-eu", "prod/eu", yes),  # in a nested OU: selected
            SeedAccount("app-main", "prod", yes),  # selected
            SeedAccount("sandbox-1", "prod", yes),  # exclude_accounts
            SeedAccount("untagged", "prod"),  # no log-archive tag
            SeedAccount("dev-app", "dev", yes),  # not under the OU
            SeedAccount("closing", "prod/eu", yes, status="SUSPENDED"),  # not ACTIVE
        ]
    )


def org_config(org: SeededOrganization, *, accounts: str = "", regions: str = f"[{REGION}]") -> str:
    return f"""
destination:
  bucket: {BUCKET}
  prefix: logs
  settle: "0"
{accounts}
organization:
  role: "{ROLE}"
  regions: {regions}
  groups: ["/aws/lambda/*", "vpc-flow-logs"]
  exclude: ["*-test"]
  ous: [{org.ous["prod"]}]
  exclude_accounts: ["sandbox-*"]
  tags: {{log-archive: "yes"}}
"""


def test_run_archives_exactly_the_selected_accounts_of_the_organization(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, list(ids.values()))
    cfg = exporter.config(org_config(org))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    selected = [ids["app-eu"], ids["app-main"]]
    assert_complete(world, "logs", selected, emu=emu)
    _, events = archived(BUCKET, "logs/")
    assert {e.account_id for e in events} == set(selected)  # nothing of the others
    assert {t.account_id for t in emu.tasks} == set(selected)
    calls = emu.calls
    assert calls[("organizations", "ListAccountsForParent")] == 2  # prod and prod/eu, once
    assert calls[("organizations", "ListAccounts")] == 0

    checked = exporter("check", "--config", str(cfg))
    assert "2 accounts discovered" in checked.stdout, checked.output
    for name, reason in [
        ("sandbox-1", "organization.exclude_accounts 'sandbox-*'"),
        ("untagged", "tag log-archive=yes missing"),
        ("closing", "status SUSPENDED"),
    ]:
        assert any(name in line and reason in line for line in checked.stdout.splitlines()), (
            name,
            checked.stdout,
        )
    assert "dev-app" not in checked.stdout  # not under the OU: never listed

    for command in (["status"], ["stats", "--days", "2"], ["sync", "--dry-run"]):
        shown = exporter(*command, "--config", str(cfg))
        assert shown.code == 0, (command, shown.output)
        assert "app-eu" in shown.stdout and "app-main" in shown.stdout, (command, shown.stdout)
        assert "untagged" not in shown.stdout and "sandbox-1" not in shown.stdout


def test_discovery_waits_out_organizations_throttling(exporter: Exporter, emu: Emulator) -> None:
    org = seed_organization()
    world = seed_world(BUCKET, list(org.accounts.values()), days=1)
    emu.throttle(0.5, services=["organizations"], error="TooManyRequestsException", seed=3)
    cfg = exporter.config(org_config(org))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert emu.injected[("organizations", "ListAccountsForParent", "TooManyRequestsException")]
    assert_complete(world, "logs", [org.accounts["app-eu"], org.accounts["app-main"]], emu=emu)


def test_an_accounts_entry_wins_over_the_discovered_account(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, list(ids.values()))
    own = f"""accounts:
  - name: eu-flow-logs-only
    role: "arn:aws:iam::{ids["app-eu"]}:role/Custom"
    regions: [{REGION}]
    groups: ["vpc-flow-logs"]
"""
    cfg = exporter.config(org_config(org, accounts=own))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    by_account = {(t.account_id, t.group) for t in emu.tasks}
    assert {g for a, g in by_account if a == ids["app-eu"]} == {"vpc-flow-logs"}
    assert {g for a, g in by_account if a == ids["app-main"]} == {
        "/aws/lambda/api",
        "vpc-flow-logs",
    }
    assert_complete(world, "logs", [ids["app-eu"]], groups=["vpc-flow-logs"], emu=emu)
    assert_complete(world, "logs", [ids["app-main"]], emu=emu)
    assert "eu-flow-logs-only" in result.output
    checked = exporter("check", "--config", str(cfg))
    assert any(
        "app-eu" in line and "as the `accounts:` entry eu-flow-logs-only" in line
        for line in checked.stdout.splitlines()
    ), checked.stdout


def test_regions_all_asks_each_account_for_its_enabled_regions(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, list(ids.values()), days=1)
    emu.enable_regions(ids["app-eu"], [REGION, "eu-west-1"])
    emu.enable_regions(ids["app-main"], [REGION])
    cfg = exporter.config(org_config(org, regions="all"))

    planned = exporter("plan", "--config", str(cfg))
    result = exporter("run", "--config", str(cfg))

    # one bucket, in us-east-1: the eu-west-1 lane is reported, never dropped; no other region
    assert planned.code == 1, planned.output
    assert "error app-eu/eu-west-1: archive bucket" in planned.stdout, planned.output
    assert "app-main/us-east-1" in planned.stdout and "app-main/eu-west-1" not in planned.stdout
    assert emu.calls[("ec2", "DescribeRegions")] == 4  # each account once a run
    assert result.code == 1, result.output
    assert "eu-west-1" in result.output and "CloudWatch Logs exports only" in result.output
    for other in ("ap-south-1", "us-west-2", "eu-central-1"):
        assert other not in result.output
    assert_complete(world, "logs", [ids["app-eu"], ids["app-main"]], emu=emu)


def test_validate_shows_the_block_without_calling_aws_and_account_picks_a_discovered_one(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, list(ids.values()), days=1)
    cfg = exporter.config(org_config(org))

    # no AWS endpoint answers here: validate reads the file alone
    checked = exporter("validate", "--config", str(cfg), AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert checked.code == 0, checked.output
    assert "organization (discovered at run time" in checked.stdout
    assert f"ous: {org.ous['prod']} (nested OUs included)" in checked.stdout
    assert "tags: log-archive=yes" in checked.stdout
    assert "nothing was called in AWS" in checked.stdout

    policy = exporter("policy", "--config", str(cfg), "--only", "runner")
    assert policy.code == 0, policy.output
    assert "arn:aws:iam::*:role/LogExporterMember" in policy.stdout
    assert "organizations:ListAccountsForParent" in policy.stdout

    result = exporter("run", "--config", str(cfg), "--account", "app-main")
    assert result.code == 0, result.output
    assert {t.account_id for t in emu.tasks} == {ids["app-main"]}
    assert_complete(world, "logs", [ids["app-main"]], emu=emu)


def test_an_account_whose_regions_cannot_be_asked_fails_alone(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, list(ids.values()), days=1)
    for account_id in ids.values():
        emu.enable_regions(account_id, [REGION])
    emu.deny_role(ROLE.format(account_id=ids["app-eu"]))
    cfg = exporter.config(org_config(org, regions="all"))

    result = exporter("run", "--config", str(cfg))

    assert result.code == 1, result.output
    assert f"cannot assume role {ROLE.format(account_id=ids['app-eu'])}" in result.output
    assert {t.account_id for t in emu.tasks} == {ids["app-main"]}
    assert_complete(world, "logs", [ids["app-main"]], emu=emu)

    checked = exporter("check", "--config", str(cfg))
    assert checked.code == 1
    assert any(
        "app-eu" in line and "regions" in line and "FAIL" in line
        for line in checked.stdout.splitlines()
    ), checked.stdout


def test_cat_over_an_organization_reads_the_archive_bucket_only(
    exporter: Exporter, emu: Emulator
) -> None:
    from datetime import UTC, datetime, timedelta

    from emulator.tasks import format_line

    org = seed_organization()
    ids = org.accounts
    world = seed_world(BUCKET, [ids["app-eu"], ids["app-main"]], days=1)
    for account in (ids["app-eu"], ids["app-main"]):
        emu.enable_regions(account, [REGION])
    cfg = str(exporter.config(org_config(org, regions="all")))
    assert exporter("run", "--config", cfg).code == 0
    day = datetime.now(UTC).date() - timedelta(days=1)
    group = "/aws/lambda/api"
    want = [
        format_line(e.timestamp_ms, e.message)
        for e in sorted(world.events, key=lambda e: (e.timestamp_ms, e.stream))
        if e.account_id == ids["app-main"] and e.group == group
    ]
    assert want

    def cat(account: str) -> tuple[list[str], set[str]]:
        before = emu.calls
        result = exporter(
            "cat", "--config", cfg, "--account", account, "--group", group,
            "--start", day.isoformat(), "--end", (day + timedelta(days=1)).isoformat(),
        )  # fmt: skip
        assert result.code == 0, result.output
        calls = emu.calls - before
        assert calls[("s3", "ListObjectsV2")], calls
        return result.stdout.splitlines(), {service for service, _ in calls}

    # by id: the archive bucket only (no Organizations, no member role, no EC2)
    lines, services = cat(ids["app-main"])
    assert lines == want and services == {"s3"}
    # by name: one discovery more, still no member role and no EC2
    lines, services = cat("app-main")
    assert lines == want and services == {"s3", "organizations"}


def test_an_entry_without_a_role_wins_over_the_ambient_account_discovered(
    exporter: Exporter, emu: Emulator
) -> None:
    org = seed_organization()
    mgmt = org.management  # the ambient account: Organizations lists it too
    world = seed_world(BUCKET, [mgmt, org.accounts["app-main"]], days=1)
    own = f"""accounts:
  - name: mgmt
    regions: [{REGION}]
    groups: ["vpc-flow-logs"]
"""
    config = org_config(org, accounts=own).replace(
        f"  ous: [{org.ous['prod']}]\n", f'  accounts: ["{mgmt}", "app-main"]\n'
    )
    cfg = exporter.config(config.replace('  tags: {log-archive: "yes"}\n', ""))

    checked = exporter("check", "--config", str(cfg))
    assert any(
        mgmt in line and "as the `accounts:` entry mgmt" in line
        for line in checked.stdout.splitlines()
    ), checked.stdout
    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    by_account = {(t.account_id, t.group) for t in emu.tasks}
    assert {g for a, g in by_account if a == mgmt} == {"vpc-flow-logs"}  # the entry's groups
    assert_complete(world, "logs", [mgmt], groups=["vpc-flow-logs"], emu=emu)
    assert_complete(world, "logs", [org.accounts["app-main"]], emu=emu)
