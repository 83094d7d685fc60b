"""The policy documents `log-exporter policy` prints for the lanes of a config: each archive
bucket's policy, each member role's IAM policy and the runner's; the accounts' ids are the only
thing asked of AWS (sts:GetCallerIdentity for an account without a role)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from log_exporter.core.config import Account
from log_exporter.core.policy import Target, bucket_policy_text, member_role_policy, runner_policy
from log_exporter.errors import AWSError, UsageError

if TYPE_CHECKING:
    from log_exporter.engine import Engine, LaneSpec

Kind = Literal["bucket", "member", "runner"]


@dataclass(frozen=True)
class PolicyDocument:
    """One document: a bucket's policy (as text within S3's limit), a member role's policy
    (`account`, `account_id`) or the runner's."""

    kind: Kind
    document: dict[str, Any] | str
    bucket: str = ""
    account: Account | None = None
    account_id: str = ""


def policy_documents(
    engine: Engine,
    specs: Sequence[LaneSpec],
    *,
    accounts: Sequence[str],
    only: Kind | None = None,
    with_retention: bool = False,
    no_bucket: Callable[[LaneSpec, str], None] = lambda spec, why: None,
) -> list[PolicyDocument]:
    """The documents for the lanes `specs` (just those of kind `only`, if given). A lane whose
    region has no bucket is told to `no_bucket` (with why) and left out of the buckets' policies.
    Raises AWSError for a lane whose regions could not be asked, UsageError for `only` member
    over more than one account (`accounts`: the --account names given)."""
    dest = engine.config.destination
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
            no_bucket(spec, dest.no_bucket(spec.region))
            continue
        exporting.setdefault(bucket, []).append(Target(ids[spec.account.name], spec.region))
    documents: list[PolicyDocument] = []
    if only in (None, "bucket"):
        for bucket, bucket_targets in exporting.items():
            # within S3's limit, for each bucket
            text = bucket_policy_text(bucket, dest.prefix, sorted(set(bucket_targets)))
            documents.append(PolicyDocument("bucket", text, bucket=bucket))
    if only in (None, "member"):
        seen: list[str] = []
        for spec in specs:
            account = spec.account
            if account.name in seen:
                continue
            seen.append(account.name)
            account_regions = [s.region for s in specs if s.account.name == account.name]
            document = member_role_policy(
                account,
                ids[account.name],
                account_regions,
                dest.buckets(account_regions),
                dest.prefix,
                with_retention=with_retention,
            )
            documents.append(
                PolicyDocument("member", document, account=account, account_id=ids[account.name])
            )
    if only in (None, "runner"):
        documents.append(PolicyDocument("runner", runner_policy(engine.config, first_region)))
    return documents
