"""A config file kept in S3 (the Lambda's `s3://BUCKET/KEY`): one GetObject, its failure a
ConfigError naming the location."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from log_exporter.aws.errors import AWS_ERRORS, config_unreadable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_config_object(s3: Callable[[], S3Client], bucket: str, key: str) -> bytes:
    """The bytes of `s3://bucket/key`, with the client `s3` makes; ConfigError
    's3://bucket/key: cannot be read: ...' when S3 refuses or does not answer (or the client
    cannot be made)."""
    try:
        return bytes(s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    except AWS_ERRORS as exc:
        raise config_unreadable(f"s3://{bucket}/{key}", exc) from None
