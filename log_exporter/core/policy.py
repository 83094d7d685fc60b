"""IAM policy documents log-exporter needs (the archive bucket's policy, the member role's and the
runner's identity policies), built from a Config, and a check of whether a bucket policy grants
the CloudWatch Logs service what an export needs. Pure: no AWS call.

Every action is named: no `*` action anywhere. Resources are as narrow as the API allows:
log-group ARNs from the account's patterns, the archive prefix, the configured roles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from log_exporter.core.config import REGION_FIELD, Account, Config
from log_exporter.errors import ConfigError

VERSION = "2012-10-17"
OWNER_FULL_CONTROL = "bucket-owner-full-control"
PROBE_KEY = "aws-logs-write-test"  # AWS writes it under each destination prefix

# The member role: reads its log groups and exports them; the lane uses exactly these calls.
MEMBER_LOG_GROUP_ACTIONS = (
    "logs:CreateExportTask",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",  # to skip days without events, and to read small windows directly
)
# Only for `log-exporter retention` (`policy --with-retention`).
RETENTION_ACTION = "logs:PutRetentionPolicy"
# No resource-level permissions (the export task ones) or account-wide listing: Resource "*".
MEMBER_ACCOUNT_ACTIONS = (
    "logs:CancelExportTask",
    "logs:DescribeExportTasks",
    "logs:DescribeLogGroups",
)
RUNNER_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
# reading the `organization:` block's accounts (organization.py)
ORGANIZATION_READ_ACTIONS = (
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListTagsForResource",
)
MEMBER_REGIONS_ACTION = "ec2:DescribeRegions"  # `regions: all`
RUNNER_BUCKET_ACTIONS = ("s3:GetBucketPolicy", "s3:ListBucket")
SOURCE_ACCOUNT_VARIABLE = "${aws:SourceAccount}"  # IAM fills in the account a request comes from
BUCKET_POLICY_LIMIT = 20 * 1024  # S3 refuses a bucket policy over 20 KB
BUCKET_POLICY_ACCOUNTS = 1300  # accounts whose bucket policy fits (15 bytes an account id)


@dataclass(frozen=True, order=True)
class Target:
    """One account and region whose log groups are exported into the archive bucket."""

    account_id: str
    region: str


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def logs_principal(region: str) -> str:
    """The CloudWatch Logs service principal that writes exports in `region`."""
    return f"logs.{region}.amazonaws.com"


def bucket_arn(bucket: str, region: str = "us-east-1") -> str:
    return f"arn:{partition(region)}:s3:::{bucket}"


def objects_arn(bucket: str, prefix: str, region: str = "us-east-1") -> str:
    """`arn:aws:s3:::<bucket>/<prefix>/*` (the whole bucket when there is no prefix)."""
    return f"{bucket_arn(bucket, region)}/{prefix + '/' if prefix else ''}*"


def source_arn(target: Target) -> str:
    """The `aws:SourceArn` pattern matching every log group of a target."""
    return f"arn:{partition(target.region)}:logs:{target.region}:{target.account_id}:log-group:*"


def _one_or_many(values: Iterable[str]) -> str | list[str]:
    out = sorted(set(values))
    return out[0] if len(out) == 1 else out


def account_objects_arn(bucket: str, prefix: str, region: str = "us-east-1") -> str:
    """`arn:aws:s3:::<bucket>/<prefix>/${aws:SourceAccount}/*`: the folder of the account the
    request comes from, filled in by IAM (a global condition key used as a policy variable)."""
    return objects_arn(bucket, "/".join(p for p in (prefix, SOURCE_ACCOUNT_VARIABLE) if p), region)


def bucket_policy(bucket: str, prefix: str, targets: Sequence[Target]) -> dict[str, Any]:
    """The archive bucket's policy: the logs service of the targets' regions may read the bucket
    ACL and write objects, for the targets' accounts only, each under its own
    `<prefix>/<account_id>/` (so one account's exports cannot land in another's folder), and
    only with `bucket-owner-full-control`.

    Each account id is listed once (one statement holds both actions; the Resource names the
    account's folder with `${aws:SourceAccount}`), about 15 bytes an account: see
    `bucket_policy_text` for S3's size limit."""
    if not targets:
        raise ValueError("a bucket policy needs at least one account and region")
    region = targets[0].region
    principal = {"Service": _one_or_many(logs_principal(t.region) for t in targets)}
    regions_arns = (f"arn:{partition(t.region)}:logs:{t.region}:*:log-group:*" for t in targets)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "CloudWatchLogsExportsIntoOwnAccountFolder",
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["s3:GetBucketAcl", "s3:PutObject"],
                "Resource": [
                    bucket_arn(bucket, region),
                    account_objects_arn(bucket, prefix, region),
                ],
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": _one_or_many(t.account_id for t in targets)
                    },
                    "ArnLike": {"aws:SourceArn": _one_or_many(regions_arns)},
                },
            },
            {
                "Sid": "CloudWatchLogsExportsOwnedByBucketOwner",
                "Effect": "Deny",
                "Principal": principal,
                "Action": "s3:PutObject",
                "Resource": objects_arn(bucket, prefix, region),
                "Condition": {"StringNotEquals": {"s3:x-amz-acl": OWNER_FULL_CONTROL}},
            },
        ],
    }


def bucket_policy_text(bucket: str, prefix: str, targets: Sequence[Target]) -> str:
    """The bucket policy as the JSON to give `put-bucket-policy`: indented when that fits in S3's
    limit, else compact; a policy that does not fit even so is a ConfigError naming the limit."""
    document = bucket_policy(bucket, prefix, targets)
    text = json.dumps(document, indent=2)
    if len(text.encode()) <= BUCKET_POLICY_LIMIT:
        return text
    text = json.dumps(document, separators=(",", ":"))
    size = len(text.encode())
    if size > BUCKET_POLICY_LIMIT:
        accounts = len({t.account_id for t in targets})
        raise ConfigError(
            f"the bucket policy for {accounts} accounts is {size:,} bytes, over S3's limit of "
            f"{BUCKET_POLICY_LIMIT:,} bytes (about {BUCKET_POLICY_ACCOUNTS:,} accounts fit): "
            "archive the others into another bucket, with a config of their own"
        )
    return text


def group_arn_patterns(patterns: Sequence[str], account_id: str, region: str) -> list[str]:
    """Log-group ARN patterns covering the groups `patterns` select (and their streams).

    A glob keeps its `*` and `?` (IAM has the same wildcards; `[...]` becomes `*`); a `re:`
    pattern cannot be expressed in IAM, so it needs every group of the account and region."""
    base = f"arn:{partition(region)}:logs:{region}:{account_id}:log-group:"
    globs: set[str] = set()
    for p in patterns:
        if p.startswith("re:"):
            return [base + "*"]
        globs.add(re.sub(r"\[[^\]]*\]", "*", p))
    out: set[str] = set()
    for g in globs:
        out.add(base + g)
        if not g.endswith("*"):
            out.add(base + g + ":*")
    return sorted(out)


def member_role_policy(
    account: Account,
    account_id: str,
    regions: Sequence[str],
    bucket: str | Sequence[str],
    prefix: str,
    *,
    with_retention: bool = False,
) -> dict[str, Any]:
    """The identity policy of the role log-exporter assumes in a member account, exporting to
    `bucket` (or to each of several, a bucket per region); with `with_retention`, also
    `logs:PutRetentionPolicy` (for `log-exporter retention`)."""
    buckets = [bucket] if isinstance(bucket, str) else list(bucket)
    region = regions[0] if regions else "us-east-1"
    groups = sorted({a for r in regions for a in group_arn_patterns(account.groups, account_id, r)})
    retention = (RETENTION_ACTION,) if with_retention else ()
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ExportSelectedLogGroups",
                "Effect": "Allow",
                "Action": sorted(MEMBER_LOG_GROUP_ACTIONS + retention),
                "Resource": groups,
            },
            {
                "Sid": "ListLogGroupsAndTrackExportTasks",
                "Effect": "Allow",
                "Action": list(MEMBER_ACCOUNT_ACTIONS),
                "Resource": "*",
            },
            {
                # CreateExportTask's caller must be allowed to write to the destination too.
                "Sid": "WriteExportsToArchive",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                # its own folder: not another account's, nor the archive's state (.log-exporter/)
                "Resource": _one_or_many(
                    objects_arn(b, "/".join(p for p in (prefix, account_id) if p), region)
                    for b in buckets
                ),
            },
        ]
        + (
            [
                {
                    "Sid": "ListEnabledRegions",
                    "Effect": "Allow",
                    "Action": MEMBER_REGIONS_ACTION,
                    "Resource": "*",
                }
            ]
            if account.regions == "all"
            else []
        ),
    }


def bucket_patterns(config: Config) -> list[str]:
    """The archive buckets as IAM resource names: each bucket of a map, or the name with `*`
    for `{region}` (any region's bucket)."""
    dest = config.destination
    if isinstance(dest.bucket, dict):
        return list(dict.fromkeys(dest.bucket.values()))
    return [dest.bucket.replace(REGION_FIELD, "*")]


def bucket_pattern(config: Config) -> str:
    """One IAM name covering every archive bucket (a CloudFormation parameter is one name): the
    bucket; `{region}` as `*`; a map's buckets as their common start and end around a `*`."""
    names = bucket_patterns(config)
    if len(names) == 1:
        return names[0]

    def common_start(texts: list[str]) -> str:
        n = 0
        while all(len(t) > n and t[n] == texts[0][n] for t in texts):
            n += 1
        return texts[0][:n]

    start = common_start(names)
    end = common_start([n[len(start) :][::-1] for n in names])[::-1]
    if not start and not end:
        raise ConfigError(
            f"destination.bucket: the buckets {', '.join(names)} share no start or end, so one "
            "IAM name cannot cover them: name them alike (archive-use1, archive-euw1) or use "
            "a name holding {region}"
        )
    return f"{start}*{end}"


def runner_policy(config: Config, region: str = "us-east-1") -> dict[str, Any]:
    """The identity policy of whoever runs log-exporter (the ambient credentials): the archive's
    state and cleanup, `check`'s reading of the bucket policy, and the first hop of each chain."""
    dest = config.destination
    first_roles = sorted({a.role_chain[0] for a in config.accounts if a.role_chain})
    org = config.organization
    if org is not None:
        # any account's role: {account_id} is a resource wildcard in the first hop's ARN
        first = org.role if isinstance(org.role, str) else org.role[0]
        first_roles = sorted({*first_roles, first.replace("{account_id}", "*")})
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ArchiveBucket",
            "Effect": "Allow",
            "Action": list(RUNNER_BUCKET_ACTIONS),
            "Resource": _one_or_many(bucket_arn(b, region) for b in bucket_patterns(config)),
        },
        {
            "Sid": "ArchiveObjects",
            "Effect": "Allow",
            "Action": list(RUNNER_OBJECT_ACTIONS),
            "Resource": _one_or_many(
                objects_arn(b, dest.prefix, region) for b in bucket_patterns(config)
            ),
        },
    ]
    if first_roles:
        statements.append(
            {
                "Sid": "AssumeMemberRoles",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": first_roles[0] if len(first_roles) == 1 else first_roles,
            }
        )
    if org is not None and org.discovery_role:
        statements.append(
            {
                "Sid": "AssumeDiscoveryRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": org.discovery_role,
            }
        )
    elif org is not None:
        statements.append(
            {
                "Sid": "ReadOrganization",
                "Effect": "Allow",
                "Action": list(ORGANIZATION_READ_ACTIONS),
                "Resource": "*",
            }
        )
    return {"Version": VERSION, "Statement": statements}


# --- does a bucket policy let the logs service export? ---------------------------------------------


@lru_cache(maxsize=256)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _resource_matches(pattern: str, resource: str, context: Mapping[str, str]) -> bool:
    """Whether a Resource pattern (wildcards, and policy variables such as
    `${aws:SourceAccount}` filled in from the request) covers `resource`; a variable whose key the
    request lacks matches nothing."""
    if "${" not in pattern:
        return _matches(pattern, resource)
    body = ""
    end = 0
    for m in _VARIABLE.finditer(pattern):
        body += _wildcard(pattern[end : m.start()], False).pattern
        key = m.group(1).strip()
        value = key if key in ("*", "?", "$") else _lookup(context, key)
        if value is None:
            return False
        body += re.escape(value)
        end = m.end()
    body += _wildcard(pattern[end:], False).pattern
    return re.fullmatch(body, resource, re.DOTALL) is not None


def _lookup(context: Mapping[str, str], key: str) -> str | None:
    return next((v for k, v in context.items() if k.lower() == key.lower()), None)


def _values(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _principal(p: Any, service: str) -> bool:
    if p == "*":
        return True
    if isinstance(p, Mapping):
        return "*" in _values(p.get("AWS")) or service in _values(p.get("Service"))
    return False


def _arn_like(pattern: str, value: str) -> bool:
    pp, vv = pattern.split(":", 5), value.split(":", 5)
    return len(pp) == len(vv) == 6 and all(_matches(p, v) for p, v in zip(pp, vv, strict=True))


_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda w, v: w == v,
    "StringEqualsIgnoreCase": lambda w, v: w.lower() == v.lower(),
    "StringLike": _matches,
    "ArnEquals": lambda w, v: w == v,
    "ArnLike": _arn_like,
}


def _condition(operator: str, key: str, wanted: list[str], context: Mapping[str, str]) -> bool:
    op = operator.split(":", 1)[-1]
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    negated = "Not" in op
    test = _TESTS.get(op.replace("Not", "", 1))
    if test is None:
        return False  # an operator we do not evaluate: do not count on the statement
    value = _lookup(context, key)
    if value is None:
        return if_exists or negated
    hit = any(test(w, value) for w in wanted)
    return not hit if negated else hit


def _element(st: Mapping[str, Any], name: str, hit: Callable[[Any], bool]) -> bool:
    """Whether a statement's Principal/Action/Resource (or its Not- form) covers the request."""
    if f"Not{name}" in st:
        return not hit(st[f"Not{name}"])
    return hit(st.get(name))


def _applies(
    st: Mapping[str, Any], service: str, action: str, resource: str, context: Mapping[str, str]
) -> bool:
    return (
        _element(st, "Principal", lambda p: _principal(p, service))
        and _element(st, "Action", lambda a: any(_matches(x, action, True) for x in _values(a)))
        and _element(
            st,
            "Resource",
            lambda r: any(_resource_matches(x, resource, context) for x in _values(r)),
        )
        and all(
            _condition(op, key, _values(wanted), context)
            for op, keys in (st.get("Condition") or {}).items()
            for key, wanted in keys.items()
        )
    )


def grants(
    document: Mapping[str, Any] | None,
    *,
    service: str,
    action: str,
    resource: str,
    context: Mapping[str, str],
) -> bool:
    """Whether a resource policy allows `service` to do `action` on `resource` (explicit deny
    wins; no matching allow is a deny)."""
    if not document:
        return False
    statements = document.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    applying = [s for s in statements if _applies(s, service, action, resource, context)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return False
    return any(s.get("Effect") == "Allow" for s in applying)


def export_refusals(
    document: Mapping[str, Any] | None, bucket: str, prefix: str, target: Target
) -> list[str]:
    """What the bucket policy refuses the logs service of `target` (empty: exports can work)."""
    service = logs_principal(target.region)
    group_arn = source_arn(target).removesuffix("*") + "log-exporter-check"
    context = {"aws:SourceAccount": target.account_id, "aws:SourceArn": group_arn}
    key = "/".join(p for p in (prefix, target.account_id, "log-exporter-check", PROBE_KEY) if p)
    refused: list[str] = []
    b_arn = bucket_arn(bucket, target.region)
    if not grants(
        document, service=service, action="s3:GetBucketAcl", resource=b_arn, context=context
    ):
        refused.append(f"s3:GetBucketAcl on {bucket}")
    if not grants(
        document,
        service=service,
        action="s3:PutObject",
        resource=f"{b_arn}/{key}",
        context={**context, "s3:x-amz-acl": OWNER_FULL_CONTROL},
    ):
        folder = "/".join(p for p in (prefix, target.account_id) if p)
        refused.append(f"s3:PutObject on {bucket}/{folder}/*")
    return refused
