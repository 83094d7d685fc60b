"""The archive bucket's exported objects: finding and removing what one export task wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .errors import BucketError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

PROBE_OBJECT = "aws-logs-write-test"


class ArchiveBucket:
    """Object-level operations on the archive, with the ambient credentials."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

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
            raise BucketError(f"cannot list s3://{self.bucket}/{dest_prefix}/: {exc}") from None
        return ids

    def has_objects(self, prefix: str) -> bool:
        """Whether anything is stored under `prefix` (one LIST of one key)."""
        try:
            out = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            raise BucketError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from None
        return bool(out.get("KeyCount") or out.get("Contents"))

    def delete_task_output(self, dest_prefix: str, task_id: str) -> int:
        """Delete everything a (failed or cancelled) task wrote; returns the number of objects."""
        prefix = f"{dest_prefix}/{task_id}/"
        deleted = 0
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": o["Key"]} for o in page.get("Contents", [])
                ]
                if keys:
                    self._s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    deleted += len(keys)
        except ClientError as exc:
            raise BucketError(f"cannot delete s3://{self.bucket}/{prefix}: {exc}") from None
        return deleted
