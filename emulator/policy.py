"""Bucket policies as AWS applies them to CloudWatch Logs exports: with `require_bucket_policy`
on, CreateExportTask, and every object a running task writes, need the archive bucket's policy to
let `logs.<region>.amazonaws.com` call s3:GetBucketAcl and s3:PutObject for the caller's account.

The policy evaluation here is written independently of `log_exporter/core/policy.py` on purpose: the
test double must not share a bug with the code it tests. It covers what bucket policies for a
service principal use: Allow/Deny, Principal/NotPrincipal, Action/NotAction, Resource/NotResource
with `*`/`?` wildcards and policy variables (`${aws:SourceAccount}`: the request's value of that
key), and the String*/Arn* condition operators (with `IfExists`). An explicit Deny wins; without
an Allow the request is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from moto.logs.exceptions import InvalidParameterException

if TYPE_CHECKING:
    from moto.s3.models import FakeBucket

Decision = Literal["allow", "deny", "implicit-deny"]

# AWS's own words when the logs service cannot use the bucket (InvalidParameterException).
GET_BUCKET_ACL_FAILED = (
    "GetBucketAcl call on the given bucket failed. Please check if CloudWatch Logs has been "
    "granted permission to perform this operation."
)
# What a running task's status message says when a write is refused midway. AWS does not
# document this text; it is modelled on the message above.
PUT_OBJECT_FAILED = (
    "PutObject call on the given bucket failed. Please check if CloudWatch Logs has been "
    "granted permission to perform this operation."
)
OWNER_FULL_CONTROL = "bucket-owner-full-control"


def logs_principal(region: str) -> str:
    return f"logs.{region}.amazonaws.com"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@lru_cache(maxsize=512)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _resolve(pattern: str, context: Mapping[str, str]) -> list[tuple[str, bool]] | None:
    """A Resource pattern cut into (text, is_literal) pieces: policy variables (`${key}`, the
    request's value of a condition key; `${*}`, `${?}`, `${$}` for those characters) become
    literal text, the rest keeps its wildcards. None when a variable's key is not in the request:
    AWS then matches nothing with that pattern."""
    pieces: list[tuple[str, bool]] = []
    rest = pattern
    while "${" in rest:
        before, _, after = rest.partition("${")
        name, closed, rest = after.partition("}")
        if not closed:
            return None  # not a variable AWS would accept
        pieces.append((before, False))
        name = name.strip()
        if name in ("*", "?", "$"):
            pieces.append((name, True))
            continue
        value = next((v for k, v in context.items() if k.lower() == name.lower()), None)
        if value is None:
            return None
        pieces.append((value, True))
    pieces.append((rest, False))
    return pieces


def _resource_like(pattern: str, resource: str, context: Mapping[str, str]) -> bool:
    pieces = _resolve(pattern, context)
    if pieces is None:
        return False
    body = "".join(
        re.escape(text) if literal else _wildcard(text, False).pattern for text, literal in pieces
    )
    return re.fullmatch(body, resource, re.DOTALL) is not None


def _principal_matches(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if "*" in _strings(principal.get("AWS")):
        return True
    return service in _strings(principal.get("Service"))


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike compares the six colon-separated parts one by one (the last may hold colons)."""
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(_like(p, v) for p, v in zip(p_parts, v_parts, strict=True))


def _condition_holds(
    operator: str, key: str, wanted: list[str], context: Mapping[str, str]
) -> bool:
    op = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: on single-valued keys
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    value = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    if value is None:
        return if_exists or op.startswith(("StringNot", "ArnNot"))
    tests = {
        "StringEquals": lambda w: w == value,
        "StringNotEquals": lambda w: w != value,
        "StringEqualsIgnoreCase": lambda w: w.lower() == value.lower(),
        "StringNotEqualsIgnoreCase": lambda w: w.lower() != value.lower(),
        "StringLike": lambda w: _like(w, value),
        "StringNotLike": lambda w: not _like(w, value),
        "ArnEquals": lambda w: w == value,
        "ArnNotEquals": lambda w: w != value,
        "ArnLike": lambda w: _arn_like(w, value),
        "ArnNotLike": lambda w: not _arn_like(w, value),
    }
    test = tests.get(op)
    if test is None:
        return False  # an operator this double does not know never matches
    if "Not" in op:
        return all(test(w) for w in wanted)
    return any(test(w) for w in wanted)


def _statement_applies(
    st: Mapping[str, Any], service: str, action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "NotPrincipal" in st:
        if _principal_matches(st["NotPrincipal"], service):
            return False
    elif not _principal_matches(st.get("Principal"), service):
        return False
    if "NotAction" in st:
        if any(_like(a, action, ignore_case=True) for a in _strings(st["NotAction"])):
            return False
    elif not any(_like(a, action, ignore_case=True) for a in _strings(st.get("Action"))):
        return False
    if "NotResource" in st:
        if any(_resource_like(r, resource, context) for r in _strings(st["NotResource"])):
            return False
    elif not any(_resource_like(r, resource, context) for r in _strings(st.get("Resource"))):
        return False
    for operator, keys in (st.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, _strings(wanted), context):
                return False
    return True


def decide(
    document: Mapping[str, Any] | None,
    *,
    service: str,
    action: str,
    resource: str,
    context: Mapping[str, str],
) -> Decision:
    """What a resource policy says to `service` doing `action` on `resource`."""
    if not document:
        return "implicit-deny"
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    applying = [
        st for st in statements if _statement_applies(st, service, action, resource, context)
    ]
    if any(st.get("Effect") == "Deny" for st in applying):
        return "deny"
    if any(st.get("Effect") == "Allow" for st in applying):
        return "allow"
    return "implicit-deny"


def _document(bucket: FakeBucket) -> Mapping[str, Any] | None:
    raw = bucket.policy
    if not raw:
        return None
    try:
        doc = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:
        return None
    return doc if isinstance(doc, Mapping) else None


def _context(account_id: str, region: str, group: str, acl: bool) -> dict[str, str]:
    out = {
        "aws:SourceAccount": account_id,
        "aws:SourceArn": f"arn:{_partition(region)}:logs:{region}:{account_id}:log-group:{group}",
    }
    if acl:
        out["s3:x-amz-acl"] = OWNER_FULL_CONTROL
    return out


def logs_may(
    bucket: FakeBucket, action: str, key: str | None, *, account_id: str, region: str, group: str
) -> bool:
    """Whether the logs service of `region`, exporting `group` of `account_id`, may do `action`
    on the bucket (key None) or on one of its objects."""
    resource = f"arn:{_partition(region)}:s3:::{bucket.name}" + (f"/{key}" if key else "")
    return (
        decide(
            _document(bucket),
            service=logs_principal(region),
            action=action,
            resource=resource,
            context=_context(account_id, region, group, acl=key is not None),
        )
        == "allow"
    )


def check_create(
    bucket: FakeBucket, *, account_id: str, region: str, group: str, probe_keys: Iterable[str]
) -> None:
    """Raise what AWS raises from CreateExportTask when the service cannot use the bucket."""
    allowed = logs_may(
        bucket, "s3:GetBucketAcl", None, account_id=account_id, region=region, group=group
    ) and all(
        logs_may(bucket, "s3:PutObject", key, account_id=account_id, region=region, group=group)
        for key in probe_keys
    )
    if not allowed:
        raise InvalidParameterException(GET_BUCKET_ACL_FAILED)


def write_refused(
    bucket: FakeBucket, key: str, *, account_id: str, region: str, group: str
) -> str | None:
    """The FAILED message for a running task whose next object may no longer be written."""
    if logs_may(bucket, "s3:PutObject", key, account_id=account_id, region=region, group=group):
        return None
    return PUT_OBJECT_FAILED
