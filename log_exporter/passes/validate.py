"""The rules `log-exporter validate` checks in a config without calling AWS, and what a run would
cover: the accounts selected, each with the regions it runs in.

`coverage` is pure (it takes the ambient region); `validate` adds what needs the AWS config files
(the profiles named, the ambient region), still without a call to AWS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from log_exporter.core.config import ALL_REGIONS, Account, Config, shared_lane
from log_exporter.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from log_exporter.aws.sessions import SessionFactory


@dataclass(frozen=True)
class AccountCoverage:
    """One account a run would work: its regions (`all_regions`: asked of AWS at run time)."""

    account: Account
    regions: list[str]
    all_regions: bool = False

    @property
    def lanes(self) -> int:
        """Its account-regions; an account with `regions: all` counts as one (unknown yet)."""
        return 1 if self.all_regions else len(self.regions)


@dataclass(frozen=True)
class Coverage:
    """What a run of a valid config would cover, with --account and --region applied.

    `accounts` holds the selected accounts that run in at least one region;
    `organization_regions` the organization block's regions (empty with `regions: all`)."""

    config: Config
    accounts: list[AccountCoverage]
    organization_regions: list[str]

    @property
    def lanes(self) -> int:
        return sum(a.lanes for a in self.accounts)


def regions_in(
    configured: Sequence[str] | str | None, regions: Sequence[str], ambient: str | None
) -> list[str]:
    """The regions of an entry (its own, else --region, else the ambient one), among --region."""
    chosen = list(configured or regions or ([ambient] if ambient else []))
    if regions:
        chosen = [r for r in chosen if r in regions]
    return chosen


def selected_accounts(config: Config, names: Sequence[str]) -> list[Account]:
    """The `accounts:` entries named (all without names). With an organization block, a name
    that is no entry may be an account discovered at run time: it is not an error here."""
    if config.organization is not None:
        return [a for a in config.accounts if not names or a.name in names]
    return config.select(names)


def coverage(
    config: Config,
    where: str,
    selected: Sequence[Account],
    regions: Sequence[str],
    ambient: str | None,
) -> Coverage:
    """Check the rules a run would check before calling AWS, in its order, and say what a run
    would cover; `where` names the file in errors. Raises UsageError or ConfigError."""
    org = config.organization
    dest = config.destination
    if org is not None and not (org.regions or ambient):
        raise UsageError(
            "organization: no region: set `regions` in the block, --region, or AWS_DEFAULT_REGION"
        )
    # the ambient account is unknown without an STS call: runs compare it too
    clash = shared_lane(
        config.accounts, lambda a: a.regions or regions or ([ambient] if ambient else [])
    )
    if clash:
        raise ConfigError(f"{where}: accounts: {clash}")
    for account in selected:
        if not (account.regions or ambient):
            raise UsageError(
                f"accounts[{account.name}]: no region: set `regions` in the config, --region, "
                "or AWS_DEFAULT_REGION"
            )
    covered: list[AccountCoverage] = []
    for account in selected:
        if account.regions == ALL_REGIONS:
            covered.append(AccountCoverage(account, [], all_regions=True))
            continue
        chosen = regions_in(account.regions, regions, ambient)
        for region in chosen:
            if dest.bucket_for(region) is None:
                raise ConfigError(
                    f"{where}: accounts[{account.name}] runs in {region}: " + dest.no_bucket(region)
                )
        if chosen:  # else none of its regions is among --region
            covered.append(AccountCoverage(account, chosen))
    org_regions: list[str] = []
    if org is not None and org.regions != ALL_REGIONS:
        org_regions = regions_in(org.regions, regions, ambient)
    if org is not None and isinstance(org.regions, list):
        for region in org_regions:
            if dest.bucket_for(region) is None:
                raise ConfigError(
                    f"{where}: organization runs in {region}: " + dest.no_bucket(region)
                )
    return Coverage(config, covered, org_regions)


def validate(
    config: Config,
    where: str,
    accounts: Sequence[str],
    regions: Sequence[str],
    factory: SessionFactory,
) -> Coverage:
    """`coverage` with the ambient region (--region, else the AWS config's) and every selected
    account's profile checked in the AWS config files: no AWS call."""
    selected = selected_accounts(config, accounts)
    ambient = regions[0] if regions else factory.default_region
    for account in selected:
        if account.profile:
            factory.profile_session(account.profile, f"accounts[{account.name}].profile")
    return coverage(config, where, selected, regions, ambient)
