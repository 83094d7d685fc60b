"""The commands that find mistakes before a run: `validate` (the config alone, no AWS call),
`check` (per account and region, can a run work?) and `policy` (the IAM policies to set up)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from log_exporter.cli.options import build_engine, global_profile, lane_filters, stdout_console
from log_exporter.errors import AWSError, ConfigError, UsageError

if TYPE_CHECKING:
    from log_exporter.core.config import Account, Organization
    from log_exporter.engine import Engine, LaneSpec

EPILOG_VALIDATE = """\b
Examples:
  log-exporter validate --config config.yml
  log-exporter validate --config config.yml --region eu-west-1

Reads the file only (no AWS call): exit 0 and what a run would cover, or one line
naming the place of the first mistake and exit 2.
"""

EPILOG_CHECK = """\b
Examples:
  log-exporter check --config config.yml
  log-exporter check --config config.yml --account prod --region eu-west-1

With an `organization` block, first the accounts discovered (and the ones left out,
and why). For each account and region: the role can be assumed, log groups can be listed
(and how many match), the export slot, the bucket's region, and whether the bucket
policy lets CloudWatch Logs write for that account and region. Creates nothing.
Exit 0 only when every row is OK.
"""

EPILOG_POLICY = """\b
Examples:
  log-exporter policy --config config.yml
  log-exporter policy --config config.yml --only bucket > bucket-policy.json
  aws s3api put-bucket-policy --bucket my-archive --policy file://bucket-policy.json
  log-exporter policy --config config.yml --only member --account prod

Prints the archive bucket's policy (CloudWatch Logs of each configured account and
region may write exports under the prefix), the member role's IAM policy, and the
policy of the credentials that run log-exporter. No `*` actions. Accounts without a
role are looked up with sts:GetCallerIdentity; nothing else calls AWS.
"""


def _specs(engine: Engine, accounts: tuple[str, ...], regions: tuple[str, ...]) -> list[LaneSpec]:
    from log_exporter.engine import RunOptions

    return engine.lane_specs(RunOptions(accounts=accounts, regions=regions))


def _ambient_region(regions: tuple[str, ...]) -> str | None:
    """The region of accounts without `regions`, from --region or the AWS config (no call)."""
    if regions:
        return regions[0]
    from log_exporter.aws.sessions import SessionFactory

    # the profile's region, as runs get it (an unknown profile is one line, exit 2)
    region = SessionFactory(profile=global_profile()).ambient.get_config_variable("region")
    return str(region) if region else None


@click.command(epilog=EPILOG_VALIDATE)
@lane_filters
def validate(config_path: str, accounts: tuple[str, ...], regions: tuple[str, ...]) -> None:
    """Check the config file alone and show what a run would cover."""
    from rich.markup import escape
    from rich.table import Table

    from log_exporter.aws.sessions import SessionFactory
    from log_exporter.core.config import ALL_REGIONS, load_config, shared_lane

    config = load_config(config_path)
    org = config.organization
    if org is not None:  # an --account may name an account discovered at run time
        selected = [a for a in config.accounts if not accounts or a.name in accounts]
    else:
        selected = config.select(accounts)
    dest = config.destination
    ambient = _ambient_region(regions)
    profiles = SessionFactory(profile=global_profile())
    for account in selected:  # read from the AWS config files: no AWS call
        if account.profile:
            profiles.profile_session(account.profile, f"accounts[{account.name}].profile")
    if org is not None and not (org.regions or ambient):
        raise UsageError(
            "organization: no region: set `regions` in the block, --region, or AWS_DEFAULT_REGION"
        )
    # the ambient account is unknown without an STS call: runs compare it too
    clash = shared_lane(
        config.accounts, lambda a: a.regions or regions or ([ambient] if ambient else [])
    )
    if clash:
        raise ConfigError(f"{config_path}: accounts: {clash}")
    for account in selected:
        if not (account.regions or ambient):
            raise UsageError(
                f"accounts[{account.name}]: no region: set `regions` in the config, --region, "
                "or AWS_DEFAULT_REGION"
            )
    for account in selected:
        for region in _regions_of(account, regions, ambient):
            if account.regions != ALL_REGIONS and dest.bucket_for(region) is None:
                raise ConfigError(
                    f"{config_path}: accounts[{account.name}] runs in {region}: "
                    + dest.no_bucket(region)
                )
    if org is not None and isinstance(org.regions, list):
        for region in _regions_of_list(org.regions, regions, ambient):
            if dest.bucket_for(region) is None:
                raise ConfigError(
                    f"{config_path}: organization runs in {region}: " + dest.no_bucket(region)
                )
    out = stdout_console()
    if isinstance(dest.bucket, dict):  # a bucket per region
        where = "{" + ", ".join(f"{r}: s3://{b}" for r, b in dest.bucket.items()) + "}"
    else:
        where = f"s3://{dest.bucket}"
    where = "/".join(p for p in (where, dest.prefix) if p)
    start = dest.start.isoformat() if dest.start else "each group's creation day"
    out.print(f"{escape(config_path)}: valid", highlight=False)
    out.print(
        f"archive: {escape(where)}/ (one task per {dest.period}, from {start}, "
        f"exported {_duration(dest.settle)} after it ended)",
        highlight=False,
    )
    table = Table(title_justify="left")
    for col in ("account", "account id", "role", "regions", "groups", "exclude"):
        table.add_column(col)
    lanes = 0
    shown = 0
    for account in selected:
        chosen = _regions_of(account, regions, ambient)
        if not chosen:
            continue  # none of its regions is among --region
        lanes += len(chosen)
        shown += 1
        table.add_row(
            escape(account.name),
            account.role_chain[-1].split(":")[4]
            if account.role_chain
            else f"(profile {account.profile})"
            if account.profile
            else "(ambient)",
            escape(_role_text(account)),
            escape(", ".join(chosen)),
            escape(", ".join(account.groups)),
            escape(", ".join(account.exclude)) or "-",
        )
    out.print(table)
    if org is not None:
        _print_organization(out, org, regions, ambient)
    out.print(
        f"{_count(shown, 'account')}, {_count(lanes, 'account-region')} (lanes)"
        + (" listed, and the organization's accounts" if org is not None else "")
        + "; nothing was called in AWS",
        highlight=False,
    )


def _print_organization(
    out: Any, org: Organization, regions: tuple[str, ...], ambient: str | None
) -> None:
    """The organization block as written: its accounts are discovered at run time."""
    from rich.markup import escape

    from log_exporter.core.config import ALL_REGIONS

    chain = [org.role] if isinstance(org.role, str) else org.role
    if org.regions == ALL_REGIONS:
        where = "all (each account's enabled regions, asked at run time)"
    else:
        where = ", ".join(_regions_of_list(org.regions, regions, ambient)) or "-"
    rows = [
        ("role", " -> ".join(chain) + (" (with ExternalId)" if org.external_id else "")),
        ("regions", where),
        ("groups", ", ".join(org.groups)),
        ("exclude", ", ".join(org.exclude) or "-"),
        (
            "ous",
            ", ".join(org.ous) + " (nested OUs included)" if org.ous else "the whole organization",
        ),
        ("accounts", ", ".join(org.accounts) or "every ACTIVE account"),
        ("exclude_accounts", ", ".join(org.exclude_accounts) or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in org.tags.items()) or "-"),
        ("read with", org.discovery_role or "the ambient credentials"),
    ]
    out.print("organization (discovered at run time; `check` lists the accounts):", highlight=False)
    for key, value in rows:
        out.print(f"  {key}: {escape(value)}", highlight=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _regions_of(account: Account, regions: tuple[str, ...], ambient: str | None) -> list[str]:
    from log_exporter.core.config import ALL_REGIONS

    if account.regions == ALL_REGIONS:
        return [f"{ALL_REGIONS} (asked at run time)"]
    return _regions_of_list(account.regions, regions, ambient)


def _regions_of_list(
    configured: list[str] | str | None, regions: tuple[str, ...], ambient: str | None
) -> list[str]:
    chosen = list(configured or regions or ([ambient] if ambient else []))
    if regions:
        chosen = [r for r in chosen if r in regions]
    return chosen


def _role_text(account: Account) -> str:
    start = f"profile {account.profile}" if account.profile else ""
    if not account.role_chain:
        return start or "ambient credentials"
    text = " -> ".join([start, *account.role_chain] if start else account.role_chain)
    return text + (" (with ExternalId)" if account.external_id else "")


@click.command(epilog=EPILOG_CHECK)
@lane_filters
@click.pass_context
def check(
    ctx: click.Context, config_path: str, accounts: tuple[str, ...], regions: tuple[str, ...]
) -> None:
    """Preflight: can a run work, for each account and region? (creates nothing)"""
    from rich.markup import escape
    from rich.table import Table

    from log_exporter.core.config import load_config
    from log_exporter.passes.preflight import Preflight

    config = load_config(config_path)
    engine = build_engine(config, regions)
    specs = _specs(engine, accounts, regions)
    debug = bool(ctx.obj and ctx.obj.get("debug"))
    report = Preflight(engine, max_parallel=1 if debug else 16).run(specs)
    out = stdout_console()
    if config.organization is not None:
        _print_discovery(out, engine)
    table = Table(title="log-exporter check", title_justify="left")
    for col in ("account", "region", "check", "status", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"OK": "green", "FAIL": "red", "SKIP": "yellow"}
    for row in report.rows:
        table.add_row(
            escape(row.account),
            row.region,
            row.check,
            f"[{colour[row.status]}]{row.status}[/]",
            escape(row.detail),
        )
    out.print(table)
    if report.ok:
        out.print(f"[green]all {len(report.rows)} checks OK[/]", highlight=False)
    else:
        out.print(
            f"[red]{len(report.failed)} of {len(report.rows)} checks not OK[/]", highlight=False
        )
    ctx.exit(report.exit_code)


def _print_discovery(out: Any, engine: Engine) -> None:
    """What the organization block found: the accounts, and the ones left out and why."""
    from rich.markup import escape
    from rich.table import Table

    from log_exporter.aws.organization import account_id_of

    found = engine.discovery()
    table = Table(
        title=f"organization: {_count(len(found.discovered), 'account')} discovered "
        f"({_count(found.calls, 'Organizations call')})",
        title_justify="left",
    )
    for col in ("account", "account id", "selected"):
        table.add_column(col, overflow="fold")
    for account in found.discovered:
        table.add_row(escape(account.name), account_id_of(account) or "", "yes")
    for org_account, entry in found.replaced:
        table.add_row(
            escape(org_account.name),
            org_account.id,
            f"yes, as the `accounts:` entry {escape(entry)}",
        )
    for left_out in found.excluded:
        table.add_row(
            escape(left_out.account.name), left_out.account.id, f"no: {escape(left_out.reason)}"
        )
    out.print(table)


@click.command(epilog=EPILOG_POLICY)
@lane_filters
@click.option(
    "--only",
    type=click.Choice(["bucket", "member", "runner"]),
    help="Print just this document, as plain JSON (member: needs one account).",
)
@click.option(
    "--with-retention",
    is_flag=True,
    help="The member role may also set retention (logs:PutRetentionPolicy, for `retention`).",
)
def policy(
    config_path: str,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    only: str | None,
    with_retention: bool = False,
) -> None:
    """Print the bucket policy and IAM policies the configured accounts need."""
    from log_exporter.core.config import load_config
    from log_exporter.core.policy import (
        Target,
        bucket_policy_text,
        member_role_policy,
        runner_policy,
    )

    config = load_config(config_path)
    dest = config.destination
    engine = build_engine(config, regions)
    specs = _specs(engine, accounts, regions)
    for spec in specs:
        if spec.error is not None:  # `regions: all`, and its regions could not be asked
            raise AWSError(f"accounts[{spec.account.name}]: {spec.error}")
    if only == "member" and len({s.account.name for s in specs}) != 1:
        names = ", ".join(a.name for a in engine.select(accounts))
        raise UsageError(
            f"--only member prints one account's policy: add --account (one of: {names})"
        )
    ids: dict[str, str] = {}
    for spec in specs:
        account = spec.account
        if account.name not in ids:
            ids[account.name] = engine.account_id(account)
    targets = sorted({Target(ids[s.account.name], s.region) for s in specs})
    first_region = targets[0].region
    # each bucket lets in the accounts and regions that export to it
    exporting: dict[str, list[Target]] = {}
    for spec in specs:
        bucket = dest.bucket_for(spec.region)
        if bucket is None:  # reported by validate, check and run; the other buckets still print
            click.echo(f"# {spec.name}: {dest.no_bucket(spec.region)}", err=True)
            continue
        exporting.setdefault(bucket, []).append(Target(ids[spec.account.name], spec.region))
    documents: list[tuple[str, dict[str, Any] | str]] = []
    if only in (None, "bucket"):
        for bucket, bucket_targets in exporting.items():
            documents.append(
                (
                    f"Archive bucket policy: aws s3api put-bucket-policy --bucket {bucket} "
                    f"--policy file://bucket-policy-{bucket}.json"
                    if len(exporting) > 1
                    else f"Archive bucket policy: aws s3api put-bucket-policy --bucket {bucket} "
                    "--policy file://bucket-policy.json",
                    # within S3's limit, for each bucket
                    bucket_policy_text(bucket, dest.prefix, sorted(set(bucket_targets))),
                )
            )
    if only in (None, "member"):
        seen: list[str] = []
        for spec in specs:
            account = spec.account
            if account.name in seen:
                continue
            seen.append(account.name)
            account_regions = [s.region for s in specs if s.account.name == account.name]
            role = (
                account.role_chain[-1]
                if account.role_chain
                else f"profile {account.profile}"
                if account.profile
                else "the ambient credentials"
            )
            documents.append(
                (
                    f"Member role policy of account {account.name} ({ids[account.name]}), "
                    f"for {role}" + (", with logs:PutRetentionPolicy" if with_retention else ""),
                    member_role_policy(
                        account,
                        ids[account.name],
                        account_regions,
                        dest.buckets(account_regions),
                        dest.prefix,
                        with_retention=with_retention,
                    ),
                )
            )
    if only in (None, "runner"):
        documents.append(
            (
                "Runner policy: the credentials that run log-exporter (archive state, "
                "first role of each chain)",
                runner_policy(config, first_region),
            )
        )
    texts = [(t, d if isinstance(d, str) else json.dumps(d, indent=2)) for t, d in documents]
    if only is not None and len(texts) == 1:
        click.echo(texts[0][1])
        return
    for i, (title, text) in enumerate(texts):
        if i:
            click.echo()
        click.echo(f"# {title}")
        click.echo(text)


def register(cli: click.Group) -> None:
    """Add validate, check and policy to the `log-exporter` group."""
    for command in (validate, check, policy):
        cli.add_command(command)
