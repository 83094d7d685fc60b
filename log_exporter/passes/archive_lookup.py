"""What a read-back command (`cat`, `athena`) reads, found from the config, the archive bucket and
at most STS and one discovery, never a member role: the bucket, the account's name and id, its
lane states and the period the archive is kept by, and one group's archive ready to read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.organization import account_id_of
from log_exporter.core.config import ACCOUNT_ID, Config, select_accounts
from log_exporter.errors import ConfigError, UsageError
from log_exporter.passes.readback import DEFAULT_WORKERS, GroupArchive, Knowledge

if TYPE_CHECKING:
    from log_exporter.aws.state_store import StateStore
    from log_exporter.core.state import LaneState
    from log_exporter.core.windows import Period
    from log_exporter.engine import Engine


def read_bucket(config: Config, regions: Sequence[str]) -> str:
    """The one archive bucket the lanes of `regions` export to: a read-back command reads one
    bucket, so with a bucket per region, --region says which."""
    dest = config.destination
    if dest.single_bucket is not None:
        return dest.single_bucket
    for region in regions:
        if dest.bucket_for(region) is None:
            raise ConfigError(dest.no_bucket(region))
    buckets = dest.buckets(regions)
    if len(buckets) != 1 or not regions:
        raise UsageError(
            f"destination.bucket names a bucket per region ({', '.join(buckets)}): give "
            "--region to say which bucket to read"
        )
    return buckets[0]


def read_account(engine: Engine, name: str) -> tuple[str, str]:
    """The (name, id) of the account `name` names, reading only what it must: an `accounts:`
    entry (by name, or by id) without Organizations; a 12-digit id of an organization's account
    as it is; another name through one discovery. Never a member role."""
    config = engine.config
    for entry in config.accounts:
        if name in (entry.name, account_id_of(entry)):
            return entry.name, engine.account_id(entry)
    if config.organization is not None:
        if ACCOUNT_ID.match(name):
            return name, name
        found = select_accounts(engine.discovery().accounts, [name])[0]
        return found.name, engine.account_id(found)
    select_accounts(config.accounts, [name])  # not in the config: the usual error
    raise AssertionError("unreachable")


def state_regions(engine: Engine, store: StateStore, account_id: str) -> list[str]:
    """The regions of the account's lane states in `store`'s bucket (one LIST)."""
    folder = store.account_folder(account_id)
    regions: list[str] = []
    for key in ArchiveBucket(engine.factory.s3(), store.bucket).listing(folder):
        region = key[len(folder) :]
        if region.endswith(".json") and "/" not in region:
            regions.append(region.removesuffix(".json"))
    return regions


def archive_period(config: Config, states: Sequence[LaneState]) -> Period:
    """The period the archive uses, from the lane states (the config's if none says)."""
    for state in states:
        if state.period in ("day", "hour") and any(state.covered.values()):
            period: Period = state.period
            return period
    return config.destination.period


@dataclass(frozen=True)
class GroupRead:
    """One group's archive to read back, and whose it is (the account as named and its id)."""

    account: str
    account_id: str
    archive: GroupArchive


def group_read(
    engine: Engine,
    account: str,
    group: str,
    regions: Sequence[str],
    *,
    workers: int = DEFAULT_WORKERS,
) -> GroupRead:
    """The archive of `group` of the account `account` names, with what its lane states know
    (those of `regions`, else every one in the archive). S3 only: no member role, no EC2 (the
    regions are those of the lane states archived)."""
    name, account_id = read_account(engine, account)
    bucket = read_bucket(engine.config, regions)  # with a bucket per region, --region says which
    store = engine.store(bucket)
    states = [
        store.load(account_id, r) for r in regions or state_regions(engine, store, account_id)
    ]
    archive = GroupArchive(
        engine.factory.s3(),
        bucket,
        engine.config.destination.prefix,
        account_id,
        group,
        archive_period(engine.config, states),
        knowledge=Knowledge.of(states, group),
        workers=workers,
    )
    return GroupRead(name, account_id, archive)
