"""Lane states in the archive bucket: one GET to read, conditional PUTs to write, so two runners
never both own a lane nor overwrite each other's progress."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from log_exporter.aws.errors import is_conflict, is_missing_key, state_bucket_error
from log_exporter.core.state import STATE_FOLDER, LaneState, parse_state, state_key
from log_exporter.core.windows import Period
from log_exporter.errors import BucketError, StateConflictError, StateError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class StateStore:
    """Reads and writes lane states in the archive bucket with the ambient credentials."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def key(self, account_id: str, region: str) -> str:
        return state_key(self.prefix, account_id, region)

    def load(self, account_id: str, region: str, account: str = "NAME") -> LaneState:
        """The lane's state (`account`: its account name, for the message of a bad one)."""
        key = self.key(account_id, region)
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing_key(exc):
                return LaneState(account_id=account_id, region=region)
            raise self._bucket_error("read", key, exc) from None
        where = f"s3://{self.bucket}/{key}"
        return parse_state(obj["Body"].read(), where, etag=obj["ETag"], account=account)

    def set_aside(self, error: StateError, now_ms: int) -> str:
        """Copy the unreadable object `error` names to `<key>.corrupt-<now_ms>`, if it still is
        the one read (its ETag); return the copy's s3:// address."""
        key = error.key.removeprefix(f"s3://{self.bucket}/")
        aside = f"{key}.corrupt-{now_ms}"
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=aside,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=error.etag or "*",
            )
        except ClientError as exc:
            if is_conflict(exc):
                raise StateConflictError(f"{error.key} was changed since it was read") from None
            raise self._bucket_error("copy", key, exc) from None
        return f"s3://{self.bucket}/{aside}"

    def save(self, state: LaneState) -> None:
        """Write `state` if nobody else wrote it since it was read; raise StateConflictError if
        somebody did."""
        key = self.key(state.account_id, state.region)
        body = json.dumps(state.to_json(), separators=(",", ":")).encode()
        try:
            if state.etag is None:
                out = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
            else:
                out = self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfMatch=state.etag,
                    ContentType="application/json",
                )
        except ClientError as exc:
            if is_conflict(exc, by_status=True):
                etag = self._stored_etag(key, body)
                if etag is not None:
                    state.etag = etag
                    return
                raise StateConflictError(
                    f"the state of {state.account_id}/{state.region} was changed by another runner"
                ) from None
            raise self._bucket_error("write", key, exc) from None
        state.etag = out["ETag"]

    def _stored_etag(self, key: str, body: bytes) -> str | None:
        """The ETag of `key` if it holds exactly `body`: a write of ours that S3 stored but whose
        answer was lost, so botocore sent it again and S3 refused the repeat. The body names our
        lease and its expiry to the millisecond, so no other runner writes the same bytes."""
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        return str(obj["ETag"]) if obj["Body"].read() == body else None

    def archived_period(self, max_reads: int = 20) -> Period | None:
        """The period of the archive under the prefix, from the first lane state that has
        archived something (one LIST and usually one GET); None for a new archive."""
        folder = "/".join(p for p in (self.prefix, STATE_FOLDER) if p) + "/"
        reads = 0
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder, PaginationConfig={"PageSize": max_reads}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith(".json"):
                        continue
                    try:
                        body = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"]
                    except self._s3.exceptions.NoSuchKey:
                        continue  # deleted since the listing
                    try:
                        data = json.loads(body.read())
                        period = data.get("period")
                        covered = any(data.get("covered", {}).values())
                    except (ValueError, AttributeError, TypeError):
                        continue  # not a state: its own lane reports it
                    if period in ("day", "hour") and covered:
                        return "hour" if period == "hour" else "day"
                    reads += 1
                    if reads >= max_reads:
                        return None  # the lanes still check their own state
        except ClientError as exc:
            raise self._bucket_error("list", folder, exc) from None
        return None

    def account_folder(self, account_id: str) -> str:
        """Where the states of an account's lanes (one per region) are kept."""
        return "/".join(p for p in (self.prefix, STATE_FOLDER, account_id) if p) + "/"

    def delete(self, account_id: str, region: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self.key(account_id, region))

    def _bucket_error(self, verb: str, key: str, exc: ClientError) -> BucketError:
        return state_bucket_error(f"{verb} s3://{self.bucket}/{key}", exc)
