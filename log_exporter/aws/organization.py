"""Which accounts and regions AWS says there are: the `organization:` block's accounts, read
from AWS Organizations once per run, and an account's enabled regions (`regions: all`).

`OrganizationReader` is the small wrapper over the Organizations API (paging, and backoff on
its hard throttling); `select` and `merge` are pure: they take what the API said and return
the accounts a run covers, and why the others were left out.
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from log_exporter.aws.errors import (
    AWS_ERRORS,
    Throttled,
    organizations_error,
    organizations_retryable,
    regions_error,
)
from log_exporter.aws.retry import ORGANIZATIONS, call_with_retries
from log_exporter.core.config import ACCOUNT_ID, Account, Config, Organization
from log_exporter.errors import AWSError, LogExporterError

if TYPE_CHECKING:
    from log_exporter.aws.sessions import SessionFactory

MAX_TRIES = (ORGANIZATIONS.retries or 0) + 1  # the first try counted: 8
TAG_READERS = 4  # ListTagsForResource calls at once (one per account), sharing the backoff


@dataclass(frozen=True)
class OrgAccount:
    """One account as Organizations lists it."""

    id: str
    name: str
    status: str = "ACTIVE"  # State: PENDING_ACTIVATION, ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED


@dataclass(frozen=True)
class Excluded:
    """A discovered account the run leaves out, and why (for `check`)."""

    account: OrgAccount
    reason: str


@dataclass
class Discovery:
    """What one discovery found: the accounts a run covers (explicit entries first), the ones
    it left out and why, and how many Organizations calls it cost."""

    accounts: list[Account]
    discovered: list[Account] = field(default_factory=list)  # made from the organization block
    excluded: list[Excluded] = field(default_factory=list)
    calls: int = 0
    # selected, but an `accounts:` entry (named here) names the same account id and wins
    replaced: list[tuple[OrgAccount, str]] = field(default_factory=list)
    ambient_id: str | None = None  # the account of an entry without a role, when STS was asked


# --- the API -------------------------------------------------------------------------------------
class _AskAgain(Throttled):
    """An Organizations call to ask again; `error` is what it failed with, raised when the
    tries are spent."""

    def __init__(self, error: AWSError) -> None:
        super().__init__(str(error))
        self.error = error


class OrganizationReader:
    """Reads accounts, OUs and tags from Organizations: every list paged, every call retried
    with exponential backoff (`retry.ORGANIZATIONS`) while throttled or after a transient error or a lost answer
    (botocore's own retries give up too soon for an API that allows a few requests a second;
    these calls only read, so asking again is safe), and counted. Calls may come from a few
    threads (`workers` tag reads at once): while one waits out throttling, the others wait
    before their next call. With `budget_s`, a discovery that would last longer fails, naming
    it, instead of outliving its caller (the Lambda dispatcher's timeout)."""

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_tries: int = MAX_TRIES,
        workers: int = TAG_READERS,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._sleep = sleep
        self._max_tries = max_tries
        self.workers = workers
        self._budget = budget_s
        self._clock = clock
        self._started = clock()
        self._count = threading.Lock()
        self._backing_off = threading.Lock()  # held while a throttled call waits
        self.calls = 0

    def _over_budget(self, operation: str, wait: float = 0.0) -> None:
        if self._budget is not None and self._clock() + wait - self._started > self._budget:
            raise AWSError(
                f"organization discovery: over its time budget of {self._budget:.0f} s "
                f"({self.calls} Organizations calls; {operation} not done yet): nothing was "
                "run; Organizations throttles, or lists more accounts than fit (with `tags`, "
                "one call each)"
            )

    def _wait(self, operation: str, delay: float) -> None:
        self._over_budget(operation, delay)
        with self._backing_off:
            self._sleep(delay)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            self._over_budget(operation)
            with self._backing_off:  # another thread is waiting out throttling: wait too
                pass
            with self._count:
                self.calls += 1
            try:
                return dict(getattr(self._client, operation)(**kwargs))
            except AWS_ERRORS as exc:
                error = organizations_error(operation, exc)
                if organizations_retryable(exc):
                    raise _AskAgain(error) from None
                raise error from None

        return call_with_retries(
            once,
            replace(ORGANIZATIONS, retries=self._max_tries - 1),
            lambda delay: self._wait(operation, delay),
            give_up=lambda exc: exc.error if isinstance(exc, _AskAgain) else exc,
        )

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self._call(operation, **kwargs, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def accounts(self) -> list[OrgAccount]:
        """Every account of the organization (ListAccounts)."""
        return [_account(a) for a in self._pages("list_accounts", "Accounts")]

    def accounts_under(self, parents: Sequence[str]) -> list[OrgAccount]:
        """The accounts under these OUs or roots, nested OUs included, each once."""
        seen: dict[str, OrgAccount] = {}
        pending = list(parents)
        visited: set[str] = set()
        while pending:
            parent = pending.pop(0)
            if parent in visited:
                continue
            visited.add(parent)
            for a in self._pages("list_accounts_for_parent", "Accounts", ParentId=parent):
                seen.setdefault(str(a["Id"]), _account(a))
            pending.extend(
                str(ou["Id"])
                for ou in self._pages(
                    "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent
                )
            )
        return list(seen.values())

    def tags(self, account_id: str) -> dict[str, str]:
        """An account's tags (ListTagsForResource)."""
        return {
            str(t["Key"]): str(t["Value"])
            for t in self._pages("list_tags_for_resource", "Tags", ResourceId=account_id)
        }


def _account(data: Mapping[str, Any]) -> OrgAccount:
    # `State` replaced `Status`, which AWS stopped sending on 2026-09-09; `Status` is read only
    # when an older answer (or endpoint) has no `State`
    status = data.get("State") or data.get("Status") or ""
    return OrgAccount(id=str(data["Id"]), name=str(data.get("Name", "")), status=str(status))


# --- the selection (pure) --------------------------------------------------------------------------
def _matches(patterns: Iterable[str], account: OrgAccount) -> str | None:
    """The first pattern matching the account's id or name, else None."""
    for p in patterns:
        if fnmatch.fnmatchcase(account.id, p) or fnmatch.fnmatchcase(account.name, p):
            return p
    return None


def select(
    block: Organization,
    listed: Sequence[OrgAccount],
    tags: Callable[[str], Mapping[str, str]] | None = None,
    workers: int = 1,
) -> tuple[list[OrgAccount], list[Excluded]]:
    """The listed accounts the block selects (in the order listed), and the others with why:
    not ACTIVE, not among `accounts`, in `exclude_accounts`, or without the `tags`. `tags` is
    asked only for accounts that passed every other test, only when the block has tags, and
    for `workers` accounts at once."""
    chosen: list[OrgAccount] = []
    excluded: list[Excluded] = []
    for account in listed:
        if account.status != "ACTIVE":
            excluded.append(Excluded(account, f"status {account.status or 'unknown'}"))
            continue
        if block.accounts and _matches(block.accounts, account) is None:
            excluded.append(Excluded(account, "not among organization.accounts"))
            continue
        if (p := _matches(block.exclude_accounts, account)) is not None:
            excluded.append(Excluded(account, f"organization.exclude_accounts {p!r}"))
            continue
        chosen.append(account)
    if not (block.tags and tags is not None and chosen):
        return chosen, excluded
    with ThreadPoolExecutor(max(1, min(workers, len(chosen)))) as pool:
        tagged = list(pool.map(tags, [a.id for a in chosen]))
    kept: list[OrgAccount] = []
    for account, have in zip(chosen, tagged, strict=True):
        missing = [f"{k}={v}" for k, v in block.tags.items() if have.get(k) != v]
        if missing:
            excluded.append(Excluded(account, f"tag {missing[0]} missing"))
        else:
            kept.append(account)
    return kept, excluded


def merge(
    config: Config, chosen: Sequence[OrgAccount], ambient_id: str | None = None
) -> tuple[list[Account], list[Account]]:
    """The run's accounts: every `accounts:` entry, then every chosen account not already
    there by id (an explicit entry wins: its own role, groups, regions; an entry without a
    role is `ambient_id`'s account). A discovered account is named as in Organizations, or
    `<name>-<id>` when that name is taken. Returns (all, the discovered ones)."""
    assert config.organization is not None
    explicit_ids = {account_id_of(a) or ambient_id for a in config.accounts} - {None}
    names = {a.name for a in config.accounts}
    clashing = _names_used_twice(chosen)
    discovered: list[Account] = []
    for account in chosen:
        if account.id in explicit_ids:
            continue
        name = account.name or account.id
        if name in names or name in clashing:
            name = f"{name}-{account.id}"
        names.add(name)
        discovered.append(config.organization.account(account.id, name))
    return list(config.accounts) + discovered, discovered


def _names_used_twice(accounts: Sequence[OrgAccount]) -> set[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for a in accounts:
        (twice if a.name in seen else seen).add(a.name)
    return twice


def account_id_of(account: Account) -> str | None:
    """An explicit account's id, as its role chain names it (None: ambient credentials)."""
    chain = account.role_chain
    return chain[-1].split(":")[4] if chain else None


def discover(
    config: Config, reader: OrganizationReader, ambient_id: str | None = None
) -> Discovery:
    """The accounts a run covers: the explicit ones and the organization's selected ones.
    `ambient_id` is the account of the entries without a role (None: not known)."""
    block = config.organization
    if block is None:
        return Discovery(list(config.accounts), ambient_id=ambient_id)
    listed = reader.accounts_under(block.ous) if block.ous else reader.accounts()
    chosen, excluded = select(block, listed, reader.tags if block.tags else None, reader.workers)
    accounts, discovered = merge(config, chosen, ambient_id)
    explicit = {account_id_of(a) or ambient_id: a.name for a in config.accounts}
    replaced = [(a, explicit[a.id]) for a in chosen if a.id in explicit]
    return Discovery(accounts, discovered, excluded, reader.calls, replaced, ambient_id)


def discover_with(
    config: Config, factory: SessionFactory, budget_s: float | None = None
) -> Discovery:
    """`discover`, reading Organizations with the ambient credentials or `discovery_role`, in
    `budget_s` seconds at most (None: no limit); when an entry has no role, STS says once
    which account that is, so the entry wins over its discovered twin (if STS cannot tell, the
    one-lane check asks again and that lane fails)."""
    block = config.organization
    if block is None:
        return Discovery(list(config.accounts))
    ambient_id: str | None = None
    if any(account_id_of(a) is None for a in config.accounts):
        with contextlib.suppress(LogExporterError):
            ambient_id = factory.account_id(factory.ambient, [])
    reader = OrganizationReader(factory.organizations(block.discovery_role), budget_s=budget_s)
    return discover(config, reader, ambient_id)


def member_account(config: Config, account_id: str, name: str) -> Account | None:
    """The account the organization block makes of `account_id` (a lane message names it), with
    no Organizations call: None when there is no block, the id is not an account id, or the
    block's `accounts`/`exclude_accounts` leave it out (OUs and tags were checked by the
    dispatcher that sent the lane). These are matched, as the dispatcher did, on the name in
    Organizations: `name` without the `-<id>` that `merge` adds to a name already taken."""
    block = config.organization
    if block is None or not ACCOUNT_ID.match(account_id):
        return None
    org_name = name.removesuffix(f"-{account_id}") or name
    chosen, _ = select(block, [OrgAccount(account_id, org_name)])
    return block.account(account_id, name) if chosen else None


# --- regions -------------------------------------------------------------------------------------
# The session policy of the role assumed to ask an account's regions: that session can call
# ec2:DescribeRegions and nothing else (not the member role's exports, writes or retention).
DESCRIBE_REGIONS_ONLY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Action":"ec2:DescribeRegions","Resource":"*"}]}'
)


def enabled_regions(ec2: Any) -> list[str]:
    """The regions enabled in the account whose EC2 client this is (DescribeRegions without
    AllRegions: opt-in regions that are not opted in are left out). Needs ec2:DescribeRegions."""
    try:
        answer = ec2.describe_regions(AllRegions=False)
    except AWS_ERRORS as exc:
        raise regions_error(exc) from None
    return sorted(
        str(r["RegionName"])
        for r in answer.get("Regions", [])
        if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
    )
