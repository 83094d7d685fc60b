"""What `validate`, `check` and `policy` print: the coverage of a valid config, the check's table
(after the accounts an organization block found) and the policy documents."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from log_exporter.cli.render.tables import counted
from log_exporter.core.config import ALL_REGIONS, Account, Organization

if TYPE_CHECKING:
    from rich.console import Console

    from log_exporter.aws.organization import Discovery
    from log_exporter.passes.policy import PolicyDocument
    from log_exporter.passes.preflight import PreflightReport
    from log_exporter.passes.validate import Coverage

CHECK_COLOURS = {"OK": "green", "FAIL": "red", "SKIP": "yellow"}


def setting_duration(seconds: int) -> str:
    """A duration as a config writes it: `12h`, `30m`, `2d` (the largest unit that divides
    it), else seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def role_text(account: Account) -> str:
    """How the account is reached: its profile, then its role chain (or the ambient
    credentials)."""
    start = f"profile {account.profile}" if account.profile else ""
    if not account.role_chain:
        return start or "ambient credentials"
    text = " -> ".join([start, *account.role_chain] if start else account.role_chain)
    return text + (" (with ExternalId)" if account.external_id else "")


# --- validate -----------------------------------------------------------------------------------
def print_coverage(out: Console, where: str, coverage: Coverage) -> None:
    """`<file>: valid`, the archive, a row per account that runs, the organization block, and
    the counts."""
    config = coverage.config
    dest = config.destination
    if isinstance(dest.bucket, dict):  # a bucket per region
        archive = "{" + ", ".join(f"{r}: s3://{b}" for r, b in dest.bucket.items()) + "}"
    else:
        archive = f"s3://{dest.bucket}"
    archive = "/".join(p for p in (archive, dest.prefix) if p)
    start = dest.start.isoformat() if dest.start else "each group's creation day"
    out.print(f"{escape(where)}: valid", highlight=False)
    out.print(
        f"archive: {escape(archive)}/ (one task per {dest.period}, from {start}, "
        f"exported {setting_duration(dest.settle)} after it ended)",
        highlight=False,
    )
    table = Table(title_justify="left")
    for col in ("account", "account id", "role", "regions", "groups", "exclude"):
        table.add_column(col)
    for covered in coverage.accounts:
        account = covered.account
        regions = [f"{ALL_REGIONS} (asked at run time)"] if covered.all_regions else covered.regions
        table.add_row(
            escape(account.name),
            account.role_chain[-1].split(":")[4]
            if account.role_chain
            else f"(profile {account.profile})"
            if account.profile
            else "(ambient)",
            escape(role_text(account)),
            escape(", ".join(regions)),
            escape(", ".join(account.groups)),
            escape(", ".join(account.exclude)) or "-",
        )
    out.print(table)
    org = config.organization
    if org is not None:
        print_organization(out, org, coverage.organization_regions)
    out.print(
        f"{counted(len(coverage.accounts), 'account')}, "
        f"{counted(coverage.lanes, 'account-region')} (lanes)"
        + (" listed, and the organization's accounts" if org is not None else "")
        + "; nothing was called in AWS",
        highlight=False,
    )


def print_organization(out: Console, org: Organization, regions: Sequence[str]) -> None:
    """The organization block as written: its accounts are discovered at run time."""
    chain = [org.role] if isinstance(org.role, str) else org.role
    if org.regions == ALL_REGIONS:
        where = "all (each account's enabled regions, asked at run time)"
    else:
        where = ", ".join(regions) or "-"
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


# --- check --------------------------------------------------------------------------------------
def print_discovery(out: Console, found: Discovery) -> None:
    """What the organization block found: the accounts, and the ones left out and why."""
    from log_exporter.aws.organization import account_id_of

    table = Table(
        title=f"organization: {counted(len(found.discovered), 'account')} discovered "
        f"({counted(found.calls, 'Organizations call')})",
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


def print_check(out: Console, report: PreflightReport) -> None:
    """A row per check, then how many were not OK."""
    table = Table(title="log-exporter check", title_justify="left")
    for col in ("account", "region", "check", "status", "detail"):
        table.add_column(col, overflow="fold")
    for row in report.rows:
        table.add_row(
            escape(row.account),
            row.region,
            row.check,
            f"[{CHECK_COLOURS[row.status]}]{row.status}[/]",
            escape(row.detail),
        )
    out.print(table)
    if report.ok:
        out.print(f"[green]all {len(report.rows)} checks OK[/]", highlight=False)
    else:
        out.print(
            f"[red]{len(report.failed)} of {len(report.rows)} checks not OK[/]", highlight=False
        )


# --- policy -------------------------------------------------------------------------------------
def policy_title(doc: PolicyDocument, buckets: int, with_retention: bool) -> str:
    """The comment line above a document: what it is and, for a bucket, how to set it
    (`buckets`: how many bucket documents are printed, each then in its own file)."""
    if doc.kind == "bucket":
        file = f"bucket-policy-{doc.bucket}.json" if buckets > 1 else "bucket-policy.json"
        return (
            f"Archive bucket policy: aws s3api put-bucket-policy --bucket {doc.bucket} "
            f"--policy file://{file}"
        )
    if doc.kind == "member":
        account = doc.account
        assert account is not None
        role = (
            account.role_chain[-1]
            if account.role_chain
            else f"profile {account.profile}"
            if account.profile
            else "the ambient credentials"
        )
        return f"Member role policy of account {account.name} ({doc.account_id}), for {role}" + (
            ", with logs:PutRetentionPolicy" if with_retention else ""
        )
    return (
        "Runner policy: the credentials that run log-exporter (archive state, "
        "first role of each chain)"
    )


def print_policies(
    echo: Callable[[str], None],
    documents: Sequence[PolicyDocument],
    *,
    plain: bool,
    with_retention: bool,
) -> None:
    """Each document under its `# title`, a blank line between; with `plain` and one document,
    just its JSON (to redirect into a file)."""
    buckets = sum(1 for d in documents if d.kind == "bucket")
    texts = [
        (
            policy_title(d, buckets, with_retention),
            d.document if isinstance(d.document, str) else json.dumps(d.document, indent=2),
        )
        for d in documents
    ]
    if plain and len(texts) == 1:
        echo(texts[0][1])
        return
    for i, (title, text) in enumerate(texts):
        if i:
            echo("")
        echo(f"# {title}")
        echo(text)
