"""The archive bucket's objects: finding and removing what one export task wrote, listing and
sizing folders, reading tags and the bucket's policy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from log_exporter.aws.errors import (
    AWS_ERRORS,
    Throttled,
    archive_bucket_error,
    bucket_error,
    error_code,
    is_missing_key,
    policy_unreadable,
)
from log_exporter.aws.retry import ARCHIVE_DELETES, call_with_retries
from log_exporter.core.direct import MARKER
from log_exporter.errors import BucketError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

PROBE_OBJECT = "aws-logs-write-test"
# of the keys a DeleteObjects answer lists under Errors (the first try counted); a few seconds
DELETE_TRIES = (ARCHIVE_DELETES.retries or 0) + 1


class ArchiveBucket:
    """Object-level operations on the archive, with the ambient credentials."""

    def __init__(
        self, s3: S3Client, bucket: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._sleep = sleep

    def task_folders(self, dest_prefix: str) -> list[str]:
        """The task ids that have a folder under a period's destination prefix."""
        ids: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=dest_prefix + "/", Delimiter="/"
            )
            for page in pages:
                for cp in page.get("CommonPrefixes", []):
                    ids.append(cp["Prefix"][len(dest_prefix) + 1 :].rstrip("/"))
        except ClientError as exc:
            raise bucket_error(f"list s3://{self.bucket}/{dest_prefix}/", exc) from None
        return ids

    def has_objects(self, prefix: str) -> bool:
        """Whether anything is stored under `prefix` (one LIST of one key)."""
        try:
            out = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            raise bucket_error(f"list s3://{self.bucket}/{prefix}", exc) from None
        return bool(out.get("KeyCount") or out.get("Contents"))

    def delete_task_output(self, dest_prefix: str, task_id: str) -> int:
        """Delete everything a (failed or cancelled) task wrote; returns the number of objects.

        DeleteObjects answers 200 even when some keys were not deleted (listed under `Errors`):
        those are tried again, with backoff, DELETE_TRIES times; BucketError naming the folder if
        some still remain. In a versioned bucket a delete adds delete markers: the objects are
        no longer current, which is what the listings (ListObjectsV2) and the archive count.

        A direct read's marker (direct.py) goes last, once every other object is gone: a folder
        left with objects and no marker would pass for a task's whole period (`sync`)."""
        prefix = f"{dest_prefix}/{task_id}/"
        folder = f"s3://{self.bucket}/{prefix}"
        marker = prefix + MARKER
        deleted = 0
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            last: list[str] = []
            for page in pages:
                keys = [str(o["Key"]) for o in page.get("Contents", [])]
                last += [k for k in keys if k == marker]
                keys = [k for k in keys if k != marker]
                if keys:
                    deleted += self._delete_keys(keys, folder)
            if last:
                deleted += self._delete_keys(last, folder)
        except ClientError as exc:
            raise bucket_error(f"delete {folder}", exc) from None
        return deleted

    def put(self, key: str, body: bytes, content_type: str = "application/gzip") -> None:
        """Write one object (a direct read's; see direct.py). Sent again with the same bytes
        when its answer is lost (botocore's retries): a PUT of the same key is idempotent."""
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as exc:
            raise bucket_error(f"write s3://{self.bucket}/{key}", exc) from None

    def get(self, key: str) -> bytes | None:
        """An object's bytes; None when there is no such object."""
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if is_missing_key(exc):
                return None
            raise bucket_error(f"read s3://{self.bucket}/{key}", exc) from None

    def _objects(self, prefix: str, *, no_answer_too: bool = False) -> Iterator[Any]:
        """ListObjectsV2's entry of every object under `prefix`, in S3's (key) order. A refusal
        is a BucketError; with `no_answer_too` a call without answer is one too (else
        botocore's error goes up as it is)."""
        caught = AWS_ERRORS if no_answer_too else (ClientError,)
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])
        except caught as exc:
            raise bucket_error(f"list s3://{self.bucket}/{prefix}", exc) from None

    def keys(self, prefix: str) -> set[str]:
        """The keys under `prefix`."""
        return set(self.listing(prefix))

    def listing(self, prefix: str) -> list[str]:
        """The keys under `prefix`, in S3's (lexicographic) order."""
        return [str(o["Key"]) for o in self._objects(prefix)]

    def keys_read_back(self, prefix: str) -> list[str]:
        """The keys under `prefix`, in S3's order, for reading the archive back: BucketError
        when S3 refuses or does not answer."""
        return [str(o["Key"]) for o in self._objects(prefix, no_answer_too=True)]

    def read(self, key: str) -> bytes:
        """An object's bytes; BucketError when it cannot be read (missing, refused, no answer)."""
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except AWS_ERRORS as exc:
            raise bucket_error(f"read s3://{self.bucket}/{key}", exc) from None

    def sizes(self, folder: str) -> tuple[int, int]:
        """(objects, bytes) under `folder`, AWS's probe objects left out."""
        objects = size = 0
        for obj in self._objects(folder):
            if obj["Key"].rsplit("/", 1)[-1] == PROBE_OBJECT:
                continue
            objects += 1
            size += int(obj.get("Size", 0))
        return objects, size

    def page(
        self, prefix: str, max_keys: int, start_after: str = ""
    ) -> tuple[list[tuple[str, int | None]], bool]:
        """One ListObjectsV2 page under `prefix` after the key `start_after`: (key, last
        modified in ms, None when S3 did not say) of its objects, and whether more follow."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            out = self._s3.list_objects_v2(**kwargs)
        except ClientError as exc:
            raise bucket_error(f"list s3://{self.bucket}/{prefix}", exc) from None
        objects = [
            (
                str(o["Key"]),
                int(o["LastModified"].timestamp() * 1000) if "LastModified" in o else None,
            )
            for o in out.get("Contents", [])
        ]
        return objects, bool(out.get("IsTruncated"))

    def tags(self, key: str) -> dict[str, str]:
        """An object's tags (GetObjectTagging), by key."""
        try:
            tags = self._s3.get_object_tagging(Bucket=self.bucket, Key=key).get("TagSet", [])
        except ClientError as exc:
            raise bucket_error(f"read the tags of s3://{self.bucket}/{key}", exc) from None
        found: dict[str, str] = {}
        for tag in tags:
            found.setdefault(str(tag.get("Key")), str(tag.get("Value", "")))
        return found

    def policy(self) -> dict[str, Any] | None:
        """The bucket's policy (None: it has none, or it is not a JSON object); BucketError
        'cannot read the bucket policy (<why>)' when it cannot be read."""
        try:
            out = self._s3.get_bucket_policy(Bucket=self.bucket)
            policy = json.loads(out["Policy"])
        except (ClientError, BotoCoreError, ValueError) as exc:
            if isinstance(exc, ClientError) and error_code(exc) == "NoSuchBucketPolicy":
                return None
            raise policy_unreadable(exc) from None
        return policy if isinstance(policy, dict) else None

    def _delete_keys(self, keys: list[str], folder: str) -> int:
        """Delete `keys` (at most 1000), trying again those S3 reports it could not delete."""
        left = keys
        errors: list[tuple[str, str]] = []

        def once() -> None:
            nonlocal left, errors
            objects: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in left]
            out = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
            errors = [
                (str(e.get("Key", "")), f"{e.get('Code', '')} {e.get('Message', '')}".strip())
                for e in out.get("Errors", [])
            ]
            failed = {k for k, _ in errors}
            left = [k for k in left if k in failed]
            if left:
                raise Throttled(errors[0][1])

        def give_up(_: Throttled) -> BucketError:
            return BucketError(
                f"cannot delete {len(left)} of the {len(keys)} objects of a failed task in "
                f"{folder} after {DELETE_TRIES} tries ({errors[0][1]}); the window is exported "
                "again once they are deleted"
            )

        call_with_retries(once, ARCHIVE_DELETES, self._sleep, give_up=give_up)
        return len(keys)


def head_bucket_region(s3: Callable[[], S3Client], bucket: str) -> str | None:
    """HeadBucket of `bucket` with the client `s3` makes: the bucket's region (None: S3 did not
    say); BucketError when it is missing, forbidden or S3 does not answer."""
    try:
        out = s3().head_bucket(Bucket=bucket)
    except AWS_ERRORS as exc:
        raise archive_bucket_error(bucket, exc) from None
    headers = out.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region") or out.get("BucketRegion")
    return str(region) if region else None
