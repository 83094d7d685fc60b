"""Injected faults (failed and stuck tasks, throttling, unavailability, denied roles, short-lived
credentials) and the WSGI middleware that applies the request-level ones and counts calls."""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from .tasks import Fate

_S3_SUBRESOURCES = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "versioning",
    "website",
]


# services answering in JSON (the others but S3 answer in XML); a throttle's `error` is their code
JSON_SERVICES = frozenset({"logs", "organizations"})


@dataclass(frozen=True)
class RequestInfo:
    """What a request is, as far as fault matching and counting care."""

    service: str  # "logs", "s3", "sts", ... or "moto_api"
    operation: str
    access_key: str | None = None


@dataclass(frozen=True)
class InjectedError:
    status: int
    code: str
    message: str


@dataclass
class _FateRule:
    fate: Fate
    remaining: int
    account_id: str | None
    group: str | None


@dataclass
class _RequestRule:
    services: frozenset[str]
    operations: frozenset[str] | None
    kind: str  # "throttle" | "unavailable"
    error: str = "ThrottlingException"
    rate: float = 1.0
    remaining: int | None = None  # bursts only
    rng: random.Random | None = None

    def matches(self, info: RequestInfo) -> bool:
        return info.service in self.services and (
            self.operations is None or info.operation in self.operations
        )


class Faults:
    """The injections currently armed; every method is thread-safe."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._fates: list[_FateRule] = []
        self._rules: list[_RequestRule] = []
        self.denied_roles: set[str] = set()
        self.credential_lifetime: int | None = None
        self.enforce_expiry = False
        self.issued: dict[str, float] = {}  # access key id -> wall-clock expiry
        self.injected: Counter[tuple[str, str, str]] = Counter()  # (service, operation, code)

    def clear(self) -> None:
        with self._lock:
            self._fates.clear()
            self._rules.clear()
            self.denied_roles.clear()
            self.credential_lifetime = None
            self.enforce_expiry = False

    def add_fate(self, fate: Fate, count: int, account_id: str | None, group: str | None) -> None:
        with self._lock:
            self._fates.append(_FateRule(fate, count, account_id, group))

    def take_fate(self, account_id: str, group: str) -> Fate | None:
        with self._lock:
            for rule in self._fates:
                if (
                    rule.remaining > 0
                    and rule.account_id in (None, account_id)
                    and rule.group in (None, group)
                ):
                    rule.remaining -= 1
                    return rule.fate
        return None

    def add_throttle(
        self,
        rate: float,
        services: Iterable[str],
        operations: Iterable[str] | None,
        error: str,
        seed: int,
    ) -> None:
        rule = _RequestRule(
            frozenset(services),
            None if operations is None else frozenset(operations),
            "throttle",
            error=error,
            rate=rate,
            rng=random.Random(seed),
        )
        with self._lock:
            self._rules.append(rule)

    def add_burst(self, n: int, services: Iterable[str], operations: Iterable[str] | None) -> None:
        rule = _RequestRule(
            frozenset(services),
            None if operations is None else frozenset(operations),
            "unavailable",
            remaining=n,
        )
        with self._lock:
            self._rules.append(rule)

    def note_credentials(self, access_key_id: str, expires_at: float) -> None:
        with self._lock:
            self.issued[access_key_id] = expires_at

    def request_error(self, info: RequestInfo) -> InjectedError | None:
        """The error to answer `info` with instead of moto's answer, if any (and count it)."""
        with self._lock:
            err = self._pick(info)
            if err is not None:
                self.injected[(info.service, info.operation, err.code)] += 1
            return err

    def _pick(self, info: RequestInfo) -> InjectedError | None:
        expiry = self.issued.get(info.access_key or "") if self.enforce_expiry else None
        if expiry is not None and time.time() >= expiry:
            return _error(info.service, "expired")
        for rule in self._rules:
            if not rule.matches(info):
                continue
            if rule.kind == "unavailable" and rule.remaining:
                rule.remaining -= 1
                return _error(info.service, "unavailable")
            if rule.kind == "throttle" and rule.rng is not None and rule.rng.random() < rule.rate:
                return _error(info.service, "throttle", rule.error)
        return None


def _error(service: str, kind: str, logs_code: str = "ThrottlingException") -> InjectedError:
    if service == "s3":
        return {
            "throttle": InjectedError(503, "SlowDown", "Please reduce your request rate."),
            "unavailable": InjectedError(
                503, "ServiceUnavailable", "Service is unable to handle request."
            ),
            "expired": InjectedError(400, "ExpiredToken", "The provided token has expired."),
        }[kind]
    expired = "ExpiredTokenException" if service in JSON_SERVICES else "ExpiredToken"
    return {
        "throttle": InjectedError(
            400, logs_code if service in JSON_SERVICES else "Throttling", "Rate exceeded"
        ),
        "unavailable": InjectedError(
            503,
            "ServiceUnavailableException" if service == "logs" else "ServiceUnavailable",
            "The service is unavailable. Please try again later.",
        ),
        "expired": InjectedError(
            400, expired, "The security token included in the request is expired"
        ),
    }[kind]


# -- requests ------------------------------------------------------------------------------------


def _credential(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(access key, signing service) from a SigV4 Authorization header or presigned query."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    cred = ""
    if "Credential=" in auth:
        cred = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        cred = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    parts = cred.split("/")
    if len(parts) == 5:
        return parts[0], parts[3].lower()
    return (parts[0] or None), None


def _form_action(environ: dict[str, Any]) -> str | None:
    """The Action of a query-protocol request (STS); puts the body back for moto."""
    action: str | None = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    if action:
        return action
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(size) if size else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    return action


def s3_operation(environ: dict[str, Any]) -> str:
    """A rough S3 operation name from method, path and query (path-style or virtual-host)."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = environ.get("PATH_INFO", "/").lstrip("/")
    host = environ.get("HTTP_HOST", "").split(":")[0]
    virtual = host.endswith(".localhost") or (".s3." in host and not host.startswith("s3."))
    parts = path.split("/", 1) if not virtual else ["bucket", path]
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    sub = next((s for s in _S3_SUBRESOURCES if s in query), None)
    title = "".join(w[:1].upper() + w[1:] for w in (sub or "").split("-"))
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "HEAD":
            return "HeadBucket"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "GET":
            if sub == "location":
                return "GetBucketLocation"
            if sub:
                return f"GetBucket{title}"
            if "uploads" in query:
                return "ListMultipartUploads"
            if "versions" in query:
                return "ListObjectVersions"
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        if method == "PUT":
            return f"PutBucket{title}" if sub else "CreateBucket"
        if method == "DELETE":
            return f"DeleteBucket{title}" if sub else "DeleteBucket"
        return f"{method.title()}Bucket"
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        return f"GetObject{title}" if sub else "GetObject"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if sub:
            return f"PutObject{title}"
        return "CopyObject" if copy else "PutObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return f"DeleteObject{title}" if sub else "DeleteObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "restore" in query:
            return "RestoreObject"
    return f"{method.title()}Object"


def classify(environ: dict[str, Any]) -> RequestInfo:
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api") or path == "/favicon.ico":
        return RequestInfo("moto_api", path)
    key, scope = _credential(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("Logs_"):
        return RequestInfo("logs", target.split(".", 1)[-1], key)
    if scope == "s3" or (scope is None and not target):
        action = None if scope == "s3" else _form_action(environ)
        if action is None:
            return RequestInfo("s3", s3_operation(environ), key)
        return RequestInfo("sts", action, key)
    if target:
        return RequestInfo(scope or target.split("_", 1)[0].lower(), target.split(".", 1)[-1], key)
    return RequestInfo(scope or "unknown", _form_action(environ) or "Unknown", key)


class CallSink(Protocol):
    faults: Faults

    def record_call(self, service: str, operation: str, path: str = "") -> None: ...


def _render(
    info: RequestInfo, err: InjectedError, method: str
) -> tuple[list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    if info.service in JSON_SERVICES:
        body = json.dumps({"__type": err.code, "message": err.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
    elif info.service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{err.code}</Code><Message>{err.message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>emulator</HostId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>{err.code}</Code><Message>{err.message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    if method == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return headers, body


def _drain(environ: dict[str, Any]) -> None:
    """Read the unread request body so the connection can be reused."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        if size:
            stream.read(size)
        elif environ.get("wsgi.input_terminated"):
            stream.read()
    except (OSError, ValueError):
        pass


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FaultMiddleware:
    """WSGI middleware: counts every AWS request and answers some with an injected error."""

    def __init__(self, app: Callable[..., Iterable[bytes]], sink: CallSink) -> None:
        self.app = app
        self.sink = sink

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        info = classify(environ)
        if info.service == "moto_api":
            return self.app(environ, start_response)
        self.sink.record_call(info.service, info.operation, environ.get("PATH_INFO", ""))
        err = self.sink.faults.request_error(info)
        if err is None:
            return self.app(environ, start_response)
        _drain(environ)
        headers, body = _render(info, err, environ.get("REQUEST_METHOD", "GET"))
        start_response(f"{err.status} {_REASONS.get(err.status, 'Error')}", headers)
        return _once(body)


def _once(body: bytes) -> Iterator[bytes]:
    yield body
