"""Injected faults (failed and stuck tasks, throttling, unavailability, lost answers, denied roles,
short-lived credentials, DeleteObjects that deletes only some keys) and the WSGI middleware that
applies the request-level ones and counts calls."""

from __future__ import annotations

import contextlib
import io
import json
import random
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

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


@dataclass
class _DeleteRule:
    """DeleteObjects calls that answer 200 but list some of their keys under `Errors`."""

    remaining: int | None  # calls to affect; None: every call
    match: str  # only keys containing this
    every: int  # of the matching keys of a call, the 1st, (1 + every)th, ... are not deleted
    code: str


LOST_ANSWERS = {  # how an answer is lost -> the error the client sees instead of it
    "500": InjectedError(500, "InternalFailure", "An internal error occurred."),
    "503": InjectedError(
        503, "ServiceUnavailableException", "The service is unavailable. Please try again later."
    ),
    "reset": InjectedError(0, "ConnectionReset", "the connection was closed without an answer"),
}


@dataclass
class _LostAnswerRule:
    """AWS acted on the request, then its answer was lost (a 5xx, or the connection dropped)."""

    services: frozenset[str]
    operations: frozenset[str]
    how: str  # a key of LOST_ANSWERS
    remaining: int
    unlisted_for: float = 0.0  # a task it created is not listed for this long (see lose_answers)

    def matches(self, info: RequestInfo) -> bool:
        return (
            self.remaining > 0
            and info.service in self.services
            and (info.operation in self.operations)
        )


class Faults:
    """The injections currently armed; every method is thread-safe."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._fates: list[_FateRule] = []
        self._rules: list[_RequestRule] = []
        self._deletes: list[_DeleteRule] = []
        self._lost: list[_LostAnswerRule] = []
        self.denied_roles: set[str] = set()
        self.credential_lifetime: int | None = None
        self.enforce_expiry = False
        self.issued: dict[str, float] = {}  # access key id -> wall-clock expiry
        # added to the time in the Date header of every answer: what a client whose own clock
        # is off by minus this much would see (see the server's request handler)
        self.clock_skew = 0.0
        self.injected: Counter[tuple[str, str, str]] = Counter()  # (service, operation, code)
        # CloudWatch Logs read quotas (operation -> requests a second per account and region),
        # as AWS enforces them: above, ThrottlingException; empty: no quota (see `read_quotas`)
        self.read_quotas: dict[str, float] = {}
        self._reads: dict[tuple[str, str, str], deque[float]] = {}
        # FilterLogEvents answers this many empty pages (no event, a nextToken) before each
        # page of events, as AWS may (see `Emulator.empty_pages`)
        self.empty_pages = 0

    def quota_error(self, info: RequestInfo, account_id: str, region: str) -> InjectedError | None:
        """ThrottlingException when `info` is over its read quota in the last second (counted
        as injected); an accepted request counts towards the quota."""
        with self._lock:
            rate = self.read_quotas.get(info.operation) if info.service == "logs" else None
            if rate is None:
                return None
            now = time.monotonic()
            times = self._reads.setdefault((account_id, region, info.operation), deque())
            while times and times[0] <= now - 1.0:
                times.popleft()
            if len(times) >= rate:
                err = _error("logs", "throttle")
                self.injected[(info.service, info.operation, err.code)] += 1
                return err
            times.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._fates.clear()
            self._rules.clear()
            self._deletes.clear()

            self._lost.clear()
            self.denied_roles.clear()
            self.credential_lifetime = None
            self.enforce_expiry = False
            self.clock_skew = 0.0
            self.read_quotas.clear()
            self._reads.clear()
            self.empty_pages = 0

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

    def add_partial_delete(self, count: int | None, match: str, every: int, code: str) -> None:
        with self._lock:
            self._deletes.append(_DeleteRule(count, match, max(1, every), code))

    def delete_errors(self, keys: list[str]) -> dict[str, str]:
        """The keys of one DeleteObjects call to report as not deleted, with their error codes
        (and count them); empty when no armed rule matches the call."""
        with self._lock:
            for rule in self._deletes:
                if rule.remaining == 0:
                    continue
                matching = [k for k in keys if rule.match in k]
                if not matching:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                failed = {k: rule.code for k in matching[:: rule.every]}
                self.injected[("s3", "DeleteObjects", rule.code)] += len(failed)
                return failed
        return {}

    @property
    def deletes_armed(self) -> bool:
        with self._lock:
            return any(r.remaining != 0 for r in self._deletes)

    def add_lost_answers(
        self,
        n: int,
        services: Iterable[str],
        operations: Iterable[str],
        how: str,
        unlisted_for: float = 0.0,
    ) -> None:
        if how not in LOST_ANSWERS:
            raise ValueError(f"how must be one of {sorted(LOST_ANSWERS)}, not {how!r}")
        rule = _LostAnswerRule(frozenset(services), frozenset(operations), how, n, unlisted_for)
        with self._lock:
            self._lost.append(rule)

    def may_lose_answer(self, info: RequestInfo) -> bool:
        """Whether a successful answer to `info` would be lost (nothing is used up)."""
        with self._lock:
            return any(rule.matches(info) for rule in self._lost)

    def lose_answer(self, info: RequestInfo) -> tuple[InjectedError, float] | None:
        """After AWS acted on `info`: how its answer is lost, if it is (counted as injected),
        and for how long a task it created is not listed."""
        with self._lock:
            for rule in self._lost:
                if rule.matches(info):
                    rule.remaining -= 1
                    err = LOST_ANSWERS[rule.how]
                    self.injected[(info.service, info.operation, err.code)] += 1
                    return err, rule.unlisted_for
        return None

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


def _account_region(info: RequestInfo, environ: dict[str, Any]) -> tuple[str, str]:
    """The account (of the request's access key) and region (of its signature) it is for."""
    from .patches import _get_account_id_from

    auth = environ.get("HTTP_AUTHORIZATION", "")
    cred = auth.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in auth else ""
    parts = cred.split("/")
    region = parts[2] if len(parts) == 5 else ""
    return (_get_account_id_from(info.access_key) if info.access_key else ""), region


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

    def unlist_task(self, task_id: str, seconds: float) -> None: ...


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
        if err is None and self.sink.faults.read_quotas and info.service == "logs":
            err = self.sink.faults.quota_error(info, *_account_region(info, environ))
        if err is None and self.sink.faults.may_lose_answer(info):
            return self._lose_answer(info, environ, start_response)
        if err is None:
            if info.operation == "DeleteObjects" and self.sink.faults.deletes_armed:
                return _partial_delete(self.app, self.sink.faults, environ, start_response)
            return self.app(environ, start_response)
        _drain(environ)
        headers, body = _render(info, err, environ.get("REQUEST_METHOD", "GET"))
        start_response(f"{err.status} {_REASONS.get(err.status, 'Error')}", headers)
        return _once(body)

    def _lose_answer(
        self, info: RequestInfo, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Let moto act on the request; then, if it succeeded, lose its answer: a 5xx instead,
        or the connection closed before any answer (the client sees a reset)."""
        started: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        result = self.app(environ, keep)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        lost = self.sink.faults.lose_answer(info) if status.startswith("2") else None
        if lost is None:
            start_response(status, headers)
            return _once(body)
        err, unlisted_for = lost
        if unlisted_for > 0 and info.operation == "CreateExportTask":
            task_id = json.loads(body).get("taskId")
            if task_id:
                self.sink.unlist_task(str(task_id), unlisted_for)
        if err.status == 0:
            conn = environ.get("werkzeug.socket")
            if conn is not None:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError(err.message)
        headers, body = _render(info, err, environ.get("REQUEST_METHOD", "GET"))
        start_response(f"{err.status} {_REASONS.get(err.status, 'Error')}", headers)
        return _once(body)


def _once(body: bytes) -> Iterator[bytes]:
    yield body


_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DELETE_MESSAGES = {
    "AccessDenied": "Access Denied",
    "InternalError": "We encountered an internal error. Please try again.",
    "SlowDown": "Please reduce your request rate.",
}


def _partial_delete(
    app: Callable[..., Iterable[bytes]],
    faults: Faults,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    """A DeleteObjects call answered like S3 does when some keys could not be deleted: 200,
    those keys under `Errors`, the others deleted (through moto's backend, so a versioned bucket
    gets delete markers) and listed under `Deleted` unless the request was `Quiet`."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size) if size else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return app(environ, start_response)
    ns = {"s3": _S3_NS} if root.tag.startswith("{") else {}
    find = (lambda e, t: e.findtext(f"s3:{t}", None, ns)) if ns else (lambda e, t: e.findtext(t))
    objects = root.findall("s3:Object", ns) if ns else root.findall("Object")
    keys = [find(o, "Key") or "" for o in objects]
    failed = faults.delete_errors(keys)
    if not failed:
        return app(environ, start_response)
    quiet = (find(root, "Quiet") or "").lower() == "true"
    from moto.s3.models import s3_backends

    bucket = _bucket_of(environ)
    partition, owner = s3_backends.bucket_accounts[bucket]
    backend = s3_backends[owner][partition]
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f'<DeleteResult xmlns="{_S3_NS}">']
    for key in keys:
        code = failed.get(key)
        if code is None:
            backend.delete_object(bucket, key)
            if not quiet:
                parts.append(f"<Deleted><Key>{escape(key)}</Key></Deleted>")
        else:
            message = _DELETE_MESSAGES.get(code, code)
            parts.append(
                f"<Error><Key>{escape(key)}</Key><Code>{code}</Code>"
                f"<Message>{message}</Message></Error>"
            )
    parts.append("</DeleteResult>")
    out = "".join(parts).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("x-amz-request-id", str(uuid.uuid4())),
        ("Content-Length", str(len(out))),
    ]
    start_response("200 OK", headers)
    return _once(out)


def _bucket_of(environ: dict[str, Any]) -> str:
    """The bucket a path-style or virtual-host S3 request is for."""
    host = environ.get("HTTP_HOST", "").split(":")[0]
    if host.endswith(".localhost") or (".s3." in host and not host.startswith("s3.")):
        return host.split(".", 1)[0]
    return str(environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0])
