"""The commands that find mistakes before a run: `validate` (the config alone, no AWS call),
`check` (per account and region, can a run work?) and `policy` (the IAM policies to set up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from log_exporter.cli.options import build_engine, lane_filters, session_factory, stdout_console

if TYPE_CHECKING:
    from log_exporter.engine import LaneSpec
    from log_exporter.passes.policy import Kind

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


@click.command(epilog=EPILOG_VALIDATE)
@lane_filters
def validate(config_path: str, accounts: tuple[str, ...], regions: tuple[str, ...]) -> None:
    """Check the config file alone and show what a run would cover."""
    from log_exporter.cli.render.preflight import print_coverage
    from log_exporter.core.config import load_config
    from log_exporter.passes.validate import validate as validate_config

    config = load_config(config_path)
    factory = session_factory(regions)  # reads the AWS config files only: no AWS call
    coverage = validate_config(config, config_path, accounts, regions, factory)
    print_coverage(stdout_console(), config_path, coverage)


@click.command(epilog=EPILOG_CHECK)
@lane_filters
@click.pass_context
def check(
    ctx: click.Context, config_path: str, accounts: tuple[str, ...], regions: tuple[str, ...]
) -> None:
    """Preflight: can a run work, for each account and region? (creates nothing)"""
    from log_exporter.cli.render.preflight import print_check, print_discovery
    from log_exporter.core.config import load_config
    from log_exporter.engine import RunOptions
    from log_exporter.passes.preflight import Preflight

    config = load_config(config_path)
    engine = build_engine(config, regions)
    specs = engine.lane_specs(RunOptions(accounts=accounts, regions=regions))
    debug = bool(ctx.obj and ctx.obj.get("debug"))
    report = Preflight(engine, max_parallel=1 if debug else 16).run(specs)
    out = stdout_console()
    if config.organization is not None:
        print_discovery(out, engine.discovery())
    print_check(out, report)
    ctx.exit(report.exit_code)


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
    only: Kind | None,
    with_retention: bool = False,
) -> None:
    """Print the bucket policy and IAM policies the configured accounts need."""
    from log_exporter.cli.render.preflight import print_policies
    from log_exporter.core.config import load_config
    from log_exporter.engine import RunOptions
    from log_exporter.passes.policy import policy_documents

    config = load_config(config_path)
    engine = build_engine(config, regions)
    specs = engine.lane_specs(RunOptions(accounts=accounts, regions=regions))

    def no_bucket(spec: LaneSpec, why: str) -> None:
        click.echo(f"# {spec.name}: {why}", err=True)

    documents = policy_documents(
        engine,
        specs,
        accounts=accounts,
        only=only,
        with_retention=with_retention,
        no_bucket=no_bucket,
    )
    print_policies(click.echo, documents, plain=only is not None, with_retention=with_retention)


def register(cli: click.Group) -> None:
    """Add validate, check and policy to the `log-exporter` group."""
    for command in (validate, check, policy):
        cli.add_command(command)
